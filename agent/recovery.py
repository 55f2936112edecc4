"""The recovery middleware: one request, the pool's credentials, and the policy's decisions.

The route (provider, model, endpoint) is a frozen value handed in at construction; nothing here can
change it. Every attempt goes to `target_for(route, credential)`: the session's endpoint, or the
credential's own pinned endpoint when the user gave it one. The pool must be the route's provider's.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from agent.events import DELIVERING, Event, Notice
from agent.retry_policy import Action, Attempt, Decision, decide, when_none_available
from agent.route import Route, Target, target_for
from providers import errors
from providers.credentials import Credential
from providers.pool import CredentialPool
from providers.secrets import scrub

if TYPE_CHECKING:
    from agent.transport import Transport

T = TypeVar("T")


@dataclass(frozen=True)
class RecoverySettings:
    """`[credentials]` max_wait_seconds and cooldown_seconds, `[agent]` max_retries and max_answer_seconds
    (their defaults are config's SCHEMA's)."""

    max_wait_seconds: float
    max_retries: int
    default_cooldown: float
    max_answer_seconds: float  # one answer's deadline, however steadily the server keeps sending


def _when(ts: float) -> str:
    """A reset time for people: the clock time, with the date when it is not within the next day."""
    try:
        local = time.localtime(ts)
    except (OverflowError, ValueError, OSError):
        return "an unknown time"  # a timestamp no clock can show (state written by a buggy release)
    return time.strftime("%H:%M:%S" if ts - time.time() < 86_400 else "%Y-%m-%d %H:%M:%S", local)


class RecoveringClient:
    def __init__(
        self,
        route: Route,
        pool: CredentialPool,
        transport: Transport,
        settings: RecoverySettings,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if pool.provider_id != route.provider.id:
            raise ValueError(f"pool of {pool.provider_id!r} cannot serve provider {route.provider.id!r}")
        self.route = route
        self.pool = pool
        self.transport = transport
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()

    def _describe(self, cred: Credential) -> str:
        return f"{self.route.provider.id} key {cred.masked} ({cred.id})"

    def models(self) -> list[dict[str, Any]]:
        return self._run(lambda target: self.transport.models(target))

    def _run(self, call: Callable[[Target], T]) -> T:
        """The non-streaming twin of `chat` for /models: same choices of credential, no events."""
        result: list[T] = []

        def as_events(target: Target) -> Iterator[Event]:
            result.append(call(target))
            return iter(())

        for _ in self._attempts(as_events):
            pass
        return result[-1]

    def chat(self, body: dict[str, Any], *, stream: bool) -> Iterator[Event]:
        return self._attempts(
            lambda target: self.transport.chat(
                target, body, stream=stream, max_seconds=self.settings.max_answer_seconds
            )
        )

    def _attempts(self, send: Callable[[Target], Iterator[Event]]) -> Iterator[Event]:
        waited = 0.0
        while True:
            cred = self.pool.select()
            if cred is None:
                wait = self._wait_or_give_up(waited)
                yield Notice(
                    f"Every key of {self.route.provider.id} is rate-limited; "
                    f"waiting {wait:.1f}s for the first to reset."
                )
                self.sleep(wait)
                waited += wait
                continue
            if (yield from self._use(cred, send)):
                return

    def _use(self, cred: Credential, send: Callable[[Target], Iterator[Event]]) -> Generator[Event, None, bool]:
        """Attempts with one credential, as the policy decides: True once answered, False to rotate away."""
        attempt = Attempt(can_refresh=cred.refreshable)
        while True:
            delivered = False
            try:
                for event in send(target_for(self.route, cred)):
                    delivered = delivered or isinstance(event, DELIVERING)
                    yield event
            except errors.ProviderError as e:
                error = e
            else:
                self.pool.record_success(cred)
                return True
            message = scrub(error.message, self.pool.credentials.secrets)
            attempt = replace(attempt, delivered=delivered)
            decision = self._decide(error, attempt)
            if decision.action is Action.REFRESH:
                attempt = replace(attempt, can_refresh=False)
                fresh = self.pool.refresh(cred)
                if fresh is not None:
                    yield Notice(f"{self._describe(cred)} was rejected; retrying with a refreshed key.")
                    cred = fresh
                    continue
                decision = self._decide(error, attempt)
            if decision.action is Action.RETRY_SAME:
                attempt = replace(attempt, retries_done=attempt.retries_done + 1)
                yield Notice(
                    f"{message} Retrying in {decision.delay:.1f}s ({attempt.retries_done}/{self.settings.max_retries})."
                )
                self.sleep(decision.delay)
            elif decision.action is Action.COOL_DOWN:
                self.pool.cool_down(cred, decision.cooldown_until, message)
                then = "; trying the next key." if self.pool.has_available() else "."
                yield Notice(f"{self._describe(cred)} is rate-limited until {_when(decision.cooldown_until)}{then}")
                return False
            elif decision.action is Action.EXHAUST:
                self.pool.exhaust(cred, message)
                yield Notice(
                    f"{self._describe(cred)} was rejected ({message}); "
                    "it stays out of the pool until `hermes auth reset`."
                )
                return False
            else:
                self.pool.record_error(cred, message)
                raise self._final(error, message, cred, delivered=delivered) from None

    def _decide(self, error: errors.ProviderError, attempt: Attempt) -> Decision:
        return decide(
            error,
            attempt,
            now=self.clock(),
            max_retries=self.settings.max_retries,
            default_cooldown=self.settings.default_cooldown,
            rng=self.rng,
        )

    def _wait_or_give_up(self, waited: float) -> float:
        """Seconds to sleep for the earliest reset, if the policy waits for it; else the error saying why not."""
        provider = self.route.provider.id
        now = self.clock()
        all_exhausted = self.pool.all_exhausted()
        reset = None if all_exhausted else self.pool.earliest_reset()
        decision = when_none_available(
            all_exhausted=all_exhausted,
            earliest_reset=reset,
            now=now,
            waited=waited,
            max_wait=self.settings.max_wait_seconds,
        )
        if decision.action is Action.WAIT:
            return decision.delay
        if all_exhausted:
            raise errors.AuthenticationFailed(
                f"Every key of {provider} was rejected by {self.route.endpoint.url}.",
                hint=f"Check the keys with `hermes auth list {provider}`, fix or add one "
                f"(`hermes auth add {provider}`), then `hermes auth reset {provider}`.",
            )
        reset = reset or now
        raise errors.RateLimited(
            f"Every key of {provider} is rate-limited; the earliest resets at {_when(reset)} "
            f"(in {max(0.0, reset - now):.0f}s).",
            earliest_reset=reset,
            hint="Try again then, add a key with `hermes auth add`, or raise credentials.max_wait_seconds.",
        )

    def _where(self, cred: Credential) -> str:
        return f"{self.route.provider.id} at {target_for(self.route, cred).base_url} (key {cred.masked})"

    def _final(self, e: errors.ProviderError, message: str, cred: Credential, *, delivered: bool) -> errors.HermesError:
        if delivered:
            return errors.StreamInterrupted(
                f"{self._where(cred)}: {message} What arrived so far is kept.",
                hint=e.hint if isinstance(e, errors.AnswerTooLong) else "Send the message again to get a full answer.",
            )
        if isinstance(e, errors.EndpointRedirect):
            return errors.EndpointRedirect(
                f"{self._where(cred)}: {message}", status=e.status, location=e.location, hint=e.hint
            )
        if isinstance(e, errors.HTTPStatusError):
            hint = e.hint
            twins = self.route.provider.shares_key_with
            if e.status == 404 and twins:
                # The seed's trap: a plan key on the pay-per-use host (or the reverse) is answered 404.
                hint = (f"{hint} " if hint else "") + (
                    f"A key meant for another {self.route.provider.id} host gets exactly this answer; if yours "
                    "is a plan key, use its own provider: " + ", ".join(f"-p {t}" for t in twins) + "."
                )
            return errors.HTTPStatusError(
                f"{self._where(cred)}: {message}",
                status=e.status,
                hint=hint,
                body_excerpt=scrub(e.body_excerpt, self.pool.credentials.secrets),
            )
        return type(e)(f"{self._where(cred)}: {message}", hint=e.hint or self._network_hint(e, cred))

    def _network_hint(self, e: errors.ProviderError, cred: Credential) -> str | None:
        """What to check when no answer came at all: which endpoint, where it was set, how to change it."""
        if not isinstance(e, errors.TransportError):
            return None
        provider = self.route.provider
        url = target_for(self.route, cred).base_url
        source = f"pinned on key {cred.id}" if cred.pinned_base_url else f"from {self.route.endpoint.source}"
        what = (
            "answers in time"
            if isinstance(e, errors.TimeoutError)
            else "is running and reachable"
            if isinstance(e, errors.ConnectError)
            else "speaks HTTP as an OpenAI-compatible API"
        )
        return (
            f"Check that the server at {url} {what}; that endpoint comes {source} "
            f"(`hermes providers` shows each provider's). Use --base-url or {provider.base_url_env} "
            "to point elsewhere."
        )
