"""The REPL: read a line (prompt-toolkit), run a command or a turn, show the answer as it streams."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
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
from hermes_cli.repl import commands
from hermes_cli.repl.markdown_stream import Reasoning
from hermes_cli.wrap import WordWrap
from providers.errors import HermesError, StreamInterrupted

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession

    from agent.conversation import Agent
    from hermes_cli.context import Context
    from hermes_cli.startup import Recorder

PROMPT = "› "


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

    ctx: Context
    agent: Agent
    recorder: Recorder
    screen: Screen
    show_reasoning: bool = False  # /reasoning show|hide
    last_rate: float | None = None  # the last answer's tokens per second, for the toolbar
    pending: tuple[str, ...] = ()  # `hermes chat -a FILE`: attached to the first message
    yes: bool = False  # -y: files outside the working directory are attached without asking

    def send(self, text: str) -> None:
        from hermes_cli.startup import gather_attachments

        try:
            attachments = gather_attachments(self.ctx, text, self.pending, yes=self.yes)
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
                        view = _close(view)
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
    return None


def _private_file(path: Path) -> Path:
    """The history holds what the user typed: create it readable by the user only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600))
    return path


def _toolbar(chat: Chat) -> str:
    import shutil

    from agent.context_window import estimate_tokens
    from hermes_cli.repl.status import Status, toolbar

    agent = chat.agent
    route = agent.route
    window = agent.runtime.model_info(route.model, route.provider.id).context
    last = next((m for m in reversed(agent.messages) if m.role == "assistant" and m.usage), None)
    used = (
        last.usage.total_tokens
        if last and last.usage and last is agent.messages[-1]
        else sum(estimate_tokens(m) for m in agent.api_messages())
    )
    cost = agent.cost.describe(short=True) if agent.cost.priced or agent.cost.unpriced else ""
    status = Status(route.label, route.endpoint.host, used, window, "" if cost == "-" else cost, chat.last_rate)
    return toolbar(status, shutil.get_terminal_size((100, 24)).columns)


def _prompt_session(chat: Chat) -> PromptSession[str]:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
    from prompt_toolkit.document import Document

    paths = PathCompleter(expanduser=True)
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
    from prompt_toolkit.output import create_output

    class SlashCompleter(Completer):
        def get_completions(self, document: Document, complete_event: object) -> Iterator[Completion]:
            word = document.get_word_before_cursor(WORD=True)
            if word.startswith("@"):  # @path attaches a file: complete the path
                inner = Document(word[1:], len(word) - 1)
                for c in paths.get_completions(inner, CompleteEvent()):
                    yield Completion(c.text, c.start_position, display=c.display)
                return
            for text, start, meta in commands.completions(chat, document.text_before_cursor):
                yield Completion(text, start_position=start, display_meta=meta or None)

    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    return PromptSession(
        history=FileHistory(str(_private_file(chat.ctx.paths.history_file))),
        completer=SlashCompleter(),
        complete_while_typing=False,
        key_bindings=bindings,
        bottom_toolbar=lambda: _toolbar(chat),
        # With stdout redirected, the line editor still belongs on the terminal.
        output=create_output(always_prefer_tty=True),
    )


def _reader(chat: Chat) -> Callable[[], str]:
    """Reads one message: the line editor on a terminal, plain lines from a pipe."""
    if not sys.stdin.isatty():

        def read_line() -> str:
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            return line

        return read_line
    session = _prompt_session(chat)
    return lambda: session.prompt(PROMPT)


def run(ctx: Context, agent: Agent, recorder: Recorder, *, attach: tuple[str, ...] = (), yes: bool = False) -> None:
    screen = Screen()
    chat = Chat(ctx, agent, recorder, screen, pending=attach, yes=yes)
    route = agent.route
    screen.say(f"hermes · {route.label} at {route.endpoint.url}")
    if agent.messages and recorder.session is not None:
        commands.replay(chat)
        screen.say(
            f'Resumed {recorder.session.id} "{recorder.session.title or "(untitled)"}" '
            f"({len(agent.messages)} messages)."
        )
    screen.notice("/help for commands, Ctrl-D to leave")
    read = _reader(chat)
    try:
        _loop(chat, read)
    finally:
        session = recorder.session
        if session is not None:
            screen.notice(
                f'saved as {session.id} "{session.title or "(untitled)"}" — hermes chat -c '
                f"(or -r {session.id}) continues it"
            )


def _loop(chat: Chat, read: Callable[[], str]) -> None:
    screen = chat.screen
    while True:
        try:
            line = read()
        except KeyboardInterrupt:
            continue  # the line editor has cleared the line
        except EOFError:
            return
        text = line.strip()
        if not text:
            continue
        try:
            if text.startswith("/") and not line.startswith(" "):
                commands.dispatch(chat, text)
            else:
                chat.send(text)
        except commands.Leave:
            return
        except KeyboardInterrupt:
            screen.notice("Interrupted.")
        except HermesError as e:  # e.g. the session store failed to save: the REPL goes on
            screen.error(e)
