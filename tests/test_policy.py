"""Pure parts of recovery: Retry-After parsing, reset hints, decisions, selection strategies."""

from __future__ import annotations

import email.utils
import random

import pytest

from agent.retry_policy import (
    Action,
    Attempt,
    Decision,
    backoff,
    decide,
    parse_retry_after,
    reset_hint_seconds,
    when_none_available,
)
from providers import selection
from providers.credentials import AddedKeys, Credential, Credentials, fingerprint
from providers.errors import ConnectError, HTTPStatusError, MalformedResponse, ProviderError, StreamInterrupted
from providers.secrets import mask_key
from providers.state import CredentialState

NOW = 1_000_000.0
RNG = random.Random(7)


def http(status: int, *, retry_after: float | None = None, body: str = "") -> HTTPStatusError:
    return HTTPStatusError(f"HTTP {status}", status=status, retry_after=retry_after, body_excerpt=body)


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "7"}, NOW) == 7
    assert parse_retry_after({"retry-after": "1.5"}, NOW) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}, NOW) == 0.25
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, NOW) == pytest.approx(30, abs=1)
    assert parse_retry_after({"retry-after": "soon"}, NOW) is None
    assert parse_retry_after({}, NOW) is None


def test_reset_hints_in_bodies() -> None:
    assert reset_hint_seconds("Rate limited, please retry after 20s") == 20
    assert reset_hint_seconds("Your quota resets in 4hr 5min") == 4 * 3600 + 5 * 60
    assert reset_hint_seconds("try again in 1.5 seconds") == 1.5
    assert reset_hint_seconds("slow down") is None


def decision(
    error: ProviderError,
    *,
    retries_done: int = 0,
    can_refresh: bool = False,
    delivered: bool = False,
    default_cooldown: float = 60.0,
) -> Decision:
    attempt = Attempt(retries_done=retries_done, can_refresh=can_refresh, delivered=delivered)
    return decide(error, attempt, now=NOW, max_retries=2, default_cooldown=default_cooldown, rng=RNG)


def test_429_rotates_with_cooldown_from_retry_after_or_default() -> None:
    d = decision(http(429, retry_after=30))
    assert d.action is Action.COOL_DOWN and d.cooldown_until == NOW + 30
    d = decision(http(429), default_cooldown=60)
    assert d.cooldown_until == NOW + 60
    assert decision(http(429, body="You exceeded your current quota")).cooldown_until == NOW + 3600
    # A zero Retry-After still cools for a moment, so the rotation loop cannot spin.
    assert decision(http(429, retry_after=0)).cooldown_until == NOW + 1


def test_401_403_402_exhaust_or_refresh() -> None:
    for status in (401, 403, 402):
        assert decision(http(status)).action is Action.EXHAUST
    assert decision(http(401), can_refresh=True).action is Action.REFRESH
    assert decision(http(403), can_refresh=True).action is Action.REFRESH
    assert decision(http(402), can_refresh=True).action is Action.EXHAUST  # no new key buys credit


def test_nothing_is_retried_once_part_of_the_answer_was_shown() -> None:
    for error in (http(500), http(429), http(401), ConnectError("refused"), StreamInterrupted("cut")):
        assert decision(error, delivered=True).action is Action.GIVE_UP


def test_no_credential_available_waits_within_the_budget_or_gives_up() -> None:
    def none_available(*, exhausted: bool = False, reset: float | None, waited: float = 0.0) -> Decision:
        return when_none_available(all_exhausted=exhausted, earliest_reset=reset, now=NOW, waited=waited, max_wait=10)

    d = none_available(reset=NOW + 4)
    assert d.action is Action.WAIT and d.delay == 4
    assert none_available(reset=NOW + 4, waited=7).action is Action.GIVE_UP  # the budget is per request
    assert none_available(reset=NOW + 11).action is Action.GIVE_UP
    assert none_available(reset=NOW - 5).delay == 0  # already reset: select again at once
    assert none_available(reset=None).delay == 0
    assert none_available(exhausted=True, reset=None).action is Action.GIVE_UP


def test_transient_errors_retry_same_then_give_up() -> None:
    for error in (http(500), http(503), ConnectError("refused"), StreamInterrupted("cut")):
        d = decision(error)
        assert d.action is Action.RETRY_SAME and 0 < d.delay <= 0.5
        assert decision(error, retries_done=2).action is Action.GIVE_UP


def test_404_and_bad_bodies_give_up_without_touching_keys() -> None:
    assert decision(http(404)).action is Action.GIVE_UP
    assert decision(http(400)).action is Action.GIVE_UP
    assert decision(MalformedResponse("html")).action is Action.GIVE_UP


def test_backoff_is_bounded_and_jittered() -> None:
    delays = [backoff(n, random.Random(n)) for n in range(10)]
    assert all(0 < d <= 8 for d in delays)
    assert delays[9] >= 6  # the cap minus at most 25% jitter


def creds(n: int) -> list[Credential]:
    return [Credential(f"id{i}", "p", "env", f"k{i}", f"secret-key-{i}") for i in range(n)]


