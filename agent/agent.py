"""The agent core: a conversation, the route it talks on, and the reply loop.

`Agent` owns the only mutable session state: the message list and the current (route, client) pair.
`switch_model` replaces that pair as a whole: another provider gets its own pool and endpoint, the
same provider keeps its pool (and so its cooldowns); the history stays.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from agent.context_window import estimate_tokens, fit, reply_reserve
from agent.conversation import INTERRUPTED, SUMMARY, ConversationLog, Message, ReplyBuilder
from agent.events import (
    APPROVE,
    APPROVE_ALWAYS,
    DENY,
    ApprovalNeeded,
    Event,
    Notice,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    Usage,
)
from agent.fallback import FallbackEntry, reason, should_fall_back
from providers import errors
from providers.cost import Cost

if TYPE_CHECKING:
    from agent.attachments import Attachment
    from agent.recovery import RecoveringClient
    from agent.route import Route
    from agent.tools.toolset import PreparedCall, ToolSet
    from providers.models import ModelInfo

KEEP_TURNS = 2  # the last turns a summary keeps word for word
SUMMARY_HEADING = "[Summary of the earlier conversation]"
SUMMARY_PROMPT = (
    "Summarise the conversation below for the assistant who will continue it. Keep every fact, decision, "
    "name, number, file and open question that later turns may need; drop pleasantries. Write it as "
    "notes, in the conversation's language."
)


class Routes(Protocol):
    """Where the requests of a route go, and what is known of its model (the wiring provides them)."""

    def route(self, provider_id: str, model: str, *, base_url: str | None = None) -> Route:
        """The route to `model` of `provider_id` on its own endpoint; `base_url` binds a fallback's."""
        ...

    def client(self, route: Route) -> RecoveringClient:
        """The client sending on `route` with that provider's own pool (raises if it has no key)."""
        ...

    def model_info(self, model: str, provider_id: str | None = None) -> ModelInfo: ...


