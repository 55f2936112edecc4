"""The recovery rules in milliseconds: hermes's real RecoveringClient, CredentialPool, SQLite state store
and HTTPTransport (request building, SSE parsing, status errors), over an in-memory network
(`httpx.MockTransport`) that replaces only the socket. A fake clock; sleeping only records.

The subprocess tests against the fake server (test_recovery.py, test_routing.py, test_fallback.py,
test_fuzz_server.py) prove the same behaviour end to end; these pin each rule down, one by one and over
random sequences of answers.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.events import Notice, TextDelta
from agent.recovery import RecoveringClient, RecoverySettings
from agent.retry_policy import MAX_COOLDOWN, MIN_COOLDOWN
from agent.route import Route
from agent.transport import HTTPTransport, Timeouts
from providers import errors
from providers.credentials import Credential, fingerprint
from providers.endpoint import Endpoint
from providers.pool import CredentialPool
from providers.registry import ProviderSpec
from providers.sqlite_state import SQLiteStateStore
from providers.state import COOLING, EXHAUSTED, FRESH, OK

PLAN = "https://plan.example/v1"  # the session's endpoint (from PLAN_BASE_URL)
PLAN_DEFAULT = "https://default.plan.example/v1"  # the registry default it overrides: never reached
EU = "https://eu.plan.example/v1"  # the endpoint a pinned key was added with
OTHER = "https://other.example/v1"  # another provider
TRAP = "https://trap.example/v1"  # where redirects point: never reached
HOST = {url: httpx.URL(url).host for url in (PLAN, PLAN_DEFAULT, EU, OTHER, TRAP)}

K1, K2, K3 = "sk-plan-key-one-0001", "sk-plan-key-two-0002", "sk-plan-key-three-03"
OTHER_KEY = "ok-other-key-0001"
# config's defaults of the recovery settings, with a cooldown of its own to tell it from others
DEFAULTS: dict[str, Any] = {
    "max_wait_seconds": 10.0,
    "max_retries": 2,
    "default_cooldown": 45.0,
    "max_answer_seconds": 600.0,
}
BODY: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

Answer = Callable[[httpx.Request], httpx.Response]


# -- the in-memory network -----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        # Near the real time: the state store rejects cooldowns absurdly far from it, and an HTTP-date
        # Retry-After is read against it.
        self.now = float(int(time.time()))
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass(frozen=True)
class Sent:
    host: str
    key: str
    at: float


class Network:
    """Answers each request from the script of its key (then the default) and logs which key reached
    which host. Runaway loops fail the test instead of hanging it."""

    def __init__(self, clock: Clock, limit: int = 200) -> None:
        self.clock = clock
        self.limit = limit
        self.log: list[Sent] = []
        self.scripts: dict[str, deque[Answer]] = {}
        self.default: Answer = ok()

    def script(self, key: str, *answers: Answer) -> None:
        self.scripts.setdefault(key, deque()).extend(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ")
        self.log.append(Sent(request.url.host, key, self.clock.now))
        assert len(self.log) <= self.limit, "the client kept sending: a retry loop without end"
        queue = self.scripts.get(key)
        return (queue.popleft() if queue else self.default)(request)

    def sent(self) -> list[tuple[str, str]]:
        return [(s.host, s.key) for s in self.log]


def _sse(*chunks: dict[str, Any]) -> Iterator[bytes]:
    for chunk in chunks:
        yield f"data: {json.dumps(chunk)}\n\n".encode()


def _delta(text: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


FINISH: dict[str, Any] = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
EVENT_STREAM = {"content-type": "text/event-stream"}


def ok(text: str = "fine") -> Answer:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "m"}]})
        if request.headers.get("accept") == "text/event-stream":
            return httpx.Response(
                200, headers=EVENT_STREAM, content=b"".join(_sse(_delta(text), FINISH)) + b"data: [DONE]\n\n"
            )
        message = {"role": "assistant", "content": text}
        return httpx.Response(200, json={"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})

    return answer


def status(code: int, headers: dict[str, str] | None = None, message: str = "no") -> Answer:
    return lambda request: httpx.Response(code, headers=headers, json={"error": {"message": message}})


def rate_limit(retry_after: str | None = None, **headers: str) -> Answer:
    given_headers = dict(headers) | ({"retry-after": retry_after} if retry_after is not None else {})
    return status(429, given_headers, "rate limited")


def redirect(code: int) -> Answer:
    return lambda request: httpx.Response(code, headers={"location": f"{TRAP}/chat/completions"})


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def html(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/html"}, text="<html><body>Welcome</body></html>")


def cut_before_text(request: httpx.Request) -> httpx.Response:
    """A stream that closes before any text: nothing was shown, so it may be sent again."""
    return httpx.Response(200, headers=EVENT_STREAM, content=b": keep-alive\n\n")


def cut_after_text(request: httpx.Request) -> httpx.Response:
    def body() -> Iterator[bytes]:
        yield from _sse(_delta("partial"))
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    return httpx.Response(200, headers=EVENT_STREAM, content=body())


def error_after_text(code: int) -> Answer:
    """Text, then the provider's own error event (a 429, a 401) in the same stream."""
    chunks = (_delta("partial"), {"error": {"code": code, "message": "mid-stream trouble"}})
    return lambda request: httpx.Response(200, headers=EVENT_STREAM, content=b"".join(_sse(*chunks)))


