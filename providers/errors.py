"""The one tree of errors hermes raises; the CLI maps each branch to an exit code.

    HermesError
    ├── UsageError ..................... exit 2: bad flag, unknown provider or model spec
    │   ├── ConfigError ................ exit 2: config.toml unreadable or invalid (file, line, column)
    │   ├── NoCredentialError .......... exit 2: the provider needs a key and has none
    │   └── StorageError ............... exit 2: a hermes data file (sessions DB, auth store) is unusable
    ├── AuthenticationFailed ........... exit 3: every credential of the provider was rejected
    ├── RateLimited .................... exit 4: every credential cools down beyond the wait budget
    ├── ProviderError .................. exit 5: the endpoint could not answer, after retries
    │   ├── HTTPStatusError ............ a non-2xx answer (carries status, Retry-After, message)
    │   │   └── EndpointRedirect ....... a 3xx: never followed, the endpoint is wrong or moved
    │   ├── TransportError ............. no HTTP answer at all
    │   │   ├── ConnectError
    │   │   └── TimeoutError
    │   ├── MalformedResponse .......... HTML, invalid JSON, an unexpected shape
    │   ├── AnswerTooLong .............. still streaming at `[agent] max_answer_seconds`: not retried
    │   └── StreamInterrupted .......... the stream stopped after text had arrived
    └── FallbackExhausted .............. the primary and every fallback failed (code of the primary's reason)

Messages are one or two plain sentences: what failed and what to do. They never contain a whole key.
"""

from __future__ import annotations


class HermesError(Exception):
    """Base of every error hermes reports to the user."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class UsageError(HermesError):
    pass


class ConfigError(UsageError):
    pass


class NoCredentialError(UsageError):
    pass


class StorageError(UsageError):
    pass


class AuthenticationFailed(HermesError):
    pass


class RateLimited(HermesError):
    def __init__(self, message: str, *, earliest_reset: float | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.earliest_reset = earliest_reset


class ProviderError(HermesError):
    pass


class HTTPStatusError(ProviderError):
    def __init__(
        self,
        message: str,
        *,
        status: int,
        retry_after: float | None = None,
        body_excerpt: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.retry_after = retry_after
        self.body_excerpt = body_excerpt


class EndpointRedirect(HTTPStatusError):
    """A 3xx from the provider. Following it would move the conversation to a host the user never chose."""

    def __init__(self, message: str, *, status: int, location: str, hint: str | None = None) -> None:
        super().__init__(message, status=status, hint=hint)
        self.location = location


class TransportError(ProviderError):
    pass


class ConnectError(TransportError):
    pass


class TimeoutError(TransportError):
    pass


class MalformedResponse(ProviderError):
    pass


class AnswerTooLong(ProviderError):
    """The answer was still arriving (tokens or keep-alives) when its deadline passed."""


class StreamInterrupted(ProviderError):
    def __init__(self, message: str, *, partial: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.partial = partial


class FallbackExhausted(HermesError):
    """Raised when the primary and all fallbacks failed; `causes` holds each provider's error in order."""

    def __init__(self, message: str, *, causes: list[tuple[str, HermesError]], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.causes = causes
