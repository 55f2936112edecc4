"""`hermes chat` through a real pseudo-terminal, against loopback fake providers."""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pexpect
import pytest

from tests.conftest import Hermes, terminal_lines
from tests.fakeserver import UNAUTHORIZED, FakeServer, LoggedRequest, RateLimit, Reply, Status

PROMPT = "›"
CTRL_C = "\x03"
ESC_ENTER = "\x1b\r"
UP = "\x1b[A"
CPR_REQUEST = "\x1b[6n"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b\][^\x1b]*\x1b\\\\|[\x08\r]")


class Session:
    """One `hermes chat` process on a 40x120 pseudo-terminal."""

    def __init__(
        self,
        hermes: Hermes,
        *args: str,
        env: dict[str, str] | None = None,
        cpr: bool = False,
        dimensions: tuple[int, int] = (40, 120),
    ) -> None:
        full_env = {**hermes.env, **(env or {})}
        if not cpr:
            # pexpect answers no terminal queries; without this prompt-toolkit waits for one at start.
            full_env["PROMPT_TOOLKIT_NO_CPR"] = "1"
        self.cpr = cpr
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "hermes_cli", "chat", *args],
            env=full_env,
            dimensions=dimensions,
            encoding="utf-8",
            timeout=10,
        )
        self.transcript = ""
        self.expect(PROMPT)

    def expect(self, text: str) -> str:
        """Wait for `text`; returns the output before it (answering cursor-position queries on the way)."""
        seen: str = ""
        while True:
            i = self.child.expect_exact([CPR_REQUEST, text] if self.cpr else [text])
            seen += self.child.before
            self.transcript += self.child.before + self.child.after
            if self.cpr and i == 0:
                self.child.send("\x1b[1;1R")
                continue
            return seen

    def send(self, line: str, *, until: str) -> str:
        """Type a line and Enter; wait for `until`, then for the next prompt. Returns the output between."""
        self.child.send(line + "\r")
        out = self.expect(until)
        self.expect(PROMPT)
        return out

    def leave(self) -> int:
        self.child.sendeof()
        self.child.expect(pexpect.EOF)
        self.child.close()
        return cast(int, self.child.exitstatus)


@pytest.fixture
def chat(myplan: Hermes) -> Iterator[Session]:
    session = Session(myplan)
    yield session
    if session.child.isalive():
        session.child.terminate(force=True)


def plain(text: str) -> str:
    return ANSI.sub("", text)


def messages(request: LoggedRequest) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in request.json["messages"]]


def test_start_line_names_the_model_and_endpoint(myplan: Hermes, fake: FakeServer) -> None:
    session = Session(myplan)
    assert f"myplan:model-a at {fake.base_url}" in session.transcript
    assert "/help for commands, Ctrl-D to leave" in session.transcript
    assert session.leave() == 0


def test_two_turns_carry_the_first_exchange(chat: Session, fake: FakeServer) -> None:
    fake.script(Reply("First answer."), Reply("Second answer."))
    chat.send("hello", until="First answer.")
    chat.send("and again", until="Second answer.")
    assert chat.leave() == 0
    first, second = fake.requests()
    assert first.json["model"] == "model-a" and first.key == "sk-myplan-key-0001"
    assert messages(second) == [("user", "hello"), ("assistant", "First answer."), ("user", "and again")]


LONG = (
    "".join(
        f"## Section {i}\n\nParagraph {i} has **bold** and `code`.\n\n"
        f"- point {i}.1\n  - nested {i}.2\n\n"
        f"```python\nvalue_{i} = {i} * 2\n\n\nprint(value_{i})\n```\n\n"
        f"| key | value |\n|-----|-------|\n| k{i} | v{i} |\n\n"
        for i in range(30)
    )
    + "The end.\n"
)


def test_a_long_streamed_answer_arrives_complete_and_in_order(chat: Session, fake: FakeServer) -> None:
    fake.script(Reply(LONG, chunks=[LONG[i : i + 5] for i in range(0, len(LONG), 5)]))
    out = chat.send("write a lot", until="The end.")
    body = LONG.removesuffix("The end.\n")
    assert out.endswith(body.replace("\n", "\r\n"))  # the terminal turns each \n into \r\n


