"""Recovery decisions, with no I/O: the one table of what the request path does after a failure.

The recovery client asks `decide` (an attempt failed) or `when_none_available` (no credential can be
used) and carries the answer out; it never chooses an action itself.

part of the answer already reached the user
                  give up: a retry would show it twice
429 ............. cool the credential down (Retry-After, a reset hint in the body, or a default),
                  rotate at once to the next available credential
401 / 403 ....... refresh the key once if its source can, else exhaust the credential and rotate
402 ............. exhaust (out of credit) and rotate
408/409/425/5xx,
connection, timeout, a stream cut before any text
                  retry the same credential after jittered exponential backoff, a bounded number of times
anything else ... give up (404 means the endpoint is wrong, not the key)

no credential available:
every one exhausted ................. give up (authentication failed)
the earliest reset within the budget  wait for it, then select again
else ................................ give up (rate limited)
"""

from __future__ import annotations

import email.utils
import enum
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass

from providers.errors import HTTPStatusError, ProviderError, StreamInterrupted, TransportError

QUOTA_COOLDOWN = 3600.0
MIN_COOLDOWN = 1.0
# The longest cooldown hermes believes: a provider asking for more (a huge or garbled Retry-After) gets
# a day, so the state stays a plain finite number and the user only waits for `hermes auth reset`.
MAX_COOLDOWN = 86_400.0
TRANSIENT_STATUSES = frozenset({408, 409, 425, 500, 502, 503, 504, 520, 522, 524, 529})

_QUOTA_WORDS = re.compile(r"quota|usage limit|billing|insufficient", re.IGNORECASE)
_UNITS = {
    "ms": 0.001,
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
}
_HINT = re.compile(
    r"(?:retry|try again|reset[s]?)\s+(?:after|in)\s+((?:\d+(?:\.\d+)?\s*[a-z]+\s*){1,3})", re.IGNORECASE
)
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)", re.IGNORECASE)


class Action(enum.Enum):
    RETRY_SAME = "sleep `delay`, then retry the same credential"
    REFRESH = "get a new key from the credential's source and retry with it"
    COOL_DOWN = "cool the credential down until `cooldown_until`, then rotate"
    EXHAUST = "take the credential out of the pool until `hermes auth reset`, then rotate"
    WAIT = "sleep `delay` for the earliest reset, then select a credential again"
    GIVE_UP = "stop and report the error"


@dataclass(frozen=True)
class Attempt:
    """What the request path knows about the credential whose attempt just failed."""

    retries_done: int = 0  # retries of this credential for this request so far
    can_refresh: bool = False  # its source can issue a new key, and has not yet for this request
    delivered: bool = False  # part of the answer already reached the user


@dataclass(frozen=True)
class Decision:
    action: Action
    delay: float = 0.0  # RETRY_SAME and WAIT: seconds to sleep first
    cooldown_until: float = 0.0  # COOL_DOWN: when the credential may be used again


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait: `retry-after-ms`, then `retry-after` as seconds, then as an HTTP date.

    Always finite, between 0 and MAX_COOLDOWN; None when the headers say nothing usable (garbage,
    NaN, infinity), so the caller falls back to its default."""
    ms = _seconds(headers.get("retry-after-ms"), 0.001)
    if ms is not None:
        return ms
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = _seconds(value, 1.0)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
        return _clamp(when.timestamp() - now)
    except (TypeError, ValueError, OverflowError, IndexError, OSError):
        return None  # not a date, or one no clock can hold


def _seconds(value: str | None, unit: float) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return _clamp(number * unit)


def _clamp(seconds: float) -> float | None:
    """Finite seconds within 0..MAX_COOLDOWN, or None for NaN and infinities (they carry no length)."""
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_COOLDOWN)


def reset_hint_seconds(body: str) -> float | None:
    """Reset hints providers put in error bodies: "retry after 20s", "resets in 4hr 5min"."""
    match = _HINT.search(body)
    if not match:
        return None
    total = 0.0
    for amount, unit in _PART.findall(match.group(1)):
        factor = _UNITS.get(unit.lower())
        if factor is None:
            break
        total += float(amount) * factor
    return _clamp(total) or None


def backoff(attempt: int, rng: random.Random) -> float:
    """openai-python's schedule: min(0.5 * 2**n, 8) seconds, minus up to 25% jitter."""
    base = min(0.5 * 2.0**attempt, 8.0)
    return base * (1 - 0.25 * rng.random())


def decide(
    error: ProviderError,
    attempt: Attempt,
    *,
    now: float,
    max_retries: int,
    default_cooldown: float,
    rng: random.Random,
) -> Decision:
    """What to do after `attempt` failed with `error`."""
    if attempt.delivered:
        return Decision(Action.GIVE_UP)
    if isinstance(error, HTTPStatusError):
        status = error.status
        if status == 429:
            wait = error.retry_after
            if wait is None:
                wait = reset_hint_seconds(error.body_excerpt)
            if wait is None:
                wait = QUOTA_COOLDOWN if _QUOTA_WORDS.search(error.body_excerpt) else default_cooldown
            # At least a second, so a "Retry-After: 0" cannot spin the rotation loop; at most a day.
            wait = min(max(wait, MIN_COOLDOWN), MAX_COOLDOWN) if math.isfinite(wait) else default_cooldown
            return Decision(Action.COOL_DOWN, cooldown_until=now + wait)
        if status in (401, 403):
            # Once per request: a source that hands out a new, also rejected, key each time would loop.
            return Decision(Action.REFRESH if attempt.can_refresh else Action.EXHAUST)
        if status == 402:
            return Decision(Action.EXHAUST)
        if status in TRANSIENT_STATUSES or status >= 500:
            return _retry_same(attempt.retries_done, max_retries, rng)
        return Decision(Action.GIVE_UP)
    if isinstance(error, (TransportError, StreamInterrupted)):
        return _retry_same(attempt.retries_done, max_retries, rng)
    return Decision(Action.GIVE_UP)


def _retry_same(retries_done: int, max_retries: int, rng: random.Random) -> Decision:
    if retries_done >= max_retries:
        return Decision(Action.GIVE_UP)
    return Decision(Action.RETRY_SAME, delay=backoff(retries_done, rng))


def when_none_available(
    *, all_exhausted: bool, earliest_reset: float | None, now: float, waited: float, max_wait: float
) -> Decision:
    """What to do when no credential can be used: `waited` is how long this request has already waited."""
    if all_exhausted:
        return Decision(Action.GIVE_UP)
    wait = max(0.0, (earliest_reset or now) - now)
    if waited + wait > max_wait:
        return Decision(Action.GIVE_UP)
    return Decision(Action.WAIT, delay=wait)
