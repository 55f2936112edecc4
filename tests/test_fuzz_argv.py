"""Fuzz: arbitrary bytes as the prompt and as option values never get exit 1 from the installed command.

argv reaches hermes as bytes; what is not UTF-8 must be refused by name (exit 2), and what is must be
handled whatever it says. One fake server answers every example.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import clean_env
from tests.fakeserver import FakeServer

KEY = "sk-fuzz-argv-0001"

# argv cannot hold NUL; anything else can arrive, valid UTF-8 or not.
_arg = (
    st.one_of(
        st.binary(min_size=1, max_size=40),
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=40).map(str.encode),
        st.sampled_from([b"-", b"--", b"-h", b"caf\xe9", b"\xff\xfe", b"myplan:", b":model", b"http://", b"inf"]),
    )
    .map(lambda b: b.replace(b"\0", b""))
    .filter(bool)
)

_config_keys = (
    st.sampled_from(
        [
            b"model.name",
            b"model.provider",
            b"model.base_url",
            b"agent.timeout",
            b"agent.max_retries",
            b"providers.myplan.api_keys",
            b"providers.myplan.models",
            b"credentials.strategy",
            b"local.keep_alive",
            b"mcp.servers.x.env",
            b"fallback.provider",
        ]
    )
    | _arg
)

_commands = st.one_of(
    st.tuples(st.just(b"ask"), _arg),
    st.tuples(st.just(b"ask"), st.just(b"-m"), _arg, st.just(b"hi")),
    st.tuples(st.just(b"ask"), st.just(b"-p"), _arg, st.just(b"hi")),
    st.tuples(st.just(b"ask"), st.just(b"--base-url"), _arg, st.just(b"hi")),
    st.tuples(st.just(b"ask"), st.just(b"-s"), _arg, st.just(b"hi")),
    st.tuples(st.just(b"ask"), st.just(b"-r"), _arg, st.just(b"hi")),
    st.tuples(st.just(b"config"), st.just(b"set"), _config_keys, _arg),
    st.tuples(st.just(b"auth"), st.just(b"list"), _arg),
    st.tuples(st.just(b"sessions"), st.just(b"show"), _arg),
    st.tuples(st.just(b"sessions"), st.just(b"search"), _arg),
    st.tuples(st.just(b"models"), st.just(b"-p"), _arg),
)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer() as srv:
        yield srv


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=_commands)
def test_no_argv_gets_exit_1(server: FakeServer, argv: tuple[bytes, ...]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        config = home / "config.toml"
        config.write_text(
            f'[model]\nprovider = "myplan"\nname = "model-a"\n[providers.myplan]\nbase_url = "{server.base_url}"\n'
        )
        done = subprocess.run(
            [sys.executable.encode(), b"-m", b"hermes_cli", *argv],
            input=b"",
            capture_output=True,
            timeout=60,
            env=clean_env(home, MYPLAN_API_KEY=KEY),
        )
        stderr = done.stderr.decode("utf-8", "replace")
        assert done.returncode != 1, (argv, stderr)
        assert "Traceback" not in stderr and "internal error" not in stderr, (argv, stderr)
        if any(_not_utf8(a) for a in argv):
            assert done.returncode == 2 and "is not UTF-8 text" in stderr, (argv, stderr)
        # Whatever config set accepted, the file still loads.
        check = subprocess.run(
            [sys.executable, "-m", "hermes_cli", "config", "show"], capture_output=True, timeout=60, env=clean_env(home)
        )
        assert check.returncode == 0, (argv, check.stderr)


def _not_utf8(arg: bytes) -> bool:
    try:
        arg.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
