"""The secret scanner finds what a regex alternation of the secrets (longest first) would, in linear time
whatever the number of secrets: the same masking for one key as for ten thousand."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from providers.secrets import MIN_SECRET_LENGTH, Literals, Secrets

ALPHABET = "sk-ab\n "  # few letters, so that secrets overlap, nest and share prefixes


def by_regex(secrets: set[str], text: str) -> str:
    usable = sorted((s for s in secrets if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True)
    if not usable:
        return text
    return re.sub("|".join(map(re.escape, usable)), lambda m: f"<{m.group(0)}>", text)


@settings(max_examples=300, deadline=None)
@given(secrets=st.sets(st.text(ALPHABET, min_size=3, max_size=10), max_size=8), text=st.text(ALPHABET, max_size=80))
def test_the_scanner_masks_exactly_what_the_alternation_would(secrets: set[str], text: str) -> None:
    literals = Literals(secrets)
    assert literals.sub(lambda s: f"<{s}>", text) == by_regex(secrets, text)
    assert literals.search(text) == (by_regex(secrets, text) != text)


def test_ten_thousand_keys_are_each_masked() -> None:
    keys = [f"sk-pool-{i:06d}-abcdef" for i in range(10_000)]
    secrets = Secrets(keys=frozenset(keys), values=frozenset(keys))
    text = f"a {keys[0]} b {keys[4321]}c{keys[-1]}"
    assert secrets.scrub(text) == "a sk-…cdef b sk-…cdefcsk-…cdef"
    env = secrets.child_env({"OK": "fine", "LEAK": f"x{keys[777]}y"})
    assert env == {"OK": "fine"}


def test_a_redis_password_given_in_the_query_is_a_secret_too() -> None:
    from providers.registry import BUILTIN
    from providers.secrets import collect_secrets, mask_url

    url = "redis://127.0.0.1:6379/0?password=query-pass-w0rd-4321"
    secrets = collect_secrets(BUILTIN, env={}, providers=(), auth_keys=(), state_url=url, mcp_envs=())
    assert "query-pass-w0rd-4321" in secrets.keys
    assert "query-pass-w0rd-4321" not in secrets.scrub(f"could not reach {url}")
    child = secrets.child_env({"X": "query-pass-w0rd-4321", "PATH": "/bin"})
    assert "X" not in child and child["PATH"] == "/bin"
    assert "query-pass-w0rd-4321" not in mask_url(url)
