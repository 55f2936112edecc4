"""The HTTP transport: OpenAI-compatible chat completions and /models on httpx, nothing more.

It sends one request to one target and turns the answer into events or a typed error. It never
retries or picks keys: the recovery middleware wraps it for that (`Transport` is the seam).
"""

from __future__ import annotations

import json
import os
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from agent.events import (
    Event,
    Finished,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from agent.retry_policy import parse_retry_after
from agent.route import Target
from providers import errors

USER_AGENT = "hermes/0.1"


@dataclass(frozen=True)
class Timeouts:
    """`[agent]` connect_timeout and timeout, in seconds."""

    connect: float
    read: float


class Transport(Protocol):
    def chat(
        self, target: Target, body: dict[str, Any], *, stream: bool, max_seconds: float | None = None
    ) -> Iterator[Event]: ...
    def models(self, target: Target) -> list[dict[str, Any]]: ...


def _headers(target: Target, *, stream: bool) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "text/event-stream" if stream else "application/json"}
    if target.api_key:
        headers["Authorization"] = f"Bearer {target.api_key}"
    return headers


def _error_message(response: httpx.Response, text: str) -> str:
    """The provider's own words where it gave some, else a short description of what came back."""
    ctype = response.headers.get("content-type", "")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and isinstance(message := err.get("message"), str):
            return message[:500]
        if isinstance(err, str):
            return err[:500]
    if "html" in ctype or text.lstrip().lower().startswith(("<!doctype", "<html")):
        return "the server answered with an HTML page, not the API"
    first = text.strip().splitlines()[0][:200] if text.strip() else response.reason_phrase
    return first


def redirect_error(response: httpx.Response, url: str) -> errors.EndpointRedirect:
    location = response.headers.get("location", "")
    where = f" to {httpx.URL(url).join(location)}" if location else " (no Location given)"
    return errors.EndpointRedirect(
        f"{url} answered HTTP {response.status_code}, a redirect{where}; hermes does not follow redirects, "
        "so nothing was sent there.",
        status=response.status_code,
        location=location,
        hint="If you trust that address, set the provider's base_url to it (`hermes config set "
        "providers.<id>.base_url URL`).",
    )


def status_error(response: httpx.Response, text: str, url: str) -> errors.HTTPStatusError:
    if 300 <= response.status_code < 400:
        return redirect_error(response, url)
    message = _error_message(response, text)
    hint = None
    if response.status_code == 404:
        hint = f"Check the endpoint {url}: it has no such path or model."
    return errors.HTTPStatusError(
        f"HTTP {response.status_code}: {message}",
        status=response.status_code,
        retry_after=parse_retry_after(response.headers, time.time()),
        body_excerpt=text[:2000],
        hint=hint,
    )


class DeferredTrustContext(ssl.SSLContext):
    """The verifying TLS context httpx would make (CA file SSL_CERT_FILE, SSL_CERT_DIR or certifi's), but
    loading the CA store, 25 ms, on its first TLS connection rather than when made: a plain-http
    endpoint (a local server, a proxy) never pays for it."""

    _lock = threading.Lock()
    _loaded = False

    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            if os.environ.get("SSL_CERT_FILE"):
                self.load_verify_locations(cafile=os.environ["SSL_CERT_FILE"])
            elif os.environ.get("SSL_CERT_DIR"):
                self.load_verify_locations(capath=os.environ["SSL_CERT_DIR"])
            else:
                import certifi

                self.load_verify_locations(cafile=certifi.where())
            self._loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._load()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self._load()
        return super().wrap_bio(*args, **kwargs)


_tls: DeferredTrustContext | None = None


def tls_context() -> DeferredTrustContext:
    """The process's one TLS context, shared by every client and proxy mount (httpx makes one each)."""
    global _tls
    if _tls is None:
        _tls = DeferredTrustContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and host names
    return _tls


