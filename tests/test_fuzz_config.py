"""Fuzz: any config.toml built from the config's own schema, with values of every type, gets exit 0 or 2
from the installed `hermes ask`: never exit 1 or a traceback, and the file is left byte for byte as it was.

One fake server serves every example; each example runs `hermes ask` in a fresh HERMES_HOME.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hermes_cli.config import SCHEMA, STRATEGIES, _check_url
from tests.conftest import Hermes, clean_env
from tests.fakeserver import FakeServer

KEY = "sk-fuzz-config-0001"

# Settings that run programs (a key command, MCP servers) or reach other hosts (Redis) get only values
# of the wrong type here: the fuzz must not execute random text or resolve random names.
_RUNS_SOMETHING = {
    ("providers", "*", "api_key_command"),
    ("mcp", "servers", "*", "command"),
    ("credentials", "state"),
}
# `local` would start the bundled llama.cpp server: not a provider this fuzz may choose.
_PROVIDER_IDS = st.sampled_from(["myplan", "openrouter", "nope", "My Plan", "a.b", "x-y", ""])

_text = st.text(st.characters(codec="utf-8"), max_size=24)  # control characters, NUL, any plane
_numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 86_400, 86_401, 10**18, 1e308, float("inf"), float("-inf"), float("nan")]),
)
_words = st.sampled_from(["", "file", "round_robin", "10m", "99999999999h", "1e999", "inf", "http://", "model-a"])
_scalars = st.one_of(_text, _numbers, st.booleans(), _words)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_wrong_type_only = st.one_of(_numbers, st.booleans(), st.dictionaries(_text, _scalars, max_size=2))


# Endpoints only on this machine: a random host name would be looked up.
_URLS = st.sampled_from(["http://127.0.0.1:1/v1", "https://127.0.0.1:1", "http://", "ftp://127.0.0.1/", "127.0.0.1"])


def _of_its_type(check_name: str) -> st.SearchStrategy[Any]:
    """Values of the type a setting takes (most pass its check; extremes test what lies behind it)."""
    typed: dict[str, st.SearchStrategy[Any]] = {
        "_check_str": _text,
        "_check_url": _URLS,
        "_check_bool": st.booleans(),
        "_check_str_list": st.lists(_text, max_size=3),
        "_check_strategy": st.sampled_from(STRATEGIES),
        "_check_duration": st.sampled_from(["10m", "0", "1h", "366d"]) | st.integers(0, 10**8),
        "_check_env_table": st.dictionaries(_text, _text, max_size=2),
    }
    numbers = st.integers(0, 10**6) | st.floats(0, 1e6)
    return typed.get(check_name, numbers)


def _value_for(pattern: tuple[str, ...]) -> st.SearchStrategy[Any]:
    if pattern in _RUNS_SOMETHING:
        return _wrong_type_only
    if pattern[-1] == "provider":
        return _PROVIDER_IDS | _wrong_type_only
    if SCHEMA[pattern].check is _check_url:
        return _URLS | _wrong_type_only
    typed = _of_its_type(SCHEMA[pattern].check.__name__)
    return st.one_of(typed, typed, typed, _values)  # mostly its type, so that examples get past validation


def _setting(pattern: tuple[str, ...]) -> st.SearchStrategy[tuple[tuple[str, ...], Any]]:
    part = st.sampled_from(["myplan", "model-a", "gpt-4.1", "files"]) | _text.filter(bool)
    path = st.tuples(*(part if p == "*" else st.just(p) for p in pattern))
    return st.tuples(path, _value_for(pattern))


_settings = st.lists(st.one_of(*(_setting(p) for p in SCHEMA)), min_size=1, max_size=4)
# A key where the schema has a table, or a table where it has a setting.
_misplaced = st.lists(
    st.tuples(
        st.sampled_from(
            [
                ("model",),
                ("providers",),
                ("providers", "myplan"),
                ("credentials",),
                ("agent",),
                ("fallback",),
                ("mcp", "servers"),
                ("models",),
                ("sessions",),
                ("local",),
            ]
        ),
        _values,
    ),
    max_size=1,
)


def _put(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = doc
    for part in path[:-1]:
        if part == "[]":
            return  # array entries are built whole below
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def build_document(base_url: str, settings_: list[Any], misplaced: list[Any], fallback: list[Any]) -> str | None:
    doc: dict[str, Any] = {
        "model": {"provider": "myplan", "name": "model-a"},
        "providers": {"myplan": {"base_url": base_url}},
    }
    for path, value in [*settings_, *misplaced]:
        _put(doc, path, value)
    if fallback:
        doc["fallback"] = fallback
    try:
        return tomli_w.dumps(doc)
    except (TypeError, ValueError):
        return None  # a shape TOML cannot spell (tomli_w refuses it): no document to test


_fallback_entries = st.lists(
    st.dictionaries(
        st.sampled_from(["provider", "name", "base_url", "extra"]), _PROVIDER_IDS | _wrong_type_only | _text, max_size=3
    ),
    max_size=2,
)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer() as srv:
        yield srv


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(settings_=_settings, misplaced=_misplaced, fallback=_fallback_entries)
def test_any_schema_shaped_config_gets_exit_0_or_2_and_is_never_changed(
    server: FakeServer, settings_: list[Any], misplaced: list[Any], fallback: list[Any]
) -> None:
    text = build_document(server.base_url, settings_, misplaced, fallback)
    if text is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        hermes = Hermes(home, clean_env(home, MYPLAN_API_KEY=KEY))
        config = hermes.write_config(text)
        before = config.read_bytes()
        done = hermes.run("ask", "--no-tools", "hi", timeout=60)
        # 5 too: a zero timeout or a fallback to an unreachable endpoint is a valid setting that fails to connect.
        assert done.returncode in (0, 2, 5), (text, done.stderr)
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr, (text, done.stderr)
        assert config.read_bytes() == before
        if done.returncode == 2:
            assert done.stderr.startswith("hermes: ") or "\nhermes: error: " in done.stderr, done.stderr
