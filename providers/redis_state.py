"""Credential state in Redis, so a fleet of machines shares cooldowns, exhaustion and the round-robin cursor.

Opt-in (`[credentials] state = "redis://host:6379/0"` or `HERMES_STATE_URL`); this module, and the redis
package, are imported only then. Keys, by provider and credential id (a fingerprint, never the key):

    hermes:<provider>:ids                   set of the credential ids that have state
    hermes:<provider>:cursor                round-robin cursor (INCR)
    hermes:<provider>:<id>:stats            hash: requests, errors, last_error, last_used
    hermes:<provider>:<id>:cooldown         the 429's reason, with a TTL: its expiry is the recovery
    hermes:<provider>:<id>:exhausted        the 401's reason, no TTL: stays until `hermes auth reset`

Redis is a shared convenience, not a dependency of answering: on the first failure the store warns once
and uses the local file for the rest of the process. It talks through providers/redis_client.py, not
redis-py, whose import alone would cost more than the rest of an ask.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from providers.errors import UsageError
from providers.secrets import mask_url
from providers.state import (
    MAX_AHEAD_SECONDS,
    MAX_TEXT,
    OK,
    CredentialState,
    StateStore,
    Warn,
    valid_count,
    valid_time,
)

try:
    from providers.redis_client import Arg, Redis, RedisError, Script, parse_url
except ImportError as e:
    raise UsageError(
        "credentials.state is a Redis URL, but hiredis, the Redis protocol package, is not installed.",
        hint="Install it with `pip install 'hermes[redis]'`, or set credentials.state = \"file\".",
    ) from e

T = TypeVar("T")

# A shared store must never slow an answer down: a dead or black-holed Redis costs at most a few 0.2 s.
TIMEOUT = 0.2

# Two machines may see the same 429: the later reset wins, so neither shortens the other's cooldown.
_COOL_DOWN = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
"""

# A provider's whole state in one round trip, as one snapshot (cooldown reason and TTL of the same instant).
_READ = """
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. id
  table.insert(out, {id, redis.call('HGETALL', key .. ':stats'), redis.call('GET', key .. ':exhausted'),
                     redis.call('GET', key .. ':cooldown'), redis.call('PTTL', key .. ':cooldown')})
end
return out
"""


def _ignore(message: str) -> None:
    pass


def open_redis_store(url: str, *, fallback: StateStore, warn: Warn = _ignore) -> RedisStateStore:
    try:
        client = Redis(parse_url(url), timeout=TIMEOUT)  # connects on first use
    except ValueError as e:
        raise UsageError(
            f"credentials.state {mask_url(url)!r} is not a Redis URL ({e}).",
            hint='Use "file" or "redis://host:6379/0".',
        ) from None
    return RedisStateStore(client, mask_url(url), fallback, warn=warn)


def _number(text: Any, valid: Callable[[Any], bool], parse: Callable[[str], Any]) -> Any:
    """A stored counter or time, or None when what Redis holds is not one a working hermes writes."""
    try:
        value = parse(str(text))
    except (ValueError, OverflowError):
        return None
    return value if valid(value) else None