def test_strategies() -> None:
    cs = creds(3)
    states = {
        "id0": CredentialState(requests=5),
        "id1": CredentialState(requests=1),
        "id2": CredentialState(requests=3),
    }
    ids = [c.id for c in cs]
    every = selection.available(ids, states, NOW, frozenset())
    counts = {cred_id: s.requests for cred_id, s in states.items()}
    assert selection.choose(every, ids, "fill_first", counts=counts) == 0
    assert [selection.choose(every, ids, "round_robin", cursor=i) for i in range(4)] == [0, 1, 2, 0]
    assert selection.choose(every, ids, "least_used", counts=counts) == 1
    assert selection.choose(every, ids, "least_used", counts={"id0": 2, "id2": 1}) == 1  # id1: none yet
    assert selection.choose(every, ids, "random", rng=random.Random(1)) in (0, 1, 2)
    assert selection.choose([], ids, "fill_first") is None


def test_available_skips_cooling_and_exhausted_and_earliest_reset() -> None:
    cs = creds(3)
    states = {
        "id0": CredentialState(cooldown_until=NOW + 50),
        "id1": CredentialState(exhausted="401 bad key", cooldown_until=NOW + 5),
        "id2": CredentialState(cooldown_until=NOW - 1),
    }
    ids = [c.id for c in cs]
    assert list(selection.available(ids, states, NOW, frozenset())) == [2]
    assert list(selection.available(ids, states, NOW, frozenset({"id2"}))) == []
    # The exhausted key's old cooldown must not count as a reset.
    assert selection.earliest_reset(ids, states, NOW, frozenset()) == NOW + 50


def test_a_pools_stored_keys_are_made_credentials_only_when_asked_for_and_as_eagerly_made() -> None:
    env = Credential(fingerprint("sk-env-key-0001"), "p", "env P_API_KEY", "P_API_KEY", "sk-env-key-0001")
    keys = ("sk-stored-key-0001", "sk-stored-key-0002", "sk-stored-key-0003")
    stored = AddedKeys(
        ids=tuple(map(fingerprint, keys)),
        keys=keys,
        labels=("work", None, ""),
        base_urls=(None, "https://eu.example/v1", ""),
        added=(1, None, 3),
    )
    command = Credential("cmd-1", "p", "api_key_command", "api_key_command", "sk-cmd-key-0001", None, ("pass", "p"))
    creds = Credentials([env], stored, [command], provider="p")
    made = [
        env,
        Credential(stored.ids[0], "p", "auth", "work", keys[0], None),
        Credential(stored.ids[1], "p", "auth", "added", keys[1], "https://eu.example/v1"),
        Credential(stored.ids[2], "p", "auth", "added", keys[2], None),
        command,
    ]
    assert list(creds) == made and len(creds) == 5
    assert list(creds.ids) == [c.id for c in made] and list(creds.secrets) == [c.secret for c in made]
    assert creds[-1] is command and creds[-5] == env and creds[1:3] == tuple(made[1:3])
    for index in (5, -6):
        with pytest.raises(IndexError):
            creds[index]
    assert creds.providers() == {"p"} and Credentials([env]).providers() == {"p"}
    new = command._replace(secret="sk-cmd-key-0002")
    assert list(creds.replaced(new)) == [*made[:4], new] and creds[-1] is command


def test_masking_never_shows_a_whole_key() -> None:
    for key in ("sk-or-v1-abcdef0123456789", "shortkey12", "abc", "sk-1234567890ab"):
        assert key not in mask_key(key)
    assert mask_key("sk-or-v1-abcdef0123456789") == "sk-…6789"
    assert fingerprint("a") == fingerprint("a") != fingerprint("b")


@pytest.mark.parametrize(
    "value",
    [
        "99999999999999999999",
        "1e308",
        "1e999",
        "inf",
        "-inf",
        "nan",
        "NaN",
        "-5",
        "garbage",
        "",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Mon, 01 Jan 0001 00:00:00 GMT",
        "Tue, 99 Foo 2026 99:99:99 GMT",
        "Wed, 01 Jan 99999 00:00:00 GMT",
    ],
)
@pytest.mark.parametrize("header", ["retry-after", "retry-after-ms"])
def test_absurd_retry_after_gives_a_finite_capped_cooldown(header: str, value: str) -> None:
    import math

    from agent.retry_policy import MAX_COOLDOWN

    wait = parse_retry_after({header: value}, NOW)
    assert wait is None or (math.isfinite(wait) and 0 <= wait <= MAX_COOLDOWN)
    d = decision(http(429, retry_after=wait))
    assert d.action is Action.COOL_DOWN and math.isfinite(d.cooldown_until)
    assert NOW + 1 <= d.cooldown_until <= NOW + MAX_COOLDOWN


def test_absurd_reset_hint_in_a_body_is_capped() -> None:
    from agent.retry_policy import MAX_COOLDOWN

    assert reset_hint_seconds("retry after " + "9" * 400 + " hours") is None  # infinite: no usable length
    assert reset_hint_seconds("retry after 99999999 hours") == MAX_COOLDOWN
    assert decision(http(429, body="try again in 1e400 hours")).cooldown_until <= NOW + MAX_COOLDOWN
