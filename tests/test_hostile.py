"""Regression tests for inputs a hostile run found to crash hermes (issue 14): each exits with a clear
message and the right code, never exit 1 or a traceback, and leaves the state files strict JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Hermes, state_document
from tests.fakeserver import FakeServer, RateLimit, Reply

K1, K2 = "sk-plan-key-one-0001", "sk-plan-key-two-0002"


def plan(hermes: Hermes, fake: FakeServer, extra: str = "") -> None:
    hermes.write_config(f'[providers.myplan]\nbase_url = "{fake.base_url}"\n{extra}')


@pytest.mark.parametrize(
    "value", ["99999999999999999999", "1e308", "inf", "nan", "-3", "soon", "Fri, 31 Dec 99999 23:59:59 GMT"]
)
def test_absurd_retry_after_exits_4_and_keeps_the_state_strict_json(
    hermes: Hermes, fake: FakeServer, value: str
) -> None:
    plan(hermes, fake, "\n[credentials]\nmax_wait_seconds = 0\n")
    hermes.env["MYPLAN_API_KEYS"] = f"{K1},{K2}"
    fake.always(RateLimit(retry_after=value, retry_after_ms=value))
    done = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr and "earliest resets at" in done.stderr
    state = state_document(hermes.home / "state")
    for cred in state["providers"]["myplan"].values():
        assert cred["cooldown_until"] <= 1e12  # a real clock time, at most a day ahead
    listed = hermes.run("auth", "list", "myplan")
    assert listed.returncode == 0, listed.stderr
    assert "cooling down" in listed.stdout + listed.stderr


# -- item 8: tool arguments from the model ------------------------------------------------------------

HOSTILE_CALLS = [
    ("read_file", {"path": "a\u0000b"}),
    ("read_file", {"path": "x" * 5000}),
    ("list_dir", {"path": "d/" * 2100}),
    ("search_files", {"pattern": "o", "path": "~no-such-user-here/x"}),
    ("write_file", {"path": "out.txt", "content": "\ud800"}),
    ("read_file", {"path": 5}),
    ("edit_file", {"path": "notes.txt"}),
    ("current_time", {"timezone": "a\u0000b"}),
]


@pytest.mark.parametrize(("tool", "args"), HOSTILE_CALLS, ids=[f"{t}-{i}" for i, (t, _) in enumerate(HOSTILE_CALLS)])
def test_hostile_tool_arguments_become_a_tool_error_and_the_turn_goes_on(
    myplan: Hermes, fake: FakeServer, tmp_path: Path, tool: str, args: dict[str, Any]
) -> None:
    from tests.fakeserver import ToolCalls

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("hello\n")
    fake.script(ToolCalls([(tool, json.dumps(args))]), Reply("I see."))
    done = myplan.run("ask", "--yes", "hi", cwd=ws)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "I see.\n" and "Traceback" not in done.stderr
    tool_message = next(m for m in fake.requests()[1].body["messages"] if m["role"] == "tool")  # type: ignore[index]  # a JSON body
    assert tool_message["content"].startswith("Error") or "Invalid arguments" in tool_message["content"]
    assert not (ws / "out.txt").exists()


# -- answers that are not what the API promises ---------------------------------------------------------


def _chunk(**choice: Any) -> str:
    return json.dumps({"choices": [{"index": 0, **choice}]})


GARBAGE_STREAMS = {
    "index-x": [_chunk(delta={"tool_calls": [{"index": "x", "function": {"name": "read_file"}}]})],
    "choices-not-a-list": [json.dumps({"choices": "x"})],
    "choice-a-string": [json.dumps({"choices": ["x"]})],
    "delta-a-string": [_chunk(delta="hello")],
    "tool-calls-not-a-list": [_chunk(delta={"tool_calls": {"index": 0}})],
    "tool-call-a-number": [_chunk(delta={"tool_calls": [7]})],
    "function-a-string": [_chunk(delta={"tool_calls": [{"index": 0, "function": "f"}]})],
    "name-a-number": [_chunk(delta={"tool_calls": [{"index": 0, "function": {"name": 3}}]})],
    "arguments-a-number": [_chunk(delta={"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": 3}}]})],
    "error-a-list": [json.dumps({"error": [1, 2]})],
    "error-code-a-dict": [json.dumps({"error": {"code": {"x": 1}, "message": 5}})],
    "error-code-200": [json.dumps({"error": {"code": 200, "message": "fine?"}})],
    "error-code-huge": [json.dumps({"error": {"code": "9" * 30}})],
    "truncated-json": ['{"choices": [{"delta"'],
    "only-a-number": ["42"],
}


@pytest.mark.parametrize("events", GARBAGE_STREAMS.values(), ids=GARBAGE_STREAMS.keys())
def test_garbage_stream_events_are_a_provider_error_not_a_crash(
    myplan: Hermes, fake: FakeServer, events: list[str]
) -> None:
    from tests.fakeserver import Sse

    fake.always(Sse(events))
    done = myplan.run("ask", "hi")
    assert done.returncode == 5, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr


def test_usage_with_strings_is_harmless(myplan: Hermes, fake: FakeServer) -> None:
    from tests.fakeserver import Sse

    fake.always(
        Sse(
            [
                _chunk(delta={"content": "ok"}),
                json.dumps(
                    {
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": "12", "completion_tokens": "lots"},
                    }
                ),
                "[DONE]",
            ]
        )
    )
    done = myplan.run("ask", "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


@pytest.mark.parametrize(
    "body",
    [
        {"error": "quota gone"},
        {"error": {"code": "x"}},
        {"error": [1]},
        {"choices": "x"},
        {"choices": [{"message": "hi"}]},
        {"choices": [{"message": {"tool_calls": [{"function": 1}]}}]},
        {"choices": [{"message": {"tool_calls": "x"}}]},
    ],
)
def test_a_200_with_an_error_or_a_bad_shape_is_a_provider_error(
    myplan: Hermes, fake: FakeServer, body: dict[str, Any]
) -> None:
    from tests.fakeserver import Status

    fake.always(Status(200, body))
    done = myplan.run("ask", "--no-stream", "hi")
    assert done.returncode == 5, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr


# -- item 13: an answer that never ends ------------------------------------------------------------------


@pytest.mark.parametrize("tokens", [False, True], ids=["keep-alive-comments", "endless-tokens"])
def test_an_endless_stream_is_stopped_at_max_answer_seconds(hermes: Hermes, fake: FakeServer, tokens: bool) -> None:
    from tests.fakeserver import Forever

    plan(hermes, fake, "\n[agent]\nmax_answer_seconds = 1\ntimeout = 30\n")
    hermes.env["MYPLAN_API_KEY"] = K1
    fake.always(Forever(tokens=tokens))
    done = hermes.run("ask", "-p", "myplan", "-m", "m", "hi", timeout=30)
    assert done.returncode == 5, done.stderr
    assert "max_answer_seconds" in done.stderr and "Traceback" not in done.stderr
    assert len(fake.requests()) == 1  # not retried: the same server would only do it again
    if tokens:
        assert done.stdout.startswith("more more")  # what arrived is kept


# -- item 12: what a failure tells the user ----------------------------------------------------------------


def test_connection_refused_names_the_endpoint_its_source_and_what_to_check(hermes: Hermes, fake: FakeServer) -> None:
    plan(hermes, fake, "\n[agent]\nmax_retries = 0\n")
    hermes.env["MYPLAN_API_KEY"] = K1
    fake.stop()
    done = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert done.returncode == 5, done.stderr
    error = next(line for line in done.stderr.splitlines() if "error:" in line)
    assert fake.base_url in error and "[providers.myplan].base_url" in error
    assert "`hermes providers`" in error and "MYPLAN_BASE_URL" in error and "running" in error


def auth_row(hermes: Hermes) -> dict[str, Any]:
    listed = hermes.run("auth", "list", "myplan", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)["credentials"]
    assert isinstance(row, dict)
    return row


def test_auth_list_counts_a_401_and_a_429_as_failed_requests(hermes: Hermes, fake: FakeServer) -> None:
    from tests.fakeserver import UNAUTHORIZED

    plan(hermes, fake, "\n[credentials]\nmax_wait_seconds = 0\n")
    hermes.env["MYPLAN_API_KEY"] = K1
    fake.always(UNAUTHORIZED)
    assert hermes.run("ask", "-p", "myplan", "-m", "m", "hi").returncode == 3
    row = auth_row(hermes)
    assert (row["requests"], row["errors"]) == (1, 1) and "Invalid API Key" in row["last_error"]
    assert hermes.run("auth", "reset", "myplan").returncode == 0
    fake.always(RateLimit(retry_after=600))
    assert hermes.run("ask", "-p", "myplan", "-m", "m", "hi").returncode == 4
    row = auth_row(hermes)
    assert (row["requests"], row["errors"]) == (2, 2)


# -- item 13: wording ---------------------------------------------------------------------------------------


def test_a_rate_limited_only_key_does_not_promise_a_next_key(hermes: Hermes, fake: FakeServer) -> None:
    plan(hermes, fake, "\n[credentials]\nmax_wait_seconds = 0\n")
    hermes.env["MYPLAN_API_KEY"] = K1
    fake.always(RateLimit(retry_after=600))
    done = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert done.returncode == 4
    assert "is rate-limited until" in done.stderr and "next key" not in done.stderr


def test_a_rate_limited_key_with_another_left_says_it_tries_the_next(hermes: Hermes, fake: FakeServer) -> None:
    plan(hermes, fake)
    hermes.env["MYPLAN_API_KEYS"] = f"{K1},{K2}"
    fake.script(RateLimit(retry_after=600))
    done = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert done.returncode == 0, done.stderr
    assert "trying the next key" in done.stderr


def test_the_cut_stream_panel_says_once_how_to_send_again(myplan: Hermes, fake: FakeServer) -> None:
    from tests.fakeserver import CutStream
    from tests.test_chat import PROMPT, Session, plain

    session = Session(myplan)
    fake.script(CutStream())
    session.child.send("hi\r")
    session.expect("/retry sends your message again.")
    session.expect(PROMPT)
    assert session.leave() == 0
    shown = plain(session.transcript)
    assert "What arrived so far is kept" in shown and "Send the message again" not in shown


# -- item 11: MCP start-up errors -----------------------------------------------------------------------------

MCP_SERVER = Path(__file__).with_name("mcp_server.py")


def test_mcp_start_up_error_quotes_this_run_and_names_text_on_stdout(
    myplan: Hermes, fake: FakeServer, tmp_path: Path
) -> None:
    import sys

    base = (myplan.home / "config.toml").read_text()
    myplan.write_config(
        base + f'\n[mcp.servers.grumpy]\ncommand = ["{sys.executable}", "{MCP_SERVER}", "--complain"]'
        '\nenv = { COMPLAINT = "old complaint" }\nrequired = true\n'
    )
    assert myplan.run("ask", "hi", cwd=tmp_path).returncode == 2
    myplan.write_config(
        base + f'\n[mcp.servers.grumpy]\ncommand = ["{sys.executable}", "{MCP_SERVER}", "--complain"]'
        '\nenv = { COMPLAINT = "new complaint" }\nrequired = true\n'
    )
    done = myplan.run("ask", "hi", cwd=tmp_path)
    assert done.returncode == 2 and "new complaint" in done.stderr and "old complaint" not in done.stderr
    myplan.write_config(
        base + f'\n[mcp.servers.chatty]\ncommand = ["{sys.executable}", "{MCP_SERVER}", "--chatty"]\nrequired = true\n'
    )
    done = myplan.run("ask", "hi", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "not MCP on its stdout" in done.stderr and "Starting hermes-test server" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": 10**30, "completion_tokens": 1e300},
        {"prompt_tokens": -5, "completion_tokens": "9" * 40},
        [1, 2],
        "lots",
    ],
)
def test_absurd_usage_counts_are_ignored_and_the_session_is_saved(myplan: Hermes, fake: FakeServer, usage: Any) -> None:
    from tests.fakeserver import Status

    body = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": usage,
    }
    fake.always(Status(200, body))
    done = myplan.run("ask", "--no-stream", "--json", "hi")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["content"] == "ok"
    listed = myplan.run("sessions", "list", "--json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 1
