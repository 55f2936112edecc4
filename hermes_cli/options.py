"""The options `hermes chat` and `hermes ask` share."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChatOptions:
    model: str | None = None
    provider: str | None = None
    base_url: str | None = None
    system: str | None = None
    continue_latest: bool = False
    resume: str | None = None
    no_tools: bool = False
    yes: bool = False
    no_save: bool = False
    no_fallback: bool = False
    attach: tuple[str, ...] = ()  # -a FILE (repeatable; "-" is stdin)
    no_project_context: bool = False  # --no-project-context: leave AGENTS.md out
