"""Checkpoints and rollback: the fake model writes and edits files over turns, `hermes rollback` and
`/rollback` restore them; files on disk are the evidence. Nothing goes near the user's git index."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from agent.checkpoints import Checkpoints, prune
from tests.conftest import Hermes
from tests.fakeserver import FakeServer, Reply, ToolCalls


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("one\ntwo\n")
    return ws


def two_turns(h: Hermes, fake: FakeServer, ws: Path) -> None:
    fake.script(
        ToolCalls(
            [
                ("edit_file", {"path": "notes.txt", "old_string": "one", "new_string": "ONE"}),
                ("write_file", {"path": "a.txt", "content": "first\n"}),
            ]
        ),
        Reply("Turn one done."),
        ToolCalls(
            [
                ("edit_file", {"path": "notes.txt", "old_string": "two", "new_string": "TWO"}),
                ("write_file", {"path": "a.txt", "content": "second\n"}),
                ("write_file", {"path": "new/b.txt", "content": "created\n"}),
            ]
        ),
        Reply("Turn two done."),
    )
    first = h.run("ask", "-y", "Edit.", cwd=ws)
    assert first.returncode == 0, first.stderr
    second = h.run("ask", "-y", "-c", "More.", cwd=ws)
    assert second.returncode == 0, second.stderr
    assert (ws / "notes.txt").read_text() == "ONE\nTWO\n" and (ws / "new" / "b.txt").exists()


def test_rollback_1_restores_the_last_turn_only_and_removes_what_it_created(
    myplan: Hermes, fake: FakeServer, ws: Path
) -> None:
    two_turns(myplan, fake, ws)
    done = myplan.run("rollback", "1", "-y", cwd=ws)
    assert done.returncode == 0, done.stderr
    assert "-TWO" in done.stdout and "+two" in done.stdout and "-second" in done.stdout  # the diff first
    assert (ws / "notes.txt").read_text() == "ONE\ntwo\n"
    assert (ws / "a.txt").read_text() == "first\n"
    assert not (ws / "new" / "b.txt").exists()
    assert "Restored 3 files" in done.stderr
    again = myplan.run("rollback", "-y", cwd=ws)  # the next one back: turn one
    assert again.returncode == 0, again.stderr
    assert (ws / "notes.txt").read_text() == "one\ntwo\n" and not (ws / "a.txt").exists()


def test_a_file_changed_outside_hermes_is_refused(myplan: Hermes, fake: FakeServer, ws: Path) -> None:
    two_turns(myplan, fake, ws)
    (ws / "a.txt").write_text("mine now\n")
    done = myplan.run("rollback", "2", "-y", cwd=ws)
    assert done.returncode == 0, done.stderr
    assert "a.txt changed since hermes wrote it" in done.stderr
    assert (ws / "a.txt").read_text() == "mine now\n"  # left alone
    assert (ws / "notes.txt").read_text() == "one\ntwo\n"  # the others restored


def test_without_a_terminal_rollback_needs_yes_and_says_so(myplan: Hermes, fake: FakeServer, ws: Path) -> None:
    two_turns(myplan, fake, ws)
    done = myplan.run("rollback", cwd=ws)
    assert done.returncode == 2 and "Pass -y" in done.stderr and "-TWO" in done.stdout
    assert (ws / "notes.txt").read_text() == "ONE\nTWO\n"


def test_a_turn_that_ran_a_command_says_its_changes_stay(myplan: Hermes, fake: FakeServer, ws: Path) -> None:
    myplan.write_config((myplan.home / "config.toml").read_text() + "\n[tools]\nsandbox = false\n")
    fake.script(
        ToolCalls(
            [
                ("write_file", {"path": "a.txt", "content": "x\n"}),
                ("run_command", {"command": "echo made > by_command.txt"}),
            ]
        ),
        Reply("Done."),
    )
    assert myplan.run("ask", "-y", "Do.", cwd=ws).returncode == 0
    done = myplan.run("rollback", "-y", cwd=ws)
    assert done.returncode == 0, done.stderr
    assert "also ran commands" in done.stderr
    assert not (ws / "a.txt").exists() and (ws / "by_command.txt").exists()


def test_nothing_recorded_and_the_git_index_is_untouched(myplan: Hermes, fake: FakeServer, ws: Path) -> None:
    assert "nothing to roll back" in myplan.run("rollback", cwd=ws).stderr
    subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
    subprocess.run(["git", "add", "notes.txt"], cwd=ws, check=True)
    index = (ws / ".git" / "index").read_bytes()
    two_turns(myplan, fake, ws)
    assert myplan.run("rollback", "2", "-y", cwd=ws).returncode == 0
    assert (ws / ".git" / "index").read_bytes() == index
    assert sorted(p.name for p in ws.iterdir()) == [".git", "new", "notes.txt"]


def test_rollback_in_chat(myplan: Hermes, fake: FakeServer, ws: Path) -> None:
    fake.script(
        ToolCalls([("write_file", {"path": "a.txt", "content": "A\n"})]),
        Reply("Wrote a."),
        ToolCalls([("write_file", {"path": "a.txt", "content": "B\n"})]),
        Reply("Wrote b."),
    )
    env = {**myplan.env, "PROMPT_TOOLKIT_NO_CPR": "1"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "hermes_cli", "chat", "-y"],
        env=env,
        cwd=str(ws),
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 120),
    )
    child.expect_exact("›")
    child.send("write a\r")
    child.expect_exact("Wrote a.")
    child.send("write b\r")
    child.expect_exact("Wrote b.")
    child.send("/rollback\r")
    child.expect_exact("Restored 1 file")
    assert (ws / "a.txt").read_text() == "A\n"
    child.send("/rollback x\r")
    child.expect_exact("is not a number of turns")
    child.expect_exact("›")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()


def test_prune_drops_old_turns_and_their_contents(tmp_path: Path) -> None:
    root, f = tmp_path / "cp", tmp_path / "f.txt"
    f.write_text("before\n")
    checkpoints = Checkpoints(root, lambda: "s1")
    checkpoints.before_write(f)
    f.write_text("after\n")
    checkpoints.after_write(f)
    assert len(list((root / "objects").iterdir())) == 2
    prune(root, max_bytes=0)  # nothing fits: the oldest turn goes (its contents once an hour old)
    assert not list(root.glob("s1/*.json")) and checkpoints.plan(1, "s1").turns == ()
    prune(root, max_age=0)
    assert len(list((root / "objects").iterdir())) == 2  # another hermes may be about to name them


def test_rollback_of_a_named_session(myplan: Hermes, fake: FakeServer, ws: Path) -> None:
    import json

    fake.script(
        ToolCalls([("write_file", {"path": "a.txt", "content": "A\n"})]),
        Reply("Wrote a."),
        ToolCalls([("write_file", {"path": "b.txt", "content": "B\n"})]),
        Reply("Wrote b."),
    )
    first = json.loads(myplan.run("ask", "-y", "--json", "a", cwd=ws).stdout)["session_id"]
    assert myplan.run("ask", "-y", "b", cwd=ws).returncode == 0  # another session, later
    done = myplan.run("rollback", "-s", first[:8], "-y", cwd=ws)
    assert done.returncode == 0, done.stderr
    assert not (ws / "a.txt").exists() and (ws / "b.txt").exists()
    unknown = myplan.run("rollback", "-s", "no-such-title", cwd=ws)
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
