"""The event-stream framing of streamed answers: hermes splits the stream itself (bytes, not text, for
speed), so it must agree with the WHATWG rules, and with httpx-sse, whatever the line endings and however
the network cuts the bytes."""

from __future__ import annotations

import itertools
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from httpx_sse._decoders import SSEDecoder, SSELineDecoder
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.events import Finished, TextDelta
from agent.route import Target
from agent.transport import HTTPTransport, Timeouts, _sse_data
from providers import errors


def httpx_sse_data(chunks: list[bytes]) -> list[str]:
    """What httpx-sse makes of the same bytes: the data of each event that has some."""
    lines, decoder, found = SSELineDecoder(), SSEDecoder(), []
    text = b"".join(chunks).decode("utf-8", "replace")
    for line in [*lines.decode(text), *lines.flush()] if text else []:
        event = decoder.decode(line)
        if event is not None and event.data:
            found.append(event.data)
    return found


def ours(chunks: list[bytes]) -> list[str]:
    return [d.decode("utf-8", "replace") for d in _sse_data(iter(chunks)) if d]


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


def test_line_endings_fields_and_comments() -> None:
    stream = (
        b": a comment\r\n"
        b"event: message\r\nid: 7\r\nretry: 10\r\ndata: one\r\n\r\n"
        b"data:two\rdata: lines\r\r"
        b"data\n\n"  # a data field with no colon: empty data
        b"dataX: not a data field\n\n"
        b"data: \xc3\xa9t\xc3\xa9\n\n"
        b"data: cut before its blank line"
    )
    expected = ["one", "two\nlines", "été"]
    for size in (1, 2, 3, 7, len(stream)):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert ours(chunks) == expected == httpx_sse_data(chunks), size


@pytest.mark.parametrize(
    "stream", [b"data: x\r\r", b"data: x\n\r", b"data: x\r\n\r", b"data: x\n\rdata: y", b"data: x\r\rdata: y\r"]
)
def test_a_cr_that_ends_the_stream_ends_its_line(stream: bytes) -> None:
    for size in range(1, len(stream) + 1):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert ours(chunks) == ["x"] == httpx_sse_data(chunks), size


LINE = st.one_of(
    st.just(b""),  # blank lines end events: often
    st.sampled_from([b"", b":", b": ping", b"data", b"data:", b"data: ", b"event: x", b"id: 1", b"retry: 5"]),
    st.binary(max_size=12).map(lambda b: b"data: " + b.replace(b"\r", b"").replace(b"\n", b"")),
    st.text(max_size=6).map(lambda t: b"data:" + t.encode().replace(b"\r", b"").replace(b"\n", b"")),
)
ENDING = st.sampled_from([b"\n", b"\r", b"\r\n"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(LINE, ENDING), max_size=20), st.lists(st.integers(min_value=0), max_size=8))
def test_agrees_with_httpx_sse_however_the_bytes_are_cut(lines: list[tuple[bytes, bytes]], points: list[int]) -> None:
    stream = b"".join(line + ending for line, ending in lines)
    assert ours(cut(stream, points)) == httpx_sse_data([stream])


@contextmanager
def serve_once(body_chunks: list[bytes]) -> Iterator[str]:
    """A one-request HTTP server on loopback that streams `body_chunks` as they are, one chunk each."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            head, _, body = request.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
            )
            while len(body) < length:
                body += conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )
            for chunk in body_chunks:
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.sendall(b"0\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        thread.join(5)
        server.close()


def test_a_stream_with_cr_endings_cut_mid_line_and_mid_character_is_read_whole() -> None:
    def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
        return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).encode()

    stream = (
        b": keep-alive\r\r"
        + b"data: "
        + chunk({"role": "assistant", "content": "caf\u00e9 "})
        + b"\r\r"
        + b"data: "
        + json.dumps({"choices": [{"index": 0, "delta": {"content": "na\u00efve"}}]}, ensure_ascii=False).encode()
        + b"\r\n\r\n"
        + b"data: "
        + chunk({}, "stop")
        + b"\r\rdata: [DONE]\r\r"
    )
    at = stream.index("\u00ef".encode()) + 1  # inside the two bytes of a character
    pieces = [stream[:5], stream[5:at], stream[at : at + 3], stream[at + 3 :]]
    with serve_once(pieces) as url:
        events = list(
            HTTPTransport(Timeouts(connect=10, read=120)).chat(
                Target(url, "sk-test-1234567890"), {"model": "m", "messages": []}, stream=True
            )
        )
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["caf\u00e9 ", "na\u00efve"]
    assert events[-1] == Finished("stop")


def test_an_object_with_anything_but_whitespace_after_it_is_malformed() -> None:
    stop = json.dumps({"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}).encode()
    target = Target("", "sk-test-1234567890")
    with serve_once([b"data: " + stop + b" \t\n\n"]) as url:
        events = list(
            HTTPTransport(Timeouts(connect=10, read=120)).chat(
                replace(target, base_url=url), {"model": "m"}, stream=True
            )
        )
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["ok"]
    with serve_once([b"data: " + stop + b" x\n\n"]) as url, pytest.raises(errors.MalformedResponse):
        list(
            HTTPTransport(Timeouts(connect=10, read=120)).chat(
                replace(target, base_url=url), {"model": "m"}, stream=True
            )
        )