def test_thinking_shows_until_the_first_words_then_goes(myplan: Hermes, fake: FakeServer) -> None:
    del myplan.env["NO_COLOR"]
    session = Session(myplan)
    fake.script(Reply("Here it is.", chunks=["Here it is."], delay=1.0))
    session.child.send("think first\r")
    session.expect("thinking")
    session.expect("Here it is.")
    session.expect(PROMPT)
    assert session.leave() == 0
    screen = terminal_lines(session.transcript, 120, 40)
    assert sum("Here it is." in line for line in screen) == 1  # the live region's draft is gone too
    assert not any("thinking" in line for line in screen)


@pytest.mark.parametrize("delay", [0.0, 0.002], ids=["fast", "paced"])
def test_a_long_answer_rendered_as_markdown_in_colour(myplan: Hermes, fake: FakeServer, delay: float) -> None:
    del myplan.env["NO_COLOR"]
    session = Session(myplan)
    fake.script(Reply(LONG, chunks=[LONG[i : i + 7] for i in range(0, len(LONG), 7)], delay=delay))
    out = session.send("write a lot", until="The end.")
    assert "\x1b[" in out  # styled
    assert session.leave() == 0
    # On the terminal: every block once and in order, rendered, and the live region's drafts gone.
    screen = "\n".join(terminal_lines(session.transcript, 120, 40))
    assert "## Section" not in screen and "```" not in screen and "|-----|" not in screen
    position = 0
    for i in range(30):
        for marker in (f"Section {i}\n", f"Paragraph {i} has bold", f"nested {i}.2", f"print(value_{i})", f" k{i} "):
            assert screen.count(marker) == 1, f"{marker!r} shown {screen.count(marker)} times"
            found = screen.find(marker, position)
            assert found >= 0, f"{marker!r} out of order"
            position = found
    assert screen.count("The end.") == 1


@pytest.mark.parametrize("colour", [False, True], ids=["plain", "colour"])
def test_ctrl_c_stops_the_answer_and_keeps_what_arrived(myplan: Hermes, fake: FakeServer, colour: bool) -> None:
    if colour:
        del myplan.env["NO_COLOR"]
    chat = Session(myplan)
    words = [f"word{i} " for i in range(200)]
    fake.script(Reply("".join(words), chunks=words, delay=0.1), Reply("Next answer."))
    chat.child.send("talk slowly\r")
    chat.expect("word3 ")
    chat.child.send(CTRL_C)
    chat.expect("Stopped")
    chat.expect(PROMPT)
    chat.send("go on", until="Next answer.")
    assert chat.leave() == 0
    _first, second = fake.requests()
    sent = messages(second)
    assert sent[0] == ("user", "talk slowly") and sent[2] == ("user", "go on")
    role, partial = sent[1]
    assert role == "assistant" and partial.startswith("word0 word1 word2 word3 ")
    assert len(partial) < len("".join(words))


def test_ctrl_c_at_the_prompt_clears_the_line(chat: Session, fake: FakeServer) -> None:
    chat.child.send("half a thought")
    chat.child.send(CTRL_C)
    chat.expect(PROMPT)
    chat.send("whole thought", until="Hello from fake")
    assert messages(fake.requests()[0]) == [("user", "whole thought")]
    assert chat.leave() == 0


def test_exit_command_leaves_with_status_0(chat: Session) -> None:
    chat.child.send("/exit\r")
    chat.child.expect(pexpect.EOF)
    chat.child.close()
    assert chat.child.exitstatus == 0


def test_multi_line_input_with_esc_enter_and_bracketed_paste(chat: Session, fake: FakeServer) -> None:
    chat.send("line one" + ESC_ENTER + "line two", until="Hello from fake")
    chat.send("\x1b[200~pasted one\npasted two\x1b[201~", until="Hello from fake")
    first, second = fake.requests()
    assert messages(first)[-1] == ("user", "line one\nline two")
    assert messages(second)[-1] == ("user", "pasted one\npasted two")
    assert chat.leave() == 0


def test_model_switch_to_another_provider_uses_only_its_endpoint_and_key(
    hermes: Hermes, fake: FakeServer, fake2: FakeServer
) -> None:
    hermes.write_config(
        f'[providers.myplan]\nbase_url = "{fake.base_url}"\nmodels = ["model-a"]\n\n'
        f'[providers.other]\nbase_url = "{fake2.base_url}"\nmodels = ["model-x"]\n'
    )
    hermes.env.update(MYPLAN_API_KEY="sk-myplan-key-0001", OTHER_API_KEY="sk-other-key-0002")
    fake.script(Reply("From myplan."))
    fake2.script(Reply("From other."))
    session = Session(hermes)
    session.send("hi", until="From myplan.")
    session.send("/model other:model-x", until="Now using other:model-x")
    session.send("still there?", until="From other.")
    assert session.leave() == 0
    assert len(fake.requests()) == 1
    (request,) = fake2.requests()
    assert request.host == fake2.host and request.key == "sk-other-key-0002"
    assert request.json["model"] == "model-x"
    assert messages(request) == [("user", "hi"), ("assistant", "From myplan."), ("user", "still there?")]


