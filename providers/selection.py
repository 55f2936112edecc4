"""Which available credential serves the next request: pure functions, the clock and dice passed in."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from providers.state import OK, CredentialState


def available(
    ids: Sequence[str], states: dict[str, CredentialState], now: float, exclude: frozenset[str]
) -> Sequence[int]:
    """The places in the pool (of `ids`) of the credentials usable now."""
    unusable = exclude.union(cred_id for cred_id, s in states.items() if s.status(now) != OK)
    if not unusable:  # the usual case: no list of a pool of thousands
        return range(len(ids))
    return [i for i, cred_id in enumerate(ids) if cred_id not in unusable]


def choose(
    candidates: Sequence[int],
    ids: Sequence[str],
    strategy: str,
    *,
    cursor: int = 0,
    counts: Mapping[str, int] | None = None,
    rng: random.Random | None = None,
) -> int | None:
    """The place of the credential to use, of the `candidates` (places of `ids`); least_used takes the
    requests each credential has served from `counts` (absent: none)."""
    if not candidates:
        return None
    if strategy == "round_robin":
        return candidates[cursor % len(candidates)]
    if strategy == "least_used":
        served = counts or {}
        return min(candidates, key=lambda i: served.get(ids[i], 0))
    if strategy == "random":
        return (rng or random.Random()).choice(candidates)
    return candidates[0]


def earliest_reset(
    ids: Sequence[str], states: dict[str, CredentialState], now: float, exclude: frozenset[str]
) -> float | None:
    """When the first cooling (not exhausted) credential becomes usable; None if none is cooling."""
    resets = [
        states[i].cooldown_until
        for i in ids
        if i not in exclude and i in states and not states[i].exhausted and states[i].cooldown_until > now
    ]
    return min(resets) if resets else None