class HTTPTransport:
    def __init__(self, timeouts: Timeouts, *, network: httpx.BaseTransport | None = None) -> None:
        """`network`: what carries the bytes; None is the real network (sockets, TLS, the environment's
        proxies). Tests pass `httpx.MockTransport` to run everything above the socket for real."""
        self._client = httpx.Client(
            # Never follow a redirect: it would re-send the conversation to a host the user did not choose.
            timeout=httpx.Timeout(timeouts.read, connect=timeouts.connect),
            follow_redirects=False,
            verify=tls_context(),
            transport=network,
        )

    def close(self) -> None:
        self._client.close()

    def models(self, target: Target) -> list[dict[str, Any]]:
        url = f"{target.base_url}/models"
        with _mapped_errors(url):
            response = self._client.get(url, headers=_headers(target, stream=False))
        if response.status_code >= 300:
            raise status_error(response, response.text, url)
        data = _json(response.text, url)
        items = data.get("data") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise errors.MalformedResponse(f"{url} did not return a list of models.")
        return [m if isinstance(m, dict) else {"id": str(m)} for m in items]

    def chat(
        self, target: Target, body: dict[str, Any], *, stream: bool, max_seconds: float | None = None
    ) -> Iterator[Event]:
        """`max_seconds`: the whole answer's deadline, however steadily the server keeps sending."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        url = f"{target.base_url}/chat/completions"
        request = self._client.build_request("POST", url, json=body, headers=_headers(target, stream=stream))
        with _mapped_errors(url):
            response = self._client.send(request, stream=True)
        try:
            if response.status_code >= 300:
                with _mapped_errors(url):
                    text = response.read().decode("utf-8", "replace")
                raise status_error(response, text, url)
            if deadline is not None:
                response.stream = _Deadline(response.stream, deadline, max_seconds or 0.0, url)
            if "text/event-stream" in response.headers.get("content-type", ""):
                yield from _stream_events(response, url)
            else:
                with _mapped_errors(url):
                    text = response.read().decode("utf-8", "replace")
                yield from _completion_events(_json(text, url), url)
        finally:
            response.close()


class _Deadline(httpx.SyncByteStream):
    """A response body that stops at a deadline: the read timeout only covers silence, and a server can
    keep a stream alive forever with keep-alive comments or endless tokens."""

    def __init__(self, inner: Any, deadline: float, seconds: float, url: str) -> None:
        self._inner = inner
        self._deadline = deadline
        self._seconds = seconds
        self._url = url

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            if time.monotonic() > self._deadline:
                raise errors.AnswerTooLong(
                    f"The answer from {httpx.URL(self._url).host} was still arriving after {self._seconds:g}s, "
                    "the limit for one answer; it was stopped.",
                    hint="Raise [agent] max_answer_seconds if answers this long are expected.",
                )
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _mapped_errors:
    """Turn httpx's exceptions into ours, naming the URL."""

    def __init__(self, url: str, *, streaming: bool = False) -> None:
        self.url = url
        self.streaming = streaming

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is None or not isinstance(exc, httpx.HTTPError):
            return
        host = httpx.URL(self.url).host
        if isinstance(exc, httpx.TimeoutException):
            raise errors.TimeoutError(f"Timed out waiting for {self.url}.") from None
        if self.streaming:
            raise errors.StreamInterrupted(f"The stream from {host} stopped halfway ({type(exc).__name__}).") from None
        if isinstance(exc, httpx.ConnectError):
            raise errors.ConnectError(f"Cannot connect to {self.url}: {_reason(exc)}.") from None
        raise errors.TransportError(f"Request to {self.url} failed: {_reason(exc)}.") from None


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return text.split("] ", 1)[-1].rstrip(".") if text else type(exc).__name__


