"""Shared credential state: cooldowns, exhaustion and counters, seen by every hermes process of the user.

`StateStore` is the interface the pool uses: `SQLiteStateStore` (providers/sqlite_state.py) keeps it in
the state dir, `RedisStateStore` in Redis for a fleet. State is keyed by provider and credential id (a
key's fingerprint), never by the key itself, so no store holds a secret.

What a store holds is the user's machine's, not ours: whatever is in it (another version's shape, a
hand edit, `Infinity`) is validated on read here, and what does not fit is dropped. `clean_document`
reads the JSON file of earlier versions, `{"providers": {id: {cred_id: state}}, "cursors": {id: n}}`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

OK = "ok"
COOLING = "cooling"
EXHAUSTED = "exhausted"

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
    def troubled(self, provider: str, now: float) -> dict[str, CredentialState]:
        """The states of the provider's credentials that are unusable at `now` (cooling or exhausted)."""
        ...

    def request_counts(self, provider: str) -> dict[str, int]:
        """How many requests each of the provider's credentials has served, where that is not 0."""
        ...

    def record_use(self, provider: str, cred_id: str, now: float, *, error: str = "") -> None: ...
    def cool_down(self, provider: str, cred_id: str, until: float, reason: str) -> None: ...
    def exhaust(self, provider: str, cred_id: str, reason: str) -> None: ...
    def reset(self, provider: str | None = None, cred_id: str | None = None) -> int: ...
    def next_cursor(self, provider: str) -> int: ...
