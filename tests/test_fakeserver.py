"""Tests of the scripted fake server, through plain httpx and the official openai SDK."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import httpx
import openai
import pytest
from httpx_sse import connect_sse
from openai.types.chat import ChatCompletionMessageParam

from tests.fakeserver import (
    CutStream,
    FakeServer,
    Hang,
    Html,
    InvalidJson,
    Models,
    NotFound,
    RateLimit,
    Reply,
    Status,
    ToolCalls,
)

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture
def srv() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


def sdk(server: FakeServer, key: str = "k1", timeout: float = 60) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=timeout)


def chat(server: FakeServer, key: str | None = "k1", **body: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    payload = {"model": "m", "messages": MESSAGES, **body}
    return httpx.post(f"{server.base_url}/chat/completions", json=payload, headers=headers)


# -- addresses and lifecycle -------------------------------------------------


def test_addresses() -> None:
    server = FakeServer()
    with pytest.raises(RuntimeError):
        _ = server.base_url
    server.start()
    try:
        assert server.port > 0
        assert server.host == f"127.0.0.1:{server.port}"
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    finally:
        server.stop()
    server.stop()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/models")


# -- chat replies ------------------------------------------------------------


def test_default_reply_non_stream_sdk(srv: FakeServer) -> None:
    completion = sdk(srv).chat.completions.create(model="model-a", messages=MESSAGES)
    assert completion.choices[0].message.content == "Hello from fake"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "model-a"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (10, 5)
    assert completion.usage.total_tokens == 15


def test_stream_reply_with_usage_sdk(srv: FakeServer) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    srv.script(Reply(text, usage=(7, 3), model="served-model"))
    stream = sdk(srv).chat.completions.create(
        model="model-a",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == text
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (7, 3)
    assert {c.model for c in chunks} == {"served-model"}


def test_stream_without_include_usage_has_no_usage_chunk(srv: FakeServer) -> None:
    srv.script(Reply(chunks=["a", "b", "c"], finish_reason="length"))
    chunks = list(sdk(srv).chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert all(c.choices for c in chunks)
    assert [c.choices[0].delta.content for c in chunks] == ["a", "b", "c", None]
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(c.usage is None for c in chunks)


def test_stream_wire_format_httpx_sse(srv: FakeServer) -> None:
    srv.script(Reply("hello world"))
    body = {"model": "m", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.Client() as client, connect_sse(client, "POST", f"{srv.base_url}/chat/completions", json=body) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        assert source.response.headers["transfer-encoding"] == "chunked"
        data = [event.data for event in source.iter_sse()]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert [c["choices"][0]["delta"] for c in chunks[:2]] == [
        {"role": "assistant", "content": "hello wo"},
        {"content": "rld"},
    ]
    assert chunks[2]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert chunks[3]["choices"] == []
    assert chunks[3]["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert all(c["id"] == "chatcmpl-fake" and c["model"] == "m" for c in chunks)


def test_slow_stream_delivers_chunks_as_they_are_sent(srv: FakeServer) -> None:
    srv.script(Reply(chunks=["one", "two", "three"], delay=0.4))
    start = time.monotonic()
    arrivals = []
    with httpx.stream(
        "POST",
        f"{srv.base_url}/chat/completions",
        json={"model": "m", "messages": MESSAGES, "stream": True},
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic() - start)
    assert len(arrivals) == 5  # 3 content chunks, finish chunk, [DONE]
    # 3 pauses (between content chunks, before the finish chunk): 1.2 s in all
    assert arrivals[0] < 0.6
    assert arrivals[-1] >= 1.2


def test_queue_order_then_default(srv: FakeServer) -> None:
    srv.script(Reply("first"), Reply("second"))
    contents = [chat(srv).json()["choices"][0]["message"]["content"] for _ in range(3)]
    assert contents == ["first", "second", "Hello from fake"]
    srv.always(Reply("forever"))
    assert chat(srv).json()["choices"][0]["message"]["content"] == "forever"
    assert chat(srv).json()["choices"][0]["message"]["content"] == "forever"


def test_script_for_key_routing(srv: FakeServer) -> None:
    srv.script(Reply("general 1"), Reply("general 2"))
    srv.script_for_key("k2", Reply("for k2"))
    srv.always_for_key("k3", Status(503))

    def content(key: str) -> str:
        return cast(str, chat(srv, key).json()["choices"][0]["message"]["content"])

    assert content("k2") == "for k2"  # its own queue first
    assert content("k1") == "general 1"
    assert content("k2") == "general 2"  # its queue is empty: general queue
    assert chat(srv, "k3").status_code == 503  # its default beats the general queue
    assert content("k1") == "Hello from fake"
    assert srv.keys_seen() == ["k2", "k1", "k2", "k3", "k1"]

    with pytest.raises(openai.InternalServerError):
        sdk(srv, "k3").chat.completions.create(model="m", messages=MESSAGES)


# -- tool calls --------------------------------------------------------------


def test_tool_calls_stream_sdk(srv: FakeServer) -> None:
    srv.script(
        ToolCalls(
            [("read_file", {"path": "/tmp/x.txt", "limit": 10}), ("run", "{not json")],
        )
    )
    stream = sdk(srv).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    calls: dict[int, dict[str, str]] = {}
    finish = None
    fragments = 0
    for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            if delta.id:
                call["id"] = delta.id
            if delta.function and delta.function.name:
                call["name"] = delta.function.name
            if delta.function and delta.function.arguments:
                call["arguments"] += delta.function.arguments
                fragments += 1
    assert finish == "tool_calls"
    assert calls[0]["id"] == "call_0"
    assert calls[0]["name"] == "read_file"
    assert json.loads(calls[0]["arguments"]) == {"path": "/tmp/x.txt", "limit": 10}
    assert calls[1] == {"id": "call_1", "name": "run", "arguments": "{not json"}
    assert fragments >= 4  # arguments arrive in several pieces


def test_tool_calls_non_stream_sdk(srv: FakeServer) -> None:
    srv.script(ToolCalls([("search", {"q": "fox"})], text="Let me look."))
    completion = sdk(srv).chat.completions.create(model="m", messages=MESSAGES)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me look."
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.id == "call_0"
    assert call.type == "function"
    assert call.function.name == "search"
    assert json.loads(call.function.arguments) == {"q": "fox"}


def test_tool_calls_stream_with_text(srv: FakeServer) -> None:
    srv.script(ToolCalls([("noop", {})], text="Thinking about it"))
    chunks = list(sdk(srv).chat.completions.create(model="m", messages=MESSAGES, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Thinking about it"
    names = [
        d.function.name for c in chunks for d in c.choices[0].delta.tool_calls or [] if d.function and d.function.name
    ]
    assert names == ["noop"]


# -- errors ------------------------------------------------------------------


def test_rate_limit_sdk_sees_retry_after(srv: FakeServer) -> None:
    srv.script(RateLimit(retry_after=7, retry_after_ms=6500))
    with pytest.raises(openai.RateLimitError) as info:
        sdk(srv).chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "7"
    assert info.value.response.headers["retry-after-ms"] == "6500"
    assert info.value.body == {"message": "Rate limit exceeded", "type": "rate_limit_error", "code": 429}
    assert srv.log[-1].status == 429


def test_rate_limit_http_date_and_stream_request(srv: FakeServer) -> None:
    date = "Wed, 21 Oct 2065 07:28:00 GMT"
    srv.script(RateLimit(retry_after=date), RateLimit())
    response = chat(srv, stream=True)
    assert response.status_code == 429
    assert response.headers["retry-after"] == date
    response = chat(srv)
    assert "retry-after" not in response.headers
    assert response.json()["error"]["type"] == "rate_limit_error"


def test_status_default_and_custom(srv: FakeServer) -> None:
    srv.script(
        Status(500),
        Status(400, body={"error": {"message": "bad model"}}, headers={"X-Trace": "abc"}),
        Status(503, body="overloaded", content_type="text/plain"),
    )
    response = chat(srv)
    assert response.status_code == 500
    assert response.json() == {"error": {"message": "Internal Server Error", "type": "error", "code": 500}}
    response = chat(srv)
    assert (response.status_code, response.json(), response.headers["x-trace"]) == (
        400,
        {"error": {"message": "bad model"}},
        "abc",
    )
    response = chat(srv)
    assert (response.status_code, response.text) == (503, "overloaded")
    assert response.headers["content-type"] == "text/plain"


def test_not_found(srv: FakeServer) -> None:
    response = httpx.get(f"{srv.url}/nope")
    assert response.status_code == 404
    assert response.text == "404 page not found"
    assert response.headers["content-type"] == "text/plain"
    srv.script(NotFound())
    response = chat(srv, stream=True)
    assert (response.status_code, response.text) == (404, "404 page not found")
    with pytest.raises(openai.NotFoundError):
        srv.script(NotFound())
        sdk(srv).chat.completions.create(model="m", messages=MESSAGES)


def test_html_and_invalid_json(srv: FakeServer) -> None:
    srv.script(Html(), InvalidJson(), InvalidJson(status=500))
    response = chat(srv)
    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert response.text == "<html><body><h1>502 Bad Gateway</h1></body></html>"
    response = chat(srv, stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text == '{"choices": ['
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert chat(srv).status_code == 500


def test_cut_stream_sdk_raises(srv: FakeServer) -> None:
    srv.script(CutStream("partial answer that never ends", after=2))
    stream = sdk(srv).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    received = []
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["partial ", "answer t"]


def test_cut_stream_httpx_raises(srv: FakeServer) -> None:
    srv.script(CutStream(), CutStream())
    lines: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST",
            f"{srv.base_url}/chat/completions",
            json={"model": "m", "messages": MESSAGES, "stream": True},
        ) as response,
    ):
        lines.extend(line for line in response.iter_lines() if line)
    assert len(lines) == 2
    assert not any("[DONE]" in line for line in lines)
    with pytest.raises(httpx.RemoteProtocolError):
        chat(srv)  # non-stream: body shorter than Content-Length
    assert [r.status for r in srv.log] == [200, 200]


def test_hang_triggers_client_timeout(srv: FakeServer) -> None:
    srv.script(Hang(30))
    start = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{srv.base_url}/chat/completions",
            json={"model": "m", "messages": MESSAGES},
            timeout=0.3,
        )
    assert time.monotonic() - start < 5
    assert srv.log[-1].status == 0
    srv.script(Hang(30))
    with pytest.raises(openai.APITimeoutError):
        sdk(srv, timeout=0.3).chat.completions.create(model="m", messages=MESSAGES)


def test_stop_is_fast_with_hanging_request() -> None:
    server = FakeServer().start()
    server.always(Hang(60))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.post(f"{server.base_url}/chat/completions", json={}, timeout=30)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.log and time.monotonic() < deadline:
        time.sleep(0.01)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 2
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert errors and isinstance(errors[0], httpx.RemoteProtocolError)


# -- auth, models, log -------------------------------------------------------


def test_require_key(srv: FakeServer) -> None:
    srv.require_key = {"good"}
    with pytest.raises(openai.AuthenticationError) as info:
        sdk(srv, "bad").chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.body == {"message": "Invalid API Key", "type": "authentication_error", "code": 401}
    assert chat(srv, key=None).status_code == 401
    assert httpx.get(f"{srv.base_url}/models").status_code == 401
    srv.script(Reply("welcome"))
    completion = sdk(srv, "good").chat.completions.create(model="m", messages=MESSAGES)
    assert completion.choices[0].message.content == "welcome"
    assert [(r.key, r.status) for r in srv.requests()] == [("bad", 401), (None, 401), ("good", 200)]


def test_models(srv: FakeServer) -> None:
    assert [m.id for m in sdk(srv).models.list()] == ["model-a", "model-b"]
    response = httpx.get(f"{srv.url}/api/v1/models")
    assert response.json() == {
        "object": "list",
        "data": [
            {"id": "model-a", "object": "model", "owned_by": "fake"},
            {"id": "model-b", "object": "model", "owned_by": "fake"},
        ],
    }
    srv.models = ["only"]
    assert [m.id for m in sdk(srv).models.list()] == ["only"]
    srv.models = Models(["x"], owned_by="acme")
    assert httpx.get(f"{srv.base_url}/models").json()["data"] == [{"id": "x", "object": "model", "owned_by": "acme"}]
    srv.models = Status(500)
    assert httpx.get(f"{srv.base_url}/models").status_code == 500


def test_other_chat_path_prefix(srv: FakeServer) -> None:
    response = httpx.post(f"{srv.url}/api/v1/chat/completions", json={"model": "m", "messages": MESSAGES})
    assert response.json()["choices"][0]["message"]["content"] == "Hello from fake"
    assert srv.requests()[0].path == "/api/v1/chat/completions"


def test_log_fields(srv: FakeServer) -> None:
    srv.script(Status(418))
    with pytest.raises(openai.APIStatusError):
        sdk(srv, "secret-key").chat.completions.create(model="model-b", messages=MESSAGES)
    httpx.get(f"{srv.base_url}/models?limit=3")
    httpx.post(f"{srv.url}/elsewhere", content=b"not json", headers={"X-Custom": "Yes"})

    chat_entry, models_entry, other_entry = srv.log
    assert chat_entry.method == "POST"
    assert chat_entry.path == "/v1/chat/completions"
    assert chat_entry.host == srv.host
    assert chat_entry.port == srv.port
    assert chat_entry.key == "secret-key"
    assert chat_entry.headers["authorization"] == "Bearer secret-key"
    assert chat_entry.body == {"model": "model-b", "messages": MESSAGES}
    assert json.loads(chat_entry.raw_body) == chat_entry.body
    assert chat_entry.status == 418

    assert (models_entry.method, models_entry.path, models_entry.query) == ("GET", "/v1/models", "limit=3")
    assert (models_entry.key, models_entry.body, models_entry.status) == (None, None, 200)

    assert (other_entry.path, other_entry.status, other_entry.raw_body) == ("/elsewhere", 404, b"not json")
    assert other_entry.body is None
    assert other_entry.headers["x-custom"] == "Yes"

    assert srv.requests() == [chat_entry]
    assert srv.requests("/models") == [models_entry]
    assert srv.keys_seen() == ["secret-key"]


def test_two_servers_log_separately() -> None:
    with FakeServer() as a, FakeServer() as b:
        assert a.port != b.port
        a.always(Reply("from a"))
        b.always(Reply("from b"))

        def ask(server: FakeServer, key: str) -> str | None:
            completion = sdk(server, key).chat.completions.create(model="m", messages=MESSAGES)
            return completion.choices[0].message.content

        assert ask(a, "ka") == "from a"
        assert ask(b, "kb") == "from b"
        assert ask(b, "kb2") == "from b"
        assert a.keys_seen() == ["ka"]
        assert b.keys_seen() == ["kb", "kb2"]
        assert {r.host for r in a.log} == {a.host}
        assert {r.host for r in b.log} == {b.host}


def test_reset(srv: FakeServer) -> None:
    srv.script(Status(500))
    srv.script_for_key("k1", Status(500))
    srv.always(Status(500))
    srv.always_for_key("k2", Status(500))
    srv.models = ["z"]
    srv.require_key = {"nobody"}
    chat(srv)
    srv.reset()
    assert srv.log == []
    assert srv.models == ["model-a", "model-b"]
    assert srv.require_key is None
    for key in ("k1", "k2", None):
        assert chat(srv, key).json()["choices"][0]["message"]["content"] == "Hello from fake"


def test_concurrent_requests(srv: FakeServer) -> None:
    srv.always(Reply("x", delay=1))
    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: chat(srv).status_code, range(8)))
    assert statuses == [200] * 8
    assert time.monotonic() - start < 4  # served in parallel: one after another would take 8 s
    assert len(srv.log) == 8
