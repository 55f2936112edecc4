"""A scripted OpenAI-compatible HTTP server for tests (standard library only).

Each FakeServer listens on its own free port on 127.0.0.1 and serves, in a
daemon thread:

* ``.../chat/completions``: the next scripted response (see ``script``,
  ``script_for_key``, ``always``, ``always_for_key``), streamed as SSE when the
  request body has ``"stream": true``;
* ``.../models``: ``srv.models`` in the OpenAI list format;
* anything else: a plain-text ``404 page not found``.

Every request is recorded in ``srv.log`` (with the status it was answered)
before the response is written, so a client that has seen a response always
finds its request in the log.

All responses carry ``Connection: close``; streams use chunked transfer
encoding, so a cut stream (``CutStream``) is a protocol error for the client
rather than a silently short answer.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import sys
import threading
import time
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import KW_ONLY, dataclass
from http import HTTPStatus
from typing import Any, TypeAlias

__all__ = [
    "CutStream",
    "FakeServer",
    "Forever",
    "Hang",
    "Html",
    "InvalidJson",
    "LoggedRequest",
    "Models",
    "NotFound",
    "RateLimit",
    "Reply",
    "Response",
    "Sse",
    "Status",
    "ToolCalls",
]

DEFAULT_TEXT = "Hello from fake"
DEFAULT_MODELS = ("model-a", "model-b")
DEFAULT_MODEL = "fake-model"
COMPLETION_ID = "chatcmpl-fake"
CHUNK_SIZE = 8


# --------------------------------------------------------------------------
# Response kinds
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """200 with an assistant message; SSE when the request asked for a stream.

    ``chunks`` (stream only) overrides the default split of ``text`` into
    ~8-character pieces. ``delay`` is slept between stream chunks, and once
    before a non-stream answer.
    """

    text: str = DEFAULT_TEXT
    _: KW_ONLY
    chunks: Sequence[str] | None = None
    usage: tuple[int, ...] = (10, 5)  # a third number: cached prompt tokens
    finish_reason: str = "stop"
    delay: float = 0.0
    model: str | None = None
    # Sent first, as `reasoning_content` (DeepSeek, llama.cpp, vLLM) or, with reasoning_field="reasoning",
    # as OpenRouter's `reasoning`; streamed in ~8-character pieces like the text.
    reasoning: str | None = None
    reasoning_field: str = "reasoning_content"


@dataclass(frozen=True)
class ToolCalls:
    """200 with assistant tool calls (ids ``call_0``, ``call_1``, ...).

    Arguments given as a dict are JSON-encoded; a string is sent as-is (to
    test invalid JSON arguments).
    """

    calls: Sequence[tuple[str, dict[str, Any] | str]]
    text: str | None = None
    _: KW_ONLY
    usage: tuple[int, ...] = (10, 5)  # a third number: cached prompt tokens
    delay: float = 0.0
    model: str | None = None


@dataclass(frozen=True)
class Status:
    """Any status. ``body``: dict/list -> JSON, str/bytes -> as-is, None -> OpenAI-style error."""

    code: int
    body: Any = None
    headers: dict[str, str] | None = None
    content_type: str = "application/json"


@dataclass(frozen=True)
class RateLimit:
    """429; ``retry_after`` is written as-is so HTTP dates work too."""

    retry_after: str | float | None = None
    retry_after_ms: str | float | None = None
    body: Any = None


@dataclass(frozen=True)
class NotFound:
    """404 with the plain-text body ``404 page not found``."""


@dataclass(frozen=True)
class Html:
    """An HTML error page, as a proxy or load balancer would send."""

    status: int = 502


@dataclass(frozen=True)
class InvalidJson:
    """``application/json`` with a truncated body, for stream requests too."""

    status: int = 200


@dataclass(frozen=True)
class CutStream:
    """Stream: ``after`` content chunks then the connection closes, no finish chunk nor [DONE].

    Non-stream: a Content-Length larger than the part of the body sent.
    """

    text: str = "partial answer that"
    after: int = 2


@dataclass(frozen=True)
class Hang:
    """Accept the request, send nothing for ``seconds`` (or until stop()), then close."""

    seconds: float = 10.0


@dataclass(frozen=True)
class Sse:
    """``status`` with ``text/event-stream``: each of ``events`` sent as is as one ``data:`` payload
    (garbage welcome), then the body ends; nothing added, not even ``[DONE]``."""

    events: Sequence[str]
    status: int = 200


@dataclass(frozen=True)
class Forever:
    """A stream that never ends: every ``interval`` seconds a keep-alive comment (``tokens=False``) or a
    token of text, until the client goes away or the server stops."""

    tokens: bool = False
    interval: float = 0.05


@dataclass(frozen=True)
class Models:
    """Alternative to a plain list of ids for ``srv.models``."""

    ids: Sequence[str]
    owned_by: str = "fake"


Response: TypeAlias = (
    Reply | ToolCalls | Status | RateLimit | NotFound | Html | InvalidJson | CutStream | Hang | Sse | Forever
)
# srv.models: ids, a Models, or any response (e.g. Status(500)) to make listing fail.
ModelsSpec: TypeAlias = Sequence[str] | Models | Response

UNAUTHORIZED = Status(
    401,
    {"error": {"message": "Invalid API Key", "type": "authentication_error", "code": 401}},
)


@dataclass
class LoggedRequest:
    method: str
    path: str  # without the query string
    host: str  # "127.0.0.1:PORT" of the server that received the request
    port: int
    key: str | None  # bearer token from the Authorization header
    headers: dict[str, str]  # lower-cased names
    body: dict[str, Any] | None  # parsed JSON object, None if not a JSON object
    raw_body: bytes
    status: int  # status answered; 0 for Hang (nothing was answered)
    query: str = ""

    @property
    def json(self) -> dict[str, Any]:
        """The body as the JSON object it must be; a test reading it fails here if it was not one."""
        assert self.body is not None, f"{self.method} {self.path} had no JSON object body: {self.raw_body[:80]!r}"
        return self.body


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------


class FakeServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self.log: list[LoggedRequest] = []
        self._queue: deque[Response] = deque()
        self._key_queues: dict[str | None, deque[Response]] = {}
        self._default: Response = Reply()
        self._key_defaults: dict[str | None, Response] = {}
        self.models: ModelsSpec = list(DEFAULT_MODELS)
        self.require_key: Collection[str] | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> FakeServer:
        if self._port is not None:
            raise RuntimeError("FakeServer can only be started once")
        self._httpd = _HTTPServer(self)
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeServer:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting; in-flight Hang/slow streams are cut. Idempotent.

        The address properties keep working afterwards (a dead port, handy
        for "host is down" tests).
        """
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeServer not started")
        return self._port

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    # -- scripting ---------------------------------------------------------

    def script(self, *responses: Response) -> None:
        with self._lock:
            self._queue.extend(responses)

    def script_for_key(self, key: str | None, *responses: Response) -> None:
        with self._lock:
            self._key_queues.setdefault(key, deque()).extend(responses)

    def always(self, response: Response) -> None:
        with self._lock:
            self._default = response

    def always_for_key(self, key: str | None, response: Response) -> None:
        with self._lock:
            self._key_defaults[key] = response

    def reset(self) -> None:
        with self._lock:
            self.log.clear()
            self._queue.clear()
            self._key_queues.clear()
            self._default = Reply()
            self._key_defaults.clear()
            self.models = list(DEFAULT_MODELS)
            self.require_key = None

    # -- inspection --------------------------------------------------------

    def requests(self, path_suffix: str = "/chat/completions") -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.log if r.path.endswith(path_suffix)]

    def keys_seen(self) -> list[str | None]:
        return [r.key for r in self.requests("/chat/completions")]

    def __repr__(self) -> str:
        where = self.host if self._port is not None else "not started"
        return f"<FakeServer {where}, {len(self.log)} requests>"

    # -- used by the handler -----------------------------------------------

    def _next_response(self, key: str | None) -> Response:
        with self._lock:
            queue = self._key_queues.get(key)
            if queue:
                return queue.popleft()
            if key in self._key_defaults:
                return self._key_defaults[key]
            if self._queue:
                return self._queue.popleft()
            return self._default

    def _models_response(self) -> Response:
        spec = self.models
        if isinstance(spec, Models):
            ids, owner = list(spec.ids), spec.owned_by
        elif isinstance(spec, (list, tuple)):
            ids, owner = list(spec), "fake"
        else:
            return spec  # type: ignore[return-value]  # a Response: a list or tuple check leaves Sequence[str] in
        data = [{"id": i, "object": "model", "owned_by": owner} for i in ids]
        return Status(200, {"object": "list", "data": data})

    def _authorized(self, key: str | None) -> bool:
        allowed = self.require_key
        return allowed is None or (key is not None and key in allowed)

    def _record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.log.append(entry)


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeServer) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-response is normal in these tests.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Abort(Exception):
    """The server is stopping: drop the connection."""