# -- the world: one network, one transport, one state store; a client per route --------------------------


@dataclass
class World:
    state_dir: Path
    clock: Clock = field(default_factory=Clock)
    net: Network = field(init=False)
    transport: HTTPTransport = field(init=False)
    store: SQLiteStateStore = field(init=False)

    def __post_init__(self) -> None:
        self.net = Network(self.clock)
        self.transport = HTTPTransport(Timeouts(connect=10, read=120), network=httpx.MockTransport(self.net))
        self.store = SQLiteStateStore(self.state_dir / "credentials.db")

    def client(
        self,
        keys: tuple[str, ...] = (K1, K2, K3),
        *,
        provider: str = "plan",
        endpoint: str = PLAN,
        pinned: dict[str, str] | None = None,
        commands: dict[str, tuple[str, ...]] | None = None,
        strategy: str = "fill_first",
        **recovery: Any,
    ) -> RecoveringClient:
        spec = ProviderSpec(id=provider, name=provider, base_url=PLAN_DEFAULT if provider == "plan" else endpoint)
        route = Route(spec, "m", Endpoint(endpoint, f"{provider.upper()}_BASE_URL"))
        creds = tuple(
            Credential(
                fingerprint(key),
                provider,
                "env",
                f"k{i}",
                key,
                (pinned or {}).get(key),
                (commands or {}).get(key),
            )
            for i, key in enumerate(keys)
        )
        pool = CredentialPool(provider, creds, self.store, strategy=strategy, clock=self.clock, rng=random.Random(0))
        return RecoveringClient(
            route,
            pool,
            self.transport,
            RecoverySettings(**(DEFAULTS | recovery)),
            clock=self.clock,
            sleep=self.clock.sleep,
            rng=random.Random(0),
        )

    def status_of(self, key: str, provider: str = "plan") -> str:
        return self.store.read(provider).get(fingerprint(key), FRESH).status(self.clock())

    def cooldown_of(self, key: str, provider: str = "plan") -> float:
        return self.store.read(provider).get(fingerprint(key), FRESH).cooldown_until


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


@dataclass
class Outcome:
    text: str
    notices: list[str]
    error: errors.HermesError | None


def ask(client: RecoveringClient, *, stream: bool = True) -> Outcome:
    """One request, as the conversation makes it: what was shown, what the user was told, how it ended."""
    text, notices = "", []
    try:
        for event in client.chat(BODY | {"stream": stream}, stream=stream):
            if isinstance(event, TextDelta):
                text += event.text
            elif isinstance(event, Notice):
                notices.append(event.text)
    except errors.HermesError as e:
        return Outcome(text, notices, e)
    return Outcome(text, notices, None)


def plan(*keys: str, host: str = PLAN) -> list[tuple[str, str]]:
    return [(HOST[host], key) for key in keys]


# -- 401 / 403 / 402: exhaust and rotate ------------------------------------------------------------------


