"""The session store: every conversation in one SQLite database, written message by message.

Each `append` is its own committed transaction, so a killed process loses at most the answer in
flight. The file is opened on first use (commands that don't need it never touch it), created
with mode 0600, kept in WAL mode, and brought to the current schema by `migrations` when opened.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.sessions import migrations
from providers.errors import StorageError, UsageError

# Listing and searching sessions (`hermes sessions list`) builds no message: what does is imported by
# the code that writes or reads messages.
if TYPE_CHECKING:
    from agent.conversation import Message

TITLE_LENGTH = 60
RANKED_MATCHES = 10_000
HIGHLIGHT = "**"  # around matched terms in search snippets: Markdown bold, readable as plain text too

_SESSION_COLUMNS = ("id", "title", "created", "updated", "provider", "model", "base_url", "system", "message_count")
_MESSAGE_COLUMNS = (
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
    "base_url",
    "reasoning",
    "cached_tokens",
    "attachments",
)
_SQLITE_HEADER = b"SQLite format 3\0"
_HEX = re.compile(r"[0-9a-f]+")
_CANDIDATES_SHOWN = 10

# Primary SQLite result codes that mean "the file is unusable", as opposed to a bug in a query.
_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_DAMAGED = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_UNWRITABLE = {3, 8, 10, 13, 14}  # SQLITE_PERM, READONLY, IOERR, FULL, CANTOPEN
_SQLITE_ERROR = 1  # the generic code, which is also what FTS5 returns for query syntax it rejects


@dataclass(frozen=True)
class SessionInfo:
    id: str
    title: str
    created: float
    updated: float
    provider: str
    model: str
    base_url: str
    system: str | None
    message_count: int


@dataclass(frozen=True)
class SearchHit:
    session: SessionInfo
    role: str
    snippet: str  # one line; matched terms between HIGHLIGHT markers
    rank: float  # bm25: lower is a better match


def title_from(text: str | None) -> str:
    """The first non-blank line, whitespace collapsed, cut to TITLE_LENGTH characters."""
    for line in (text or "").splitlines():
        line = " ".join(line.split())
        if line:
            return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"
    return ""


class SessionStore:
    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        # The REPL may save from another thread than the one that resumed; one operation at a time.
        self._lock = threading.Lock()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # --- writing ---

    def create(self, *, provider: str, model: str, base_url: str, system: str | None) -> SessionInfo:
        import secrets

        from providers.secrets import mask_url

        now, base_url = time.time(), mask_url(base_url)
        with self._write() as conn:
            while True:
                session_id = secrets.token_hex(6)
                try:
                    conn.execute(
                        "INSERT INTO sessions (id, created, updated, provider, model, base_url, system)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (session_id, now, now, provider, model, base_url, system),
                    )
                    break
                except sqlite3.IntegrityError:  # an id already taken: draw another
                    continue
        return SessionInfo(session_id, "", now, now, provider, model, base_url, system, 0)

    def append(self, session_id: str, message: Message, *, cost: float | None = None, costed: bool = False) -> None:
        """`costed`: `cost` is what the answer cost (None: its model has no price), kept for listings."""
        from providers.secrets import mask_url

        title = title_from(message.content) if message.role == "user" else ""
        routed = message.role == "assistant" and bool(message.provider and message.model)
        with self._write() as conn:
            endpoint = mask_url(message.endpoint) if routed and message.endpoint else None
            updated = conn.execute(
                "UPDATE sessions SET message_count = message_count + 1, updated = max(updated, ?),"
                " title = CASE WHEN title = '' THEN ? ELSE title END,"
                " provider = coalesce(?, provider), model = coalesce(?, model), base_url = coalesce(?, base_url)"
                " WHERE id = ?",
                (
                    message.created,
                    title,
                    message.provider if routed else None,
                    message.model if routed else None,
                    endpoint,
                    session_id,
                ),
            )
            if updated.rowcount == 0:
                raise _no_such_session(session_id)
            conn.executemany(
                "INSERT OR IGNORE INTO attachments (sha256, mime, data) VALUES (?, ?, ?)",
                [(a.sha256, a.mime, a.data) for a in message.attachments],
            )
            conn.execute(
                f"INSERT INTO messages (session_id, {', '.join(_MESSAGE_COLUMNS)}, cost_usd, cost_known)"
                f" VALUES (?, {', '.join('?' * len(_MESSAGE_COLUMNS))}, ?, ?)",
                (session_id, *_message_row(message), cost, int(costed)),
            )

    def truncate(self, session_id: str, keep: int, reason: str) -> int:
        """Mark every live message after the first `keep` as superseded by `reason` (undo, retry...):
        kept, never restored or sent again. Returns how many were marked."""
        with self._write() as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM messages WHERE session_id = ? AND superseded IS NULL ORDER BY id LIMIT -1 OFFSET ?",
                    (session_id, keep),
                )
            ]
            conn.executemany("UPDATE messages SET superseded = ? WHERE id = ?", [(reason, i) for i in ids])
            cursor = conn.execute(
                "UPDATE sessions SET message_count = (SELECT count(*) FROM messages WHERE session_id = ?"
                " AND superseded IS NULL), updated = ? WHERE id = ?",
                (session_id, time.time(), session_id),
            )
            if cursor.rowcount == 0:
                raise _no_such_session(session_id)
        return len(ids)

    def fork(self, session_id: str, *, title: str | None = None) -> SessionInfo:
        """A new session with the live history of `session_id` (which is left as it is)."""
        info = self.get(session_id)
        messages = self.messages(session_id)
        new = self.create(provider=info.provider, model=info.model, base_url=info.base_url, system=info.system)
        with self._write() as conn:
            conn.executemany(
                f"INSERT INTO messages (session_id, {', '.join(_MESSAGE_COLUMNS)})"
                f" VALUES (?, {', '.join('?' * len(_MESSAGE_COLUMNS))})",
                [(new.id, *_message_row(m)) for m in messages],
            )
            conn.execute(
                "UPDATE sessions SET message_count = ?, title = ? WHERE id = ?",
                (len(messages), title if title is not None else info.title, new.id),
            )
        return self.get(new.id)

    def set_title(self, session_id: str, title: str) -> None:
        self._update(session_id, title=title)

    def set_route(self, session_id: str, *, provider: str, model: str, base_url: str) -> None:
        from providers.secrets import mask_url

        self._update(session_id, provider=provider, model=model, base_url=mask_url(base_url))

    def set_system(self, session_id: str, system: str | None) -> None:
        self._update(session_id, system=system)

    def delete(self, session_id: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM messages WHERE session_id = ?", (session_id,))
            if conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount == 0:
                raise _no_such_session(session_id)

    def _update(self, session_id: str, **columns: str | None) -> None:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self._write() as conn:
            cursor = conn.execute(f"UPDATE sessions SET {assignments} WHERE id = ?", (*columns.values(), session_id))
            if cursor.rowcount == 0:
                raise _no_such_session(session_id)

    # --- reading ---

    def latest(self) -> SessionInfo | None:
        sessions = self.recent(limit=1)
        return sessions[0] if sessions else None

    def recent(self, *, limit: int = 50) -> list[SessionInfo]:
        """The `limit` most recently active sessions, the latest first."""
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_columns()} FROM sessions s ORDER BY updated DESC LIMIT ?", (limit,))
            return [SessionInfo(*row) for row in rows]

    def costs(
        self, session_ids: list[str]
    ) -> tuple[dict[str, tuple[float, int, int]], dict[str, list[tuple[str, str, int, int, int]]]]:
        """Per session, what its answers cost (superseded ones too: they were paid for), in one read:
        as recorded when they were given (the USD sum, how many had a price, how many had none), and
        the (provider, model, prompt, completion, cached prompt tokens) of those recorded without their
        cost (before costs were kept, or copied by a fork), for pricing now."""
        if not session_ids:
            return {}, {}
        marks = ",".join("?" * len(session_ids))
        with self._read() as conn:
            recorded = conn.execute(
                "SELECT session_id, coalesce(SUM(cost_usd), 0), COUNT(cost_usd), SUM(cost_usd IS NULL) FROM messages"
                f" WHERE session_id IN ({marks}) AND cost_known = 1 GROUP BY session_id",
                session_ids,
            ).fetchall()
            unrecorded = conn.execute(
                "SELECT session_id, provider, model, SUM(prompt_tokens), SUM(completion_tokens),"
                " SUM(coalesce(cached_tokens, 0)) FROM messages"
                f" WHERE session_id IN ({marks}) AND prompt_tokens IS NOT NULL AND cost_known = 0"
                " GROUP BY session_id, provider, model",
                session_ids,
            ).fetchall()
        usage: dict[str, list[tuple[str, str, int, int, int]]] = {}
        for session_id, provider, model, prompt, completion, cached in unrecorded:
            usage.setdefault(session_id, []).append(
                (provider or "", model or "", int(prompt or 0), int(completion or 0), int(cached or 0))
            )
        return {sid: (float(usd), int(priced), int(unpriced)) for sid, usd, priced, unpriced in recorded}, usage

    def get(self, session_id: str) -> SessionInfo:
        with self._read() as conn:
            row = conn.execute(f"SELECT {_columns()} FROM sessions s WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise _no_such_session(session_id)
        return SessionInfo(*row)

    def resolve(self, id_or_prefix: str) -> SessionInfo:
        """The one session whose id starts with `id_or_prefix`, or else whose title is it (or starts
        with it, ignoring case); UsageError naming the candidates otherwise."""
        prefix = id_or_prefix.strip().lower()
        if not _HEX.fullmatch(prefix):
            return self._by_title(id_or_prefix)
        with self._read() as conn:
            # GLOB with a literal prefix is served by the primary key index; `prefix` is only hex digits.
            rows = conn.execute(
                f"SELECT {_columns()} FROM sessions s WHERE id GLOB ? ORDER BY updated DESC LIMIT ?",
                (prefix + "*", _CANDIDATES_SHOWN + 1),
            ).fetchall()
        if not rows:
            return self._by_title(id_or_prefix)
        if len(rows) > 1:
            raise _ambiguous(id_or_prefix, [SessionInfo(*row) for row in rows])
        return SessionInfo(*rows[0])

    def _by_title(self, title: str) -> SessionInfo:
        wanted = " ".join(title.split()).lower()
        if not wanted:
            raise _no_such_session(title)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_columns()} FROM sessions s WHERE lower(title) = ? ORDER BY updated DESC LIMIT ?",
                (wanted, _CANDIDATES_SHOWN + 1),
            ).fetchall()
            if not rows:  # a prefix of a title; LIKE's wildcards in the text are escaped
                pattern = re.sub(r"([%_\\])", r"\\\1", wanted) + "%"
                rows = conn.execute(
                    f"SELECT {_columns()} FROM sessions s WHERE lower(title) LIKE ? ESCAPE '\\'"
                    " ORDER BY updated DESC LIMIT ?",
                    (pattern, _CANDIDATES_SHOWN + 1),
                ).fetchall()
        if not rows:
            raise _no_such_session(title)
        if len(rows) > 1 and SessionInfo(*rows[0]).title.lower() != wanted:
            raise _ambiguous(title, [SessionInfo(*row) for row in rows])
        return SessionInfo(*rows[0])  # several with this very title: the most recent

    def messages(self, session_id: str) -> list[Message]:
        """The conversation as it stands (what was on screen): undone and replaced messages left out."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(_MESSAGE_COLUMNS)} FROM messages WHERE session_id = ? AND superseded IS NULL"
                " ORDER BY id",
                (session_id,),
            ).fetchall()
            blobs = _blobs(conn, rows)
            return [_message_from_row(row, blobs) for row in rows]

    def history(self, session_id: str) -> list[tuple[Message, str | None]]:
        """Every message ever recorded, each with why it was superseded (None: still in the conversation)."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(_MESSAGE_COLUMNS)}, superseded FROM messages WHERE session_id = ? ORDER BY id",
                (session_id,),
            ).fetchall()
            blobs = _blobs(conn, [row[:-1] for row in rows])
            return [(_message_from_row(row[:-1], blobs), row[-1]) for row in rows]

    def search(self, text: str, *, limit: int = 20) -> list[SearchHit]:
        """Messages matching an FTS5 query, best first; text FTS5 rejects is searched as a phrase."""
        if not text.strip():
            raise UsageError("The search text is empty.", hint="Give a word or phrase to look for.")
        try:
            return self._search(text, limit)
        except sqlite3.OperationalError as e:
            if _primary_code(e) != _SQLITE_ERROR:
                raise
        return self._search('"' + text.replace('"', '""') + '"', limit)

    def _search(self, query: str, limit: int) -> list[SearchHit]:
        with self._read() as conn:
            # bm25 costs about a microsecond per match: a word found in most messages would take
            # ~0.3 s over 200,000 of them, so only the newest RANKED_MATCHES matches are ranked.
            floor = conn.execute(
                "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
                (query, RANKED_MATCHES - 1),
            ).fetchone()
            rows = conn.execute(
                f"SELECT {_columns()}, m.role,"
                " snippet(messages_fts, 0, ?, ?, '…', 12), bm25(messages_fts) AS score"
                " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
                " JOIN sessions s ON s.id = m.session_id"
                " WHERE messages_fts MATCH ? AND messages_fts.rowid >= ? ORDER BY score LIMIT ?",
                (HIGHLIGHT, HIGHLIGHT, query, floor[0] if floor else 0, limit),
            ).fetchall()
        n = len(_SESSION_COLUMNS)
        return [SearchHit(SessionInfo(*row[:n]), row[n], " ".join(row[n + 1].split()), row[n + 2]) for row in rows]

    # --- the connection ---

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._storage_errors():
            yield self._connection()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._read() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._create_file()
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
            try:
                current = migrations.check(conn, self.path)  # before anything writes: one not ours stays as it is
                # synchronous=NORMAL in WAL mode survives any crash of the process; only a power cut
                # may lose the last commits. FULL would fsync on every message.
                self._use_wal(conn)
                conn.execute("PRAGMA synchronous = NORMAL")
                if not current:
                    migrations.migrate(conn, self.path)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch a new database to WAL mode. The switch takes the file's exclusive lock and SQLite
        reports "locked" at once, without its busy timeout, while another process creating the same
        database holds it: so retry within that timeout, as a busy write would."""
        deadline = time.monotonic() + self._busy_timeout
        while conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _create_file(self) -> None:
        """Create the database empty with mode 0600; SQLite gives its -wal and -shm files the same mode."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            if self.path.is_dir():
                raise StorageError(
                    f"The sessions database {self.path} is a directory, not a file; it was left untouched.",
                    hint="Move it aside, and hermes starts a new one.",
                ) from None
            # SQLite takes a file shorter than its header for an empty database and writes over it.
            with open(self.path, "rb") as f:
                head = f.read(len(_SQLITE_HEADER))
            if head and head != _SQLITE_HEADER:
                raise StorageError(
                    f"{self.path} is not a SQLite database; it was left untouched.",
                    hint="Move it aside, and hermes starts a new one.",
                ) from None

    @contextmanager
    def _storage_errors(self) -> Iterator[None]:
        try:
            yield
        except OSError as e:
            raise StorageError(
                f"Cannot create the sessions database {self.path}: {e.strerror}.",
                hint="Check the permissions of its directory and the free disk space, or pass --no-save.",
            ) from e
        except sqlite3.Error as e:
            code = _primary_code(e)
            if code in _BUSY:
                raise StorageError(
                    f"The sessions database {self.path} is locked by another process.",
                    hint="Try again in a moment.",
                ) from e
            if code in _DAMAGED:
                raise StorageError(
                    f"The sessions database {self.path} is damaged ({e}); it was left untouched.",
                    hint="Move it aside to start a new one, or repair it with the sqlite3 tool.",
                ) from e
            if code in _UNWRITABLE:
                raise StorageError(
                    f"Cannot use the sessions database {self.path}: {e}.",
                    hint="Check the file's permissions and the free disk space.",
                ) from e
            raise


def _columns() -> str:
    return ", ".join(f"s.{c}" for c in _SESSION_COLUMNS)


def _message_row(m: Message) -> tuple[Any, ...]:
    import json  # here, as in the other readers of message rows: listing sessions never parses one

    from providers.secrets import mask_url

    return (
        m.role,
        m.content,
        json.dumps(list(m.tool_calls)) if m.tool_calls else None,
        m.tool_call_id,
        m.name,
        m.provider,
        m.model,
        m.usage.prompt_tokens if m.usage else None,
        m.usage.completion_tokens if m.usage else None,
        m.finish_reason,
        m.created,
        mask_url(m.endpoint) if m.endpoint else None,
        m.reasoning,
        m.usage.cached_tokens if m.usage else None,
        json.dumps([{"name": a.name, "mime": a.mime, "sha256": a.sha256} for a in m.attachments])
        if m.attachments
        else None,
    )


def _message_from_row(row: tuple[Any, ...], blobs: dict[str, bytes]) -> Message:
    import json

    from agent.attachments import Attachment
    from agent.conversation import Message
    from agent.events import Usage

    (
        role,
        content,
        tool_calls,
        tool_call_id,
        name,
        provider,
        model,
        prompt_tokens,
        completion_tokens,
        finish_reason,
        created,
        base_url,
        reasoning,
        cached,
        attached,
    ) = row
    return Message(
        role,
        content,
        tool_calls=tuple(json.loads(tool_calls)) if tool_calls else (),
        tool_call_id=tool_call_id,
        name=name,
        provider=provider,
        model=model,
        usage=Usage(prompt_tokens, completion_tokens, cached or 0) if prompt_tokens is not None else None,
        finish_reason=finish_reason,
        created=created,
        endpoint=base_url,
        reasoning=reasoning,
        attachments=tuple(
            Attachment(a["name"], a["mime"], blobs[a["sha256"]]) for a in _attached(attached) if a["sha256"] in blobs
        ),
    )


def _attached(column: str | None) -> list[dict[str, str]]:
    import json

    return json.loads(column) if column else []


def _blobs(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> dict[str, bytes]:
    """The attached files the rows name, by content hash (each stored once)."""
    wanted = sorted({a["sha256"] for row in rows for a in _attached(row[len(_MESSAGE_COLUMNS) - 1])})
    if not wanted:
        return {}
    marks = ",".join("?" * len(wanted))
    return dict(conn.execute(f"SELECT sha256, data FROM attachments WHERE sha256 IN ({marks})", wanted).fetchall())


def _primary_code(error: sqlite3.Error) -> int:
    return (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF


def _no_such_session(session_id: str) -> UsageError:
    return UsageError(f"No session matches {session_id!r} (by id or title).", hint="See `hermes sessions list`.")


def _ambiguous(prefix: str, candidates: list[SessionInfo]) -> UsageError:
    shown = "; ".join(f"{s.id} ({s.title or 'untitled'})" for s in candidates[:_CANDIDATES_SHOWN])
    more = " and more" if len(candidates) > _CANDIDATES_SHOWN else ""
    return UsageError(
        f"Session id {prefix!r} is ambiguous: it matches {shown}{more}.", hint="Give more characters of the id."
    )
