"""The slash commands. One registry drives /help, Tab completion and dispatch."""

from __future__ import annotations

import difflib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.errors import HermesError

if TYPE_CHECKING:
    from agent.events import Usage
    from agent.runtime import Runtime
    from hermes_cli.repl.loop import Chat


class Leave(Exception):
    """Raised by /exit: the REPL ends normally."""


@dataclass(frozen=True)
class Command:
    name: str
    handler: Callable[[Chat, str], None]
    description: str
    args: str = ""
    aliases: tuple[str, ...] = ()
    complete: Callable[[Chat, str], Iterable[str]] | None = None  # choices for the argument

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.args}".rstrip()


# -- handlers ------------------------------------------------------------------------------------


def _help(chat: Chat, arg: str) -> None:
    width = max(len(c.usage) for c in COMMANDS)
    lines = ["Commands:"]
    for c in COMMANDS:
        aliases = f" (also {', '.join('/' + a for a in c.aliases)})" if c.aliases else ""
        lines.append(f"  {c.usage:<{width}}  {c.description}{aliases}")
    lines.append("Keys: Enter sends, Alt-Enter (or Esc Enter) starts a new line, Tab completes,")
    lines.append("      Ctrl-C stops an answer or clears the line, Ctrl-D leaves.")
    chat.screen.say("\n".join(lines))


def model_choices(runtime: Runtime, provider_id: str) -> list[str]:
    """The models hermes knows for a provider: the registry's and those listed in config."""
    spec = runtime.registry.get(provider_id)
    configured = runtime.config.table("providers", provider_id).get("models") or []
    return list(dict.fromkeys([*(spec.models if spec else ()), *(str(m) for m in configured)]))


def _complete_model(chat: Chat, arg: str) -> list[str]:
    runtime = chat.agent.runtime
    prefix, sep, _ = arg.partition(":")
    if sep and prefix in runtime.registry:
        return [f"{prefix}:{m}" for m in model_choices(runtime, prefix)]
    current = chat.agent.route.provider.id
    return [*model_choices(runtime, current), *(f"{p}:" for p in runtime.registry.ids())]


def _model(chat: Chat, arg: str) -> None:
    agent = chat.agent
    route = agent.route
    if not arg:
        lines = [f"Current model: {route.label} at {route.endpoint.url}"]
        models = model_choices(agent.runtime, route.provider.id)
        if models:
            lines.append(f"Models of {route.provider.id}: {', '.join(models)}")
        others = [f"{p}:" for p in agent.runtime.registry.ids() if p != route.provider.id]
        lines.append(f"Other providers: {' '.join(others)}")
        lines.append("Switch with /model MODEL or /model PROVIDER:MODEL (Tab completes).")
        chat.screen.say("\n".join(lines))
        return
    try:
        provider, model = agent.runtime.split_model(arg, route.provider.id)
        new = agent.switch_model(provider or route.provider.id, model)
    except HermesError as e:
        chat.screen.error(e)
        return
    chat.screen.say(f"Now using {new.label} at {new.endpoint.url}.")


def _new(chat: Chat, arg: str) -> None:
    chat.agent.messages.clear()
    chat.recorder.start_new()
    chat.screen.say("Started a new conversation.")


def _retry(chat: Chat, arg: str) -> None:
    if not chat.agent.prepare_retry():
        chat.screen.say("Nothing to retry: the conversation has no message of yours.")
        return
    chat.turn()


def _undo(chat: Chat, arg: str) -> None:
    dropped = chat.agent.undo()
    chat.screen.say(f"Removed the last exchange ({dropped} messages)." if dropped else "Nothing to undo.")


def _history(chat: Chat, arg: str) -> None:
    messages = chat.agent.messages
    if not messages:
        chat.screen.say("The conversation is empty.")
        return
    lines = []
    for i, m in enumerate(messages, 1):
        who = "you" if m.role == "user" else m.role
        text = " ".join((m.content or "").split())
        if len(text) > 100:
            text = text[:99] + "…"
        mark = " (interrupted)" if m.finish_reason == "interrupted" else ""
        lines.append(f"{i:>3}. {who}: {text}{mark}")
    chat.screen.say("\n".join(lines))


def _system(chat: Chat, arg: str) -> None:
    if not arg:
        system = chat.agent.system
        chat.screen.say(f"System prompt: {system}" if system else "No system prompt is set.")
        return
    chat.agent.system = arg
    recorder = chat.recorder
    if recorder.store is not None and recorder.session is not None:
        recorder.store.set_system(recorder.session.id, arg)
    chat.screen.say("System prompt set; it applies from the next request.")


def _usage(chat: Chat, arg: str) -> None:
    agent = chat.agent
    lines = []
    turn = agent.last_turn_usage()
    if turn is not None:
        lines.append(_usage_line("Last turn", *turn))
    lines.append(_usage_line("This session", agent.usage_total, agent.cost_total))
    chat.screen.say("\n".join(lines))


def _usage_line(what: str, u: Usage, cost: float | None) -> str:
    # A price is known only for models in the registry's table or `[models."name"]` in config.
    price = f", ${cost:.4f}" if cost is not None else ", cost unknown for this model"
    return f"{what}: {u.prompt_tokens:,} prompt + {u.completion_tokens:,} completion = {u.total_tokens:,} tokens{price}."