@pytest.mark.parametrize("code", [401, 403, 402])
def test_a_rejected_key_is_exhausted_and_the_next_one_tried_on_the_same_host(world: World, code: int) -> None:
    client = world.client()
    world.net.script(K1, status(code, message=f"Invalid key {K1}"))
    done = ask(client)
    assert done.error is None and done.text == "fine"
    assert world.net.sent() == plan(K1, K2)
    assert [world.status_of(k) for k in (K1, K2, K3)] == [EXHAUSTED, OK, OK]
    assert world.clock.sleeps == []
    assert any("hermes auth reset" in n for n in done.notices)
    assert all(K1 not in n for n in done.notices)  # the provider's message quoted the key: scrubbed
    ask(client)
    assert world.net.sent() == plan(K1, K2, K2)  # it stays out


def test_every_key_rejected_is_authentication_failed_after_one_pass(world: World) -> None:
    client = world.client()
    world.net.default = status(401, message=f"bad key {K2}")
    done = ask(client)
    assert isinstance(done.error, errors.AuthenticationFailed)
    assert "Every key of plan was rejected" in done.error.message
    assert world.net.sent() == plan(K1, K2, K3)
    assert all(k not in str(done.error) and all(k not in n for n in done.notices) for k in (K1, K2, K3))
    again = ask(client)
    assert isinstance(again.error, errors.AuthenticationFailed)
    assert len(world.net.log) == 3  # nothing more was sent
    assert world.clock.sleeps == []


# -- 429: cool down, rotate at once; wait only within the budget ------------------------------------------


def rate_limit_until(seconds_ahead: float) -> Answer:
    """A Retry-After HTTP date, written when the request comes (as a server would)."""

    def answer(request: httpx.Request) -> httpx.Response:
        return rate_limit(email.utils.formatdate(time.time() + seconds_ahead, usegmt=True))(request)

    return answer


@pytest.mark.parametrize(
    ("answer", "seconds"),
    [
        pytest.param(rate_limit("30"), 30, id="retry-after seconds"),
        pytest.param(rate_limit("2.5"), 2.5, id="retry-after fraction"),
        pytest.param(rate_limit(**{"retry-after-ms": "1500"}), 1.5, id="retry-after-ms"),
        pytest.param(rate_limit_until(120), 120, id="retry-after http-date"),
        pytest.param(rate_limit(), 45, id="no header: the default"),  # the configured default cooldown
        pytest.param(rate_limit("garbage"), 45, id="garbage: the default"),
        pytest.param(rate_limit("nan"), 45, id="nan: the default"),
        pytest.param(rate_limit("0"), MIN_COOLDOWN, id="zero: a second"),  # a zero cannot spin the rotation
        pytest.param(rate_limit("99999999999"), MAX_COOLDOWN, id="huge: a day"),
        pytest.param(rate_limit("1e999"), 45, id="infinite: the default"),  # infinite: no length at all
        pytest.param(rate_limit("Fri, 31 Dec 9999 23:59:59 GMT"), MAX_COOLDOWN, id="year 9999: a day"),
        pytest.param(
            status(429, message="Rate limited, please retry after 20s"), 20, id="reset hint in the body"
        ),  # a reset hint in the body
        pytest.param(status(429, message="You exceeded your current quota"), 3600, id="quota: an hour"),
    ],
)
def test_429_cools_the_key_down_and_rotates_at_once(world: World, answer: Answer, seconds: float) -> None:
    client = world.client()
    world.net.script(K1, answer)
    start = world.clock()
    done = ask(client)
    assert done.error is None and done.text == "fine"
    assert world.net.sent() == plan(K1, K2)
    assert world.clock.sleeps == []  # another key was free: no waiting
    assert world.cooldown_of(K1) == pytest.approx(start + seconds, abs=2 if seconds == 120 else 1e-6)
    assert [world.status_of(k) for k in (K1, K2)] == [COOLING, OK]
    assert any("rate-limited until" in n and "trying the next key" in n for n in done.notices)


def test_every_key_cooling_beyond_the_budget_is_rate_limited_with_the_earliest_reset(world: World) -> None:
    client = world.client((K1, K2), max_wait_seconds=10)
    world.net.script(K1, rate_limit("300"))
    world.net.script(K2, rate_limit("100"))
    start = world.clock()
    done = ask(client)
    assert isinstance(done.error, errors.RateLimited)
    assert done.error.earliest_reset == start + 100
    assert "earliest resets at" in done.error.message and "(in 100s)" in done.error.message
    assert world.net.sent() == plan(K1, K2)
    assert world.clock.sleeps == []
    again = ask(client)
    assert isinstance(again.error, errors.RateLimited) and len(world.net.log) == 2


