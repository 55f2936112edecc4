"""The tools hermes ships: files, shell, web and clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from agent.tools.base import Tool
from agent.tools.builtin.clock import CurrentTime
from agent.tools.builtin.files import EditFile, ListDir, ReadFile, SearchFiles, WriteFile
from agent.tools.builtin.shell import RunCommand
from agent.tools.builtin.web import FetchUrl


def builtin_tools(
    *, command_env: Callable[[], Mapping[str, str]] | None = None, network: bool = False, sandbox: bool = True
) -> list[Tool]:
    """One instance of each built-in tool, in a stable order (it is the order the model sees).

    `command_env` gives the environment of a command the model runs, when it runs (None: hermes's own, less
    the provider keys); `network` gives sandboxed commands the network ([tools] network); `sandbox` False runs them
    unconfined even where bubblewrap works ([tools] sandbox)."""
    return [
        ReadFile(),
        ListDir(),
        SearchFiles(),
        WriteFile(),
        EditFile(),
        RunCommand(env=command_env, network=network, sandbox=sandbox),
        FetchUrl(),
        CurrentTime(),
    ]
