"""The secret registry: everything hermes knows to be secret, in one place, for two jobs.

1. Child environments. Every process hermes starts on the model's behalf (run_command, MCP servers)
   or its own (the local server) gets its environment from `child_env`: provider keys, the state
   store's password and variables that look like credentials are left out. What the user names
   (`[tools] pass_env`, an MCP server's own `env` table) is passed through; a provider key never is.
2. Scrubbing. `scrub` replaces every known secret in a text with its masked form: tool results
   before they reach the model, errors, records and displays.

What counts as secret: every key of every provider (their env names and aliases, `api_key_env`,
`api_keys`, keys added with `hermes auth add`, `api_key_command` output once it has run), the
password of the state store's URL, and values of variables or MCP `env` entries that are named like
credentials (`*_TOKEN`, `*_SECRET`, `*_PASSWORD`, `*_KEY`...) or look like tokens.
Pure: the environment, config tables and stored keys are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter
from typing import Any, cast
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from providers.provider_config import ProviderConfig
from providers.registry import ProviderSpec

STATE_URL_ENV = "HERMES_STATE_URL"
MIN_SECRET_LENGTH = 6  # shorter strings would mask ordinary words; no real key is that short

# Names of variables that hold credentials by convention. `_KEY` alone counts (STRIPE_KEY); SSH_AUTH_SOCK
# does not (a socket path, and git over ssh needs it).
_CREDENTIAL_NAME = re.compile(
    r"(?:^|_)(?:API_?KEYS?|TOKENS?|SECRETS?|PASSWORD|PASSWD|CREDENTIALS?|PRIVATE_KEY|ACCESS_KEY|SECRET_KEY|KEYS?)$"
    r"|(?:^|_)(?:TOKEN|SECRET|PASSWORD|PASSWD)_",
    re.IGNORECASE,
)
# A value shaped like a token (ghp_…, sk-…, xoxb-…): long, one "word", letters and digits. Paths and
# URLs are not (they have / or .), so a filesystem server's root is not masked.
_TOKEN_VALUE = re.compile(r"(?=[A-Za-z0-9_\-+=]*\d)(?=[A-Za-z0-9_\-+=]*[A-Za-z])[A-Za-z0-9_\-+=]{20,}")

# Query parameters that carry a credential by their name (`api_key`, `token`, `sig`, `X-Amz-Credential`).
_SECRET_PARAM = re.compile(r"key|token|secret|password|passwd|sig|auth|credential", re.IGNORECASE)

# What every child gets even in a minimal environment: enough to find programs, a home and a locale.
MINIMAL_ENV = frozenset({"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LANGUAGE", "TZ", "TMPDIR"})


def mask_key(secret: str | None) -> str:
    """`sk-…a1b2`: never enough of a key to use it, enough to tell two keys apart."""
    if not secret:
        return "(none)"
    if len(secret) < 12:
        return "…" + secret[-2:] if len(secret) >= 6 else "…"
    return f"{secret[:3]}…{secret[-4:]}"


def named_like_credential(name: str) -> bool:
    return _CREDENTIAL_NAME.search(name) is not None


def looks_secret(name: str, value: str) -> bool:
    """A variable whose name or value says it is a credential."""
    return named_like_credential(name) or _TOKEN_VALUE.fullmatch(value) is not None


def url_password(url: str) -> str | None:
    """The password in the URL: its userinfo's, or a `?password=` query value (Redis URLs take both)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return parts.password
    return next((value for name, value in _query_params(parts.query) if name == "password" and value), None)


def mask_url(url: str) -> str:
    """The URL with every place a credential can sit masked: the userinfo (`redis://fleet:***@host:6379/0`,
    `https://***@host`: a lone user name may be the key itself), the values of query parameters named
    like credentials (`?api_key=***`) and the fragment (`#***`). A URL with none of them is returned as
    it is; one that cannot be parsed is shown whole only when no credential can be in it."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed host, such as `http://[x`
        return url if not re.search(r"[@?#]", url) else url.partition(":")[0] + "://***"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = parts.netloc
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if colon else f"***@{hostport}"
    query = "&".join(_mask_param(param) for param in parts.query.split("&")) if parts.query else ""
    masked = parts._replace(netloc=netloc, query=query, fragment="***" if parts.fragment else "")
    return url if masked == parts else urlunsplit(masked)


def credential_params(url: str) -> list[str]:
    """The names of the URL's query parameters that look like credentials (`?api_key=...`)."""
    return [name for name, value in _query_params(urlsplit(url).query) if value and _SECRET_PARAM.search(name)]


def _query_params(query: str) -> list[tuple[str, str]]:
    """A query's (name, value) pairs, decoded."""
    pairs = (param.partition("=") for param in query.split("&")) if query else ()
    return [(unquote_plus(name), unquote_plus(value)) for name, _, value in pairs]


def _mask_param(param: str) -> str:
    name, equals, value = param.partition("=")
    return f"{name}=***" if equals and value and _SECRET_PARAM.search(unquote_plus(name)) else param


