"""The session store (agent.sessions) and `hermes sessions` run as a subprocess."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.conversation import Message
from agent.events import Usage
from agent.sessions import SessionStore, title_from
from agent.sessions import store as store_module
from agent.sessions.export import export_session
from agent.sessions.migrations import SCHEMA_VERSION
from providers.errors import StorageError, UsageError
from tests.jail import jailed, needs_bwrap

ROUTE = {"provider": "openrouter", "model": "some/model", "base_url": "https://openrouter.ai/api/v1"}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "sessions.db"


@pytest.fixture
def store(db: Path) -> Iterator[SessionStore]:
    with SessionStore(db) as s:
        yield s


def conversation() -> list[Message]:
    call = {"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "a.txt"}'}}
    return [
        Message("user", "Why is the sky blue?\nExplain briefly.", created=1000.0),
        Message(
            "assistant",
            None,
            tool_calls=(call,),
            provider="openrouter",
            model="some/model",
            usage=Usage(10, 5),
            finish_reason="tool_calls",
            created=1001.0,
        ),
        Message("tool", "Rayleigh scattering of sunlight", tool_call_id="call_1", name="read_file", created=1002.0),
        Message(
            "assistant",
            "Because of Rayleigh scattering.",
            provider="deepseek",
            model="deepseek-chat",
            usage=Usage(30, 8),
            finish_reason="stop",
            created=1003.0,
        ),
        Message("user", "And at sunset?", created=1004.0),
        Message(
            "assistant",
            "Longer path through the air, so",
            provider="deepseek",
            model="deepseek-chat",
            finish_reason="interrupted",
            created=1005.0,
        ),
    ]


def filled(store: SessionStore, messages: list[Message] | None = None, **route: Any) -> str:
    session = store.create(**{**ROUTE, **route}, system="Be brief.")
    for m in conversation() if messages is None else messages:
        store.append(session.id, m)
    return session.id


def fixed_ids(monkeypatch: pytest.MonkeyPatch, *ids: str) -> None:
    queue = list(ids)
    monkeypatch.setattr("secrets.token_hex", lambda n: queue.pop(0))


def message_from_dict(data: dict[str, Any]) -> Message:
    usage = data["usage"]
    assert data["attachments"] == []  # listed by name and hash only: the JSON carries no file contents
    return Message(
        **{**data, "tool_calls": tuple(data["tool_calls"]), "usage": usage and Usage(**usage), "attachments": ()}
    )


# --- the store ---


def test_messages_round_trip(store: SessionStore) -> None:
    sid = filled(store)
    assert store.messages(sid) == conversation()


def test_session_record(store: SessionStore) -> None:
    sid = filled(store)
    info = store.resolve(sid)
    assert info.title == "Why is the sky blue?"
    assert info.message_count == 6
    assert info.system == "Be brief."
    assert (info.provider, info.model) == ("deepseek", "deepseek-chat")  # the last answer's route
    assert info.updated >= info.created


def test_title_is_first_line_trimmed() -> None:
    assert title_from("\n\n   hello   world  \nsecond") == "hello world"
    long = title_from("x" * 200)
    assert len(long) == 60 and long.endswith("…")
    assert title_from("  \n ") == ""


def test_title_comes_from_first_user_message_only(store: SessionStore) -> None:
    sid = filled(store, [Message("user", "   "), Message("user", "first real"), Message("user", "second")])
    assert store.resolve(sid).title == "first real"


def test_set_route_and_system(store: SessionStore) -> None:
    sid = filled(store, [])
    store.set_route(sid, provider="local", model="tiny", base_url="http://127.0.0.1:8080/v1")
    store.set_system(sid, None)
    info = store.resolve(sid)
    assert (info.provider, info.model, info.system) == ("local", "tiny", None)
    assert info.base_url == "http://127.0.0.1:8080/v1"


def test_list_newest_first_and_latest(store: SessionStore) -> None:
    ids = [filled(store, [Message("user", f"q{i}")]) for i in range(5)]
    store.append(ids[1], Message("user", "later", created=time.time() + 10))
    listed = [s.id for s in store.recent()]
    assert listed[0] == ids[1]
    assert sorted(listed) == sorted(ids)
    assert len(store.recent(limit=2)) == 2
    latest = store.latest()
    assert latest is not None and latest.id == ids[1]


def test_latest_of_empty_store(store: SessionStore) -> None:
    assert store.latest() is None
    assert store.recent() == []


def test_resolve_prefix(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    fixed_ids(monkeypatch, "abc123000000", "abd456000000")
    first, second = filled(store, []), filled(store, [])
    assert store.resolve("abc").id == first
    assert store.resolve("ABD4").id == second
    assert store.resolve(first).id == first


def test_resolve_ambiguous_names_candidates(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    fixed_ids(monkeypatch, "abc123000000", "abd456000000")
    filled(store, [Message("user", "one")])
    filled(store, [Message("user", "two")])
    with pytest.raises(UsageError) as e:
        store.resolve("ab")
    assert "abc123000000" in str(e.value) and "abd456000000" in str(e.value) and "ambiguous" in str(e.value)


@pytest.mark.parametrize("bad", ["ffff", "", "a%", "zz*"])
def test_resolve_unknown(store: SessionStore, bad: str) -> None:
    filled(store, [])
    with pytest.raises(UsageError, match="No session matches"):
        store.resolve(bad)


def test_id_collision_draws_again(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    fixed_ids(monkeypatch, "aaaaaaaaaaaa", "aaaaaaaaaaaa", "bbbbbbbbbbbb")
    assert filled(store, []) == "aaaaaaaaaaaa"
    assert filled(store, []) == "bbbbbbbbbbbb"


def test_append_to_unknown_session(store: SessionStore) -> None:
    with pytest.raises(UsageError):
        store.append("000000000000", Message("user", "hi"))


def test_search_ranks_and_highlights(store: SessionStore) -> None:
    sid = filled(store)
    other = filled(store, [Message("user", "scattering scattering scattering of light")])
    hits = store.search("scattering")
    assert next(h.session.id for h in hits) == other
    assert {h.session.id for h in hits} == {sid, other}
    assert all("**scattering**" in h.snippet for h in hits)
    assert hits == sorted(hits, key=lambda h: h.rank)
    assert {h.role for h in hits if h.session.id == sid} == {"tool", "assistant"}


@pytest.mark.parametrize("query", ["sky AND", '"unbalanced', "c++", "title:sky", "(", "NOT", "sky*)"])
def test_search_syntax_fts5_rejects_is_a_phrase(store: SessionStore, query: str) -> None:
    filled(store)
    store.search(query)  # no exception


def test_search_falls_back_to_phrase(store: SessionStore) -> None:
    sid = filled(store, [Message("user", "what does c++ mean")])
    assert [h.session.id for h in store.search("c++")] == [sid]


def test_search_ranks_the_newest_matches_of_a_common_word(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "RANKED_MATCHES", 2)
    ids = [filled(store, [Message("user", "needle " * (3 - i))]) for i in range(3)]
    assert {h.session.id for h in store.search("needle")} == set(ids[1:])


def test_search_empty_text(store: SessionStore) -> None:
    with pytest.raises(UsageError):
        store.search("  ")


def test_delete(store: SessionStore) -> None:
    sid, kept = filled(store), filled(store)
    store.delete(sid)
    assert [s.id for s in store.recent()] == [kept]
    assert store.messages(sid) == []
    assert {h.session.id for h in store.search("Rayleigh")} == {kept}
    with pytest.raises(UsageError):
        store.delete(sid)


def test_export_json_reimports(store: SessionStore) -> None:
    sid = filled(store)
    data = json.loads(export_session(store, sid, "json"))
    assert data["session"]["id"] == sid
    assert data["session"]["message_count"] == 6
    assert [message_from_dict(m) for m in data["messages"]] == store.messages(sid)


def test_export_markdown(store: SessionStore) -> None:
    text = export_session(store, filled(store), "markdown")
    assert text.startswith("# Why is the sky blue?\n")
    for part in (
        "## System",
        "Be brief.",
        "read_file",
        "Because of Rayleigh scattering.",
        "*(interrupted)*",
        "deepseek:deepseek-chat",
        "30+8 tokens",
    ):
        assert part in text


def test_export_unknown_format(store: SessionStore) -> None:
    with pytest.raises(UsageError):
        export_session(store, filled(store), "html")


def test_opened_lazily(db: Path) -> None:
    store = SessionStore(db)
    assert not db.parent.exists()
    store.recent()
    assert db.exists()
    store.close()


def test_files_are_private(store: SessionStore, db: Path) -> None:
    filled(store)
    for path in (db, db.with_name("sessions.db-wal"), db.with_name("sessions.db-shm")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_schema_version_set_and_reopen(store: SessionStore, db: Path) -> None:
    sid = filled(store)
    store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with SessionStore(db) as again:
        assert again.messages(sid) == conversation()


def test_migrates_a_version_1_database(db: Path) -> None:
    # Schema 1 as released: sessions and messages, no full-text index yet.
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE sessions (id TEXT PRIMARY KEY, title TEXT NOT NULL DEFAULT '', created REAL NOT NULL,
            updated REAL NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, base_url TEXT NOT NULL,
            system TEXT, message_count INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX sessions_updated ON sessions (updated);
        CREATE TABLE messages (id INTEGER PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions (id),
            role TEXT NOT NULL, content TEXT, tool_calls TEXT, tool_call_id TEXT, name TEXT, provider TEXT,
            model TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, finish_reason TEXT, created REAL NOT NULL);
        CREATE INDEX messages_session ON messages (session_id, id);
        INSERT INTO sessions VALUES ('0123456789ab', 'old question', 1, 2, 'p', 'm', 'https://x/v1', NULL, 2);
        INSERT INTO messages (session_id, role, content, created) VALUES ('0123456789ab', 'user', 'old question', 1);
        INSERT INTO messages (session_id, role, content, created) VALUES ('0123456789ab', 'assistant', 'old answer', 2);
        PRAGMA user_version = 1;
    """)
    conn.close()
    with SessionStore(db) as store:
        assert [h.snippet for h in store.search("answer")] == ["old **answer**"]
        assert [m.content for m in store.messages("0123456789ab")] == ["old question", "old answer"]
        store.append("0123456789ab", Message("user", "new question"))
        assert len(store.search("question")) == 2
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_is_refused_untouched(store: SessionStore, db: Path) -> None:
    filled(store)
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = db.read_bytes()
    with pytest.raises(StorageError, match="newer hermes"):
        SessionStore(db).recent()
    assert db.read_bytes() == before


