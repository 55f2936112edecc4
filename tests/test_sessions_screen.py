"""What is saved is what was on screen: `hermes chat` on a real pseudo-terminal, then `-c`/`-r`, with
the scripted fake logging exactly what each request carried."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any, cast

from tests.conftest import Hermes
from tests.fakeserver import FakeServer, Reply
from tests.test_chat import Session, plain


def user_and_answers(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] in ("user", "assistant")]


def show(hermes: Hermes, session_id: str = "") -> str:
    args = ["sessions", "show", session_id] if session_id else ["sessions", "show", latest_id(hermes)]
    result = hermes.run(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def latest_id(hermes: Hermes) -> str:
    return cast(str, json.loads(hermes.run("sessions", "list", "--json").stdout)[0]["id"])


def test_undo_and_retry_are_saved_so_resume_carries_what_was_on_screen(myplan: Hermes, fake: FakeServer) -> None:
    fake.script(Reply("Answer one."), Reply("Answer one, again."), Reply("Answer two."), Reply("Answer three."))
    chat = Session(myplan)
    chat.send("one", until="Answer one.")
    chat.send("/retry", until="Answer one, again.")
    chat.send("two", until="Answer two.")
    chat.send("/undo", until="Removed the last exchange")
    assert chat.leave() == 0
    session_id = latest_id(myplan)
    farewell = plain(chat.child.before)
    assert f'saved as {session_id} "one"' in farewell and "hermes chat -c" in farewell

    again = Session(myplan, "-c")
    before = plain(again.transcript)
    assert "Answer one, again." in before and "Answer two." not in before  # the resumed screen
    again.send("three", until="Answer three.")
    again.leave()
    assert user_and_answers(fake.requests()[-1].json) == ["one", "Answer one, again.", "three"]

    listing = json.loads(myplan.run("sessions", "list", "--json").stdout)
    assert listing[0]["message_count"] == 4
    shown = show(myplan, session_id)
    assert shown.count("superseded (retry)") == 1 and shown.count("superseded (undo)") == 2
    assert "Answer one." in shown and "Answer two." in shown  # nothing the model said is destroyed
    exported = myplan.run("sessions", "export", session_id).stdout
    assert "Answer two." not in exported and "Answer one, again." in exported


def test_system_model_switch_and_new_are_restored_as_on_screen(
    myplan: Hermes, fake: FakeServer, fake2: FakeServer
) -> None:
    myplan.write_config(
        f'[providers.myplan]\nbase_url = "{fake.base_url}"\nmodels = ["model-a"]\n\n'
        f'[providers.other]\nbase_url = "{fake2.base_url}"\nmodels = ["m"]\n'
    )
    myplan.env["OTHER_API_KEY"] = "sk-other-key-000001"
    fake.script(Reply("From myplan."))
    fake2.script(Reply("From other."), Reply("Other again."))
    chat = Session(myplan, "-m", "myplan:model-a")
    chat.send("/system Be terse.", until="System prompt set")
    chat.send("first", until="From myplan.")
    chat.send("/model other:m", until="Now using other:m")
    chat.send("second", until="From other.")
    chat.leave()
    first_session = latest_id(myplan)

    again = Session(myplan, "-c")
    again.send("third", until="Other again.")
    again.leave()
    body = fake2.requests()[-1].json
    assert body["messages"][0] == {"role": "system", "content": "Be terse."}
    assert user_and_answers(body) == ["first", "From myplan.", "second", "From other.", "third"]
    shown = show(myplan, first_session)
    assert f"myplan:model-a · at {fake.base_url}" in shown
    assert f"other:m · at {fake2.base_url}" in shown
    assert f"- endpoint: {fake2.base_url}" in shown  # the session's route is the current one

    fresh = Session(myplan, "-c")
    fresh.send("/new", until="Started a new conversation")
    fake2.script(Reply("A new start."))
    fresh.send("hello again", until="A new start.")
    fresh.leave()
    assert user_and_answers(fake2.requests()[-1].json) == ["hello again"]
    assert latest_id(myplan) != first_session


def test_two_chats_on_one_session_fork_instead_of_interleaving(myplan: Hermes, fake: FakeServer) -> None:
    fake.always(Reply("ok"))
    assert myplan.run("ask", "start").returncode == 0
    original = latest_id(myplan)
    a = Session(myplan, "-c")
    b = Session(myplan, "-c")
    assert "is open in another hermes" in plain(b.transcript)
    a.send("from A", until="ok")
    b.send("from B", until="ok")
    a.leave()
    b.leave()
    sessions = {s["id"]: s for s in json.loads(myplan.run("sessions", "list", "--json").stdout)}
    assert len(sessions) == 2
    fork = next(i for i in sessions if i != original)
    shown_a, shown_b = show(myplan, original), show(myplan, fork)
    assert "from A" in shown_a and "from B" not in shown_a
    assert "from B" in shown_b and "from A" not in shown_b
    assert "start" in shown_b  # the fork carries the shared history


def test_title_resume_by_title_branch_and_export(myplan: Hermes, fake: FakeServer, tmp_path: Path) -> None:
    fake.always(Reply("Noted."))
    chat = Session(myplan)
    chat.send("plan the trip", until="Noted.")
    chat.send("/title Trip to Lisbon", until="Renamed")
    export = tmp_path / "trip.md"
    chat.send(f"/export {export}", until="Exported")
    chat.send("/branch", until="Branched")
    chat.send("what about Porto?", until="Noted.")
    chat.leave()
    assert export.read_text().startswith("# Trip to Lisbon")
    listing = json.loads(myplan.run("sessions", "list", "--json").stdout)
    titles = {s["title"]: s for s in listing}
    assert set(titles) == {"Trip to Lisbon", "Trip to Lisbon (branch)"}
    assert titles["Trip to Lisbon"]["message_count"] == 2  # the original is unchanged by the branch
    assert "Porto" in show(myplan, titles["Trip to Lisbon (branch)"]["id"])

    resumed = Session(myplan, "-r", "Trip to Lisbon")
    assert "Trip to Lisbon" in plain(resumed.transcript) and "plan the trip" in plain(resumed.transcript)
    resumed.leave()
    bad = myplan.run("ask", "-r", "no such title", "hi")
    assert bad.returncode == 2 and "by id or title" in bad.stderr


def test_resume_inside_the_repl_completes_over_recent_sessions(myplan: Hermes, fake: FakeServer) -> None:
    fake.always(Reply("Sure."))
    assert myplan.run("ask", "the older question").returncode == 0
    older = latest_id(myplan)
    chat = Session(myplan)
    chat.send("a new one", until="Sure.")
    chat.child.send("/resume ")
    chat.child.send("\t")
    chat.expect(older)  # the one other session: Tab completes its id
    chat.send("", until=f'Resumed {older} "the older question"')
    fake.script(Reply("Back on it."))
    chat.send("continue", until="Back on it.")
    chat.leave()
    assert user_and_answers(fake.requests()[-1].json) == ["the older question", "Sure.", "continue"]


def test_edit_composes_in_the_editor_and_edit_last_resends(myplan: Hermes, fake: FakeServer, tmp_path: Path) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text(
        '#!/bin/sh\nif [ -s "$1" ]; then sed -i "s/cats/dogs/" "$1"; else printf "about cats" > "$1"; fi\n'
    )
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    fake.script(Reply("Cats are fine."), Reply("Dogs are fine."))
    chat = Session(myplan, env={"EDITOR": str(editor), "VISUAL": ""})
    chat.send("/edit", until="Cats are fine.")
    chat.send("/edit last", until="Dogs are fine.")
    chat.leave()
    assert user_and_answers(fake.requests()[-1].json) == ["about dogs"]
    shown = show(myplan)
    assert "superseded (edit)" in shown and "about cats" in shown


def test_sessions_fit_a_100_column_terminal(myplan: Hermes, fake: FakeServer) -> None:
    fake.always(Reply("ok"))
    assert myplan.run("ask", "x" * 300).returncode == 0
    chat = Session(myplan, env={"COLUMNS": "100", "LINES": "40"})
    chat.send("/sessions", until="msgs")
    chat.leave()
    listed = [line for line in plain(chat.transcript).splitlines() if " msgs " in line]
    assert listed and all(len(line) <= 100 for line in listed)
    assert "…" in listed[-1]  # the long title is cut, not wrapped


def test_an_ask_continuing_a_session_in_use_forks_it(myplan: Hermes, fake: FakeServer) -> None:
    import subprocess
    import sys
    import time

    fake.always(Reply("ok"))
    assert myplan.run("ask", "start").returncode == 0
    original = latest_id(myplan)
    fake.always(Reply("slow answer", delay=0.4))
    first = subprocess.Popen(
        [sys.executable, "-m", "hermes_cli", "ask", "-c", "from the first"],
        env=myplan.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while len(fake.requests()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # until the first ask is mid-answer, holding the session
    fake.always(Reply("quick"))
    second = myplan.run("ask", "-c", "from the second")
    first.communicate(timeout=30)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert "is open in another hermes" in second.stderr
    shown = show(myplan, original)
    assert "from the first" in shown and "from the second" not in shown