def _json(text: str, url: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        what = "an HTML page" if text.lstrip().startswith("<") else "invalid JSON"
        raise errors.MalformedResponse(
            f"{url} answered with {what}, not the API's JSON.",
            hint="Check that the base URL points at an OpenAI-compatible API.",
        ) from None


def _sse_data(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The data of each event of a text/event-stream: its `data:` lines, joined by newlines.

    The WHATWG "event stream interpretation": lines end with CRLF, LF or CR; a blank line ends an event;
    comments (`:...`) and the other fields (event, id, retry) are skipped; an event the stream cut before
    its blank line is dropped. Lines are split as bytes: the newline bytes never occur inside a UTF-8
    character, so each event is decoded whole by the caller.
    """
    partial: list[bytes] = []  # a line that the next chunk continues; kept in pieces, joined once whole
    data: list[bytes] = []
    for chunk in chunks:
        if partial:
            ends_cr = partial[-1].endswith(b"\r")
            partial.append(chunk)
            if not ends_cr and b"\n" not in chunk and b"\r" not in chunk:
                continue
            chunk = b"".join(partial)
            partial = []
        held = b""
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):  # maybe the first half of a CRLF: decided by the next chunk
                chunk, held = chunk[:-1], b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = chunk.split(b"\n")
        if rest := lines.pop() + held:
            partial = [rest]
        for line in lines:
            if line:
                if line.startswith(b"data:"):
                    data.append(line[6:] if line[5:6] == b" " else line[5:])
                elif line == b"data":
                    data.append(b"")
            elif data:
                yield data[0] if len(data) == 1 else b"\n".join(data)
                data = []
    if partial == [b"\r"] and data:  # the stream's last CR ended a blank line after all
        yield data[0] if len(data) == 1 else b"\n".join(data)


_decode_prefix = json.JSONDecoder().raw_decode


def _chunk_json(text: str, url: str) -> Any:
    """`_json` of a text that starts with "{", at half the cost: json.loads scans it for whitespace at
    both ends first, which is a third of the work for a chunk of one token."""
    try:
        value, end = _decode_prefix(text)
    except ValueError:
        return _json(text, url)  # its error
    if end != len(text) and text[end:].strip(" \t\n\r"):
        return _json(text, url)  # extra data after the object: its error
    return value


def _stream_events(response: httpx.Response, url: str) -> Iterator[Event]:
    encoding = response.encoding or "utf-8"
    finished = False
    with _mapped_errors(url, streaming=True):
        for data in _sse_data(response.iter_bytes()):
            text = data.decode(encoding, "replace")
            if text[:1] == "{":  # the usual chunk: neither the end nor blank
                chunk = _chunk_json(text, url)
            else:
                stripped = text.strip()
                if stripped == "[DONE]":
                    return
                if not stripped:
                    continue
                chunk = _json(text, url)
            if isinstance(chunk, dict) and chunk.get("error"):
                raise _reported_error(chunk, text, "mid-stream")
            for event in _chunk_events(chunk, url):
                finished = finished or isinstance(event, Finished)
                yield event
    if not finished:
        raise errors.StreamInterrupted(f"The stream from {httpx.URL(url).host} ended before the answer was complete.")


def _reported_error(data: dict[str, Any], text: str, when: str) -> errors.HTTPStatusError:
    """An error object sent with a 200 (as the body, or as a stream event), as the status it names."""
    err = data.get("error")
    code = err.get("code") if isinstance(err, dict) else None
    status = (
        code
        if isinstance(code, int) and not isinstance(code, bool)
        else int(code)
        if isinstance(code, str) and code.isdigit() and len(code) == 3
        else 500
    )
    if not 400 <= status <= 599:
        status = 500  # a code that is no HTTP error status ("rate_limit", 200) is still the provider failing
    message = _error_message_of(data)
    where = f" {when}" if when else ""
    return errors.HTTPStatusError(
        f"The provider reported an error{where}: {message}", status=status, body_excerpt=text[:2000]
    )


def _error_message_of(data: dict[str, Any]) -> str:
    err = data.get("error", data)
    if isinstance(err, dict) and isinstance(message := err.get("message"), str):
        return message[:500]
    if isinstance(err, str):
        return err[:500]
    return json.dumps(err)[:500]


def _malformed(url: str, what: str) -> errors.MalformedResponse:
    return errors.MalformedResponse(
        f"{url} answered with {what}, which is not the API's format.",
        hint="Check that the base URL points at an OpenAI-compatible API.",
    )


_MAX_COUNT = 2**31  # no answer has more tokens; a bigger "count" would overflow the sessions DB


def _count(value: Any) -> int:
    """A token count as sent ("12", 12.0, null...); anything that is not a count is 0: usage is only shown."""
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 20:
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_COUNT:
        return 0
    return value


def _usage(data: dict[str, Any]) -> Iterator[Event]:
    usage = data.get("usage")
    if isinstance(usage, dict):
        details = usage.get("prompt_tokens_details")
        cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
        yield Usage(_count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")), cached)


def _text(value: Any) -> str:
    """Message content: a string, or a list of parts whose text parts are joined; anything else is none."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p["text"] for p in value if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _tool_call(call: Any, position: int, url: str, *, streaming: bool) -> ToolCallDelta:
    if not isinstance(call, dict):
        raise _malformed(url, "a tool call that is not an object")
    index = call.get("index", position) if streaming else position
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise _malformed(url, f"a tool call index {json.dumps(index)[:40]}")
    fn = call.get("function") or {}
    if not isinstance(fn, dict):
        raise _malformed(url, "a tool call whose function is not an object")
    name, arguments, call_id = fn.get("name"), fn.get("arguments"), call.get("id")
    if name is not None and not isinstance(name, str):
        raise _malformed(url, "a tool call whose name is not a string")
    if isinstance(arguments, (dict, list)):
        arguments = json.dumps(arguments)  # some servers send the object itself
    elif arguments is not None and not isinstance(arguments, str):
        raise _malformed(url, "tool call arguments that are not a string")
    return ToolCallDelta(index, str(call_id) if call_id else None, name or None, arguments or "")


def _list(value: Any, url: str, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _malformed(url, f"{what} that is not a list")
    return value


def _chunk_events(chunk: Any, url: str = "the server") -> Iterator[Event]:
    # Once per streamed token: the common shapes (a string content, no tool calls, no usage) are
    # checked inline rather than through _text, _list and _usage.
    if not isinstance(chunk, dict):
        return  # keep-alive values, stray numbers: nothing to show
    choices = chunk.get("choices")
    for choice in choices if isinstance(choices, list) else _list(choices, url, "choices"):
        if not isinstance(choice, dict):
            raise _malformed(url, "a choice that is not an object")
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise _malformed(url, "a delta that is not an object")
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            yield ReasoningDelta(reasoning)
        content = delta.get("content")
        if content:
            if not isinstance(content, str):
                content = _text(content)
            if content:
                yield TextDelta(content)
        calls = delta.get("tool_calls")
        if calls is not None:
            for position, call in enumerate(_list(calls, url, "tool_calls")):
                yield _tool_call(call, position, url, streaming=True)
        if choice.get("finish_reason"):
            yield Finished(str(choice["finish_reason"])[:100])
    if "usage" in chunk:
        yield from _usage(chunk)


def _completion_events(data: Any, url: str) -> Iterator[Event]:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        if isinstance(data, dict) and data.get("error"):
            raise _reported_error(data, json.dumps(data), "")
        raise errors.MalformedResponse(f"{url} answered without any choices.")
    message = choices[0].get("message") or {}
    if not isinstance(message, dict):
        raise _malformed(url, "a message that is not an object")
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        yield ReasoningDelta(reasoning)
    content = _text(message.get("content"))
    if content:
        yield TextDelta(content)
    for i, call in enumerate(_list(message.get("tool_calls"), url, "tool_calls")):
        yield _tool_call(call, i, url, streaming=False)
    yield from _usage(data)
    yield Finished(str(choices[0].get("finish_reason") or "stop")[:100])
