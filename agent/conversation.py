"""The agent core: a conversation, the route it talks on, and the reply loop.

`Agent` owns the only mutable session state: the message list and the current (route, client) pair.
`switch_model` replaces that pair as a whole: another provider gets its own pool and endpoint, the
same provider keeps its pool (and so its cooldowns); the history stays.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from agent.events import Event, Finished, TextDelta, ToolCallDelta, Usage

if TYPE_CHECKING:
    from agent.recovery import RecoveringClient
    from agent.route import Route
    from agent.runtime import Runtime

INTERRUPTED = "interrupted"
ERROR = "error"


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

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            data["tool_calls"] = [dict(c) for c in self.tool_calls]
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        if self.name is not None and self.role == "tool":
            data["name"] = self.name
        return data


@dataclass
class ReplyBuilder:
    """Assembles an assistant message from events, including streamed tool-call fragments."""

    text: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    usage: Usage | None = None
    finish_reason: str | None = None

    def add(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.text.append(event.text)
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
            usage=self.usage,
            finish_reason=finish_reason or self.finish_reason or "stop",
        )


class Agent:
    def __init__(
        self,
        runtime: Runtime,
        route: Route,
        *,
        system: str | None = None,
        messages: list[Message] | None = None,
        on_message: Callable[[Message], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.system = system
        self.messages: list[Message] = list(messages or [])
        self.on_message = on_message
        self.usage_total = Usage(0, 0)
        self._route = route
        self._client: RecoveringClient = runtime.client(route)

    @property
    def route(self) -> Route:
        return self._route

    @property
    def client(self) -> RecoveringClient:
        return self._client

    def switch_model(self, provider_id: str, model: str) -> Route:
        """Takes effect on the next request. Another provider: its own endpoint and pool, nothing of the old."""
        route = self.runtime.route(provider_id, model)
        client = self.runtime.client(route)  # raises (no key, bad URL) before anything changes
        self._route, self._client = route, client
        return route

    def _record(self, message: Message) -> None:
        self.messages.append(message)
        if self.on_message is not None:
            self.on_message(message)

    def body(self, *, stream: bool) -> dict[str, Any]:
        messages = [m.to_api() for m in self.messages]
        if self.system:
            messages.insert(0, {"role": "system", "content": self.system})
        body: dict[str, Any] = {"model": self._route.model, "messages": messages}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def add_user(self, text: str) -> None:
        self._record(Message("user", text))

    def reply(self, *, stream: bool = True) -> Iterator[Event]:
        """Ask for the assistant's answer to the conversation as it stands, yielding events as they come.

        The answer joins the history when it ends, or, with what arrived, when it is interrupted
        (Ctrl-C, a stream cut halfway); a failed request leaves the history as it was.
        """
        route, client = self._route, self._client
        builder = ReplyBuilder()
        done = False
        try:
            for event in client.chat(self.body(stream=stream), stream=stream):
                builder.add(event)
                yield event
            done = True
        finally:
            if done:
                self._finish(builder, route, None)
            elif builder.content or builder.calls:
                self._finish(builder, route, INTERRUPTED)

    def _finish(self, builder: ReplyBuilder, route: Route, reason: str | None) -> None:
        message = builder.message(route, reason)
        if reason == INTERRUPTED:
            message = replace(message, tool_calls=())  # half a tool call can't be answered; drop it
        if builder.usage:
            self.usage_total = Usage(
                self.usage_total.prompt_tokens + builder.usage.prompt_tokens,
                self.usage_total.completion_tokens + builder.usage.completion_tokens,
            )
        self._record(message)

    def undo(self) -> int:
        """Drop the last exchange (the last user message and all after it); returns how many went."""
        for i in range(len(self.messages) - 1, -1, -1):
            if self.messages[i].role == "user":
                dropped = len(self.messages) - i
                del self.messages[i:]
                return dropped
        return 0

    def prepare_retry(self) -> bool:
        """Drop what follows the last user message, so `reply()` asks again; False if there is none."""
        for i in range(len(self.messages) - 1, -1, -1):
            if self.messages[i].role == "user":
                del self.messages[i + 1:]
                return True
        return False

    def last_answer(self) -> str | None:
        for m in reversed(self.messages):
            if m.role == "assistant" and m.content:
                return m.content
        return None