def test_a_short_cooldown_within_the_budget_is_waited_for(world: World) -> None:
    client = world.client((K1,), max_wait_seconds=10)
    world.net.script(K1, rate_limit("3"))
    done = ask(client)
    assert done.error is None and done.text == "fine"
    assert world.clock.sleeps == [3.0]
    assert world.net.sent() == plan(K1, K1)
    assert world.net.log[1].at == world.net.log[0].at + 3
    assert any("waiting 3.0s" in n for n in done.notices)


def test_the_wait_budget_is_for_the_whole_request(world: World) -> None:
    client = world.client((K1,), max_wait_seconds=10)
    world.net.script(K1, rate_limit("6"), rate_limit("6"))
    done = ask(client)
    assert isinstance(done.error, errors.RateLimited)
    assert world.clock.sleeps == [6.0]  # 6 + 6 would pass the budget of 10
    assert world.net.sent() == plan(K1, K1)


# -- 5xx, connection errors, timeouts: the same key again, a bounded number of times ---------------------

TRANSIENT = [
    pytest.param(status(500), errors.HTTPStatusError, id="500"),
    pytest.param(status(503), errors.HTTPStatusError, id="503"),
    pytest.param(status(529), errors.HTTPStatusError, id="529"),
    pytest.param(status(408), errors.HTTPStatusError, id="408"),
    pytest.param(refused, errors.ConnectError, id="refused"),
    pytest.param(timeout, errors.TimeoutError, id="timeout"),
    pytest.param(cut_before_text, errors.StreamInterrupted, id="stream cut before text"),
]


@pytest.mark.parametrize(("failure", "kind"), TRANSIENT)
def test_transient_failures_retry_the_same_key_with_backoff(
    world: World, failure: Answer, kind: type[errors.ProviderError]
) -> None:
    client = world.client(max_retries=2)
    world.net.script(K1, failure, failure)
    done = ask(client)
    assert done.error is None and done.text == "fine"
    assert world.net.sent() == plan(K1, K1, K1)
    first, second = world.clock.sleeps
    assert 0.375 <= first <= 0.5 and 0.75 <= second <= 1.0  # 0.5 * 2**n, minus up to 25% jitter
    assert [world.status_of(k) for k in (K1, K2, K3)] == [OK, OK, OK]


@pytest.mark.parametrize(("failure", "kind"), TRANSIENT)
def test_transient_failures_give_up_after_max_retries_without_marking_the_key(
    world: World, failure: Answer, kind: type[errors.ProviderError]
) -> None:
    client = world.client(max_retries=2)
    world.net.default = failure
    done = ask(client)
    assert type(done.error) is kind
    assert world.net.sent() == plan(K1, K1, K1)  # never another key
    assert len(world.clock.sleeps) == 2
    assert [world.status_of(k) for k in (K1, K2, K3)] == [OK, OK, OK]
    assert HOST[PLAN] in str(done.error)


# -- what a new key cannot fix: give up at once, keys untouched -------------------------------------------


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        pytest.param(status(404), errors.HTTPStatusError, id="404"),
        pytest.param(status(400), errors.HTTPStatusError, id="400"),
        pytest.param(status(422), errors.HTTPStatusError, id="422"),
        pytest.param(redirect(301), errors.EndpointRedirect, id="301"),
        pytest.param(redirect(302), errors.EndpointRedirect, id="302"),
        pytest.param(redirect(307), errors.EndpointRedirect, id="307"),
        pytest.param(redirect(308), errors.EndpointRedirect, id="308"),
        pytest.param(html, errors.MalformedResponse, id="html page"),
        pytest.param(
            lambda request: httpx.Response(200, text="{not json"), errors.MalformedResponse, id="invalid json"
        ),
        pytest.param(
            lambda request: httpx.Response(200, json={"choices": []}), errors.MalformedResponse, id="no choices"
        ),
    ],
)
@pytest.mark.parametrize("stream", [True, False])
def test_endpoint_errors_give_up_without_touching_keys(
    world: World, answer: Answer, kind: type[errors.ProviderError], stream: bool
) -> None:
    client = world.client()
    world.net.default = answer
    done = ask(client, stream=stream)
    assert type(done.error) is kind
    assert world.net.sent() == plan(K1)
    assert world.clock.sleeps == []
    assert [world.status_of(k) for k in (K1, K2, K3)] == [OK, OK, OK]
    if isinstance(done.error, errors.EndpointRedirect):
        assert done.error.location == f"{TRAP}/chat/completions"  # named, never followed


