"""Fuzz: whatever the provider answers (any status, headers, body, stream), `hermes ask` exits 0, 3, 4 or 5,
never 1 nor with a traceback, and the credential state stays strict JSON.

One fake server and one HERMES_HOME serve every example; the credential state is cleared between examples
so each starts with fresh keys. Each example runs the real `hermes ask` in a subprocess, so the number of
examples is kept small (a longer hunt: `HERMES_FUZZ_EXAMPLES=400 pytest -o timeout=0 tests/test_fuzz_server.py`).

Statuses 300-399 are in: a redirect is never followed (the contract's rule 7), it is an endpoint error.
"""

from __future__ import annotations

import email.utils
import json
import os
import shutil
import string
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import clean_env, state_document
from tests.fakeserver import FakeServer, RateLimit, Response, Sse, Status

KEYS = ("sk-fuzz-key-one-00000001", "sk-fuzz-key-two-00000002")
EXAMPLES = int(os.environ.get("HERMES_FUZZ_EXAMPLES", "60"))  # each runs `hermes ask`: raise it for a long hunt
ALLOWED_EXITS = {0, 3, 4, 5}

# -- what a server can send ------------------------------------------------------------------------------

header_safe = st.text(string.ascii_letters + string.digits + " .,:;-+_/()=*", max_size=30)
retry_after = st.one_of(
    st.sampled_from(
        [
            "99999999999999999999",
            "1e308",
            "1e999",
            "inf",
            "-inf",
            "nan",
            "NaN",
            "-5",
            "0",
            "0.0001",
            "garbage",
            "",
            " 7 ",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Wed, 01 Jan 99999 00:00:00 GMT",
            "Mon, 01 Jan 0001 00:00:00 GMT",
            "Tue, 99 Foo 2026 99:99:99 GMT",
            email.utils.formatdate(usegmt=True),
        ]
    ),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    header_safe,
)
headers = st.dictionaries(
    st.sampled_from(["Retry-After", "retry-after-ms", "X-RateLimit-Reset", "X-Request-Id", "WWW-Authenticate"]),
    retry_after,
    max_size=3,
)
content_types = st.sampled_from(
    ["application/json", "text/html", "text/plain", "text/event-stream", "application/json; charset=latin-1", ""]
)

API_WORDS = [
    "choices",
    "message",
    "delta",
    "content",
    "role",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "index",
    "id",
    "finish_reason",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "error",
    "code",
    "message",
    "type",
    "reasoning_content",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["stop", "length", "x"]),
)
api_like = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(API_WORDS) | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def completion(content: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


def with_usage(prompt: Any, completion_tokens: Any) -> dict[str, Any]:
    return {**completion("ok"), "usage": {"prompt_tokens": prompt, "completion_tokens": completion_tokens}}


counts = st.one_of(
    scalars,
    st.sampled_from([2**63, 10**30, -1, 1e300, "12", "9" * 40]),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
)


def error_object(code: Any, message: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "type": "x"}}


bodies = st.one_of(
    api_like.map(json.dumps),
    st.builds(completion, scalars).map(json.dumps),
    st.builds(error_object, scalars, scalars).map(json.dumps),
    st.builds(with_usage, counts, counts).map(json.dumps),
    st.sampled_from(
        [
            "",
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
            "<!DOCTYPE html><p>nope",
            '{"choices": [',
            "null",
            "[]",
            '"just a string"',
            "NaN",
            '{"error": "quota exhausted"}',
            '{"choices": [{"message": {"content": "ok"}}]}',
        ]
    ),
    st.text(max_size=60),
    st.binary(max_size=40),
)
events = st.lists(
    st.one_of(
        api_like.map(json.dumps),
        st.builds(lambda c: json.dumps({"choices": [{"index": 0, "delta": {"content": c}}]}), scalars),
        st.builds(error_object, scalars, scalars).map(json.dumps),
        st.sampled_from(
            [
                "[DONE]",
                "",
                "{",
                '{"choices": "x"}',
                '{"choices": [{"delta": "hi"}]}',
                '{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": "x"}]}}]}',
                json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            ]
        ),
        st.text(string.printable, max_size=30),
    ),
    max_size=6,
)
statuses = st.one_of(  # the common ones often (a 200's body is where most parsing happens), any other too
    st.sampled_from([200, 200, 200, 201, 301, 307, 400, 401, 402, 403, 404, 408, 429, 500, 502, 503]),
    st.integers(min_value=100, max_value=599),
)


def status_response(code: int, body: str | bytes, extra: dict[str, str], ctype: str) -> Response:
    return Status(code, body, headers=extra, content_type=ctype)


responses = st.one_of(
    st.builds(status_response, statuses, bodies, headers, content_types),
    st.builds(Sse, events, st.sampled_from([200, 200, 201, 206, 429, 500])),
    st.builds(RateLimit, retry_after, retry_after, st.one_of(st.none(), bodies)),
)


# -- running hermes ---------------------------------------------------------------------------------------


class Home:
    def __init__(self, root: Path, fake: FakeServer) -> None:
        self.root = root
        self.fake = fake
        self.workdir = root / "work"
        self.workdir.mkdir(parents=True)
        (root / "config.toml").write_text(
            f'[providers.myplan]\nbase_url = "{fake.base_url}"\n\n[agent]\nmax_retries = 0\nmax_tool_iterations = 2\n'
            "\n[credentials]\nmax_wait_seconds = 0\n",
            encoding="utf-8",
        )
        self.env = clean_env(root, MYPLAN_API_KEYS=",".join(KEYS))

    def ask(self, *args: str) -> subprocess.CompletedProcess[str]:
        shutil.rmtree(self.root / "state", ignore_errors=True)  # fresh keys for every example
        proc = subprocess.run(
            [sys.executable, "-m", "hermes_cli", "ask", "-p", "myplan", "-m", "m", *args, "hi"],
            capture_output=True,
            env=self.env,
            cwd=self.workdir,
            timeout=60,
        )
        return subprocess.CompletedProcess(
            proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
        )

    def assert_state_is_strict_json(self) -> None:
        json.dumps(state_document(self.root / "state"), allow_nan=False)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    with FakeServer() as fake:
        yield Home(tmp_path_factory.mktemp("fuzz-home"), fake)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(response=responses, stream=st.booleans(), tools=st.booleans())
def test_any_server_answer_exits_0_3_4_or_5_and_keeps_the_state_strict_json(
    home: Home, response: Response, stream: bool, tools: bool
) -> None:
    home.fake.reset()
    home.fake.always(response)
    done = home.ask(*([] if stream else ["--no-stream"]), *([] if tools else ["--no-tools"]))
    assert done.returncode in ALLOWED_EXITS, (response, done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    for key in KEYS:
        assert key not in done.stdout + done.stderr
    home.assert_state_is_strict_json()