class RedisStateStore:
    def __init__(self, client: Redis, shown_url: str, fallback: StateStore, *, warn: Warn = _ignore) -> None:
        self.client = client
        self.url = shown_url
        self.fallback = fallback
        self._warn = warn
        self.failure: str | None = None
        self._read_script = Script(_READ)
        self._cool_down_script = Script(_COOL_DOWN)

    def _guard(self, op: Callable[[], T], fallback_op: Callable[[], T]) -> T:
        if self.failure is None:
            try:
                return op()
            except RedisError as e:
                self.failure = str(e).rstrip(".") or type(e).__name__
                self._warn(
                    f"Redis state store at {self.url} unreachable ({self.failure}); using the local file for this run."
                )
        return fallback_op()

    def describe(self) -> str:
        self._guard(lambda: self.client.execute("PING"), lambda: True)
        if self.failure is None:
            return f"redis {self.url} (ok)"
        return f"redis {self.url} (unreachable, using {self.fallback.describe()})"

    def read(self, provider: str) -> dict[str, CredentialState]:
        return self._guard(lambda: self._read(provider), lambda: self.fallback.read(provider))

    def request_counts(self, provider: str) -> dict[str, int]:
        return {cred_id: s.requests for cred_id, s in self.read(provider).items() if s.requests}

    def troubled(self, provider: str, now: float) -> dict[str, CredentialState]:
        return {cred_id: s for cred_id, s in self.read(provider).items() if s.status(now) != OK}

    def record_use(self, provider: str, cred_id: str, now: float, *, error: str = "") -> None:
        self._guard(
            lambda: self._record_use(provider, cred_id, now, error),
            lambda: self.fallback.record_use(provider, cred_id, now, error=error),
        )

    def cool_down(self, provider: str, cred_id: str, until: float, reason: str) -> None:
        self._guard(
            lambda: self._cool_down(provider, cred_id, until, reason),
            lambda: self.fallback.cool_down(provider, cred_id, until, reason),
        )

    def exhaust(self, provider: str, cred_id: str, reason: str) -> None:
        self._guard(
            lambda: self._exhaust(provider, cred_id, reason),
            lambda: self.fallback.exhaust(provider, cred_id, reason),
        )

    def reset(self, provider: str | None = None, cred_id: str | None = None) -> int:
        """Clear cooldown and exhaustion (counters stay); returns how many credentials changed."""
        return self._guard(lambda: self._reset(provider, cred_id), lambda: self.fallback.reset(provider, cred_id))

    def next_cursor(self, provider: str) -> int:
        return self._guard(
            lambda: int(self.client.execute("INCR", f"hermes:{provider}:cursor")) - 1,
            lambda: self.fallback.next_cursor(provider),
        )

    # -- Redis ---------------------------------------------------------------------------------------

    def _read(self, provider: str) -> dict[str, CredentialState]:
        rows = self._read_script(self.client, [f"hermes:{provider}:ids"], [f"hermes:{provider}:"])
        now = time.time()
        states = {}
        for cred_id, stats_list, exhausted, reason, ttl in rows:
            stats = dict(zip(stats_list[::2], stats_list[1::2], strict=False))
            # A TTL beyond what hermes ever sets was not set by hermes: no cooldown rather than one for ever.
            cooling = reason is not None and isinstance(ttl, int) and 0 < ttl <= MAX_AHEAD_SECONDS * 1000
            states[cred_id] = CredentialState(
                cooldown_until=now + ttl / 1000 if cooling else 0.0,
                cooldown_reason=str(reason)[:MAX_TEXT] if cooling else "",
                exhausted=str(exhausted or "")[:MAX_TEXT],
                requests=_number(stats.get("requests", 0), valid_count, int) or 0,
                errors=_number(stats.get("errors", 0), valid_count, int) or 0,
                last_error=str(stats.get("last_error", ""))[:MAX_TEXT],
                last_used=_number(stats.get("last_used", 0.0), lambda t: valid_time(t, now), float) or 0.0,
            )
        return states

    def _record_use(self, provider: str, cred_id: str, now: float, error: str) -> None:
        stats = f"hermes:{provider}:{cred_id}:stats"
        commands: list[tuple[Arg, ...]] = [
            ("SADD", f"hermes:{provider}:ids", cred_id),
            ("HINCRBY", stats, "requests", 1),
            ("HSET", stats, "last_used", now),
        ]
        if error:
            commands += [("HINCRBY", stats, "errors", 1), ("HSET", stats, "last_error", error)]
        self.client.pipeline(commands)

    def _cool_down(self, provider: str, cred_id: str, until: float, reason: str) -> None:
        key = f"hermes:{provider}:{cred_id}"
        commands: list[tuple[Arg, ...]] = [
            ("SADD", f"hermes:{provider}:ids", cred_id),
            ("HSET", f"{key}:stats", "last_error", reason),
        ]
        seconds = min(until - time.time(), MAX_AHEAD_SECONDS)  # inf is held at the bound, as the file store does
        ms = int(seconds * 1000) if not math.isnan(seconds) else 0
        if ms > 0:
            commands.append(self._cool_down_script.command([f"{key}:cooldown"], [reason, ms]))
        self.client.pipeline(commands)

    def _exhaust(self, provider: str, cred_id: str, reason: str) -> None:
        key = f"hermes:{provider}:{cred_id}"
        self.client.pipeline(
            [
                ("SADD", f"hermes:{provider}:ids", cred_id),
                ("HSET", f"{key}:stats", "last_error", reason),
                ("SET", f"{key}:exhausted", reason),
            ]
        )

    def _reset(self, provider: str | None, cred_id: str | None) -> int:
        if provider is None:
            providers = [k[len("hermes:") : -len(":ids")] for k in self.client.scan_iter("hermes:*:ids")]
        else:
            providers = [provider]
        changed = 0
        for pid in providers:
            ids = [cred_id] if cred_id is not None else sorted(self.client.execute("SMEMBERS", f"hermes:{pid}:ids"))
            if ids:
                deletes = [("DEL", f"hermes:{pid}:{cid}:cooldown", f"hermes:{pid}:{cid}:exhausted") for cid in ids]
                changed += sum(1 for deleted in self.client.transaction(deletes) if deleted)
        return changed
