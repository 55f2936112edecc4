"""What a reply is made of, as it arrives: the one stream every consumer (ask, REPL, sessions) reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Finished:
    reason: str


@dataclass(frozen=True)
class Notice:
    """Something the user should know that is not the answer: a rotation, a wait, a fallback."""

    text: str


Event = TextDelta | ReasoningDelta | ToolCallDelta | Usage | Finished | Notice

# Events that mean the user has seen part of an answer: after one, a request is never replayed.
DELIVERING = (TextDelta, ReasoningDelta, ToolCallDelta)