def _auth(chat: Chat, arg: str) -> None:
    from providers.state import COOLING, EXHAUSTED, FRESH

    pool = chat.agent.client.pool
    states, now = pool.states(), time.time()
    lines = [f"Keys of {pool.provider_id}:"]
    for cred in pool.credentials:
        state = states.get(cred.id, FRESH)
        status = state.status(now)
        if status == EXHAUSTED:
            text = f"exhausted: {state.exhausted}"
        elif status == COOLING:
            until = time.strftime("%H:%M:%S", time.localtime(state.cooldown_until))
            text = f"cooling down until {until}"
        else:
            text = "ok"
        line = f"  {cred.id}  {cred.label}  ({cred.source})  {cred.masked}  {text}"
        if state.last_error and status != EXHAUSTED:
            line += f"  last error: {state.last_error}"
        lines.append(line)
    chat.screen.say("\n".join(lines))


def _tools(chat: Chat, arg: str) -> None:
    tools = chat.agent.tools
    if tools is None:
        chat.screen.say("Tools are off in this session (--no-tools).")
        return
    from agent.tools.base import Effect

    width = max((len(t.name) for t in tools.tools), default=0)
    lines = [f"Tools ({len(tools.tools)}), working in {tools.workspace.root}:"]
    for t in tools.tools:
        ask = "runs freely" if t.effect is Effect.READ else ("approved" if tools.settings.yes or t.name in tools.always
                                                             else "asks first")
        summary = t.description.strip().splitlines()[0] if t.description.strip() else ""
        lines.append(f"  {t.name:<{width}}  {t.source:<12} {ask:<11}  {summary[:70]}")
        if t.confinement:
            lines.append(f"  {'':<{width}}  {t.confinement}")
    chat.screen.say("\n".join(lines))


def _sessions(chat: Chat, arg: str) -> None:
    try:
        from agent.sessions import SessionStore
    except ImportError:
        chat.screen.say("Stored sessions are not available in this build.")
        return
    try:
        with SessionStore(chat.ctx.paths.sessions_db) as store:
            sessions = store.list(limit=10)
    except HermesError as e:
        chat.screen.error(e)
        return
    if not sessions:
        chat.screen.say("No stored sessions yet.")
        return
    current = chat.recorder.session_id
    lines = ["Recent sessions (hermes chat -r ID resumes one):"]
    for s in sessions:
        mark = "*" if s.id == current else " "
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated))
        lines.append(f"{mark} {s.id}  {when}  {s.provider}:{s.model}  {s.message_count} msgs  {s.title}")
    chat.screen.say("\n".join(lines))


_CLIPBOARDS = (("wl-copy",), ("xclip", "-selection", "clipboard"), ("pbcopy",))


def _copy(chat: Chat, arg: str) -> None:
    text = chat.agent.last_answer()
    if not text:
        chat.screen.say("There is no answer to copy yet.")
        return
    for argv in _CLIPBOARDS:
        if shutil.which(argv[0]):
            try:
                # No pipes to read back: wl-copy and xclip leave a child holding the selection.
                subprocess.run(argv, input=text.encode(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               check=True, timeout=5)
            except (OSError, subprocess.SubprocessError) as e:
                chat.screen.say(f"{argv[0]} could not take the text: {e}")
                return
            chat.screen.say(f"Copied the last answer ({len(text)} characters).")
            return
    chat.screen.say("No clipboard is available (looked for wl-copy, xclip and pbcopy).")


def _exit(chat: Chat, arg: str) -> None:
    raise Leave


COMMANDS: tuple[Command, ...] = (
    Command("help", _help, "Show the commands and keys", aliases=("?",)),
    Command("model", _model, "Switch the model; no argument: show the current one and the choices",
            args="[[PROVIDER:]MODEL]", complete=_complete_model),
    Command("new", _new, "Start a fresh conversation", aliases=("clear",)),
    Command("retry", _retry, "Ask again for an answer to your last message"),
    Command("undo", _undo, "Remove your last message and the answer to it"),
    Command("history", _history, "Show the conversation so far"),
    Command("system", _system, "Set the system prompt; no text: show it", args="[TEXT]"),
    Command("usage", _usage, "Tokens used this session"),
    Command("auth", _auth, "The keys of the current provider and their state"),
    Command("tools", _tools, "The tools the model may call"),
    Command("sessions", _sessions, "Recent stored conversations"),
    Command("copy", _copy, "Copy the last answer to the clipboard"),
    Command("exit", _exit, "Leave (Ctrl-D does too)", aliases=("quit", "q")),
)

_BY_NAME = {name: c for c in COMMANDS for name in (c.name, *c.aliases)}


def dispatch(chat: Chat, line: str) -> None:
    """Run a `/command args` line; raises Leave for /exit."""
    name, arg = [*line[1:].split(None, 1), "", ""][:2]
    command = _BY_NAME.get(name.lower())
    if command is None:
        close = difflib.get_close_matches(name.lower(), _BY_NAME, n=1, cutoff=0.5)
        suggestion = f" Did you mean /{_BY_NAME[close[0]].name}?" if close else ""
        chat.screen.say(f"Unknown command /{name}.{suggestion} /help lists them; "
                        "start the line with a space to send it as a message.")
        return
    command.handler(chat, arg.strip())


def completions(chat: Chat, text: str) -> Iterator[tuple[str, int, str]]:
    """(replacement, start position relative to the cursor, description) for the text before the cursor."""
    if not text.startswith("/") or "\n" in text:
        return
    head, sep, arg = text.partition(" ")
    if not sep:
        for c in COMMANDS:
            if f"/{c.name}".startswith(head):
                yield f"/{c.name}", -len(head), c.description
        return
    command = _BY_NAME.get(head[1:])
    if command is None or command.complete is None or " " in arg:
        return
    for choice in command.complete(chat, arg):
        if choice.startswith(arg):
            yield choice, -len(arg), ""
