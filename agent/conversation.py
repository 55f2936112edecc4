"""A conversation's messages: what is said (`Message`), where it is recorded (`ConversationLog`), and
how an assistant message is assembled from a stream of events (`ReplyBuilder`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from agent.events import Event, Finished, ReasoningDelta, TextDelta, ToolCallDelta, Usage

if TYPE_CHECKING:
    from agent.attachments import Attachment
    from agent.route import Route

INTERRUPTED = "interrupted"
SUMMARY = "summary"  # the finish_reason that marks a message as the summary of earlier ones


@dataclass(frozen=True)
class Message:
    role: str
    content: str | None
    tool_calls: tuple[dict[str, Any], ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    # What produced an assistant message; kept for the session record, never sent to the API.
    provider: str | None = None
    model: str | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    created: float = field(default_factory=time.time)
    endpoint: str | None = None  # the base URL the answer came from
    reasoning: str | None = None  # what a reasoning model thought first: shown and stored, never sent back
    attachments: tuple[Attachment, ...] = ()  # files and images the user attached to this message

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.attachments:
            data["content"] = _with_attachments(self.content or "", self.attachments)
        if self.tool_calls:
            data["tool_calls"] = [dict(c) for c in self.tool_calls]
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        if self.name is not None and self.role == "tool":
            data["name"] = self.name
        return data


def _with_attachments(text: str, attachments: Sequence[Attachment]) -> str | list[dict[str, Any]]:
    """Text files as fenced blocks after the message; images, when there are any, as content parts."""
    blocks = [text, *(a.fenced() for a in attachments if not a.is_image)]
    body = "\n\n".join(b for b in blocks if b)
    images = [a for a in attachments if a.is_image]
    if not images:
        return body
    return [
        {"type": "text", "text": body},
        *({"type": "image_url", "image_url": {"url": a.data_url()}} for a in images),
    ]


class ConversationLog(Protocol):
    """Where the conversation is recorded, change by change, so that what is stored is what is on
    screen: messages as they complete, and the undo/retry that drop the last ones."""

    def append(self, message: Message) -> None: ...

    def truncate(self, keep: int, reason: str) -> None:
        """The conversation is now its first `keep` messages; the rest was superseded by `reason`."""
        ...


@dataclass
class ReplyBuilder:
    """Assembles an assistant message from events, including streamed tool-call fragments."""

    text: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    usage: Usage | None = None
    finish_reason: str | None = None

    def add(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.text.append(event.text)
        elif isinstance(event, ReasoningDelta):
            self.thoughts.append(event.text)
        elif isinstance(event, ToolCallDelta):
            call = self.calls.setdefault(
                event.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            if event.id:
                call["id"] = event.id
            if event.name:
                call["function"]["name"] += event.name
            call["function"]["arguments"] += event.arguments
        elif isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, Finished):
            self.finish_reason = event.reason

    @property
    def content(self) -> str:
        return "".join(self.text)

    def message(self, route: Route, finish_reason: str | None = None) -> Message:
        return Message(
            "assistant",
            self.content or (None if self.calls else ""),
            tool_calls=tuple(self.calls[i] for i in sorted(self.calls)),
            provider=route.provider.id,
            model=route.model,
            endpoint=route.endpoint.url,
            reasoning="".join(self.thoughts) or None,
            usage=self.usage,
            finish_reason=finish_reason or self.finish_reason or "stop",
        )