def test_model_switch_errors_change_nothing(chat: Session, fake: FakeServer) -> None:
    chat.send("/model openai:gpt-4o", until="No API key for openai")
    chat.send("/model", until="Current model: myplan:model-a")
    chat.send("hello", until="Hello from fake")
    assert fake.requests()[0].json["model"] == "model-a"
    assert chat.leave() == 0


def test_model_switch_within_a_provider_keeps_key_cooldowns(myplan: Hermes, fake: FakeServer) -> None:
    myplan.env.pop("MYPLAN_API_KEY")
    myplan.env["MYPLAN_API_KEYS"] = "k1-aaaaaaaaaaaa,k2-bbbbbbbbbbbb"
    fake.script_for_key("k1-aaaaaaaaaaaa", RateLimit(retry_after=300))
    session = Session(myplan)
    session.send("hi", until="Hello from fake")
    session.send("/model model-b", until="Now using myplan:model-b")
    session.send("/auth", until="cooling down until")
    session.send("again", until="Hello from fake")
    assert session.leave() == 0
    assert fake.keys_seen() == ["k1-aaaaaaaaaaaa", "k2-bbbbbbbbbbbb", "k2-bbbbbbbbbbbb"]
    assert fake.requests()[-1].json["model"] == "model-b"


def test_undo_drops_the_last_exchange(chat: Session, fake: FakeServer) -> None:
    fake.script(Reply("A1"), Reply("A2"), Reply("A3"))
    chat.send("one", until="A1")
    chat.send("two", until="A2")
    chat.send("/undo", until="Removed the last exchange (2 messages)")
    chat.send("three", until="A3")
    assert messages(fake.requests()[-1]) == [("user", "one"), ("assistant", "A1"), ("user", "three")]
    assert chat.leave() == 0


def test_retry_asks_again_for_the_last_message(chat: Session, fake: FakeServer) -> None:
    fake.script(Reply("First try."), Reply("Second try."))
    chat.send("question", until="First try.")
    chat.send("/retry", until="Second try.")
    assert messages(fake.requests()[-1]) == [("user", "question")]
    chat.send("/history", until="assistant: Second try.")
    assert chat.leave() == 0


def test_new_starts_an_empty_conversation(chat: Session, fake: FakeServer) -> None:
    chat.send("old topic", until="Hello from fake")
    chat.send("/new", until="Started a new conversation")
    chat.send("new topic", until="Hello from fake")
    assert messages(fake.requests()[-1]) == [("user", "new topic")]
    assert chat.leave() == 0


def test_system_sets_the_system_prompt_of_the_next_request(chat: Session, fake: FakeServer) -> None:
    chat.send("/system", until="No system prompt is set")
    chat.send("/system Answer in French.", until="System prompt set")
    chat.send("hello", until="Hello from fake")
    assert messages(fake.requests()[-1]) == [("system", "Answer in French."), ("user", "hello")]
    chat.send("/system", until="System prompt: Answer in French.")
    assert chat.leave() == 0


def test_a_server_error_keeps_the_repl_and_retry_then_works(myplan: Hermes, fake: FakeServer) -> None:
    myplan.write_config(
        f'[providers.myplan]\nbase_url = "{fake.base_url}"\nmodels = ["model-a"]\n\n[agent]\nmax_retries = 0\n'
        '\n[models."model-a"]\ninput_price = 2.0\noutput_price = 10.0\n'
    )
    fake.script(Status(500), Reply("Recovered."))
    session = Session(myplan)
    session.send("hello", until="HTTP 500")
    session.send("/retry", until="Recovered.")
    assert [messages(r) for r in fake.requests()] == [[("user", "hello")], [("user", "hello")]]
    # The fake reports 10 prompt + 5 completion tokens: 10 * $2 + 5 * $10 per million.
    session.send("/usage", until="This session: 10 prompt + 5 completion = 15 tokens, $0.0001.")
    assert "Last turn: 10 prompt + 5 completion = 15 tokens, $0.0001." in session.transcript
    assert session.leave() == 0


