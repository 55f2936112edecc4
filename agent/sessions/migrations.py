"""The sessions database's schema: named migrations, each applied once, in order, and recorded.

As in llm's migrations.py: one function per step, registered by `@migration` in the order written;
the name of each one applied is recorded in the `_migrations` table. A released migration is never
edited or renamed: a change of schema is a new function at the end.

Before names were recorded, the schema was versioned by `PRAGMA user_version` alone: version N
meant the first N of these migrations were applied, and that is how such a database is read (the N
names are recorded, never re-run). The version is still kept, as the number of migrations applied
from the first on, because an older hermes reads only it to refuse a database that is newer than it.

`check` reads a database without writing to it: one that a newer hermes wrote, or that is not a
hermes database at all, is refused and left as it is. `migrate` then applies what is missing, each
step in its own transaction under the write lock, checking again there what is applied: another
process may be migrating the same file at the same moment.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

from providers.errors import StorageError

Migration = Callable[[sqlite3.Connection], None]

MIGRATIONS: list[Migration] = []


def migration(step: Migration) -> Migration:
    MIGRATIONS.append(step)
    return step


@migration
def m001_initial(conn: sqlite3.Connection) -> None:
    conn.execute("""CREATE TABLE IF NOT EXISTS sessions (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            created REAL NOT NULL,
            updated REAL NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            base_url TEXT NOT NULL,
            system TEXT,
            message_count INTEGER NOT NULL DEFAULT 0
        )""")
    conn.execute("CREATE INDEX IF NOT EXISTS sessions_updated ON sessions (updated)")
    conn.execute("""CREATE TABLE IF NOT EXISTS messages (
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
        )""")
    conn.execute("CREATE INDEX IF NOT EXISTS messages_session ON messages (session_id, id)")


@migration
def m002_search_index(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5"
        "(content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
    )
    conn.execute("""CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
        END""")
    conn.execute("""CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
        END""")
    conn.execute("""CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF content ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
            INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
        END""")
    # Index the messages stored before this migration.
    conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")


@migration
def m003_superseded_and_endpoints(conn: sqlite3.Connection) -> None:
    # What was undone or replaced stays, marked with why ('undo', 'retry', 'edit'); never sent again.
    conn.execute("ALTER TABLE messages ADD COLUMN superseded TEXT")
    # The endpoint each answer came from: a session may switch provider mid-way.
    conn.execute("ALTER TABLE messages ADD COLUMN base_url TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS messages_live ON messages (session_id, superseded, id)")


@migration
def m004_reasoning_attachments_cached_tokens(conn: sqlite3.Connection) -> None:
    # A reasoning model's thinking, kept with its answer (never sent back to the provider).
    conn.execute("ALTER TABLE messages ADD COLUMN reasoning TEXT")
    # Attached files by content hash, stored once however often they are attached.
    conn.execute("""CREATE TABLE IF NOT EXISTS attachments (
            sha256 TEXT PRIMARY KEY,
            mime TEXT NOT NULL,
            data BLOB NOT NULL
        )""")
    # Per message: a JSON list of {name, mime, sha256}.
    conn.execute("ALTER TABLE messages ADD COLUMN attachments TEXT")
    # Prompt tokens the provider served from its cache: priced at the cache-read price.
    conn.execute("ALTER TABLE messages ADD COLUMN cached_tokens INTEGER")


@migration
def m005_answer_costs(conn: sqlite3.Connection) -> None:
    # What an answer cost when it was given (USD; NULL for a model without a price), so that listing
    # sessions needs no price list; `cost_known` 0 marks answers recorded before this column.
    conn.execute("ALTER TABLE messages ADD COLUMN cost_usd REAL")
    conn.execute("ALTER TABLE messages ADD COLUMN cost_known INTEGER NOT NULL DEFAULT 0")


NAMES = tuple(step.__name__ for step in MIGRATIONS)
SCHEMA_VERSION = len(NAMES)

_CREATE_RECORD = "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)"
# The columns of the first schema, which every later one keeps, and of the record of migrations:
# what tells a hermes database from a foreign one.
_OWN_COLUMNS = {
    "sessions": ("id", "title", "created", "updated", "provider", "model", "base_url", "system", "message_count"),
    "messages": (
        "session_id",
        "role",
        "content",
        "tool_calls",
        "tool_call_id",
        "name",
        "provider",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "finish_reason",
        "created",
    ),
    "_migrations": ("name", "applied"),
}


def check(conn: sqlite3.Connection, path: Path) -> bool:
    """Refuse (StorageError) a database a newer hermes wrote or that is not a hermes database, before
    anything writes to it. True when every migration is applied and recorded: nothing to migrate."""
    # One read transaction: the version, the records and the tables come from the same snapshot, not
    # from before and after another process's migration committed.
    conn.execute("BEGIN")
    try:
        version, objects, recorded = _read(conn)
        _refuse_newer(path, version, recorded)
        problem = _not_ours(conn, objects, _applied(version, recorded))
    finally:
        conn.execute("COMMIT")
    if problem:
        raise StorageError(
            f"{path} is not a hermes sessions database ({problem}); it was left untouched.",
            hint="Move it aside, and hermes starts a new one.",
        )
    return recorded == set(NAMES)


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the migrations not applied yet, in order, each in its own transaction."""
    while _apply_next(conn, path):
        pass


