"""Credential state in SQLite (WAL mode): one row per credential that has state, in the state dir.

A request reads only the credentials that are unusable now (cooling or exhausted) and writes the one row
it used, so its cost and the bytes it writes do not grow with the pool. SQLite's transactions give what
the JSON file had from a lock and a rename: processes of the user update rows concurrently without
losing one, and a process killed mid-write leaves the last committed state.

`credentials.json`, the state file of earlier versions, is merged in on first use (every cooldown and
exhaustion kept, validated as that file always was) and moved aside to `credentials.json.migrated`.
What the database holds is validated on read too: a row no working hermes writes is dropped with one
warning; a file that is not a database, or is found damaged, is moved aside (`credentials.db.unreadable`)
and started afresh; and when the file cannot be written the state is kept in memory for the rest of the
process.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import astuple, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from providers.errors import StorageError
from providers.state import (
    FRESH,
    MAX_AHEAD_SECONDS,
    MAX_COUNT,
    MAX_TEXT,
    CredentialState,
    Warn,
    clean_document,
    parse_state,
)

T = TypeVar("T")

SCHEMA_VERSION = 1
_FIELDS = tuple(f.name for f in fields(CredentialState))
_COLUMNS = ", ".join(_FIELDS)
_DEFAULT_ROW = astuple(FRESH)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS credential_state (
    provider TEXT NOT NULL, cred_id TEXT NOT NULL,
    cooldown_until REAL NOT NULL DEFAULT 0, cooldown_reason TEXT NOT NULL DEFAULT '',
    exhausted TEXT NOT NULL DEFAULT '', requests INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '', last_used REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, cred_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursor (provider TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
PRAGMA user_version = {SCHEMA_VERSION};
"""
# Whether a row holds exactly the types and ranges hermes writes, judged by SQLite for each row it returns
# (`read` returns them all); a row that is not is sorted out by `parse_state`. The one parameter is the
# latest time a working hermes writes.
_PLAINLY_VALID = (
    "typeof(cooldown_until) = 'real' AND cooldown_until BETWEEN 0 AND :limit "
    "AND typeof(last_used) = 'real' AND last_used BETWEEN 0 AND :limit "
    f"AND typeof(requests) = 'integer' AND requests BETWEEN 0 AND {MAX_COUNT} "
    f"AND typeof(errors) = 'integer' AND errors BETWEEN 0 AND {MAX_COUNT} "
    "AND typeof(cooldown_reason) = 'text' AND typeof(exhausted) = 'text' AND typeof(last_error) = 'text' "
    f"AND max(length(cooldown_reason), length(exhausted), length(last_error)) <= {MAX_TEXT}"
)
_SELECTED = f"({_PLAINLY_VALID}), {_COLUMNS}"
_COUNTS = (
    "SELECT cred_id, requests FROM credential_state WHERE provider = :provider "
    f"AND typeof(requests) = 'integer' AND requests BETWEEN 1 AND {MAX_COUNT}"
)
_UPSERT = (
    f"INSERT INTO credential_state (provider, cred_id, {_COLUMNS}) VALUES (?, ?, {', '.join('?' * len(_FIELDS))}) "
    f"ON CONFLICT (provider, cred_id) DO UPDATE SET {', '.join(f'{n} = excluded.{n}' for n in _FIELDS)}"
)


def _ignore(message: str) -> None:
    pass


def _as_os_error(e: sqlite3.Error, path: Path) -> OSError:
    """What a failed write means to a user, in the words of the file system."""
    code = getattr(e, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
    if code == sqlite3.SQLITE_FULL:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN):
        return OSError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    return OSError(errno.EIO, str(e), str(path))


def _damaged(e: BaseException) -> bool:
    """Whether SQLite found the file is not a database, or a damaged one."""
    code = getattr(e, "sqlite_errorcode", 0) & 0xFF
    return isinstance(e, sqlite3.DatabaseError) and code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)


def _limit() -> float:
    return time.time() + MAX_AHEAD_SECONDS