def test_a_rejected_key_is_reported_and_the_repl_stays(chat: Session, fake: FakeServer) -> None:
    fake.script(UNAUTHORIZED)
    chat.send("hello", until="rejected")
    chat.send("/auth", until="exhausted")
    assert "sk-myplan-key-0001" not in chat.transcript
    assert chat.leave() == 0


def test_history_persists_across_runs(myplan: Hermes, fake: FakeServer) -> None:
    first = Session(myplan)
    first.send("remember this line", until="Hello from fake")
    assert first.leave() == 0
    history = myplan.home / "state" / "history"
    assert "remember this line" in history.read_text(encoding="utf-8")
    assert stat.S_IMODE(history.stat().st_mode) == 0o600

    second = Session(myplan)
    second.send(UP, until="Hello from fake")  # the previous run's line, recalled and sent
    assert messages(fake.requests()[-1]) == [("user", "remember this line")]
    assert second.leave() == 0


def test_tab_completes_commands_and_models(chat: Session, fake: FakeServer) -> None:
    chat.child.send("/hel\t")
    chat.send("", until="Commands:")
    chat.child.send("/model myplan:model-\t")  # two choices: Tab shows them and takes the first
    chat.child.send("\t")
    chat.send("", until="Now using myplan:model-")
    chat.send("hi", until="Hello from fake")
    assert fake.requests()[-1].json["model"] in ("model-a", "model-b")
    assert chat.leave() == 0


def test_unknown_command_suggests_the_closest(chat: Session) -> None:
    chat.send("/modle", until="Did you mean /model?")
    assert chat.leave() == 0


def test_help_lists_every_command(chat: Session) -> None:
    out = chat.send("/help", until="Ctrl-D leaves")
    for name in (
        "help",
        "model",
        "new",
        "retry",
        "undo",
        "history",
        "system",
        "usage",
        "auth",
        "tools",
        "sessions",
        "copy",
        "exit",
    ):
        assert f"/{name}" in out
    out = chat.send("/tools", until="current_time")
    assert "read_file" in out and "built-in" in out and "SANDBOXED" in out
    assert chat.leave() == 0


def test_sessions_lists_the_stored_conversation(chat: Session) -> None:
    chat.send("a memorable title", until="Hello from fake")
    chat.send("/sessions", until="a memorable title")
    assert chat.leave() == 0


def test_copy_hands_the_last_answer_to_the_clipboard_tool(myplan: Hermes, fake: FakeServer, tmp_path: Path) -> None:
    bin_dir, clip = tmp_path / "bin", tmp_path / "clipboard"
    bin_dir.mkdir()
    tool = bin_dir / "wl-copy"
    tool.write_text(f'#!/bin/sh\ncat > "{clip}"\n')
    tool.chmod(0o755)
    myplan.env["PATH"] = f"{bin_dir}{os.pathsep}{myplan.env['PATH']}"
    session = Session(myplan)
    session.send("/copy", until="no answer to copy")
    session.send("hi", until="Hello from fake")
    session.send("/copy", until="Copied the last answer")
    assert clip.read_text() == "Hello from fake"
    assert session.leave() == 0


def test_piped_stdin_sends_one_message_per_line(myplan: Hermes, fake: FakeServer) -> None:
    fake.script(Reply("First."), Reply("Second."))
    result = myplan.run("chat", input="one\ntwo\n/usage\n")
    assert result.returncode == 0, result.stderr
    assert (
        "First.\nSecond.\n" in result.stdout
        and "This session: 20 prompt + 10 completion = 30 tokens, cost unknown" in result.stdout
    )
    assert "\x1b[" not in result.stdout
    assert messages(fake.requests()[-1]) == [("user", "one"), ("assistant", "First."), ("user", "two")]


def test_toolbar_shows_model_endpoint_and_tokens(myplan: Hermes, fake: FakeServer) -> None:
    session = Session(myplan, cpr=True)
    session.expect("0/128K (0%)")  # the context used of the model's window (the default, 128K)
    session.child.send("hi\r")
    session.expect("Hello from fake")
    session.expect("15/128K (0%)")
    assert f"myplan:model-a │ {fake.host} │ 15/128K" in session.transcript
    assert session.leave() == 0