def _apply_next(conn: sqlite3.Connection, path: Path) -> bool:
    """Apply the first migration not applied yet, in one transaction under the write lock; False when
    none was left."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Again, under the write lock: another process may have migrated since `check`.
        version, _, recorded = _read(conn)
        _refuse_newer(path, version, recorded)
        applied = _applied(version, recorded)
        done = applied - recorded  # applied before names were recorded: recorded now, never re-run
        step = next((s for s in MIGRATIONS if s.__name__ not in applied), None)
        if step is not None:
            step(conn)
            done.add(step.__name__)
        if done:
            now = time.time()
            conn.execute(_CREATE_RECORD)
            conn.executemany(
                "INSERT INTO _migrations (name, applied) VALUES (?, ?)", [(n, now) for n in NAMES if n in done]
            )
            conn.execute(f"PRAGMA user_version = {_leading(applied | done)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return step is not None


def _read(conn: sqlite3.Connection) -> tuple[int, set[str], set[str]]:
    """The database's user_version, the names of its tables, indexes and triggers, and the migrations
    recorded in it."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    objects = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    recorded: set[str] = set()
    if "_migrations" in objects and "name" in _columns(conn, "_migrations"):
        recorded = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    return version, objects, recorded


def _applied(version: int, recorded: set[str]) -> set[str]:
    return recorded | set(NAMES[:version])


def _leading(applied: set[str]) -> int:
    """How many migrations are applied from the first on: the database's user_version."""
    count = 0
    while count < len(NAMES) and NAMES[count] in applied:
        count += 1
    return count


def _refuse_newer(path: Path, version: int, recorded: set[str]) -> None:
    unknown = sorted(recorded - set(NAMES))
    if version > SCHEMA_VERSION or unknown:
        schema = f"migration {unknown[-1]}" if unknown else f"schema {version}"
        raise StorageError(
            f"The sessions database {path} was written by a newer hermes ({schema}).",
            hint="Upgrade hermes to use it.",
        )


def _not_ours(conn: sqlite3.Connection, objects: set[str], applied: set[str]) -> str | None:
    """Why this SQLite database was not written by hermes (None when it was, or is still empty)."""
    for table, columns in _OWN_COLUMNS.items():
        if table in objects:
            have = _columns(conn, table)
            missing = [c for c in columns if c not in have]
            if missing:
                return f"its {table} table has no column {missing[0]}"
        elif table != "_migrations" and m001_initial.__name__ in applied:  # the record came later
            return f"it has no {table} table"
    if m002_search_index.__name__ in applied and "messages_fts" not in objects:
        return "it has no search index"
    if not applied:
        others = sorted(n for n in objects if n not in _own_names() and not n.startswith("sqlite_"))
        if others:
            return "it holds other tables: " + ", ".join(others[:3])
    return None


@cache
def _own_names() -> frozenset[str]:
    """Every table, index and trigger the migrations create: what a hermes database may hold. Found by
    running them on an empty database in memory (only when a database on disk has none applied)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute(_CREATE_RECORD)
        for step in MIGRATIONS:
            step(conn)
        return frozenset(row[0] for row in conn.execute("SELECT name FROM sqlite_master"))
    finally:
        conn.close()


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
