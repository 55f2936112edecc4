"""The REPL: read a line (prompt-toolkit), run a command or a turn (hermes_cli/repl/chat.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from hermes_cli.repl import commands
from hermes_cli.repl.chat import Chat, Screen
from providers.errors import HermesError

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession

    from agent.agent import Agent
    from agent.recorder import Recorder
    from hermes_cli.wiring import Wiring

PROMPT = "› "


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
    window = chat.wiring.model_info(route.model, route.provider.id).context
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
        history=FileHistory(str(_private_file(chat.wiring.paths.history_file))),
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


def run(wiring: Wiring, agent: Agent, recorder: Recorder, *, attach: tuple[str, ...] = (), yes: bool = False) -> None:
    screen = Screen()
    chat = Chat(wiring, agent, recorder, screen, pending=attach, yes=yes)
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