# --------------------------------------------------------------------------
# Handler
# --------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # so each SSE chunk leaves at once
    timeout = 30
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    # -- request -----------------------------------------------------------

    def _dispatch(self) -> None:
        fake = self.server.fake
        self.close_connection = True
        raw = self._read_body()
        path, _, query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        key = _bearer(headers.get("authorization"))
        body = _json_object(raw)
        port = self.server.server_address[1]
        self._entry = LoggedRequest(
            method=self.command,
            path=path,
            host=f"127.0.0.1:{port}",
            port=port,
            key=key,
            headers=headers,
            body=body,
            raw_body=raw,
            status=0,
            query=query,
        )
        self._logged = False
        self._model = str((body or {}).get("model") or DEFAULT_MODEL)
        self._stream = bool(body and body.get("stream") is True)
        stream_options = (body or {}).get("stream_options")
        self._include_usage = isinstance(stream_options, dict) and bool(stream_options.get("include_usage"))

        response: Response
        if path.endswith("/chat/completions"):
            if not fake._authorized(key):
                response = UNAUTHORIZED
            elif self.command != "POST":
                response = Status(405)
            else:
                response = fake._next_response(key)
        elif path.endswith("/models"):
            response = fake._models_response() if fake._authorized(key) else UNAUTHORIZED
        else:
            response = NotFound()
        with contextlib.suppress(_Abort):
            self._send(response)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    # -- response kinds ----------------------------------------------------

    def _send(self, response: Response) -> None:
        if isinstance(response, Reply):
            self._send_reply(response)
        elif isinstance(response, ToolCalls):
            self._send_tool_calls(response)
        elif isinstance(response, Status):
            body = response.body if response.body is not None else _error(response.code)
            self._write_full(response.code, _encode(body), response.content_type, response.headers)
        elif isinstance(response, RateLimit):
            headers = {}
            if response.retry_after is not None:
                headers["Retry-After"] = str(response.retry_after)
            if response.retry_after_ms is not None:
                headers["retry-after-ms"] = str(response.retry_after_ms)
            body = response.body
            if body is None:
                body = {
                    "error": {
                        "message": "Rate limit exceeded",
                        "type": "rate_limit_error",
                        "code": 429,
                    }
                }
            self._write_full(429, _encode(body), "application/json", headers)
        elif isinstance(response, NotFound):
            self._write_full(404, b"404 page not found", "text/plain")
        elif isinstance(response, Html):
            page = f"<html><body><h1>{response.status} {_phrase(response.status)}</h1></body></html>"
            self._write_full(response.status, page.encode(), "text/html")
        elif isinstance(response, InvalidJson):
            self._write_full(response.status, b'{"choices": [', "application/json")
        elif isinstance(response, CutStream):
            self._send_cut(response)
        elif isinstance(response, Hang):
            self._log(0)
            self._pause(response.seconds)
        elif isinstance(response, Sse):
            self._start_stream(response.status)
            for data in response.events:
                self._write_event(data)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        elif isinstance(response, Forever):
            self._send_forever(response)
        else:
            raise TypeError(f"not a FakeServer response: {response!r}")

    def _send_reply(self, r: Reply) -> None:
        model = r.model or self._model
        if not self._stream:
            self._pause(r.delay)
            message = {"role": "assistant", "content": r.text}
            if r.reasoning:
                message[r.reasoning_field] = r.reasoning
            body = _completion(model, message, r.finish_reason, r.usage)
            self._write_full(200, _encode(body), "application/json")
            return
        pieces = list(r.chunks) if r.chunks is not None else _split(r.text)
        deltas: list[dict[str, Any]] = [{r.reasoning_field: p} for p in _split(r.reasoning or "")]
        deltas += [{"content": p} for p in pieces] or [{"content": ""}]
        deltas[0] = {"role": "assistant", **deltas[0]}
        self._stream_deltas(model, deltas, r.finish_reason, r.usage, r.delay)

    def _send_tool_calls(self, r: ToolCalls) -> None:
        model = r.model or self._model
        calls = [(name, args if isinstance(args, str) else json.dumps(args)) for name, args in r.calls]
        if not self._stream:
            self._pause(r.delay)
            message = {
                "role": "assistant",
                "content": r.text,
                "tool_calls": [
                    {
                        "id": f"call_{i}",
                        "type": "function",
                        "function": {"name": name, "arguments": args},
                    }
                    for i, (name, args) in enumerate(calls)
                ],
            }
            body = _completion(model, message, "tool_calls", r.usage)
            self._write_full(200, _encode(body), "application/json")
            return
        deltas: list[dict[str, Any]] = [{"content": p} for p in _split(r.text or "")]
        if not deltas:
            deltas = [{"content": None}]
        deltas[0] = {"role": "assistant", **deltas[0]}
        for i, (name, args) in enumerate(calls):
            head = {"index": i, "id": f"call_{i}", "type": "function"}
            deltas.append({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]})
            for fragment in _split_in(args, 3):
                deltas.append({"tool_calls": [{"index": i, "function": {"arguments": fragment}}]})
        self._stream_deltas(model, deltas, "tool_calls", r.usage, r.delay)

    def _send_cut(self, r: CutStream) -> None:
        if not self._stream:
            message = {"role": "assistant", "content": r.text}
            body = _encode(_completion(self._model, message, "stop", (10, 5)))
            self._log(200)
            self._write_head(200, "application/json", {"Content-Length": str(len(body))})
            self.wfile.write(body[: len(body) // 2])
            return
        self._start_stream()
        for i, piece in enumerate(_split(r.text)[: r.after]):
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            self._write_event(json.dumps(_chunk(self._model, [_choice(delta, None)])))
        # Returning without the terminating zero-size chunk: the client sees
        # the connection close in the middle of a chunked body.

    def _send_forever(self, r: Forever) -> None:
        self._start_stream()
        first = True
        while True:
            if r.tokens:
                delta = {"role": "assistant", "content": "more "} if first else {"content": "more "}
                self._write_event(json.dumps(_chunk(self._model, [_choice(delta, None)])))
            else:
                self._write_chunk(b": keep-alive\n\n")
            first = False
            self._pause(r.interval)

    # -- writing -----------------------------------------------------------

    def _log(self, status: int) -> None:
        if not self._logged:
            self._logged = True
            self._entry.status = status
            self.server.fake._record(self._entry)

    def _pause(self, seconds: float) -> None:
        if seconds > 0 and self.server.fake._stopping.wait(seconds):
            raise _Abort

    def _write_head(self, status: int, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()

    def _write_full(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self._log(status)
        if status < 200 or status in (204, 304):
            body = b""  # these statuses never carry a body
            all_headers = dict(headers or {})
        else:
            all_headers = {"Content-Length": str(len(body)), **(headers or {})}
        self._write_head(status, content_type, all_headers)
        self.wfile.write(body)

    def _start_stream(self, status: int = 200) -> None:
        self._log(status)
        self._write_head(
            status,
            "text/event-stream; charset=utf-8",
            {"Cache-Control": "no-cache", "Transfer-Encoding": "chunked"},
        )

    def _write_event(self, data: str) -> None:
        self._write_chunk(f"data: {data}\n\n".encode("utf-8", "surrogatepass"))

    def _write_chunk(self, payload: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.wfile.flush()

    def _stream_deltas(
        self,
        model: str,
        deltas: list[dict[str, Any]],
        finish_reason: str,
        usage: tuple[int, ...],
        delay: float,
    ) -> None:
        self._start_stream()
        for i, delta in enumerate(deltas):
            if i:
                self._pause(delay)
            self._write_event(json.dumps(_chunk(model, [_choice(delta, None)])))
        self._pause(delay)
        self._write_event(json.dumps(_chunk(model, [_choice({}, finish_reason)])))
        if self._include_usage:
            self._write_event(json.dumps(_chunk(model, [], _usage(usage))))
        self._write_event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error"


def _error(code: int) -> dict[str, Any]:
    return {"error": {"message": _phrase(code), "type": "error", "code": code}}


def _encode(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def _split(text: str, size: int = CHUNK_SIZE) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _split_in(text: str, parts: int) -> list[str]:
    size = max(1, -(-len(text) // parts))
    return _split(text, size)


def _usage(usage: tuple[int, ...]) -> dict[str, Any]:
    """(prompt, completion) or (prompt, completion, cached prompt tokens), in OpenAI's shape."""
    prompt, completion, *cached = usage
    data: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached:
        data["prompt_tokens_details"] = {"cached_tokens": cached[0]}
    return data


def _choice(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish_reason}


def _chunk(model: str, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": COMPLETION_ID,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def _completion(model: str, message: dict[str, Any], finish_reason: str, usage: tuple[int, ...]) -> dict[str, Any]:
    return {
        "id": COMPLETION_ID,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": _usage(usage),
    }
