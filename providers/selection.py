"""Which available credential serves the next request: pure functions, the clock and dice passed in."""

from __future__ import annotations

import random
from collections.abc import Sequence

from providers.credentials import Credential
from providers.state import FRESH, OK, CredentialState


def available(
    credentials: Sequence[Credential], states: dict[str, CredentialState], now: float, exclude: frozenset[str]
) -> list[Credential]:
    unusable = exclude.union(cred_id for cred_id, s in states.items() if s.status(now) != OK)
    return [c for c in credentials if c.id not in unusable]


def choose(
    candidates: Sequence[Credential],
    states: dict[str, CredentialState],
    strategy: str,
    *,
    cursor: int = 0,
    rng: random.Random | None = None,
) -> Credential | None:
    if not candidates:
        return None
    if strategy == "round_robin":
        return candidates[cursor % len(candidates)]
    if strategy == "least_used":
        return min(candidates, key=lambda c: states.get(c.id, FRESH).requests)
    if strategy == "random":
        return (rng or random.Random()).choice(list(candidates))
    return candidates[0]


def earliest_reset(
    credentials: Sequence[Credential], states: dict[str, CredentialState], now: float, exclude: frozenset[str]
) -> float | None:
    """When the first cooling (not exhausted) credential becomes usable; None if none is cooling."""
    resets = [
        states[c.id].cooldown_until
        for c in credentials
        if c.id not in exclude and c.id in states and not states[c.id].exhausted and states[c.id].cooldown_until > now
    ]
    return min(resets) if resets else None
