"""The sessions database's named migrations (agent.sessions.migrations): a new database records every
name; a database of the numbered schema (PRAGMA user_version 1..4, as every hermes before named
migrations wrote it) is recognised, upgraded in place and keeps its conversations; a newer one is refused."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agent.attachments import Attachment
from agent.conversation import Message
from agent.events import Usage
from agent.sessions import SessionStore
from agent.sessions.migrations import MIGRATIONS, NAMES, SCHEMA_VERSION
from providers.errors import StorageError

# The released names: renaming one would make every database that recorded it look newer than hermes.
RELEASED = (
    "m001_initial",
    "m002_search_index",
    "m003_superseded_and_endpoints",
    "m004_reasoning_attachments_cached_tokens",
    "m005_answer_costs",
)

# The numbered migrations as the store applied them before they had names (copied verbatim from
# agent/sessions.py at that time): entry N took a database to user_version N.
OLD_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS sessions (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            created REAL NOT NULL,
            updated REAL NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            base_url TEXT NOT NULL,
            system TEXT,
            message_count INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX IF NOT EXISTS sessions_updated ON sessions (updated)",
        """CREATE TABLE IF NOT EXISTS messages (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions (id),
            role TEXT NOT NULL,
            content TEXT,
            tool_calls TEXT,
            tool_call_id TEXT,
            name TEXT,
            provider TEXT,
            model TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            finish_reason TEXT,
            created REAL NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS messages_session ON messages (session_id, id)",
    ),
    (
        "CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5"
        "(content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
        """CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
        END""",
        """CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
        END""",
        """CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF content ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
            INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
        END""",
        "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')",
    ),
    (
        "ALTER TABLE messages ADD COLUMN superseded TEXT",
        "ALTER TABLE messages ADD COLUMN base_url TEXT",
        "CREATE INDEX IF NOT EXISTS messages_live ON messages (session_id, superseded, id)",
    ),
    (
        "ALTER TABLE messages ADD COLUMN reasoning TEXT",
        """CREATE TABLE IF NOT EXISTS attachments (
            sha256 TEXT PRIMARY KEY,
            mime TEXT NOT NULL,
            data BLOB NOT NULL
        )""",
        "ALTER TABLE messages ADD COLUMN attachments TEXT",
        "ALTER TABLE messages ADD COLUMN cached_tokens INTEGER",
    ),
)
OLD_ID = "0123456789ab"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "sessions.db"


def old_database(path: Path, version: int) -> None:
    """A database as the numbered code left it at `version`, holding one session of two messages."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    for number in range(1, version + 1):
        for statement in OLD_MIGRATIONS[number - 1]:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.execute("COMMIT")
    conn.execute(
        "INSERT INTO sessions VALUES (?, 'old question', 1, 2, 'p', 'm', 'https://x/v1', 'Be brief.', 2)", (OLD_ID,)
    )
    conn.execute(
        "INSERT INTO messages (session_id, role, content, created) VALUES (?, 'user', 'old question', 1)", (OLD_ID,)
    )
    conn.execute(
        "INSERT INTO messages (session_id, role, content, provider, model, prompt_tokens, completion_tokens,"
        " finish_reason, created) VALUES (?, 'assistant', 'old answer', 'p', 'm', 7, 3, 'stop', 2)",
        (OLD_ID,),
    )
    conn.close()


def schema(path: Path) -> list[tuple[str, str, str | None]]:
    """Every table, index and trigger, with the SQL that makes it (the record of migrations left out)."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE tbl_name != '_migrations' ORDER BY name")
        return [(kind, name, sql) for kind, name, sql in rows]


def recorded(path: Path) -> tuple[list[str], int]:
    with sqlite3.connect(path) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY name")]
        return names, conn.execute("PRAGMA user_version").fetchone()[0]


def current_database(path: Path) -> None:
    """The last numbered schema, then the named migrations that came after the numbers ended."""
    old_database(path, len(OLD_MIGRATIONS))
    with sqlite3.connect(path, isolation_level=None) as conn:
        for step in MIGRATIONS[len(OLD_MIGRATIONS) :]:
            step(conn)


def test_the_released_names_are_the_migrations_in_order() -> None:
    assert NAMES[: len(RELEASED)] == RELEASED
    assert SCHEMA_VERSION == len(NAMES) >= len(OLD_MIGRATIONS)


def test_a_new_database_records_every_migration_and_has_the_numbered_schema(db: Path, tmp_path: Path) -> None:
    with SessionStore(db) as store:
        store.recent()
    assert recorded(db) == (list(RELEASED), SCHEMA_VERSION)
    old = tmp_path / "old.db"
    current_database(old)
    assert schema(db) == schema(old)  # the named migrations make what the numbered ones made


