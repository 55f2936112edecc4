"""What a reply is made of, as it arrives: the one stream every consumer (ask, REPL, sessions) reads."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    cached_tokens: int = 0  # of the prompt tokens, those the provider served from its cache (cheaper)

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


@dataclass(frozen=True)
class ToolCallStarted:
    name: str
    summary: str  # the arguments in one short line
    preview: str = ""  # what it will change (diff, command), when the user was not asked about it


@dataclass(frozen=True)
class ToolCallFinished:
    name: str
    ok: bool
    summary: str  # the result in one short line ("42 lines", "exit 1", "not approved")
    seconds: float


APPROVE, APPROVE_ALWAYS, DENY = "y", "a", "n"


@dataclass(frozen=True)
class ApprovalNeeded:
    """A tool call waits for the user's yes. The consumer of the reply answers with `answer()` before
    asking for the next event; with no answer (no one to ask) the call is refused."""

    name: str
    preview: str  # the command, the diff, the URL
    reason: str  # why it asks, after "it": "changes files", "is dangerous: ..."
    dangerous: bool = False  # asks even with --yes; "always" is not offered
    refusal: str = ""  # why it did not run when no one can answer, and what would allow it
    _answer: list[str] = field(default_factory=list, repr=False, compare=False)

    def answer(self, choice: str) -> None:
        if choice not in (APPROVE, APPROVE_ALWAYS, DENY):
            raise ValueError(f"not an answer: {choice!r}")
        self._answer[:] = [choice]

    @property
    def choice(self) -> str | None:
        return self._answer[0] if self._answer else None


Event = (
    TextDelta
    | ReasoningDelta
    | ToolCallDelta
    | Usage
    | Finished
    | Notice
    | ToolCallStarted
    | ToolCallFinished
    | ApprovalNeeded
)

# Events that mean the user has seen part of an answer: after one, a request is never replayed.
DELIVERING = (TextDelta, ReasoningDelta, ToolCallDelta)
