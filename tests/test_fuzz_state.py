"""Fuzz: whatever is in place of hermes's state files (any JSON value, any bytes, a directory, an empty file)
never gets exit 1 from the installed command, and nothing the user wrote is destroyed:

* credentials.db (rebuildable state) and credentials.json (the state file of earlier versions, migrated):
  `ask` answers with the key from the environment, `auth list` and `auth reset` work, and the state hermes
  leaves is readable and strict (no inf or NaN); a directory in either place is left as it was;
* auth.json (keys only the user has): every command that reads it leaves it byte for byte as it was, and a
  file hermes cannot use is named with what to do;
* the sessions database: a file that is not a hermes database is refused by name and left as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Hermes, clean_env, state_document
from tests.fakeserver import FakeServer

KEY = "sk-fuzz-state-0001"
DIRECTORY = object()  # a directory in the file's place

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()  # floats may be Infinity/NaN: what Python's json writes by default


# Shapes close to the real documents, so that the fuzz reaches the per-field checks.
_state_like = st.fixed_dictionaries(
    {
        "providers": st.dictionaries(
            st.sampled_from(["myplan", "other"]) | st.text(max_size=4),
            st.dictionaries(st.text(max_size=8), _json, max_size=3) | _json,
            max_size=2,
        )
        | _json,
    },
    optional={"cursors": st.dictionaries(st.sampled_from(["myplan", "x"]), _json, max_size=2) | _json},
)
_auth_columns = st.fixed_dictionaries(
    {},
    optional={
        name: st.lists(st.sampled_from(["sk-fuzz-column-key-01", "", "0f40b72d", None, 1.5, True]), max_size=3) | _json
        for name in ("ids", "keys", "labels", "base_urls", "added")
    },
)
_auth_like = st.fixed_dictionaries(  # the first format: a list of entries
    {
        "credentials": st.lists(
            st.dictionaries(st.sampled_from(["provider", "key", "label", "base_url", "added"]), _json, max_size=5)
            | _json,
            max_size=3,
        )
        | _json,
    }
) | st.fixed_dictionaries(  # the second: per provider, one list per field
    {"version": st.sampled_from([2, 2, 1, 3, "2"]) | _json},
    optional={
        "providers": st.dictionaries(st.sampled_from(["myplan", "other", ""]), _auth_columns | _json, max_size=2)
        | _json
    },
)


def _contents(shaped: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.just(b""),
        st.just(DIRECTORY),
        st.binary(max_size=200),
        _json.map(_json_bytes),
        shaped.map(_json_bytes),
        shaped.map(_json_bytes),
    )


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer() as srv:
        yield srv


def _home(server: FakeServer, tmp: str) -> Hermes:
    home = Path(tmp)
    hermes = Hermes(home, clean_env(home, MYPLAN_API_KEY=KEY))
    hermes.write_config(
        f'[model]\nprovider = "myplan"\nname = "model-a"\n[providers.myplan]\nbase_url = "{server.base_url}"\n'
        '[credentials]\nstrategy = "round_robin"\n'
    )
    return hermes


def _place(path: Path, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is DIRECTORY:
        path.mkdir()
        (path / "inside").write_text("the user's")
    else:
        path.write_bytes(content)


def _snapshot(path: Path) -> Any:
    if path.is_dir():
        return sorted((p.name, p.read_bytes()) for p in path.iterdir())
    return path.read_bytes()


def _no_bug(done: Any) -> None:
    assert done.returncode != 1, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr


SETTINGS = settings(
    max_examples=int(os.environ.get("HERMES_FUZZ_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.mark.parametrize("name", ["credentials.db", "credentials.json"])
@SETTINGS
@given(content=_contents(_state_like))
def test_any_credential_state_is_rebuilt_and_the_key_still_answers(server: FakeServer, name: str, content: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hermes = _home(server, tmp)
        path = hermes.home / "state" / name
        _place(path, content)
        asked = hermes.run("ask", "--no-tools", "--no-save", "hi")
        _no_bug(asked)
        assert asked.returncode == 0 and asked.stdout.strip() == "Hello from fake", asked.stderr
        listed = hermes.run("auth", "list", "myplan")
        _no_bug(listed)
        assert listed.returncode == 0 and KEY[:3] in listed.stdout
        reset = hermes.run("auth", "reset")
        _no_bug(reset)
        if content is DIRECTORY:
            assert (path / "inside").read_text() == "the user's"
        if content is DIRECTORY and name == "credentials.db":
            assert reset.returncode == 2 and str(path) in reset.stderr
        else:
            assert reset.returncode == 0, reset.stderr
            json.dumps(state_document(path.parent), allow_nan=False)


@SETTINGS
@given(content=_contents(_auth_like))
def test_any_auth_json_is_named_and_never_rewritten(server: FakeServer, content: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hermes = _home(server, tmp)
        path = hermes.home / "state" / "auth.json"
        _place(path, content)
        before = _snapshot(path)
        asked = hermes.run("ask", "--no-tools", "--no-save", "hi")
        _no_bug(asked)
        assert asked.returncode == 0, asked.stderr  # the key from the environment still answers
        listed = hermes.run("auth", "list")
        _no_bug(listed)
        added = hermes.run("auth", "add", "myplan", input="sk-fuzz-added-key-0002\n")
        _no_bug(added)
        if added.returncode != 0:  # refused: because of the file, which it names
            assert added.returncode == 2 and str(path) in added.stderr, added.stderr
            assert _snapshot(path) == before
            assert str(path) in asked.stderr and str(path) in listed.stderr


@SETTINGS
@given(content=_contents(_json).filter(lambda c: c != b""))
def test_any_sessions_db_that_is_not_ours_is_refused_by_name_and_kept(server: FakeServer, content: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hermes = _home(server, tmp)
        path = hermes.home / "data" / "sessions.db"
        _place(path, content)
        before = _snapshot(path)
        for args in (("ask", "--no-tools", "hi"), ("sessions", "list"), ("ask", "-c", "--no-tools", "hi")):
            done = hermes.run(*args)
            _no_bug(done)
            assert done.returncode == 2 and str(path) in done.stderr, (args, done.stderr)
        assert _snapshot(path) == before