@pytest.mark.parametrize("version", range(1, len(OLD_MIGRATIONS) + 1))
def test_a_numbered_database_is_upgraded_in_place_and_keeps_its_conversations(
    db: Path, tmp_path: Path, version: int
) -> None:
    old_database(db, version)
    with SessionStore(db) as store:
        old = store.messages(OLD_ID)
        assert [(m.role, m.content) for m in old] == [("user", "old question"), ("assistant", "old answer")]
        assert old[1].usage == Usage(7, 3)
        assert [h.snippet for h in store.search("answer")] == ["old **answer**"]
        # The columns of the later migrations work on the upgraded database.
        picture = Attachment("p.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * 8)
        store.append(OLD_ID, Message("user", "new question", attachments=(picture,), created=3.0))
        answer = Message(
            "assistant",
            "new answer",
            provider="p",
            model="m",
            usage=Usage(20, 5, 12),
            finish_reason="stop",
            created=4.0,
            endpoint="https://x/v1",
            reasoning="thought about it",
        )
        store.append(OLD_ID, answer)
        assert store.messages(OLD_ID)[2:] == [
            Message("user", "new question", attachments=(picture,), created=3.0),
            answer,
        ]
        assert store.truncate(OLD_ID, 2, "undo") == 2
        assert [why for _, why in store.history(OLD_ID)] == [None, None, "undo", "undo"]
        assert len(store.search("question")) == 2
    # Recorded as applied, the first `version` without running them again (their ALTER TABLEs would fail).
    assert recorded(db) == (list(RELEASED), SCHEMA_VERSION)
    full = tmp_path / "full.db"
    current_database(full)
    assert schema(db) == schema(full)
    with SessionStore(db) as again:  # and opened again, nothing left to do
        assert len(again.messages(OLD_ID)) == 2


def test_the_numbered_version_is_kept_for_an_older_hermes(db: Path) -> None:
    """An older hermes reads only user_version: it must see the current schema, never a lower one."""
    old_database(db, 2)
    with SessionStore(db) as store:
        store.recent()
    assert recorded(db)[1] == SCHEMA_VERSION


@pytest.mark.parametrize(
    "change",
    [
        "INSERT INTO _migrations (name, applied) VALUES ('m099_from_the_future', 0)",
        f"PRAGMA user_version = {SCHEMA_VERSION + 1}",
    ],
    ids=["unknown name", "higher version"],
)
def test_a_database_of_a_newer_hermes_is_refused_untouched(db: Path, change: str) -> None:
    with SessionStore(db) as store:
        store.create(provider="p", model="m", base_url="https://x/v1", system=None)
    with sqlite3.connect(db) as conn:
        conn.execute(change)
    before = db.read_bytes()
    with pytest.raises(StorageError, match="newer hermes") as e:
        SessionStore(db).recent()
    assert str(db) in str(e.value)
    if "m099" in change:
        assert "m099_from_the_future" in str(e.value)
    assert db.read_bytes() == before


def test_a_record_of_migrations_of_another_shape_is_not_ours(db: Path) -> None:
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE _migrations (id INTEGER PRIMARY KEY, version TEXT)")
        conn.execute("INSERT INTO _migrations (version) VALUES ('0001_initial')")
    before = db.read_bytes()
    with pytest.raises(
        StorageError, match=r"not a hermes sessions database \(its _migrations table has no column name\)"
    ):
        SessionStore(db).recent()
    assert db.read_bytes() == before


def test_processes_upgrading_a_numbered_database_at_once_all_succeed(tmp_path: Path) -> None:
    """Each step is checked again under the write lock: no process re-runs one another has applied."""
    code = (
        "import sys; from pathlib import Path\n"
        "from agent.sessions import SessionStore\nfrom agent.conversation import Message\n"
        "SessionStore(Path(sys.argv[1])).append(sys.argv[2], Message('user', 'hi'))\n"
    )
    root = Path(__file__).resolve().parents[1]
    for trial in range(4):
        db = tmp_path / f"race-{trial}.db"
        old_database(db, 1)
        procs = [
            subprocess.Popen([sys.executable, "-c", code, str(db), OLD_ID], cwd=root, stderr=subprocess.PIPE)
            for _ in range(4)
        ]
        errors = [p.communicate()[1].decode() for p in procs]
        assert all(p.returncode == 0 for p in procs), errors
        assert recorded(db) == (list(RELEASED), SCHEMA_VERSION)
        with SessionStore(db) as store:
            assert len(store.messages(OLD_ID)) == 2 + 4