# -- after text reached the user: never sent again ----------------------------------------------------------


@pytest.mark.parametrize(
    "answer", [cut_after_text, error_after_text(429), error_after_text(401), error_after_text(503)]
)
def test_a_failure_after_text_is_not_retried_and_marks_no_key(world: World, answer: Answer) -> None:
    client = world.client()
    world.net.script(K1, answer)
    done = ask(client)
    assert done.text == "partial"
    assert isinstance(done.error, errors.StreamInterrupted)
    assert "What arrived so far is kept" in done.error.message
    assert world.net.sent() == plan(K1)
    assert world.clock.sleeps == []
    assert [world.status_of(k) for k in (K1, K2, K3)] == [OK, OK, OK]


# -- keys whose source can issue a new one --------------------------------------------------------------------


def test_a_rejected_refreshable_key_is_refreshed_and_resent_to_the_same_host(world: World) -> None:
    client = world.client((K1, K2), commands={K1: ("sh", "-c", "echo sk-refreshed-key-0001")})
    world.net.script(K1, status(401))
    done = ask(client)
    assert done.error is None and done.text == "fine"
    assert world.net.sent() == plan(K1, "sk-refreshed-key-0001")
    assert any("refreshed key" in n for n in done.notices)


def test_a_refresh_that_gives_the_same_key_exhausts_it(world: World) -> None:
    client = world.client((K1, K2), commands={K1: ("sh", "-c", f"echo {K1}")})
    world.net.script(K1, status(401))
    assert ask(client).text == "fine"
    assert world.net.sent() == plan(K1, K2)
    assert world.status_of(K1) == EXHAUSTED


def test_a_key_is_refreshed_at_most_once_per_request(world: World) -> None:
    """A source that hands out a new key each time, each rejected: one refresh, then the next key."""
    client = world.client((K1, K2), commands={K1: ("sh", "-c", "echo sk-new-key-$$")})
    world.net.default = status(401)
    world.net.script(K2, ok())
    done = ask(client)
    assert done.error is None and done.text == "fine"
    keys = [key for _, key in world.net.sent()]
    assert keys[0] == K1 and keys[1].startswith("sk-new-key-") and keys[2:] == [K2]
    assert world.status_of(K1) == EXHAUSTED


# -- /models follows the same rules -------------------------------------------------------------------------


def test_models_rotates_and_retries_like_chat(world: World) -> None:
    client = world.client()
    world.net.script(K1, rate_limit("30"))
    world.net.script(K2, status(502))
    assert client.models() == [{"id": "m"}]
    assert world.net.sent() == plan(K1, K2, K2)
    assert [world.status_of(k) for k in (K1, K2)] == [COOLING, OK]


# -- the routing invariant ------------------------------------------------------------------------------------


def test_a_pinned_key_goes_to_its_own_endpoint_and_no_other(world: World) -> None:
    client = world.client((K1, K2), pinned={K2: EU})
    world.net.script(K1, rate_limit("300"))
    assert ask(client).text == "fine"
    assert world.net.sent() == [(HOST[PLAN], K1), (HOST[EU], K2)]


def test_a_pool_of_another_provider_is_refused() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        w = World(Path(tmp))
        other = w.client((OTHER_KEY,), provider="other", endpoint=OTHER)
        route = w.client().route
        with pytest.raises(ValueError, match="cannot serve"):
            RecoveringClient(route, other.pool, w.transport, RecoverySettings(**DEFAULTS))


