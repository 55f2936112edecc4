"""The REPL's state and screen: a turn's answer shown as it streams, tool calls and questions between."""

from __future__ import annotations

import sys
import time
from collections.abc import Generator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from agent.conversation import INTERRUPTED
from agent.events import (
    ApprovalNeeded,
    Event,
    Finished,
    Notice,
    ReasoningDelta,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from hermes_cli import approvals
from hermes_cli.exit_codes import redact
from hermes_cli.output import color_enabled, console
from hermes_cli.repl.markdown_stream import Reasoning
from hermes_cli.wrap import WordWrap
from providers.errors import HermesError, StreamInterrupted

if TYPE_CHECKING:
    from agent.agent import Agent
    from agent.recorder import Recorder
    from hermes_cli.wiring import Wiring


class AnswerView(Protocol):
    def feed(self, text: str) -> None: ...
    def reason(self, text: str) -> None: ...
    def notice(self, text: str) -> None: ...


class _PlainAnswer:
    """The answer's text as it arrives, as plain text: on a terminal (NO_COLOR) wrapped at spaces,
    not mid-word; through a pipe untouched. Notices on stderr, on a line of their own. A reasoning
    model's thinking is summed up on stderr in one line (or printed whole when shown)."""

    def __init__(self, *, show_reasoning: bool = False) -> None:
        self._mid_line = False
        self.reasoning = Reasoning(time.monotonic, show=show_reasoning)
        self._wrap: WordWrap | None = None
        if sys.stdout.isatty():
            import shutil

            self._wrap = WordWrap(sys.stdout.write, shutil.get_terminal_size((80, 24)).columns)

    def __enter__(self) -> _PlainAnswer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._end_reasoning()
        if self._wrap is not None:
            self._wrap.close()
            sys.stdout.flush()
        self._end_line()

    def reason(self, text: str) -> None:
        self.reasoning.add(text)

    def _end_reasoning(self) -> None:
        shown = self.reasoning.finish()
        if shown:
            print(shown, file=sys.stderr, flush=True)

    def feed(self, text: str) -> None:
        if self.reasoning.open:
            self._end_reasoning()
        if text:
            (self._wrap.feed if self._wrap is not None else sys.stdout.write)(text)
            sys.stdout.flush()
            self._mid_line = not text.endswith("\n")

    def notice(self, text: str) -> None:
        if self._wrap is not None:
            self._wrap.close()
        self._end_line()
        print(text, file=sys.stderr, flush=True)

    def _end_line(self) -> None:
        if self._mid_line:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self._mid_line = False


class Screen:
    """Where the REPL writes: rich on a colour terminal; plain text (no colour, no live region,
    no spinner) under NO_COLOR or when stdout is not a terminal."""

    def __init__(self) -> None:
        self.rich = color_enabled(sys.stdout)
        self.console = console() if self.rich else None

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False)
        else:
            print(text, flush=True)

    def notice(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, style="dim", markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def error(self, error: HermesError, then: str | None = None) -> None:
        # A cut stream's hint ("send the message again") is what `then` says the REPL way (/retry).
        shown = error.message if then and isinstance(error, StreamInterrupted) else f"{error}"
        text = redact(shown) + (f"\n{then}" if then else "")
        if self.console is not None:
            from rich.panel import Panel
            from rich.text import Text

            self.console.print(Panel(Text(text), title="error", title_align="left", border_style="red", expand=False))
        else:
            print(f"error: {text}", file=sys.stderr, flush=True)

    def answer(self, *, show_reasoning: bool = False) -> AbstractContextManager[AnswerView]:
        if self.console is None:
            return _PlainAnswer(show_reasoning=show_reasoning)
        from hermes_cli.repl.markdown_stream import MarkdownStream

        return MarkdownStream(self.console, show_reasoning=show_reasoning)


@dataclass
class Chat:
    """The REPL's state: what the commands act on."""

    wiring: Wiring
    agent: Agent
    recorder: Recorder
    screen: Screen
    show_reasoning: bool = False  # /reasoning show|hide
    last_rate: float | None = None  # the last answer's tokens per second, for the toolbar
    pending: tuple[str, ...] = ()  # `hermes chat -a FILE`: attached to the first message
    yes: bool = False  # -y: files outside the working directory are attached without asking

    def send(self, text: str) -> None:
        from hermes_cli.attach import gather_attachments

        try:
            limit = self.wiring.settings.agent.max_attachment_bytes
            attachments = gather_attachments(text, self.pending, yes=self.yes, max_bytes=limit)
            self.agent.add_user(text, attachments)
        except HermesError as e:
            self.screen.error(e, "Nothing was sent.")
            return
        self.pending = ()
        if attachments:
            self.screen.notice("attached " + ", ".join(f"{a.name} ({a.mime})" for a in attachments))
        self.turn()

    def turn(self) -> None:
        """Ask for an answer and show it as it streams. Ctrl-C stops it; the agent keeps what arrived.

        Each assistant message gets its own view; tool calls and approval questions are printed
        between them, with no live region on screen."""
        # reply() is a generator (typed as an Iterator): closing it closes the HTTP stream.
        events = cast("Generator[Event, None, None]", self.agent.reply())
        first_text: float | None = None
        view: _View | None = _View(self.screen.answer(show_reasoning=self.show_reasoning))
        try:
            try:
                for event in events:
                    if isinstance(event, TextDelta):
                        first_text = first_text or time.monotonic()
                        view = view or _View(self.screen.answer(show_reasoning=self.show_reasoning))
                        view.feed(event.text)
                    elif isinstance(event, ReasoningDelta):
                        view = view or _View(self.screen.answer(show_reasoning=self.show_reasoning))
                        view.reason(event.text)
                    elif isinstance(event, Notice):
                        (view or self.screen).notice(event.text)
                    elif isinstance(event, Finished) and event.reason == "length":
                        (view or self.screen).notice("The answer was cut off at the model's length limit.")
                    elif isinstance(event, (ToolCallStarted, ApprovalNeeded)):
                        _close(view)
                        view = None
                        self._tool_event(event)
                    elif isinstance(event, ToolCallFinished):
                        self._tool_event(event)
                        # the spinner, until the model answers again
                        view = _View(self.screen.answer(show_reasoning=self.show_reasoning))
            finally:
                events.close()  # after Ctrl-C: the agent records the partial answer
                _close(view)
                self._measure(first_text)
        except KeyboardInterrupt:
            last = self.agent.messages[-1] if self.agent.messages else None
            kept = last is not None and last.finish_reason == INTERRUPTED
            self.screen.notice(
                "Stopped; the partial answer is kept. /retry asks again." if kept else "Stopped. /retry asks again."
            )
        except HermesError as e:
            self.screen.error(e, "The conversation is intact; /retry sends your message again.")

    def _measure(self, first_text: float | None) -> None:
        last = self.agent.messages[-1] if self.agent.messages else None
        seconds = time.monotonic() - first_text if first_text else 0.0
        if last is not None and last.role == "assistant" and last.usage and seconds > 0.05:
            self.last_rate = last.usage.completion_tokens / seconds

    def _tool_event(self, event: ToolCallStarted | ToolCallFinished | ApprovalNeeded) -> None:
        if isinstance(event, ToolCallStarted):
            self.screen.notice(f"⚙ {event.name} {event.summary}".rstrip())
            if event.preview:
                self.screen.notice(event.preview)
        elif isinstance(event, ToolCallFinished):
            mark = "✓" if event.ok else "✗"
            self.screen.notice(f"  {mark} {event.summary} · {event.seconds:.2f} s")
        elif approvals.can_ask():
            approvals.ask(event, out=sys.stdout)
        else:
            self.screen.notice(f"  not run: {event.refusal}.")


class _View:
    """An answer view entered on creation, so that it can be closed wherever the turn is."""

    def __init__(self, manager: AbstractContextManager[AnswerView]) -> None:
        self._manager = manager
        self._view = manager.__enter__()

    def feed(self, text: str) -> None:
        self._view.feed(text)

    def reason(self, text: str) -> None:
        self._view.reason(text)

    def notice(self, text: str) -> None:
        self._view.notice(text)

    def close(self) -> None:
        self._manager.__exit__(None, None, None)


def _close(view: _View | None) -> None:
    if view is not None:
        view.close()
