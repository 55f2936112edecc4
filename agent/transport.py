"""The HTTP transport: OpenAI-compatible chat completions and /models on httpx, nothing more.

It sends one request to one target and turns the answer into events or a typed error. It never
retries or picks keys: the recovery middleware wraps it for that (`Transport` is the seam).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from agent import errors
from agent.events import Event, Finished, ReasoningDelta, TextDelta, ToolCallDelta, Usage
from agent.retry_policy import parse_retry_after
from agent.route import Target

USER_AGENT = "hermes/0.1"


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 120.0


class Transport(Protocol):
    def chat(self, target: Target, body: dict[str, Any], *, stream: bool) -> Iterator[Event]: ...
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
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str):
            return err
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


class HTTPTransport:
    def __init__(self, timeouts: Timeouts = Timeouts(), client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client(
            # Never follow a redirect: it would re-send the conversation to a host the user did not choose.
            timeout=httpx.Timeout(timeouts.read, connect=timeouts.connect), follow_redirects=False
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

    def chat(self, target: Target, body: dict[str, Any], *, stream: bool) -> Iterator[Event]:
        url = f"{target.base_url}/chat/completions"
        request = self._client.build_request("POST", url, json=body, headers=_headers(target, stream=stream))
        with _mapped_errors(url):
            response = self._client.send(request, stream=True)
        try:
            if response.status_code >= 300:
                with _mapped_errors(url):
                    text = response.read().decode("utf-8", "replace")
                raise status_error(response, text, url)
            if "text/event-stream" in response.headers.get("content-type", ""):
                yield from _stream_events(response, url)
            else:
                with _mapped_errors(url):
                    text = response.read().decode("utf-8", "replace")
                yield from _completion_events(_json(text, url), url)
        finally:
            response.close()


class _mapped_errors:
    """Turn httpx's exceptions into ours, naming the URL."""

    def __init__(self, url: str, *, streaming: bool = False) -> None:
        self.url = url
        self.streaming = streaming

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or not isinstance(exc, httpx.HTTPError):
            return False
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
    return text.split("] ", 1)[-1] if text else type(exc).__name__


def _json(text: str, url: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        what = "an HTML page" if text.lstrip().startswith("<") else "invalid JSON"
        raise errors.MalformedResponse(f"{url} answered with {what}, not the API's JSON.",
                                       hint="Check that the base URL points at an OpenAI-compatible API.") from None


def _stream_events(response: httpx.Response, url: str) -> Iterator[Event]:
    from httpx_sse import EventSource

    finished = False
    with _mapped_errors(url, streaming=True):
        for sse in EventSource(response).iter_sse():
            if sse.data.strip() == "[DONE]":
                return
            if not sse.data.strip():
                continue
            chunk = _json(sse.data, url)
            if isinstance(chunk, dict) and chunk.get("error"):
                raise errors.HTTPStatusError(
                    f"The provider reported an error mid-stream: {_error_message(response, sse.data)}",
                    status=int(chunk["error"].get("code") or 500) if isinstance(chunk["error"], dict)
                    and str(chunk["error"].get("code", "")).isdigit() else 500,
                    body_excerpt=sse.data[:2000],
                )
            for event in _chunk_events(chunk):
                finished = finished or isinstance(event, Finished)
                yield event
    if not finished:
        raise errors.StreamInterrupted(f"The stream from {httpx.URL(url).host} ended before the answer was complete.")


def _chunk_events(chunk: Any) -> Iterator[Event]:
    if not isinstance(chunk, dict):
        return
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            yield ReasoningDelta(reasoning)
        if isinstance(delta.get("content"), str) and delta["content"]:
            yield TextDelta(delta["content"])
        for call in delta.get("tool_calls") or ():
            fn = call.get("function") or {}
            yield ToolCallDelta(int(call.get("index", 0)), call.get("id"), fn.get("name"), fn.get("arguments") or "")
        if choice.get("finish_reason"):
            yield Finished(str(choice["finish_reason"]))
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        yield Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


def _completion_events(data: Any, url: str) -> Iterator[Event]:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        if isinstance(data, dict) and data.get("error"):
            raise errors.HTTPStatusError(f"The provider reported an error: {data['error']}", status=500,
                                         body_excerpt=json.dumps(data)[:2000])
        raise errors.MalformedResponse(f"{url} answered without any choices.")
    message = choices[0].get("message") or {}
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        yield ReasoningDelta(reasoning)
    if isinstance(message.get("content"), str) and message["content"]:
        yield TextDelta(message["content"])
    for i, call in enumerate(message.get("tool_calls") or ()):
        fn = call.get("function") or {}
        yield ToolCallDelta(i, call.get("id"), fn.get("name"), fn.get("arguments") or "")
    usage = data.get("usage")
    if isinstance(usage, dict):
        yield Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
    yield Finished(str(choices[0].get("finish_reason") or "stop"))
