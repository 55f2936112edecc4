"""Route: the resolved runtime of a session: provider, model and endpoint. Frozen: nothing mutates it.

A model switch makes a new Route; recovery receives one and cannot change it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from providers.credentials import Credential
from providers.endpoint import Endpoint
from providers.registry import ProviderSpec


@dataclass(frozen=True)
class Route:
    provider: ProviderSpec
    model: str
    endpoint: Endpoint

    @property
    def label(self) -> str:
        return f"{self.provider.id}:{self.model}"


@dataclass(frozen=True)
class Target:
    """Where one attempt goes and with which key."""

    base_url: str
    api_key: str | None = field(repr=False)


def target_for(route: Route, cred: Credential) -> Target:
    """The session's endpoint, or the credential's own pinned one: never anything else."""
    if cred.provider != route.provider.id:
        raise ValueError(f"a {cred.provider} credential cannot go to {route.provider.id}")
    return Target(cred.pinned_base_url or route.endpoint.url, cred.secret)
