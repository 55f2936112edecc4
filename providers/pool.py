"""CredentialPool: one provider's credentials and their shared state. It belongs to that provider only."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from providers import selection
from providers.credentials import Credential, Credentials, refreshed
from providers.state import FRESH, CredentialState, StateStore


class CredentialPool:
    def __init__(
        self,
        provider_id: str,
        credentials: Sequence[Credential],
        store: StateStore,
        *,
        strategy: str = "fill_first",
        clock: Callable[[], float],
        rng: random.Random | None = None,
        warn: Callable[[str], None] = lambda _: None,
    ) -> None:
        creds = credentials if isinstance(credentials, Credentials) else Credentials(credentials)
        if creds.providers() - {provider_id}:
            foreign = [c.id for c in creds if c.provider != provider_id]
            raise ValueError(f"credentials {foreign} do not belong to provider {provider_id!r}")
        self.provider_id = provider_id
        self.credentials = creds
        self.store = store
        self.strategy = strategy
        self.clock = clock
        self.rng = rng or random.Random()
        self.warn = warn  # what the user should hear (a key command that failed on refresh)

    def states(self) -> dict[str, CredentialState]:
        """The states of the credentials unusable now, fresh from the store: only those, so that a request's
        cost does not grow with the pool."""
        return self.store.troubled(self.provider_id, self.clock())

    def select(self, exclude: frozenset[str] = frozenset()) -> Credential | None:
        """An available credential by the strategy; the state is read fresh to see other processes' 429s."""
        states, ids = self.states(), self.credentials.ids
        candidates = selection.available(ids, states, self.clock(), exclude)
        if not candidates:
            return None
        cursor = self.store.next_cursor(self.provider_id) if self.strategy == "round_robin" else 0
        counts = self.store.request_counts(self.provider_id) if self.strategy == "least_used" else {}
        chosen = selection.choose(candidates, ids, self.strategy, cursor=cursor, counts=counts, rng=self.rng)
        return None if chosen is None else self.credentials[chosen]

    def has_available(self) -> bool:
        return bool(selection.available(self.credentials.ids, self.states(), self.clock(), frozenset()))

    def earliest_reset(self, exclude: frozenset[str] = frozenset()) -> float | None:
        return selection.earliest_reset(self.credentials.ids, self.states(), self.clock(), exclude)

    def all_exhausted(self) -> bool:
        states = self.states()
        return all(states.get(cred_id, FRESH).exhausted for cred_id in self.credentials.ids)

    def record_success(self, cred: Credential) -> None:
        self.store.record_use(self.provider_id, cred.id, self.clock())

    def record_error(self, cred: Credential, message: str) -> None:
        self.store.record_use(self.provider_id, cred.id, self.clock(), error=message)

    def cool_down(self, cred: Credential, until: float, reason: str) -> None:
        """A 429: counted as a request that failed (as `hermes auth list` shows), then cooled down."""
        self.record_error(cred, reason)
        self.store.cool_down(self.provider_id, cred.id, until, reason)

    def exhaust(self, cred: Credential, reason: str) -> None:
        """A 401/403/402: counted as a request that failed, then out of the pool until `hermes auth reset`."""
        self.record_error(cred, reason)
        self.store.exhaust(self.provider_id, cred.id, reason)

    def refresh(self, cred: Credential) -> Credential | None:
        """A fresh key from the credential's command, replacing it in the pool; None if it cannot refresh."""
        new = refreshed(cred, self.warn)
        if new is not None:
            self.credentials = self.credentials.replaced(new)
        return new
