"""The REPL: read a line (prompt-toolkit), run a command or a turn, show the answer as it streams."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from agent.conversation import INTERRUPTED
from agent.errors import HermesError, StreamInterrupted
from agent.events import ApprovalNeeded, Event, Finished, Notice, TextDelta, ToolCallFinished, ToolCallStarted
from hermes_cli import approvals
from hermes_cli.output import color_enabled, console
from hermes_cli.repl import commands

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession

    from agent.conversation import Agent
    from hermes_cli.context import Context
    from hermes_cli.startup import Recorder

PROMPT = "› "


class AnswerView(Protocol):
    def feed(self, text: str) -> None: ...
    def notice(self, text: str) -> None: ...


class _PlainAnswer:
    """The answer's text as it arrives, untouched; notices on stderr, on a line of their own."""

    def __init__(self) -> None:
        self._mid_line = False

    def __enter__(self) -> _PlainAnswer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._end_line()

    def feed(self, text: str) -> None:
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
            self._mid_line = not text.endswith("\n")

    def notice(self, text: str) -> None:
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
        text = shown + (f"\n{then}" if then else "")
        if self.console is not None:
            from rich.panel import Panel
            from rich.text import Text

            self.console.print(Panel(Text(text), title="error", title_align="left", border_style="red", expand=False))
        else:
            print(f"error: {text}", file=sys.stderr, flush=True)

    def answer(self) -> AbstractContextManager[AnswerView]:
        if self.console is None:
            return _PlainAnswer()
        from hermes_cli.repl.markdown_stream import MarkdownStream

        return MarkdownStream(self.console)


@dataclass
class Chat:
    """The REPL's state: what the commands act on."""

    ctx: Context
    agent: Agent
    recorder: Recorder
    screen: Screen

    def send(self, text: str) -> None:
        self.agent.add_user(text)
        self.turn()

    def turn(self) -> None:
        """Ask for an answer and show it as it streams. Ctrl-C stops it; the agent keeps what arrived.

        Each assistant message gets its own view; tool calls and approval questions are printed
        between them, with no live region on screen."""
        # reply() is a generator (typed as an Iterator): closing it closes the HTTP stream.
        events = cast("Generator[Event, None, None]", self.agent.reply())
        view: _View | None = _View(self.screen.answer())
        try:
            try:
                for event in events:
                    if isinstance(event, TextDelta):
                        view = view or _View(self.screen.answer())
                        view.feed(event.text)
                    elif isinstance(event, Notice):
                        (view or self.screen).notice(event.text)
                    elif isinstance(event, Finished) and event.reason == "length":
                        (view or self.screen).notice("The answer was cut off at the model's length limit.")
                    elif isinstance(event, (ToolCallStarted, ApprovalNeeded)):
                        view = _close(view)
                        self._tool_event(event)
                    elif isinstance(event, ToolCallFinished):
                        self._tool_event(event)
                        view = _View(self.screen.answer())  # the spinner, until the model answers again
            finally:
                events.close()  # after Ctrl-C: the agent records the partial answer
                _close(view)
        except KeyboardInterrupt:
            last = self.agent.messages[-1] if self.agent.messages else None
            kept = last is not None and last.finish_reason == INTERRUPTED
            self.screen.notice("Stopped; the partial answer is kept. /retry asks again." if kept
                               else "Stopped. /retry asks again.")
        except HermesError as e:
            self.screen.error(e, "The conversation is intact; /retry sends your message again.")

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
            self.screen.notice(f"  not run: it {event.reason}, and there is no terminal to ask on (-y allows it).")


class _View:
    """An answer view entered on creation, so that it can be closed wherever the turn is."""

    def __init__(self, manager: AbstractContextManager[AnswerView]) -> None:
        self._manager = manager
        self._view = manager.__enter__()

    def feed(self, text: str) -> None:
        self._view.feed(text)

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
    route = chat.agent.route
    tokens = chat.agent.usage_total.total_tokens
    return f" {route.label}  ·  {route.endpoint.host}  ·  {tokens:,} tokens this session "


def _prompt_session(chat: Chat) -> PromptSession[str]:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import Completer, Completion
    from prompt_toolkit.document import Document
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
    from prompt_toolkit.output import create_output

    class SlashCompleter(Completer):
        def get_completions(self, document: Document, complete_event: object) -> Iterator[Completion]:
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


def run(ctx: Context, agent: Agent, recorder: Recorder) -> None:
    screen = Screen()
    chat = Chat(ctx, agent, recorder, screen)
    route = agent.route
    screen.say(f"hermes · {route.label} at {route.endpoint.url}")
    if agent.messages and recorder.session_id:
        screen.say(f"Resumed session {recorder.session_id} ({len(agent.messages)} messages).")
    screen.notice("/help for commands, Ctrl-D to leave")
    read = _reader(chat)
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