KINDS: dict[str, Answer] = {
    "ok": ok(),
    "401": status(401),
    "402": status(402),
    "403": status(403),
    "429": rate_limit("30"),
    "429-short": rate_limit("1"),
    "500": status(500),
    "503": status(503),
    "refused": refused,
    "timeout": timeout,
    "301": redirect(301),
    "307": redirect(307),
    "404": status(404),
    "html": html,
    "cut-before": cut_before_text,
    "cut-after": cut_after_text,
}
REJECTED = {"401", "402", "403"}
COOLED = {"429": 30.0, "429-short": 1.0}
RETRIED = {"500", "503", "refused", "timeout", "cut-before"}  # the same key next, if anything
FINAL = {"ok", "301", "307", "404", "html", "cut-after"}  # nothing more in that request


@settings(max_examples=200, deadline=None)
@given(
    pinned=st.lists(st.booleans(), min_size=1, max_size=4),
    answers=st.lists(st.sampled_from(sorted(KINDS)), max_size=30),
    calls=st.lists(st.sampled_from(["plan", "other"]), min_size=1, max_size=6),
    max_wait=st.sampled_from([0.0, 5.0]),
    strategy=st.sampled_from(["fill_first", "round_robin", "least_used", "random"]),
)
def test_every_request_goes_to_its_routes_host_with_a_key_of_its_pool(
    pinned: list[bool], answers: list[str], calls: list[str], max_wait: float, strategy: str
) -> None:
    keys = tuple(f"pk-{i}-{'x' * 12}" for i in range(len(pinned)))
    allowed = {key: HOST[EU] if pin else HOST[PLAN] for key, pin in zip(keys, pinned, strict=True)}
    allowed[OTHER_KEY] = HOST[OTHER]
    owner = {key: "plan" for key in keys} | {OTHER_KEY: "other"}
    queue = deque(answers)
    answered: list[tuple[int, str]] = []  # (call, kind) of each request, in order

    current = [0]  # the call under way

    def handler(request: httpx.Request) -> httpx.Response:
        kind = queue.popleft() if queue else "ok"
        answered.append((current[0], kind))
        return KINDS[kind](request)

    with tempfile.TemporaryDirectory() as tmp:
        w = World(Path(tmp))

        w.net.default = handler
        clients = {
            "plan": w.client(
                keys,
                pinned={k: EU for k, pin in zip(keys, pinned, strict=True) if pin},
                strategy=strategy,
                max_wait_seconds=max_wait,
            ),
            "other": w.client((OTHER_KEY,), provider="other", endpoint=OTHER, max_wait_seconds=max_wait),
        }
        for call_no, provider in enumerate(calls):
            current[0] = call_no
            ask(clients[provider])  # every failure is a HermesError: anything else escapes and fails
            w.clock.now += 7
        final = {key: w.store.read(owner[key]).get(fingerprint(key), FRESH) for key in owner}

    log = w.net.log
    for sent, (call, _) in zip(log, answered, strict=True):
        assert sent.key in allowed, "a request without a key of any pool"
        assert sent.host == allowed[sent.key], f"{sent.key} reached {sent.host}, not {allowed[sent.key]}"
        assert owner[sent.key] == calls[call], "a key of another provider's pool"

    for i, (sent, (call, kind)) in enumerate(zip(log, answered, strict=True)):
        later = [(s, c) for s, (c, _) in zip(log[i + 1 :], answered[i + 1 :], strict=True)]
        same_call = [s for s, c in later if c == call]
        if kind in REJECTED:
            assert all(s.key != sent.key for s, _ in later), "an exhausted key was sent again"
        if kind in COOLED:
            assert all(s.at >= sent.at + COOLED[kind] for s, _ in later if s.key == sent.key), "sent while cooling"
        if kind in RETRIED and same_call:
            assert same_call[0].key == sent.key, "a transient failure moved to another key"
        if kind in FINAL:
            assert same_call == [], "a request went on after its answer, or after a failure no key can fix"

    for key, state in final.items():
        got = {kind for sent, (_, kind) in zip(log, answered, strict=True) if sent.key == key}
        assert bool(state.exhausted) == bool(got & REJECTED), f"{key}: exhausted {state.exhausted!r} after {got}"
        assert (state.cooldown_until > 0) == bool(got & set(COOLED)), f"{key}: cooldown after {got}"
        assert math.isfinite(state.cooldown_until)
