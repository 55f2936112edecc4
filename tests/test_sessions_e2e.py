"""Conversations are never lost: `hermes ask` saves every turn, and -c / -r carry them on."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest

from agent.conversation import Message
from agent.events import Usage
from agent.sessions import SessionStore
from tests.conftest import Hermes
from tests.fakeserver import FakeServer, Reply

KEY = "sk-session-test-key-0001"


def setup(hermes: Hermes, fake: FakeServer) -> None:
    hermes.write_config(f'[providers.myplan]\nbase_url = "{fake.base_url}"\nmodels = ["m1"]\n')
    hermes.env["MYPLAN_API_KEY"] = KEY


def ask_json(hermes: Hermes, *args: str) -> dict[str, Any]:
    done = hermes.run("ask", "--json", *args)
    assert done.returncode == 0, done.stderr
    return cast(dict[str, Any], json.loads(done.stdout))


def test_continue_carries_the_previous_exchange(hermes: Hermes, fake: FakeServer) -> None:
    setup(hermes, fake)
    fake.script(Reply("Paris is the capital."), Reply("About two million."))
    first = ask_json(hermes, "-p", "myplan", "What is the capital of France?")
    second = ask_json(hermes, "-c", "How many people live there?")
    assert second["session_id"] == first["session_id"]
    assert second["provider"] == "myplan" and second["model"] == "m1"
    messages = fake.requests()[-1].json["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "What is the capital of France?"),
        ("assistant", "Paris is the capital."),
        ("user", "How many people live there?"),
    ]


def test_resume_by_prefix_and_search_and_export(hermes: Hermes, fake: FakeServer) -> None:
    setup(hermes, fake)
    fake.script(Reply("The aardvark eats ants."), Reply("Other topic."), Reply("Yes, termites too."))
    first = ask_json(hermes, "-p", "myplan", "Tell me about aardvarks")
    ask_json(hermes, "-p", "myplan", "Something else")
    resumed = ask_json(hermes, "-r", first["session_id"][:6], "Termites as well?")
    assert resumed["session_id"] == first["session_id"]
    assert len(fake.requests()[-1].json["messages"]) == 3

    found = hermes.run("sessions", "search", "aardvark", "--json")
    assert found.returncode == 0, found.stderr
    assert first["session_id"] in found.stdout

    exported = hermes.run("sessions", "export", first["session_id"], "--format", "json")
    data = json.loads(exported.stdout)
    assert [m["content"] for m in data["messages"]] == [
        "Tell me about aardvarks",
        "The aardvark eats ants.",
        "Termites as well?",
        "Yes, termites too.",
    ]
    db = (hermes.home / "data" / "sessions.db").read_bytes()
    assert KEY.encode() not in db


def test_no_save_stores_nothing(hermes: Hermes, fake: FakeServer) -> None:
    setup(hermes, fake)
    result = ask_json(hermes, "-p", "myplan", "--no-save", "private")
    assert result["session_id"] is None
    listing = hermes.run("sessions", "list", "--json")
    assert json.loads(listing.stdout or "[]") == []


def test_continue_without_sessions_is_a_usage_error(hermes: Hermes, fake: FakeServer) -> None:
    setup(hermes, fake)
    done = hermes.run("ask", "-c", "hello")
    assert done.returncode == 2 and "no earlier session" in done.stderr.lower()
    unknown = hermes.run("ask", "-r", "zzzz", "hello")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr


def test_kill_9_mid_answer_keeps_earlier_turns(hermes: Hermes, fake: FakeServer) -> None:
    setup(hermes, fake)
    first = ask_json(hermes, "-p", "myplan", "turn one")
    fake.script(Reply("a slow answer " * 40, delay=0.2))
    proc = subprocess.Popen(
        [sys.executable, "-m", "hermes_cli", "ask", "-c", "turn two"],
        env=hermes.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    proc.stdout.read(5)  # the answer has started streaming
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    db = hermes.home / "data" / "sessions.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    exported = json.loads(hermes.run("sessions", "export", first["session_id"], "--format", "json").stdout)
    contents = [m["content"] for m in exported["messages"]]
    assert contents[:3] == ["turn one", "Hello from fake", "turn two"]


def test_concurrent_asks_both_record(hermes: Hermes, fake: FakeServer) -> None:
    setup(hermes, fake)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda i: hermes.run("ask", "--json", "-p", "myplan", f"question {i}"), range(2)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    ids = {json.loads(r.stdout)["session_id"] for r in results}
    assert len(ids) == 2
    listing = json.loads(hermes.run("sessions", "list", "--json").stdout)
    assert {s["id"] for s in listing} == ids


def test_a_listing_shows_what_each_answer_cost_when_it_was_given(myplan: Hermes, fake: FakeServer) -> None:
    """The cost is recorded with the answer: a later price change does not rewrite history, and an
    answer recorded before costs were kept (here: written without one) is priced at today's price."""
    config = myplan.home / "config.toml"
    base = config.read_text(encoding="utf-8")
    config.write_text(base + '\n[models."model-a"]\ninput_price = 1.0\noutput_price = 2.0\n', encoding="utf-8")
    fake.always(Reply("ok", usage=(1000, 200)))
    assert myplan.run("ask", "-m", "myplan:model-a", "--no-tools", "hi").returncode == 0
    config.write_text(base + '\n[models."model-a"]\ninput_price = 10.0\noutput_price = 20.0\n', encoding="utf-8")
    with SessionStore(myplan.home / "data" / "sessions.db") as store:
        old = store.create(provider="myplan", model="model-a", base_url=fake.base_url, system=None)
        store.append(old.id, Message("user", "before costs were kept"))
        store.append(old.id, Message("assistant", "ok", provider="myplan", model="model-a", usage=Usage(1000, 200)))
    listing = {s["id"]: s for s in json.loads(myplan.run("sessions", "list", "--json").stdout)}
    (asked,) = [s for sid, s in listing.items() if sid != old.id]
    assert asked["cost_usd"] == pytest.approx((1000 * 1.0 + 200 * 2.0) / 1e6) and asked["cost_complete"]
    assert listing[old.id]["cost_usd"] == pytest.approx((1000 * 10.0 + 200 * 20.0) / 1e6)
