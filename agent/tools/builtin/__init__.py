"""The tools hermes ships: files, shell, web and clock."""

from __future__ import annotations

from agent.tools.base import Tool
from agent.tools.builtin.clock import CurrentTime
from agent.tools.builtin.files import EditFile, ListDir, ReadFile, SearchFiles, WriteFile
from agent.tools.builtin.shell import RunCommand
from agent.tools.builtin.web import FetchUrl


def builtin_tools() -> list[Tool]:
    """One instance of each built-in tool, in a stable order (it is the order the model sees)."""
    return [ReadFile(), ListDir(), SearchFiles(), WriteFile(), EditFile(), RunCommand(), FetchUrl(), CurrentTime()]
