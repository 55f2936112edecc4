"""Shared credential state: cooldowns, exhaustion and counters, seen by every hermes process of the user.

`StateStore` is the interface the pool uses; `FileStateStore` keeps one JSON file in the state dir,
updated under a file lock with atomic writes. State is keyed by provider and credential id (a key's
fingerprint), never by the key itself, so the file holds no secret.

The file is the user's machine's, not ours: whatever is in it (another version's shape, a hand edit,
`Infinity`, a directory) is validated on read, what does not fit is dropped with one warning, and the
next write stores the cleaned document. Writes are strict JSON.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from agent.atomic import write_atomic
from agent.errors import StorageError

OK = "ok"
COOLING = "cooling"
EXHAUSTED = "exhausted"

T = TypeVar("T")
Warn = Callable[[str], None]

# Beyond these a value was not written by a working hermes (Retry-After is capped well below a year):
# such a cooldown would lock a key out for good, and time.localtime() cannot even show it.
MAX_AHEAD_SECONDS = 366 * 86_400
MAX_COUNT = 2**53
MAX_TEXT = 2_000


@dataclass(frozen=True)
class CredentialState:
    cooldown_until: float = 0.0
    cooldown_reason: str = ""
    exhausted: str = ""
    requests: int = 0
    errors: int = 0
    last_error: str = ""
    last_used: float = 0.0

    def status(self, now: float) -> str:
        if self.exhausted:
            return EXHAUSTED
        if self.cooldown_until > now:
            return COOLING
        return OK

    @classmethod
    def from_json(cls, data: Any) -> CredentialState:
        """The valid fields of `data`; an invalid one (wrong type, inf, nan, absurd) is left at its default."""
        return parse_state(data)[0]

    def to_json(self) -> dict[str, Any]:
        """Only the fields that differ from a fresh state: with many keys the file stays small and fast."""
        return {k: v for k, v in asdict(self).items() if v != _DEFAULTS[k]}


FRESH = CredentialState()  # a credential never used; shared, as states are immutable
_DEFAULTS = asdict(FRESH)
_KINDS: dict[str, str] = {f.name: str(f.type) for f in fields(CredentialState)}


def valid_time(value: Any, now: float) -> bool:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return ok and 0 <= value <= now + MAX_AHEAD_SECONDS


def valid_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def _valid_field(kind: str, value: Any, now: float) -> bool:
    if kind == "str":
        return isinstance(value, str) and len(value) <= MAX_TEXT
    if kind == "int":
        return valid_count(value)
    return valid_time(value, now)


def parse_state(data: Any) -> tuple[CredentialState, bool]:
    """The state `data` describes, and whether all of it was valid (unknown names are no fault)."""
    if not isinstance(data, dict):
        return FRESH, False
    now = time.time()
    clean = {k: v for k, v in data.items() if k in _KINDS and _valid_field(_KINDS[k], v, now)}
    valid = len(clean) == sum(1 for k in data if k in _KINDS)
    if "cooldown_until" in clean:
        clean["cooldown_until"] = float(clean["cooldown_until"])
    if "last_used" in clean:
        clean["last_used"] = float(clean["last_used"])
    return (CredentialState(**clean) if clean else FRESH), valid


def clean_document(data: Any) -> tuple[dict[str, Any], bool]:
    """`{"providers": {id: {cred_id: state}}, "cursors": {id: n}}` from whatever was read, and whether
    nothing had to be dropped."""
    if not isinstance(data, dict):
        return {}, False
    valid = set(data) <= {"providers", "cursors"}
    providers: dict[str, dict[str, Any]] = {}
    raw_providers = data.get("providers", {})
    if not isinstance(raw_providers, dict):
        raw_providers, valid = {}, False
    for pid, table in raw_providers.items():
        if not isinstance(table, dict):
            valid = False
            continue
        states = {}
        for cred_id, raw in table.items():
            state, ok = parse_state(raw)
            valid = valid and ok
            states[cred_id] = state.to_json()
        providers[pid] = states
    cursors = data.get("cursors", {})
    if not isinstance(cursors, dict):
        cursors, valid = {}, False
    clean_cursors = {pid: n for pid, n in cursors.items() if valid_count(n)}
    valid = valid and len(clean_cursors) == len(cursors)
    document: dict[str, Any] = {}
    if providers:
        document["providers"] = providers
    if clean_cursors:
        document["cursors"] = clean_cursors
    return document, valid


class StateStore(Protocol):
    def describe(self) -> str: ...
    def read(self, provider: str) -> dict[str, CredentialState]: ...
    def record_use(self, provider: str, cred_id: str, now: float, *, error: str = "") -> None: ...
    def cool_down(self, provider: str, cred_id: str, until: float, reason: str) -> None: ...
    def exhaust(self, provider: str, cred_id: str, reason: str) -> None: ...
    def reset(self, provider: str | None = None, cred_id: str | None = None) -> int: ...
    def next_cursor(self, provider: str) -> int: ...


def _ignore(message: str) -> None:
    pass


class FileStateStore:
    """One JSON document {"providers": {id: {cred_id: state}}, "cursors": {id: n}} under a file lock.

    When the file cannot be written (disk full, read-only, a directory in its place), answering goes on:
    the store warns once and keeps the state in memory for the rest of the process. Only `reset`, whose
    whole point is the write, fails.
    """

    def __init__(self, path: Path, *, warn: Warn = _ignore) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._warn = warn
        self._warned: set[str] = set()  # "read", "write": each kind of trouble is told once
        # The parsed file, keyed by its identity on disk: every write replaces the file (a new inode and
        # mtime), so an unchanged key means no process wrote since, and parsing again can be skipped.
        self._cache: tuple[tuple[int, int, int], dict[str, Any]] | None = None
        self._states: dict[str, tuple[tuple[int, int, int], dict[str, CredentialState]]] = {}
        self._memory: dict[str, Any] | None = None  # set once the file could not be written

    def describe(self) -> str:
        if self._memory is not None:
            return f"file {self.path} (not writable, kept in memory for this run)"
        return f"file {self.path}"

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            self._warn(message)

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:
            return (-1, -1, -1)  # there but not statable: read once, below, to say why
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _load(self) -> dict[str, Any]:
        if self._memory is not None:
            return self._memory
        identity = self._identity()
        if identity is None:
            return {}
        if self._cache is not None and self._cache[0] == identity:
            return self._cache[1]
        try:
            raw = json.loads(self.path.read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return {}
        except IsADirectoryError:
            self._warn_once("read", f"credential state {self.path} is a directory, not a file: move it aside.")
            return {}
        except (ValueError, RecursionError, OSError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else "not JSON"
            self._warn_once(
                "read", f"credential state {self.path} is unreadable ({reason}); starting it afresh. "
                "Your keys are not stored there and are unaffected."
            )
            return {}
        data, valid = clean_document(raw)
        if not valid:
            self._warn_once(
                "read", f"credential state {self.path} holds entries of the wrong shape; they were dropped and the "
                "file is rebuilt on the next write. Your keys are not stored there and are unaffected."
            )
        self._cache = (identity, data)
        return data

    def _save(self, data: dict[str, Any]) -> None:
        if self._memory is not None:
            self._memory = data
            return
        self._cache = None
        text = json.dumps(data, separators=(",", ":"), allow_nan=False)
        write_atomic(self.path, text.encode("utf-8"), fsync=False)
        identity = self._identity()
        if identity is not None:
            self._cache = (identity, data)

    def _write(self, apply: Callable[[dict[str, Any]], T], *, strict: bool = False) -> T:
        """Run `apply` on the document under the lock and save it; see the class for unwritable files."""
        if self._memory is not None:
            return apply(self._memory)
        from filelock import FileLock, Timeout

        data: dict[str, Any] | None = None
        applied = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self._lock_path), timeout=10):
                data = self._load()
                try:
                    result = apply(data)
                except BaseException:
                    self._cache = None  # the cached document may be half-changed
                    raise
                applied = True
                self._save(data)
                return result
        except (OSError, Timeout) as e:
            if isinstance(e, Timeout):
                problem = "it stayed locked by another hermes process"
            else:
                problem = e.strerror or str(e)
            if strict:
                if isinstance(e, Timeout):
                    raise StorageError(f"Cannot update {self.path}: {problem}.", hint="Try again.") from None
                raise OSError(e.errno, e.strerror, str(self.path)) from None
            self._warn_once(
                "write", f"cannot save credential state to {self.path} ({problem}); cooldowns are kept in memory "
                "for this run and not shared with other hermes processes."
            )
            self._memory = data if data is not None else self._load()
            self._states.clear()
            return result if applied else apply(self._memory)

    def read(self, provider: str) -> dict[str, CredentialState]:
        """The provider's states, fresh from disk when another process wrote; do not mutate the result."""
        data = self._load()
        identity = self._cache[0] if self._cache and self._memory is None else None
        cached = self._states.get(provider)
        if identity is not None and cached is not None and cached[0] == identity:
            return cached[1]
        table = data.get("providers", {}).get(provider, {})
        states = {cred_id: CredentialState.from_json(s) for cred_id, s in table.items()}
        if identity is not None:
            self._states[provider] = (identity, states)
        return states

    def _update(self, provider: str, cred_id: str, change: Callable[[CredentialState], CredentialState]) -> None:
        before: list[tuple[int, int, int] | None] = []

        def apply(data: dict[str, Any]) -> CredentialState:
            before.append(self._cache[0] if self._cache else None)
            table = data.setdefault("providers", {}).setdefault(provider, {})
            new = change(CredentialState.from_json(table.get(cred_id)))
            table[cred_id] = new.to_json()
            return new

        new = self._write(apply)
        # Keep the parsed states of this provider current too, rather than parse them all again.
        cached = self._states.get(provider)
        if cached is not None and before and before[0] is not None and cached[0] == before[0] \
                and self._cache is not None and self._memory is None:
            self._states[provider] = (self._cache[0], {**cached[1], cred_id: new})

    def record_use(self, provider: str, cred_id: str, now: float, *, error: str = "") -> None:
        error = error[:MAX_TEXT]

        def change(s: CredentialState) -> CredentialState:
            if error:
                return replace(s, requests=s.requests + 1, errors=s.errors + 1, last_error=error, last_used=now)
            return replace(s, requests=s.requests + 1, last_used=now)

        self._update(provider, cred_id, change)

    def cool_down(self, provider: str, cred_id: str, until: float, reason: str) -> None:
        # Never store what a later read would reject: a cooldown beyond the bound is held at it.
        limit = time.time() + MAX_AHEAD_SECONDS
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

        def apply(data: dict[str, Any]) -> int:
            count = 0
            for pid, table in data.get("providers", {}).items():
                if provider is not None and pid != provider:
                    continue
                for cid, raw in table.items():
                    if cred_id is not None and cid != cred_id:
                        continue
                    s = CredentialState.from_json(raw)
                    if s.exhausted or s.cooldown_until:
                        count += 1
                    table[cid] = replace(s, exhausted="", cooldown_until=0.0, cooldown_reason="").to_json()
            return count

        return self._write(apply, strict=True)

    def next_cursor(self, provider: str) -> int:
        def apply(data: dict[str, Any]) -> int:
            cursors = data.setdefault("cursors", {})
            value = int(cursors.get(provider, 0))
            cursors[provider] = value + 1 if value < MAX_COUNT else 0
            return value

        return self._write(apply)