class Agent:
    def __init__(
        self,
        routes: Routes,
        route: Route,
        *,
        system: str | None = None,
        messages: list[Message] | None = None,
        log: ConversationLog | None = None,
        fallbacks: Sequence[FallbackEntry] = (),
        tools: ToolSet | None = None,
        project_context: str | None = None,
        compress_at: float = 0.0,
        scrub: Callable[[str], str] = lambda text: text,
    ) -> None:
        """`compress_at` is `[agent] compress_at` (0: never summarise); `scrub` takes every known
        secret out of a tool's result before the model sees it."""
        self.routes = routes
        self.compress_at = compress_at
        self.scrub = scrub
        self.tools = tools
        self.system = system
        # AGENTS.md: part of every request's system message, never of the session's own prompt.
        self.project_context = project_context
        self.messages: list[Message] = list(messages or [])
        self.log = log
        self.fallbacks = tuple(fallbacks)
        self.usage_total = Usage(0, 0)
        self._toolless: set[str] = set()  # routes whose model cannot call tools, said once each
        self.cost = Cost()
        for m in self.messages:
            self._count_usage(m)
        self._route = route
        self._client: RecoveringClient = routes.client(route)
        # The route the user chose; a fallback answers for it until the primary's keys are back.
        self._primary: tuple[Route, RecoveringClient] = (self._route, self._client)

    @property
    def route(self) -> Route:
        return self._route

    @property
    def client(self) -> RecoveringClient:
        return self._client

    def switch_model(self, provider_id: str, model: str) -> Route:
        """Takes effect on the next request. Another provider: its own endpoint and pool, nothing of the old."""
        route = self.routes.route(provider_id, model)
        client = self.routes.client(route)  # raises (no key, bad URL) before anything changes
        self._route, self._client = route, client
        self._primary = (route, client)
        return route

    @property
    def on_fallback(self) -> bool:
        return self._route is not self._primary[0]

    def _record(self, message: Message) -> None:
        self.messages.append(message)
        if self.log is not None:
            self.log.append(message)

    def api_messages(self) -> list[dict[str, Any]]:
        messages = [m.to_api() for m in self.messages]
        system = "\n\n".join(part for part in (self.system, self.project_context) if part)
        if system:
            messages.insert(0, {"role": "system", "content": system})
        return messages

    def body(
        self,
        *,
        stream: bool,
        route: Route | None = None,
        messages: list[dict[str, Any]] | None = None,
        offer_tools: bool = True,
    ) -> dict[str, Any]:
        route = route or self._route
        extra = self.routes.model_info(route.model, route.provider.id).extra_body  # first: hermes's own fields win
        body: dict[str, Any] = {**extra, "model": route.model, "messages": messages or self.api_messages()}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if offer_tools and self.tools is not None and self.tools.tools:
            body["tools"] = self.tools.api_tools()
        return body

    def add_user(self, text: str, attachments: Sequence[Attachment] = ()) -> None:
        """Raises AttachmentError for an image the current model cannot take."""
        images = [a for a in attachments if a.is_image]
        if images and not self.routes.model_info(self.route.model, self.route.provider.id).image_input:
            from agent.attachments import AttachmentError

            raise AttachmentError(
                f"{self.route.label} does not take images (the models.dev catalogue says so), so {images[0].name} "
                "was not sent.",
                hint=f'Use a model that does, or set [models."{self.route.model}"] vision = true if it does.',
            )
        self._record(Message("user", text, attachments=tuple(attachments)))
        if self.tools is not None:
            self.tools.begin_turn()

    def reply(self, *, stream: bool = True) -> Iterator[Event]:
        """Ask for the assistant's answer to the conversation as it stands, yielding events as they come.

        The answer joins the history when it ends, or, with what arrived, when it is interrupted
        (Ctrl-C, a stream cut halfway); a failed request leaves the history as it was. When the
        provider cannot answer, the `[[fallback]]` chain is tried in order. When the answer calls
        tools, they run (those needing approval yield an `ApprovalNeeded` first), their results join
        the history and the model is asked again, at most `max_iterations` rounds.
        """
        yield from self._restore_primary()
        rounds = 0
        while True:
            yield from self._answer(stream=stream)
            last = self.messages[-1] if self.messages else None
            calls = last.tool_calls if last is not None and last.role == "assistant" else ()
            if not calls:
                return
            if self.tools is None:
                self._answer_unrun(calls, "Not run: tools are turned off in this session.")
                return
            if rounds >= self.tools.max_iterations:
                limit = self.tools.max_iterations
                self._answer_unrun(calls, f"Not run: the limit of {limit} tool rounds for one answer was reached.")
                yield Notice(f"stopped after {limit} rounds of tool calls ([agent] max_tool_iterations = {limit}).")
                return
            rounds += 1
            yield from self._run_tools(calls)

    def _answer(self, *, stream: bool) -> Iterator[Event]:
        """One assistant message, from the current route or, when it cannot answer, the fallback chain."""
        causes: list[tuple[str, errors.HermesError]] = []
        route, client = self._route, self._client
        remaining = [f for f in self.fallbacks if (f.provider, f.model) != (route.provider.id, route.model)]
        while True:
            try:
                yield from self._reply_on(route, client, stream=stream)
                self._route, self._client = route, client
                return
            except errors.HermesError as e:
                if not should_fall_back(e) or not self.fallbacks:
                    raise
                causes.append((route.label, e))
            next_hop = None
            while remaining and next_hop is None:
                entry = remaining.pop(0)
                try:
                    fallback = self.routes.route(entry.provider, entry.model, base_url=entry.base_url)
                    next_hop = (fallback, self.routes.client(fallback))
                except errors.HermesError as e:
                    causes.append((f"{entry.provider}:{entry.model}", e))
            if next_hop is None:
                raise errors.FallbackExhausted(
                    "No provider could answer: " + "; ".join(f"{label}: {e.message}" for label, e in causes) + ".",
                    causes=causes,
                )
            why = reason(route.provider.id, causes[-1][1])
            route, client = next_hop
            yield Notice(f"using {route.label} ({why})")

    def _run_tools(self, calls: Sequence[dict[str, Any]]) -> Iterator[Event]:
        """Every call gets a `tool` message, even when interrupted: the API rejects a history where an
        assistant's tool call has no answer."""
        assert self.tools is not None
        answered = 0
        try:
            for call in calls:
                prepared = self.tools.prepare(call)
                content = yield from self._run_tool(prepared)
                self._record(Message("tool", content, tool_call_id=prepared.id, name=prepared.name))
                answered += 1
        finally:
            self._answer_unrun(calls[answered:], "Not run: the user interrupted.")

    def _run_tool(self, call: PreparedCall) -> Generator[Event, None, str]:
        assert self.tools is not None
        yield ToolCallStarted(
            call.name, _arguments_summary(call.arguments), "" if call.needs_approval else call.preview
        )
        if call.error is not None:
            yield ToolCallFinished(call.name, False, call.error, 0.0)
            return f"Error: {call.error}"
        if call.needs_approval:
            assert call.verdict is not None
            from agent.tools.approval import unapproved  # the tools are loaded by now

            refusal = unapproved(call.verdict, yes=self.tools.settings.yes)
            request = ApprovalNeeded(call.name, call.preview, call.verdict.reason, call.verdict.dangerous, refusal)
            yield request
            if request.choice == APPROVE_ALWAYS and not call.verdict.dangerous:
                self.tools.always.add(call.name)
            if request.choice not in (APPROVE, APPROVE_ALWAYS):
                declined = request.choice == DENY
                yield ToolCallFinished(call.name, False, "declined" if declined else "not approved", 0.0)
                if declined:
                    return "Not run: the user declined this call."
                return f"Not run: {refusal}. Tell the user what you would have done."
        result, seconds = self.tools.run(call)
        yield ToolCallFinished(call.name, result.ok, result.summary, seconds)
        # A command like `env` or a read of auth.json would otherwise send a key to the model.
        return self.scrub(result.content)

    def _answer_unrun(self, calls: Sequence[dict[str, Any]], why: str) -> None:
        for call in calls:
            name = (call.get("function") or {}).get("name")
            self._record(Message("tool", why, tool_call_id=str(call.get("id") or ""), name=name))

    def _restore_primary(self) -> Iterator[Event]:
        """At the start of a turn, go back to the primary as soon as one of its keys is available."""
        primary_route, primary_client = self._primary
        if self.on_fallback and primary_client.pool.has_available():
            self._route, self._client = primary_route, primary_client
            yield Notice(f"back on {primary_route.label}")

    def _reply_on(self, route: Route, client: RecoveringClient, *, stream: bool) -> Iterator[Event]:
        info = self.routes.model_info(route.model, route.provider.id)
        budget = info.context - reply_reserve(info.context)
        retried_overflow = False
        if not info.tool_call and self.tools is not None and self.tools.tools and route.label not in self._toolless:
            self._toolless.add(route.label)
            yield Notice(f"{route.label} cannot call tools (models.dev catalogue); it answers without them.")
        threshold = self.compress_at * info.context
        if threshold and sum(estimate_tokens(m) for m in self.api_messages()) > threshold:
            yield from self.compress(route=route, client=client, automatic=True)
        while True:
            messages, dropped = fit(self.api_messages(), budget)
            if dropped:
                yield Notice(
                    f"left out the {dropped} oldest messages to fit {route.model}'s context window "
                    f"({info.context} tokens); they stay in the session."
                )
            try:
                yield from self._stream_answer(
                    route, client, self.body(stream=stream, route=route, messages=messages, offer_tools=info.tool_call)
                )
                return
            except errors.HTTPStatusError as e:
                if retried_overflow or not _is_context_overflow(e):
                    raise
                retried_overflow = True
                budget = sum(estimate_tokens(m) for m in messages) // 2

    def compress(
        self, *, route: Route | None = None, client: RecoveringClient | None = None, automatic: bool = False
    ) -> Iterator[Event]:
        """Summarise all but the last KEEP_TURNS turns with one request on the current route (so key
        rotation and recovery apply) and continue from the summary. The originals stay in the session,
        superseded; the summary is recorded as such. A failed summary leaves the conversation as it was
        (an automatic one then falls back to leaving out the oldest turns)."""
        route, client = route or self._route, client or self._client
        users = [i for i, m in enumerate(self.messages) if m.role == "user"]
        if len(users) <= KEEP_TURNS:
            if not automatic:
                yield Notice("Nothing to summarise yet: the conversation is its last turns.")
            return
        cut = users[-KEEP_TURNS]
        old, recent = self.messages[:cut], self.messages[cut:]
        body = {
            "model": route.model,
            "messages": [
                {"role": "system", "content": SUMMARY_PROMPT},
                {"role": "user", "content": _transcript(old)},
            ],
        }
        summary: list[str] = []
        try:
            for event in client.chat(body, stream=False):
                if isinstance(event, TextDelta):
                    summary.append(event.text)
        except errors.HermesError as e:
            yield Notice(
                f"could not summarise the earlier conversation ({e.message}); "
                + ("leaving out its oldest turns instead." if automatic else "it stays as it was.")
            )
            return
        text = "".join(summary).strip()
        if not text:
            yield Notice("the summary came back empty; the conversation stays as it was.")
            return
        note = Message(
            "user", f"{SUMMARY_HEADING}\n\n{text}", provider=route.provider.id, model=route.model, finish_reason=SUMMARY
        )
        self.truncate(0, "compressed")  # the log keeps the originals, superseded
        for message in (note, *recent):
            self._record(message)
        yield Notice(f"summarised {len(old)} earlier messages; the last {KEEP_TURNS} turns are kept word for word.")

    def _stream_answer(self, route: Route, client: RecoveringClient, body: dict[str, Any]) -> Iterator[Event]:
        builder = ReplyBuilder()
        done = False
        try:
            for event in client.chat(body, stream=bool(body.get("stream"))):
                builder.add(event)
                yield event
            done = True
        finally:
            if done:
                self._finish(builder, route, None)
            elif builder.content or builder.calls:
                self._finish(builder, route, INTERRUPTED)

    def _count_usage(self, message: Message) -> None:
        if message.usage is None:
            return
        self.usage_total = Usage(
            self.usage_total.prompt_tokens + message.usage.prompt_tokens,
            self.usage_total.completion_tokens + message.usage.completion_tokens,
        )
        self.cost = self.cost.plus(self.message_cost(message))

    def last_turn_usage(self) -> tuple[Usage, Cost] | None:
        """Tokens and cost of every answer since the last user message (a turn with tool calls makes
        several requests). None before any answer."""
        start = max((i for i, m in enumerate(self.messages) if m.role == "user"), default=0)
        answers = [m for m in self.messages[start:] if m.role == "assistant" and m.usage is not None]
        if not answers:
            return None
        usage = Usage(
            sum(m.usage.prompt_tokens for m in answers if m.usage),
            sum(m.usage.completion_tokens for m in answers if m.usage),
        )
        cost = Cost()
        for m in answers:
            cost = cost.plus(self.message_cost(m))
        return usage, cost

    def message_cost(self, message: Message) -> float | None:
        if message.usage is None or not message.model:
            return None
        info = self.routes.model_info(message.model, message.provider)
        return info.cost(message.usage.prompt_tokens, message.usage.completion_tokens, message.usage.cached_tokens)

    def _finish(self, builder: ReplyBuilder, route: Route, reason: str | None) -> None:
        message = builder.message(route, reason)
        if reason == INTERRUPTED:
            message = replace(message, tool_calls=())  # half a tool call can't be answered; drop it
        self._count_usage(message)
        self._record(message)

    def truncate(self, keep: int, reason: str) -> int:
        """Keep the first `keep` messages; the log records the rest as superseded. Returns how many went."""
        dropped = len(self.messages) - keep
        if dropped > 0:
            del self.messages[keep:]
            if self.log is not None:
                self.log.truncate(keep, reason)
        return max(dropped, 0)

    def last_user_index(self) -> int | None:
        return next((i for i in range(len(self.messages) - 1, -1, -1) if self.messages[i].role == "user"), None)

    def undo(self) -> int:
        """Drop the last exchange (the last user message and all after it); returns how many went."""
        i = self.last_user_index()
        return 0 if i is None else self.truncate(i, "undo")

    def prepare_retry(self, reason: str = "retry") -> bool:
        """Drop what follows the last user message, so `reply()` asks again; False if there is none."""
        i = self.last_user_index()
        if i is None:
            return False
        self.truncate(i + 1, reason)
        if self.tools is not None:
            self.tools.begin_turn()  # what the new answer writes is a turn of its own for /rollback
        return True

    def last_answer(self) -> str | None:
        for m in reversed(self.messages):
            if m.role == "assistant" and m.content:
                return m.content
        return None


def _arguments_summary(args: dict[str, Any], limit: int = 100) -> str:
    parts = []
    for key, value in args.items():
        text = value if isinstance(value, str) else repr(value)
        text = text.replace("\n", " ")
        parts.append(f"{key}={text[:40] + '…' if len(text) > 40 else text}")
    line = " ".join(parts)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _is_context_overflow(error: errors.HTTPStatusError) -> bool:
    text = f"{error.message} {error.body_excerpt}".lower()
    return error.status in (400, 413) and (
        "context_length_exceeded" in text or "maximum context length" in text or "context window" in text
    )


def _transcript(messages: Sequence[Message]) -> str:
    lines = []
    for m in messages:
        if m.role == "tool":
            lines.append(f"[tool {m.name or ''} result]\n{m.content or ''}")
        elif m.tool_calls:
            calls = ", ".join(
                f"{(c.get('function') or {}).get('name')}({(c.get('function') or {}).get('arguments')})"
                for c in m.tool_calls
            )
            lines.append(f"{m.role}: {m.content or ''} [calls {calls}]")
        else:
            lines.append(f"{m.role}: {m.content or ''}")
    return "\n\n".join(lines)
