"""Shared credential state: cooldowns, exhaustion and counters, seen by every hermes process of the user.

`StateStore` is the interface the pool uses; `FileStateStore` keeps one JSON file in the state dir,
updated under a file lock with atomic writes. State is keyed by provider and credential id (a key's
fingerprint), never by the key itself, so the file holds no secret.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Protocol

from agent.atomic import write_atomic

OK = "ok"
COOLING = "cooling"
EXHAUSTED = "exhausted"


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
        if not isinstance(data, dict):
            return FRESH
        clean = {
            name: value for name, value in data.items()
            if name in _FIELD_TYPES and isinstance(value, _FIELD_TYPES[name]) and not isinstance(value, bool)
        }
        return cls(**clean) if clean else FRESH

    def to_json(self) -> dict[str, Any]:
        """Only the fields that differ from a fresh state: with many keys the file stays small and fast."""
        return {k: v for k, v in asdict(self).items() if v != _DEFAULTS[k]}


FRESH = CredentialState()  # a credential never used; shared, as states are immutable
_DEFAULTS = asdict(FRESH)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    f.name: (str,) if f.type in ("str", str) else (int, float) for f in fields(CredentialState)
}


class StateStore(Protocol):
    def describe(self) -> str: ...
    def read(self, provider: str) -> dict[str, CredentialState]: ...
    def record_use(self, provider: str, cred_id: str, now: float, *, error: str = "") -> None: ...
    def cool_down(self, provider: str, cred_id: str, until: float, reason: str) -> None: ...
    def exhaust(self, provider: str, cred_id: str, reason: str) -> None: ...
    def reset(self, provider: str | None = None, cred_id: str | None = None) -> int: ...
    def next_cursor(self, provider: str) -> int: ...


class FileStateStore:
    """One JSON document {"providers": {id: {cred_id: state}}, "cursors": {id: n}} under a file lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._warned = False
        # The parsed file, keyed by its identity on disk: every write replaces the file (a new inode and
        # mtime), so an unchanged key means no process wrote since, and parsing again can be skipped.
        self._cache: tuple[tuple[int, int, int], dict[str, Any]] | None = None
        self._states: dict[str, tuple[tuple[int, int, int], dict[str, CredentialState]]] = {}

    def describe(self) -> str:
        return f"file {self.path}"

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _load(self) -> dict[str, Any]:
        identity = self._identity()
        if identity is None:
            return {}
        if self._cache is not None and self._cache[0] == identity:
            return self._cache[1]
        try:
            data = json.loads(self.path.read_bytes())
            if not isinstance(data, dict):
                raise ValueError("not an object")
            self._cache = (identity, data)
            return data
        except FileNotFoundError:
            return {}
        except (ValueError, OSError) as e:
            if not self._warned:
                self._warned = True
                print(
                    f"hermes: warning: credential state {self.path} is unreadable ({e}); starting it afresh. "
                    "Your keys are not stored there and are unaffected.",
                    file=sys.stderr,
                )
            return {}

    def _transaction(self):  # type: ignore[no-untyped-def]
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self._lock_path), timeout=10)

    def _save(self, data: dict[str, Any]) -> None:
        self._cache = None
        write_atomic(self.path, json.dumps(data, separators=(",", ":")).encode("utf-8"), fsync=False)
        identity = self._identity()
        if identity is not None:
            self._cache = (identity, data)

    def read(self, provider: str) -> dict[str, CredentialState]:
        """The provider's states, fresh from disk when another process wrote; do not mutate the result."""
        data = self._load()
        identity = self._cache[0] if self._cache else None
        cached = self._states.get(provider)
        if identity is not None and cached is not None and cached[0] == identity:
            return cached[1]
        table = data.get("providers", {}).get(provider, {})
        if not isinstance(table, dict):
            return {}
        states = {cred_id: CredentialState.from_json(s) for cred_id, s in table.items()}
        if identity is not None:
            self._states[provider] = (identity, states)
        return states

    def _update(self, provider: str, cred_id: str, change: Any) -> None:
        with self._transaction():
            try:
                data = self._load()
                before = self._cache[0] if self._cache else None
                table = data.setdefault("providers", {}).setdefault(provider, {})
                new = change(CredentialState.from_json(table.get(cred_id)))
                table[cred_id] = new.to_json()
            except BaseException:
                self._cache = None  # the cached document may be half-changed
                raise
            self._save(data)
            # Keep the parsed states of this provider current too, rather than parse them all again.
            cached = self._states.get(provider)
            if cached is not None and before is not None and cached[0] == before and self._cache is not None:
                self._states[provider] = (self._cache[0], {**cached[1], cred_id: new})

    def record_use(self, provider: str, cred_id: str, now: float, *, error: str = "") -> None:
        def change(s: CredentialState) -> CredentialState:
            if error:
                return replace(s, requests=s.requests + 1, errors=s.errors + 1, last_error=error, last_used=now)
            return replace(s, requests=s.requests + 1, last_used=now)

        self._update(provider, cred_id, change)

    def cool_down(self, provider: str, cred_id: str, until: float, reason: str) -> None:
        def change(s: CredentialState) -> CredentialState:
            # Two processes may see the same 429; the later reset wins so neither shortens the other's.
            return replace(s, cooldown_until=max(until, s.cooldown_until), cooldown_reason=reason, last_error=reason)

        self._update(provider, cred_id, change)

    def exhaust(self, provider: str, cred_id: str, reason: str) -> None:
        self._update(provider, cred_id, lambda s: replace(s, exhausted=reason, last_error=reason))

    def reset(self, provider: str | None = None, cred_id: str | None = None) -> int:
        """Clear cooldown and exhaustion (counters stay); returns how many credentials changed."""
        count = 0
        with self._transaction():
            data = self._load()
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
            self._save(data)
        return count

    def next_cursor(self, provider: str) -> int:
        with self._transaction():
            data = self._load()
            cursors = data.setdefault("cursors", {})
            value = int(cursors.get(provider, 0)) if isinstance(cursors.get(provider, 0), int) else 0
            cursors[provider] = value + 1
            self._save(data)
        return value