def test_corrupt_file_is_reported_and_left_untouched(db: Path) -> None:
    db.parent.mkdir(parents=True)
    garbage = b"this is not a database\n" * 200
    db.write_bytes(garbage)
    store = SessionStore(db)
    for attempt in (store.recent, store.latest, lambda: store.create(**ROUTE, system=None)):
        with pytest.raises(StorageError) as e:
            attempt()
        assert str(db) in str(e.value)
    assert db.read_bytes() == garbage
    assert not db.with_name("sessions.db-wal").exists()


def test_locked_database(store: SessionStore, db: Path) -> None:
    sid = filled(store)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with SessionStore(db, busy_timeout=0.1) as blocked:
            with pytest.raises(StorageError, match="locked") as e:
                blocked.append(sid, Message("user", "hi"))
            assert str(db) in str(e.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.append(sid, Message("user", "now it works"))


@needs_bwrap
def test_unwritable_directory(tmp_path: Path) -> None:
    """A directory hermes may not write (read-only, so that root, as in CI, is refused too): a StorageError
    naming what could not be created, not a crash."""
    script = (
        "import sys\nfrom pathlib import Path\nfrom agent.sessions import SessionStore\n"
        "from providers.errors import StorageError\n"
        "try:\n    SessionStore(Path(sys.argv[1]) / 'data' / 'sessions.db').recent()\n"
        "except StorageError as e:\n    print(e)\n"
    )
    done = jailed([sys.executable, "-c", script, str(tmp_path)], read_only=[tmp_path])
    assert done.returncode == 0 and done.stdout.startswith("Cannot create"), (done.stdout, done.stderr)
    assert str(tmp_path / "data") in done.stdout and not (tmp_path / "data").exists()


def test_urls_are_stored_with_credentials_masked(store: SessionStore) -> None:
    url = "https://user:sk-secret@example.com:8443/v1?api-version=2024-06&api_key=sk-q&token=t#frag"
    masked = "https://user:***@example.com:8443/v1?api-version=2024-06&api_key=***&token=***#***"
    session = store.create(provider="p", model="m", base_url=url, system=None)
    store.append(session.id, Message("assistant", "hi", provider="p", model="m", endpoint=url))
    assert session.base_url == store.get(session.id).base_url == masked
    assert store.messages(session.id)[0].endpoint == masked
    store.set_route(session.id, provider="p", model="m", base_url="http://127.0.0.1:8080/v1")
    assert store.get(session.id).base_url == "http://127.0.0.1:8080/v1"


def test_no_key_is_stored(store: SessionStore, db: Path) -> None:
    sid = filled(store, base_url="https://me:sk-userinfo-secret@example.com/v1?key=sk-query-secret")
    store.set_route(sid, provider="x", model="y", base_url="https://me:sk-route-secret@example.com/v1")
    store.close()
    stored = b"".join(p.read_bytes() for p in db.parent.iterdir())
    assert b"example.com/v1" in stored
    assert b"secret" not in stored


# --- `hermes sessions`, as a user runs it ---


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def home_store(home: Path) -> Iterator[SessionStore]:
    with SessionStore(home / "data" / "sessions.db") as s:
        yield s


def hermes(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HERMES_HOME": str(home), "NO_COLOR": "1"}
    env.pop("HERMES_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "hermes_cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )


def test_cli_list(home: Path, home_store: SessionStore) -> None:
    ids = [filled(home_store, [Message("user", f"question {i}", created=time.time() + i)]) for i in range(3)]
    result = hermes(home, "sessions", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == ["ID", "TITLE", "MODEL", "MESSAGES", "COST", "AGE"]
    assert [line.split("\t")[0] for line in lines[1:]] == ids[::-1]
    assert lines[1].split("\t")[1:4] == ["question 2", "openrouter:some/model", "1"]

    limited = hermes(home, "sessions", "list", "--limit", "1", "--json")
    assert [s["id"] for s in json.loads(limited.stdout)] == [ids[2]]


def test_cli_list_empty(home: Path) -> None:
    result = hermes(home, "sessions", "list", "--json")
    assert result.returncode == 0 and json.loads(result.stdout) == []


def test_cli_show(home: Path, home_store: SessionStore) -> None:
    sid = filled(home_store)
    result = hermes(home, "sessions", "show", sid[:5])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# Why is the sky blue?") and "Because of Rayleigh scattering." in result.stdout
    as_json = json.loads(hermes(home, "sessions", "show", sid, "--json").stdout)
    assert as_json["session"]["id"] == sid and len(as_json["messages"]) == 6


def test_cli_search(home: Path, home_store: SessionStore) -> None:
    sid = filled(home_store)
    result = hermes(home, "sessions", "search", "rayleigh")
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows[0] == ["ID", "TITLE", "ROLE", "MATCH"]
    assert {r[0] for r in rows[1:]} == {sid} and any("Rayleigh" in r[3] for r in rows[1:])
    assert "**" not in result.stdout  # plain text: the markers are for the colour terminal's highlight

    odd = hermes(home, "sessions", "search", "sky AND", "--json")
    assert odd.returncode == 0 and "Traceback" not in odd.stderr
    assert isinstance(json.loads(odd.stdout), list)


def test_cli_export_to_file(home: Path, home_store: SessionStore, tmp_path: Path) -> None:
    sid = filled(home_store)
    target = tmp_path / "out.json"
    result = hermes(home, "sessions", "export", sid, "--format", "json", "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert json.loads(target.read_text())["session"]["id"] == sid
    markdown = hermes(home, "sessions", "export", sid)
    assert markdown.stdout.startswith("# Why is the sky blue?")
    bad = hermes(home, "sessions", "export", sid, "--format", "html")
    assert bad.returncode == 2


def test_cli_delete_needs_confirmation(home: Path, home_store: SessionStore) -> None:
    sid = filled(home_store)
    refused = hermes(home, "sessions", "delete", sid)
    assert refused.returncode == 2 and "-y" in refused.stderr
    assert home_store.resolve(sid)
    deleted = hermes(home, "sessions", "delete", "-y", sid[:4])
    assert deleted.returncode == 0, deleted.stderr
    assert home_store.recent() == []


def test_cli_unknown_and_ambiguous_ids(home: Path, home_store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    fixed_ids(monkeypatch, "abc123000000", "abd456000000")
    filled(home_store, [])
    filled(home_store, [])
    for args in (("show", "fff"), ("export", "ab"), ("delete", "-y", "ab")):
        result = hermes(home, "sessions", *args)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr
    ambiguous = hermes(home, "sessions", "show", "ab")
    assert "abc123000000" in ambiguous.stderr and "abd456000000" in ambiguous.stderr


def test_cli_corrupt_database(home: Path) -> None:
    db = home / "data" / "sessions.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"\x00garbage" * 100)
    result = hermes(home, "sessions", "list")
    assert result.returncode == 2
    assert str(db) in result.stderr and "Traceback" not in result.stderr
    assert db.read_bytes() == b"\x00garbage" * 100
    assert hermes(home, "config", "path").returncode == 0


def test_processes_creating_the_database_at_once_all_succeed(tmp_path: Path) -> None:
    """Each checks that a database is hermes's from one snapshot: never from before and after another
    process's migration (which once made one of them call a fresh database foreign)."""
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path\n"
        "from agent.sessions import SessionStore\nfrom agent.conversation import Message\n"
        "s = SessionStore(Path(sys.argv[1]))\n"
        "s.append(s.create(provider='p', model='m', base_url='http://x', system=None).id, Message('user', 'hi'))\n"
    )
    root = Path(__file__).resolve().parents[1]
    for trial in range(8):
        db = tmp_path / f"race-{trial}.db"
        procs = [
            subprocess.Popen([sys.executable, "-c", code, str(db)], cwd=root, stderr=subprocess.PIPE) for _ in range(4)
        ]
        errors = [p.communicate()[1].decode() for p in procs]
        assert all(p.returncode == 0 for p in procs), errors
        with SessionStore(db) as store:
            assert len(store.recent()) == 4