class SQLiteStateStore:
    def __init__(self, path: Path, *, legacy: Path | None = None, warn: Warn = _ignore) -> None:
        self.path = path
        self.legacy = legacy
        self._warn = warn
        self._warned: set[str] = set()  # "read", "write", "legacy": each kind of trouble is told once
        self._db: sqlite3.Connection | None = None
        self._inode = 0  # of the file `_db` was opened on: another process may have set it aside since
        self._memory = False  # set once the file could not be written

    def describe(self) -> str:
        if self._memory:
            return f"file {self.path} (not writable, kept in memory for this run)"
        return f"file {self.path}"

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            self._warn(message)

    # -- the connection ------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """The database, created 0600 with its schema, and the legacy file merged in; OSError if unusable."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Opened by hand first: the file gets mode 0600 (SQLite gives the -wal and -shm files the same),
        # and a read-only disk or a directory in its place is an OSError naming the file.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._inode = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        try:
            self._use_wal(db)
            db.execute("PRAGMA synchronous = NORMAL")  # state may be rebuilt: durable at checkpoints suffices
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                db.executescript(_SCHEMA)
            if self.legacy is not None and self.legacy.exists():
                self._migrate(db, self.legacy)
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _use_wal(db: sqlite3.Connection) -> None:
        """Switch the file to write-ahead logging (it stays so). While another process holds a lock the
        switch does not happen and the old mode is answered, without waiting: so wait here."""
        deadline = time.monotonic() + 10
        while db.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
            if time.monotonic() > deadline:
                raise sqlite3.OperationalError("cannot use write-ahead logging: the database stayed locked")
            time.sleep(0.005)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self._db = self._connect()
            except sqlite3.DatabaseError as e:
                if not _damaged(e):
                    raise _as_os_error(e, self.path) from None
                self._set_aside()
                self._db = self._connect()
        return self._db

    def _afresh(self) -> sqlite3.Connection:
        """A new database in place of the damaged one `_db` is open on (found so mid-use, where `_conn`
        finds it at opening). Another process that found the damage first has already set it aside:
        then the file there is its new one, to be used rather than set aside again."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path).st_ino == self._inode:
                self._set_aside()
        return self._conn()

    def _set_aside(self) -> None:
        """A file that is not our database, or a damaged one, holds nothing that cannot be rebuilt: kept
        beside, started afresh."""
        aside = self.path.with_name(self.path.name + ".unreadable")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
        self._warn_once(
            "read",
            f"credential state {self.path} is not a database or is damaged; it was moved to {aside} and "
            "started afresh. Your keys are not stored there and are unaffected.",
        )

    def _to_memory(self, problem: str) -> sqlite3.Connection:
        self._warn_once(
            "write",
            f"cannot save credential state to {self.path} ({problem}); cooldowns are kept in memory "
            "for this run and not shared with other hermes processes.",
        )
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        source = self._db if self._db is not None else self._read_only()
        if source is not None:
            with contextlib.suppress(sqlite3.Error):
                source.backup(memory)  # what can still be read: cooldowns another process recorded
            source.close()
        memory.executescript(_SCHEMA)
        self._db, self._memory = memory, True
        return memory

    def _read_only(self) -> sqlite3.Connection | None:
        """The database opened for reading only (a read-only disk), or None. `immutable` reads the file
        alone, for where not even the shared-memory index can be made; the last writer to close folded
        the log into it."""
        for mode in ("mode=ro", "immutable=1"):
            try:
                db = sqlite3.connect(f"{self.path.as_uri()}?{mode}", uri=True, check_same_thread=False)
                db.execute("SELECT count(*) FROM credential_state").fetchone()
                return db
            except (sqlite3.Error, ValueError):
                continue
        return None

    def _migrate(self, db: sqlite3.Connection, legacy: Path) -> None:
        """Merge the JSON state file into the database and move it aside, in one transaction; the later
        cooldown wins and exhaustion stays, as when two processes record the same 429."""
        db.execute("BEGIN IMMEDIATE")
        try:
            if not legacy.exists():  # another process migrated it while this one waited for the lock
                db.execute("COMMIT")
                return
            data = self._read_legacy(legacy)
            for provider, table in data.get("providers", {}).items():
                for cred_id, raw in table.items():
                    old = CredentialState.from_json(raw)
                    now = self._row(db, provider, cred_id)
                    merged = replace(
                        now,
                        cooldown_until=max(now.cooldown_until, old.cooldown_until),
                        cooldown_reason=now.cooldown_reason or old.cooldown_reason,
                        exhausted=now.exhausted or old.exhausted,
                        requests=min(now.requests + old.requests, MAX_COUNT),
                        errors=min(now.errors + old.errors, MAX_COUNT),
                        last_error=now.last_error or old.last_error,
                        last_used=max(now.last_used, old.last_used),
                    )
                    db.execute(_UPSERT, (provider, cred_id, *astuple(merged)))
            for provider, value in data.get("cursors", {}).items():
                db.execute("INSERT INTO cursor VALUES (?, ?) ON CONFLICT (provider) DO NOTHING", (provider, value))
            if legacy.is_file():
                os.replace(legacy, legacy.with_name(legacy.name + ".migrated"))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _read_legacy(self, legacy: Path) -> dict[str, Any]:
        try:
            raw = json.loads(legacy.read_bytes())
        except IsADirectoryError:
            self._warn_once("legacy", f"credential state {legacy} is a directory, not a file: it is left alone.")
            return {}
        except (ValueError, RecursionError, OSError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else "not JSON"
            self._warn_once(
                "legacy",
                f"credential state {legacy} is unreadable ({reason}); starting it afresh. "
                "Your keys are not stored there and are unaffected.",
            )
            return {}
        data, valid = clean_document(raw)
        if not valid:
            self._warn_once(
                "legacy",
                f"credential state {legacy} holds entries of the wrong shape; they were dropped and the "
                "rest was kept. Your keys are not stored there and are unaffected.",
            )
        return data

    # -- reading -------------------------------------------------------------------------------------

    def _state(self, row: tuple[Any, ...]) -> CredentialState:
        """The state of a row of `_SELECTED`: its validity, then the fields."""
        if row[0]:
            return CredentialState(*row[1:])
        state, valid = parse_state({n: v for n, v, d in zip(_FIELDS, row[1:], _DEFAULT_ROW, strict=False) if v != d})
        if not valid:
            self._warn_once(
                "read",
                f"credential state {self.path} holds entries of the wrong shape; they were dropped. "
                "Your keys are not stored there and are unaffected.",
            )
        return state

    def _row(self, db: sqlite3.Connection, provider: str, cred_id: str) -> CredentialState:
        row = db.execute(
            f"SELECT {_SELECTED} FROM credential_state WHERE provider = :provider AND cred_id = :cred_id",
            {"limit": _limit(), "provider": provider, "cred_id": cred_id},
        ).fetchone()
        return FRESH if row is None else self._state(row)

    def _rows(self, sql: str, args: dict[str, Any]) -> list[Any]:
        def query() -> list[Any]:
            return self._conn().execute(sql, args).fetchall()

        try:
            try:
                rows = query()
            except sqlite3.DatabaseError as e:
                if self._memory or not _damaged(e):
                    raise
                self._afresh()
                rows = query()
        except (OSError, sqlite3.Error) as e:
            problem = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            self._to_memory(problem)
            rows = query()
        return rows

    def _select(self, where: str, args: dict[str, Any]) -> dict[str, CredentialState]:
        sql = f"SELECT cred_id, {_SELECTED} FROM credential_state WHERE {where}"
        return {str(r[0]): self._state(r[1:]) for r in self._rows(sql, {"limit": _limit(), **args})}

    def read(self, provider: str) -> dict[str, CredentialState]:
        return self._select("provider = :provider", {"provider": provider})

    def request_counts(self, provider: str) -> dict[str, int]:
        """Only the counters (least_used reads every credential's): a count hermes does not write is 0,
        as `read` makes it."""
        return {str(cred_id): n for cred_id, n in self._rows(_COUNTS, {"provider": provider})}

    def troubled(self, provider: str, now: float) -> dict[str, CredentialState]:
        return self._select(
            "provider = :provider AND (exhausted != '' OR cooldown_until > :now)", {"provider": provider, "now": now}
        )

    # -- writing -------------------------------------------------------------------------------------

    def _write(self, apply: Callable[[sqlite3.Connection], T], *, strict: bool = False) -> T:
        """Run `apply` in one write transaction; see the module for files that cannot be written."""
        try:
            db = self._conn()
            try:
                return self._transaction(db, apply)
            except sqlite3.DatabaseError as e:
                if self._memory or not _damaged(e):
                    raise
                return self._transaction(self._afresh(), apply)
        except (OSError, sqlite3.Error) as e:
            error = e if isinstance(e, OSError) else _as_os_error(e, self.path)
            if strict and not self._memory:
                if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
                    raise StorageError(
                        f"Cannot update {self.path}: it stayed locked by another hermes process.", hint="Try again."
                    ) from None
                raise OSError(error.errno, error.strerror, str(self.path)) from None
            return self._transaction(self._to_memory(error.strerror or str(error)), apply)

    @staticmethod
    def _transaction(db: sqlite3.Connection, apply: Callable[[sqlite3.Connection], T]) -> T:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = apply(db)
        except BaseException:
            if db.in_transaction:  # SQLite may have rolled back itself (a damaged file)
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    def _update(self, provider: str, cred_id: str, change: Callable[[CredentialState], CredentialState]) -> None:
        def apply(db: sqlite3.Connection) -> None:
            db.execute(_UPSERT, (provider, cred_id, *astuple(change(self._row(db, provider, cred_id)))))

        self._write(apply)

    def record_use(self, provider: str, cred_id: str, now: float, *, error: str = "") -> None:
        error = error[:MAX_TEXT]

        def change(s: CredentialState) -> CredentialState:
            if error:
                return replace(s, requests=s.requests + 1, errors=s.errors + 1, last_error=error, last_used=now)
            return replace(s, requests=s.requests + 1, last_used=now)

        self._update(provider, cred_id, change)

    def cool_down(self, provider: str, cred_id: str, until: float, reason: str) -> None:
        # Never store what a later read would reject: a cooldown beyond the bound is held at it.
        limit = _limit()
        until = until if math.isfinite(until) and until <= limit else limit
        reason = reason[:MAX_TEXT]

        def change(s: CredentialState) -> CredentialState:
            # Two processes may see the same 429; the later reset wins so neither shortens the other's.
            return replace(s, cooldown_until=max(until, s.cooldown_until), cooldown_reason=reason, last_error=reason)

        self._update(provider, cred_id, change)

    def exhaust(self, provider: str, cred_id: str, reason: str) -> None:
        reason = reason[:MAX_TEXT]
        self._update(provider, cred_id, lambda s: replace(s, exhausted=reason, last_error=reason))

    def reset(self, provider: str | None = None, cred_id: str | None = None) -> int:
        """Clear cooldown and exhaustion (counters stay); returns how many credentials changed."""
        where = "(exhausted != '' OR cooldown_until != 0 OR cooldown_reason != '')"
        args: tuple[str, ...] = ()
        if provider is not None:
            where, args = where + " AND provider = ?", (*args, provider)
        if cred_id is not None:
            where, args = where + " AND cred_id = ?", (*args, cred_id)

        def apply(db: sqlite3.Connection) -> int:
            changed: int = db.execute(
                f"SELECT count(*) FROM credential_state WHERE {where} AND (exhausted != '' OR cooldown_until != 0)",
                args,
            ).fetchone()[0]
            db.execute(
                f"UPDATE credential_state SET exhausted = '', cooldown_until = 0, cooldown_reason = '' WHERE {where}",
                args,
            )
            return changed

        return self._write(apply, strict=True)

    def next_cursor(self, provider: str) -> int:
        def apply(db: sqlite3.Connection) -> int:
            row = db.execute("SELECT value FROM cursor WHERE provider = ?", (provider,)).fetchone()
            value = int(row[0]) if row is not None and isinstance(row[0], int) and 0 <= row[0] <= MAX_COUNT else 0
            db.execute(
                "INSERT INTO cursor VALUES (?, ?) ON CONFLICT (provider) DO UPDATE SET value = excluded.value",
                (provider, value + 1 if value < MAX_COUNT else 0),
            )
            return value

        return self._write(apply)
