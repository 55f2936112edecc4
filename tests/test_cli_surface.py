"""The command line's surface as the contract gives it: `--help` on every command, and shell completion via
Typer that offers exactly what the help shows. The tree is walked the way a user's shell walks it, through
completion, so a command that completion does not offer, or whose help fails, fails here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import clean_env

# The console script `pip install .` made: completion is keyed on the program's name (`_HERMES_COMPLETE`).
HERMES = str(Path(sys.executable).with_name("hermes"))

TOP_LEVEL = ["ask", "chat", "providers", "models", "tools", "rollback", "config", "auth", "sessions", "local", "mcp"]
GROUPS = {
    "config": {"path", "show", "get", "set", "edit"},
    "auth": {"list", "add", "remove", "reset"},
    "sessions": {"list", "show", "search", "export", "delete"},
    "local": {"start", "stop", "status", "logs"},
    "mcp": {"list", "add", "remove", "test"},
}


def _run(env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HERMES, *args], env={**env, **extra}, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60
    )


def _complete(env: dict[str, str], line: str) -> list[str]:
    """What bash offers after `line` (the word being completed is its last, possibly empty)."""
    words = line.split(" ")
    done = _run(env, _HERMES_COMPLETE="complete_bash", COMP_WORDS=line, COMP_CWORD=str(len(words) - 1))
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def _help_section(text: str, title: str) -> str:
    match = re.search(rf"^{title}:\n(.*?)(?:\n\n|\Z)", text, re.S | re.M)
    return match.group(1) if match else ""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return clean_env(home, HOME=str(tmp_path))


def test_every_command_has_help_and_completion_offers_what_it_shows(env: dict[str, str]) -> None:
    assert _complete(env, "hermes ") == TOP_LEVEL
    paths = [[name] for name in TOP_LEVEL]
    for group, commands in GROUPS.items():
        offered = _complete(env, f"hermes {group} ")
        assert set(offered) >= commands, group
        paths += [[group, name] for name in offered]
    for path in [[], *paths]:
        shown = _run(env, *path, "--help")
        assert shown.returncode == 0, (path, shown.stderr)
        assert shown.stdout.startswith(f"Usage: hermes {' '.join([*path, ''])}"), (path, shown.stdout[:200])
        options = _help_section(shown.stdout, "Options")
        assert "--help" in options, path
        for option in _complete(env, " ".join(["hermes", *path, "--"])):
            assert re.search(rf"(^|[ ,]){re.escape(option)}\b", options, re.M), (path, option, options)
        if path and path[0] in GROUPS and len(path) == 1:
            listed = re.findall(r"^  (\S+)", _help_section(shown.stdout, "Commands"), re.M)
            assert listed == _complete(env, f"hermes {path[0]} "), path


def test_completion_offers_the_options_of_the_command_being_typed(env: dict[str, str]) -> None:
    assert _complete(env, "hermes ses") == ["sessions"]
    assert set(_complete(env, "hermes sessions list --")) == {"--json", "--limit", "--help"}
    offered = _complete(env, "hermes ask --")
    for option in ("--model", "--provider", "--base-url", "--system", "--continue", "--resume", "--attach", "--json"):
        assert option in offered


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_a_script_that_asks_hermes(env: dict[str, str], shell: str) -> None:
    shown = _run(env, "--show-completion", shell)
    assert shown.returncode == 0, shown.stderr
    assert "_HERMES_COMPLETE" in shown.stdout


def test_install_completion_sets_up_bash(env: dict[str, str], tmp_path: Path) -> None:
    installed = _run(env, "--install-completion", "bash")
    assert installed.returncode == 0, installed.stderr
    assert "bash completion installed" in installed.stdout
    assert "_HERMES_COMPLETE" in "".join(p.read_text() for p in tmp_path.glob(".bash_completions/*"))
    assert ".bash_completions" in (tmp_path / ".bashrc").read_text()
