"""Richer turns end to end: reasoning, project context, attachments, summarising long conversations,
the status line and plain output — against the scripted fake, the REPL on a real pseudo-terminal."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.conftest import Hermes, terminal_lines
from tests.fakeserver import FakeServer, Reply
from tests.test_chat import PROMPT, Session

THOUGHT = "The user greets me. A greeting deserves a greeting back, short and warm."


def sent_roles(body: dict[str, Any]) -> list[str]:
    return [m["role"] for m in body["messages"]]


# -- reasoning -------------------------------------------------------------------------------------------


def test_ask_keeps_reasoning_off_stdout_and_never_sends_it_back(myplan: Hermes, fake: FakeServer) -> None:
    fake.script(Reply("Hello!", reasoning=THOUGHT), Reply("Again.", reasoning=THOUGHT), Reply("Third."))
    plain_run = myplan.run("ask", "-m", "myplan:model-a", "hi")
    assert plain_run.returncode == 0 and plain_run.stdout == "Hello!\n"
    assert THOUGHT not in plain_run.stderr

    shown = myplan.run("ask", "-c", "--reasoning", "again")
    assert shown.stdout == "Again.\n" and THOUGHT in shown.stderr

    as_json = myplan.run("ask", "-c", "--json", "--no-stream", "third")
    assert json.loads(as_json.stdout).get("reasoning") is None  # the third answer had none
    for request in fake.requests():
        assert THOUGHT not in json.dumps(request.body)  # stored, shown, never sent back


def test_json_carries_reasoning_in_both_wire_formats(myplan: Hermes, fake: FakeServer) -> None:
    for field in ("reasoning_content", "reasoning"):  # DeepSeek/llama.cpp/vLLM, and OpenRouter
        for stream in ([], ["--no-stream"]):
            fake.script(Reply("Hi.", reasoning=THOUGHT, reasoning_field=field))
            out = json.loads(myplan.run("ask", "-m", "myplan:model-a", "--json", *stream, "hi").stdout)
            assert out["content"] == "Hi." and out["reasoning"] == THOUGHT


def test_the_repl_shows_reasoning_dimmed_then_collapses_it(myplan: Hermes, fake: FakeServer) -> None:
    del myplan.env["NO_COLOR"]
    session = Session(myplan)
    fake.script(Reply("Hello there.", reasoning=THOUGHT, delay=0.05))
    out = session.send("hi", until="Hello there.")
    assert re.search(r"\x1b\[(?:[0-9;]*;)?2(?:;[0-9;]*)?m[^\x1b]*The user", out)  # drawn dimmed while it arrived
    session.send("/reasoning last", until="short and warm")
    assert session.leave() == 0
    screen = "\n".join(terminal_lines(session.transcript, 120, 40))
    before_last = screen.split("/reasoning last")[0]
    assert "thought for" in before_last and "/reasoning to show" in before_last
    assert "A greeting deserves" not in before_last  # collapsed to one line once the answer began
    assert "A greeting deserves" in screen.split("/reasoning last")[1]


# -- project context -------------------------------------------------------------------------------------


def test_agents_md_of_a_parent_directory_reaches_the_system_message(
    myplan: Hermes, fake: FakeServer, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "AGENTS.md").write_text("Always answer in haiku.\n")
    work = repo / "src" / "deep"
    work.mkdir(parents=True)
    (tmp_path / "AGENTS.md").write_text("Outside the repository: never read.\n")
    fake.always(Reply("ok"))
    result = myplan.run("ask", "-m", "myplan:model-a", "-s", "Be kind.", "hi", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "using ../../AGENTS.md" in result.stderr
    system = fake.requests()[-1].body["messages"][0]  # type: ignore[index]  # a JSON body
    assert system["role"] == "system"
    assert system["content"].startswith("Be kind.") and "Always answer in haiku." in system["content"]
    assert "never read" not in system["content"]

    result = myplan.run("ask", "-m", "myplan:model-a", "--no-project-context", "hi", cwd=work)
    assert result.returncode == 0 and "using" not in result.stderr
    assert fake.requests()[-1].body["messages"][0]["role"] == "user"  # type: ignore[index]  # a JSON body

    myplan.write_config(myplan.home.joinpath("config.toml").read_text() + "\n[agent]\nproject_context = false\n")
    assert myplan.run("ask", "-m", "myplan:model-a", "hi", cwd=work).returncode == 0
    assert fake.requests()[-1].body["messages"][0]["role"] == "user"  # type: ignore[index]  # a JSON body
    # Not part of the session's own prompt: a resume elsewhere does not carry it.
    assert (
        "haiku"
        not in myplan.run(
            "sessions", "show", json.loads(myplan.run("sessions", "list", "--json").stdout)[0]["id"]
        ).stdout
    )


# -- the status line --------------------------------------------------------------------------------------


def test_the_toolbar_drops_the_host_first_and_the_cost_last() -> None:
    from hermes_cli.repl.status import Status, toolbar

    status = Status("openrouter:anthropic/claude-sonnet-4", "openrouter.ai", 12_400, 200_000, "≥ $0.0612", 42.0)
    wide = toolbar(status, 100)
    assert wide == " openrouter:anthropic/claude-sonnet-4 │ openrouter.ai │ 12.4K/200K (6%) │ ≥ $0.0612 │ 42 tok/s "
    assert "openrouter.ai" not in toolbar(status, 90) and "tok/s" in toolbar(status, 90)
    assert toolbar(status, 60) == " openrouter:anthropic/claude-sonnet-4 │ ≥ $0.0612 "
    assert toolbar(status, 40) == " openrouter:anthropic/claude-sonnet-4 "
    for width in (100, 90, 60, 40, 20):
        assert len(toolbar(status, width)) <= width


def test_the_toolbar_on_a_terminal_at_100_and_40_columns(myplan: Hermes, fake: FakeServer) -> None:
    myplan.write_config(
        myplan.home.joinpath("config.toml").read_text()
        + '\n[models."model-a"]\ncontext = 8000\ninput_price = 1.0\noutput_price = 2.0\n'
    )
    for columns in (100, 40):
        fake.script(Reply("Fine.", usage=(1500, 500)))
        # The toolbar sits at the bottom of the screen: prompt-toolkit draws it once it knows where the
        # cursor is, so this session answers its cursor-position queries.
        session = Session(
            myplan,
            "-m",
            "myplan:model-a",
            env={"COLUMNS": str(columns), "LINES": "24"},
            dimensions=(24, columns),
            cpr=True,
        )
        session.send("hi", until="Fine.")
        session.expect("$0.0025")  # the toolbar, redrawn under the prompt
        screen = terminal_lines(session.transcript, columns, 24)
        bottom = next(line for line in reversed(screen) if "myplan:model-a" in line)
        session.leave()
        if columns == 100:
            assert f"127.0.0.1:{fake.port}" in bottom and "2K/8K (25%)" in bottom and "$0.0025" in bottom
        else:
            assert "127.0.0.1" not in bottom and "$0.0025" in bottom
        assert len(bottom.rstrip()) <= columns


# -- plain output -------------------------------------------------------------------------------------------

WORDY = (
    "Plain output should read well: every word of this answer stays whole on the screen, however "
    "the stream happens to cut it into pieces, even supercalifragilistic ones."
)


def test_plain_answers_wrap_at_spaces_on_a_narrow_terminal(myplan: Hermes, fake: FakeServer) -> None:
    fake.script(Reply(WORDY, chunks=[WORDY[i : i + 3] for i in range(0, len(WORDY), 3)]))
    session = Session(myplan, env={"COLUMNS": "40", "LINES": "24"}, dimensions=(24, 40))
    session.send("talk", until="ones.")
    session.leave()
    screen = terminal_lines(session.transcript, 40, 24)
    start = next(i for i, line in enumerate(screen) if line.startswith("Plain output"))
    lines = screen[start : start + 6]
    words = WORDY.split()
    shown = " ".join(" ".join(lines).split())
    assert all(w in shown.split() for w in words)  # no word broken across two lines
    assert all(len(line) <= 40 for line in lines)


def test_ask_through_a_pipe_keeps_the_text_exact(myplan: Hermes, fake: FakeServer) -> None:
    fake.script(Reply(WORDY))
    result = myplan.run("ask", "-m", "myplan:model-a", "talk", env={"COLUMNS": "40"})
    assert result.stdout == WORDY + "\n"


# -- attachments ------------------------------------------------------------------------------------------

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


def vision(myplan: Hermes) -> None:
    myplan.write_config(myplan.home.joinpath("config.toml").read_text() + '\n[models."model-a"]\nvision = true\n')


def user_content(fake: FakeServer) -> Any:
    return next(m for m in reversed(fake.requests()[-1].body["messages"]) if m["role"] == "user")["content"]  # type: ignore[index]  # a JSON body


def test_a_text_and_an_image_attachment_reach_the_request(myplan: Hermes, fake: FakeServer, tmp_path: Path) -> None:
    import base64

    vision(myplan)
    (tmp_path / "notes.txt").write_text("The launch code is 4242.\n")
    (tmp_path / "shot.png").write_bytes(PNG)
    fake.always(Reply("Seen."))
    result = myplan.run("ask", "-m", "myplan:model-a", "-a", "notes.txt", "what is in @shot.png?", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text, image = user_content(fake)
    assert text["type"] == "text" and "what is in @shot.png?" in text["text"]
    assert "notes.txt:\n```\nThe launch code is 4242.\n```" in text["text"]
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,") and base64.b64decode(url.split(",", 1)[1]) == PNG

    piped = myplan.run("ask", "-m", "myplan:model-a", "-a", "-", "what is this?", input=PNG, cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert user_content(fake)[1]["image_url"]["url"].startswith("data:image/png;base64,")

    # Stored once by content hash, named in the export, and sent again after a resume.
    exported = myplan.run("sessions", "export", json.loads(myplan.run("sessions", "list", "--json").stdout)[1]["id"])
    assert "`notes.txt` (text/plain)" in exported.stdout and "`shot.png` (image/png)" in exported.stdout
    assert myplan.run("ask", "-c", "and now?", cwd=tmp_path).returncode == 0
    assert any(isinstance(m["content"], list) for m in fake.requests()[-1].body["messages"])  # type: ignore[index]  # a JSON body


def test_a_text_attachment_without_images_stays_plain_text(myplan: Hermes, fake: FakeServer, tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("print('hi')\n")
    fake.always(Reply("ok"))
    assert myplan.run("ask", "-m", "myplan:model-a", "review @a.py", cwd=tmp_path).returncode == 0
    assert user_content(fake) == "review @a.py\n\na.py:\n```\nprint('hi')\n```"


def test_attachments_that_cannot_go_are_refused_clearly(myplan: Hermes, fake: FakeServer, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "shot.png").write_bytes(PNG)
    (work / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    (work / "huge.txt").write_bytes(b"x" * 20_000_000)
    (tmp_path / "outside.txt").write_text("secret plans")
    cases = {
        ("-a", "shot.png"): "does not take images",
        ("-a", "blob.bin"): "neither text nor an image",
        ("-a", "huge.txt"): "over the 10,000,000-byte limit",
        ("-a", "missing.txt"): "no such file",
        ("-a", "../outside.txt"): "outside the working directory",
    }
    for args, needle in cases.items():
        result = myplan.run("ask", "-m", "myplan:model-a", *args, "look", cwd=work)
        assert result.returncode == 2, (args, result.stderr)
        assert needle in result.stderr and "Traceback" not in result.stderr
    assert fake.log == []
    approved = myplan.run("ask", "-y", "-m", "myplan:model-a", "-a", "../outside.txt", "look", cwd=work)
    assert approved.returncode == 0 and "secret plans" in json.dumps(fake.requests()[-1].body)


def test_at_path_in_the_repl_attaches_and_history_names_it(myplan: Hermes, fake: FakeServer, tmp_path: Path) -> None:
    (tmp_path / "todo.txt").write_text("buy milk\n")
    fake.always(Reply("Noted."))
    import sys

    import pexpect

    child = pexpect.spawn(
        sys.executable,
        ["-m", "hermes_cli", "chat", "-m", "myplan:model-a"],
        env={**myplan.env, "PROMPT_TOOLKIT_NO_CPR": "1"},
        cwd=str(tmp_path),
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=10,
    )
    child.expect_exact(PROMPT)
    child.send("read @to")
    child.send("\t")
    child.expect_exact("do.txt")  # Tab completed the path: "@to" + "do.txt"
    child.send("\r")
    child.expect_exact("Noted.")
    child.expect_exact(PROMPT)
    child.send("/history\r")
    child.expect_exact("attached: todo.txt")
    child.expect_exact(PROMPT)
    child.sendeof()
    child.expect(pexpect.EOF)
    assert "buy milk" in user_content(fake)


# -- summarise instead of cut --------------------------------------------------------------------------------


def test_a_long_conversation_is_summarised_not_cut(myplan: Hermes, fake: FakeServer) -> None:
    myplan.write_config(myplan.home.joinpath("config.toml").read_text() + '\n[models."model-a"]\ncontext = 1000\n')
    turn = "tell me more about the history of the lighthouse " * 12  # ~600 bytes: ~200 tokens
    fake.script(
        Reply("First answer."),
        Reply("Second answer."),
        Reply("Third answer."),
        Reply("NOTES: lighthouse built 1820; user wants history."),
        Reply("Fourth answer."),
    )
    assert myplan.run("ask", "-m", "myplan:model-a", "--no-tools", f"1 {turn}").returncode == 0
    for i in (2, 3):
        assert myplan.run("ask", "-c", "--no-tools", f"{i} {turn}").returncode == 0
    result = myplan.run("ask", "-c", "--no-tools", f"4 {turn}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Fourth answer.\n"
    assert "summarised 4 earlier messages" in result.stderr
    summary, final = (request.json for request in fake.requests()[-2:])
    assert summary["messages"][0]["content"].startswith("Summarise the conversation")
    assert "1 tell me more" in summary["messages"][1]["content"]
    assert "stream" not in summary and "tools" not in summary
    sent = final["messages"]
    assert "NOTES: lighthouse built 1820" in sent[0]["content"]
    assert [m["content"][:2] for m in sent[1:] if m["role"] == "user"] == ["3 ", "4 "]
    assert sum(len(json.dumps(m)) for m in sent) < 1000 * 3  # fits the window by the byte estimate
    session = json.loads(myplan.run("sessions", "list", "--json").stdout)[0]["id"]
    shown = myplan.run("sessions", "show", session).stdout
    # Every original is still there: the four summarised, and the three kept ones (turn 3 and the question
    # of turn 4), which are recorded again after the summary so the session reads in order.
    assert shown.count("superseded (compressed)") == 7
    assert "1 tell me more" in shown and "First answer." in shown

    fake.script(Reply("Fifth."))  # the next turn carries the summary, not the originals
    assert myplan.run("ask", "-c", "--no-tools", "5 short").returncode == 0
    assert "1 tell me more" not in json.dumps(fake.requests()[-1].body)


def test_a_failed_summary_falls_back_to_leaving_out_the_oldest_turns(myplan: Hermes, fake: FakeServer) -> None:
    from tests.fakeserver import Status

    myplan.write_config(
        myplan.home.joinpath("config.toml").read_text()
        + '\n[models."model-a"]\ncontext = 1000\n\n[agent]\nmax_retries = 0\n'
    )
    turn = "tell me more about the history of the lighthouse " * 12
    fake.script(Reply("a1"), Reply("a2"), Reply("a3"), Status(500), Reply("a4"))
    assert myplan.run("ask", "-m", "myplan:model-a", "--no-tools", f"1 {turn}").returncode == 0
    for i in (2, 3):
        assert myplan.run("ask", "-c", "--no-tools", f"{i} {turn}").returncode == 0
    result = myplan.run("ask", "-c", "--no-tools", f"4 {turn}")
    assert result.returncode == 0, result.stderr
    assert "could not summarise" in result.stderr and result.stdout == "a4\n"


def test_compress_on_demand_in_the_repl(myplan: Hermes, fake: FakeServer) -> None:
    fake.script(Reply("a1"), Reply("a2"), Reply("a3"), Reply("SUMMARY: three questions."), Reply("a4"))
    chat = Session(myplan)
    for i in (1, 2, 3):
        chat.send(f"question {i}", until=f"a{i}")
    chat.send("/compress", until="summarised 2 earlier messages")
    chat.send("/history", until="summary: [Summary of the earlier conversation]")
    chat.send("question 4", until="a4")
    chat.leave()
    sent = fake.requests()[-1].body["messages"]  # type: ignore[index]  # a JSON body
    assert [m["content"] for m in sent][1:] == ["question 2", "a2", "question 3", "a3", "question 4"]
    assert "SUMMARY: three questions." in sent[0]["content"]
