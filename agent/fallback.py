"""When a provider cannot answer, which errors move the turn to the next `[[fallback]]`, and how to say so.

A fallback is the same operation as a cross-provider `/model`: its own endpoint and its own pool.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from providers import errors


@dataclass(frozen=True)
class FallbackEntry:
    provider: str
    model: str
    base_url: str | None = None


def should_fall_back(error: errors.HermesError) -> bool:
    """Spent pools and outages fall back; a partial answer, a bad request or a wrong endpoint do not."""
    if isinstance(error, (errors.RateLimited, errors.AuthenticationFailed, errors.NoCredentialError)):
        return True
    if isinstance(error, errors.StreamInterrupted):
        return False
    if isinstance(error, errors.HTTPStatusError):
        return error.status >= 500
    return isinstance(error, errors.TransportError)


def reason(provider: str, error: errors.HermesError) -> str:
    if isinstance(error, errors.RateLimited):
        if error.earliest_reset:
            return f"{provider} rate-limited until {time.strftime('%H:%M', time.localtime(error.earliest_reset))}"
        return f"{provider} rate-limited"
    if isinstance(error, errors.AuthenticationFailed):
        return f"{provider} keys rejected"
    if isinstance(error, errors.NoCredentialError):
        return f"{provider} has no key"
    return f"{provider} unavailable"