@dataclass(frozen=True)
class Secrets:
    """`keys` never reach a child process (provider keys, the state store's password); `values` are
    every secret known, scrubbed from text; `names` are variables that never reach a child."""

    keys: frozenset[str] = frozenset()
    values: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()

    def with_keys(self, keys: Iterable[str | None]) -> Secrets:
        """Add keys learnt later (an api_key_command's output)."""
        keys = tuple(keys)
        if self.keys.issuperset(keys):  # the usual case, told in C without making a set of a pool's keys
            return self
        new = _long_enough(keys) - self.keys
        if not new:
            return self
        return Secrets(self.keys | new, self.values | new, self.names)

    @cached_property
    def _values_finder(self) -> Literals:
        return Literals(self.values)

    @cached_property
    def _keys_finder(self) -> Literals:  # only for a variable that pass_env names and that holds a secret
        return Literals(self.keys)

    def scrub(self, text: str) -> str:
        """`text` with every known secret replaced by its masked form."""
        return self._values_finder.sub(mask_key, text)

    def child_env(
        self,
        environ: Mapping[str, str],
        *,
        pass_env: Iterable[str] = (),
        extra: Mapping[str, str] | None = None,
        minimal: bool = False,
    ) -> dict[str, str]:
        """The environment of a child process.

        From `environ`: everything but secrets, or with `minimal` only MINIMAL_ENV and LC_*; plus the
        variables named in `pass_env` (a provider key is never passed, whatever its name); then `extra`,
        the child's own table from config, as the user wrote it.
        """
        wanted = frozenset(pass_env)
        env: dict[str, str] = {}
        values = self._values_finder  # one scan: every key is among the values
        for name, value in environ.items():
            if name in self.names:
                continue
            named = name in wanted
            if values.search(value) and (not named or self._keys_finder.search(value)):
                continue
            if minimal and not named and name not in MINIMAL_ENV and not name.startswith("LC_"):
                continue
            if not named and named_like_credential(name):
                continue
            env[name] = value
        env.update(extra or {})
        return env


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with each of `secrets` masked: for a handful of keys at hand (one pool's)."""
    return Secrets(values=_long_enough(secrets)).scrub(text)


_FIRST = itemgetter(0)  # a string's first character, taken in C by map()


def _long_enough(strings: Iterable[str | None]) -> frozenset[str]:
    """The strings long enough to be secrets; in C passes when all are, as the thousands of a pool are."""
    given = frozenset(strings)
    found = cast(frozenset[str], given - {None} if None in given else given)
    if min(map(len, found), default=MIN_SECRET_LENGTH) >= MIN_SECRET_LENGTH:
        return found
    return frozenset(s for s in found if len(s) >= MIN_SECRET_LENGTH)


class Literals:
    """Finds any of many literal strings in a text, the longest at the leftmost place, as a regex of
    their alternation would; but built in a few passes in C over them (compiling that regex for a pool
    of 10,000 keys takes a third of a second), and searching in time linear in the text's length times
    the number of the strings' lengths (few: keys come in a few shapes)."""

    def __init__(self, strings: Iterable[str]) -> None:
        items = _long_enough(strings)  # no copy of a frozenset of them: the registry's values are one
        self._items = items
        self._lengths = sorted(set(map(len, items)), reverse=True)
        # Only a place holding a string's first character can start one: the scan jumps between them.
        firsts = "".join(sorted(set(map(_FIRST, items))))
        self._starts = re.compile(f"[{re.escape(firsts)}]") if firsts else None

    def _find(self, text: str, pos: int) -> tuple[int, str] | None:
        if self._starts is None:
            return None
        while (m := self._starts.search(text, pos)) is not None:
            at = m.start()
            for length in self._lengths:
                if (item := text[at : at + length]) in self._items:
                    return at, item
            pos = at + 1
        return None

    def search(self, text: str) -> bool:
        return self._find(text, 0) is not None

    def sub(self, replace: Callable[[str], str], text: str) -> str:
        """`text` with each string found replaced by `replace(it)`."""
        parts: list[str] = []
        pos = 0
        while (found := self._find(text, pos)) is not None:
            at, item = found
            parts += (text[pos:at], replace(item))
            pos = at + len(item)
        return "".join(parts) + text[pos:] if parts else text


def _split_keys(value: str) -> list[str]:
    return [k.strip() for k in value.split(",") if k.strip()]


def collect_secrets(
    specs: Iterable[ProviderSpec],
    *,
    env: Mapping[str, str],
    providers: Iterable[ProviderConfig],
    auth_keys: Iterable[str],
    state_url: str | None,
    mcp_envs: Iterable[Mapping[str, Any]],
) -> Secrets:
    """Everything hermes can know to be secret before it runs a command."""
    names: set[str] = {STATE_URL_ENV}
    keys: set[str] = set()
    shareable: set[str] = set()  # secret, but the user may pass them on
    for spec in specs:
        for name in spec.key_names:
            # GITHUB_TOKEN or HF_TOKEN serve other tools too; an *_API_KEY is a provider's alone.
            if name in (spec.key_env, spec.keys_env) or name.endswith(("_API_KEY", "_API_KEYS")):
                names.add(name)
                keys.update(_split_keys(env.get(name, "")))
            else:
                shareable.update(_split_keys(env.get(name, "")))
    for config in providers:
        keys.update(k.strip() for k in config.api_keys)
        if config.api_key_env:
            names.add(config.api_key_env)
            keys.update(_split_keys(env.get(config.api_key_env, "")))
    for url in (env.get(STATE_URL_ENV), state_url):
        password = url_password(url) if url else None
        if password:
            keys.add(password)
    # Names matching the usual suffixes (a provider hermes does not know, or one of another tool).
    for name, value in env.items():
        if name.endswith(("_API_KEY", "_API_KEYS")):
            names.add(name)
            keys.update(_split_keys(value))
    for name, value in env.items():
        if looks_secret(name, value):
            shareable.add(value)
    for server_env in mcp_envs:
        shareable.update(v for k, v in server_env.items() if isinstance(v, str) and looks_secret(str(k), v))
    # The keys of `hermes auth add` may be thousands: each set of them is made once, in C.
    all_keys = _long_enough(map(str.strip, auth_keys)) | _long_enough(keys)
    return Secrets(all_keys, all_keys | _long_enough(shareable), frozenset(names))
