"""The slash commands. One registry drives /help, Tab completion and dispatch."""

from __future__ import annotations

import difflib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.conversation import SUMMARY
from agent.events import Notice
from hermes_cli.ages import ago
from providers.errors import HermesError

if TYPE_CHECKING:
    from agent.events import Usage
    from agent.sessions import SessionInfo
    from hermes_cli.repl.chat import Chat
    from providers.cost import Cost


class Leave(Exception):
    """Raised by /exit: the REPL ends normally."""


@dataclass(frozen=True)
class Command:
    name: str
    handler: Callable[[Chat, str], None]
    description: str
    args: str = ""
    aliases: tuple[str, ...] = ()
    complete: Callable[[Chat, str], Iterable[tuple[str, str]]] | None = None  # (choice, description)

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


def _complete_model(chat: Chat, arg: str) -> list[tuple[str, str]]:
    """Models of the current provider, then `provider:` for every provider, marked by whether it has
    a key; after `provider:`, that provider's models (the catalogue's too when it has a key)."""
    wiring = chat.wiring
    prefix, sep, _ = arg.partition(":")
    spec = wiring.registry.get(prefix) if sep else None
    if spec is not None:
        return [(f"{prefix}:{m}", "") for m in wiring.model_choices(prefix, catalogue=wiring.has_key(spec))]
    current = chat.agent.route.provider.id
    providers = [(f"{s.id}:", "has a key" if wiring.has_key(s) else "no key") for s in wiring.registry]
    providers.sort(key=lambda p: p[1] != "has a key")  # usable ones first
    return [*((m, "") for m in wiring.model_choices(current, catalogue=True)), *providers]


def _model(chat: Chat, arg: str) -> None:
    agent = chat.agent
    route = agent.route
    if not arg:
        lines = [f"Current model: {route.label} at {route.endpoint.url}"]
        models = chat.wiring.model_choices(route.provider.id)
        if models:
            lines.append(f"Models of {route.provider.id}: {', '.join(models)}")
        others = [f"{p}:" for p in chat.wiring.registry.ids() if p != route.provider.id]
        lines.append(f"Other providers: {' '.join(others)}")
        lines.append("Switch with /model MODEL or /model PROVIDER:MODEL (Tab completes).")
        chat.screen.say("\n".join(lines))
        return
    try:
        provider, model = chat.wiring.split_model(arg, route.provider.id)
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
        who = "summary" if m.finish_reason == SUMMARY else "you" if m.role == "user" else m.role
        text = " ".join((m.content or "").split())
        if len(text) > 100:
            text = text[:99] + "…"
        mark = " (interrupted)" if m.finish_reason == "interrupted" else ""
        attached = f" [attached: {', '.join(a.name for a in m.attachments)}]" if m.attachments else ""
        lines.append(f"{i:>3}. {who}: {text}{attached}{mark}")
    chat.screen.say("\n".join(lines))


def _system(chat: Chat, arg: str) -> None:
    if not arg:
        system = chat.agent.system
        chat.screen.say(f"System prompt: {system}" if system else "No system prompt is set.")
        return
    chat.agent.system = arg
    chat.recorder.set_system(arg)
    chat.screen.say("System prompt set; it applies from the next request.")


def _usage(chat: Chat, arg: str) -> None:
    agent = chat.agent
    lines = []
    turn = agent.last_turn_usage()
    if turn is not None:
        lines.append(_usage_line("Last turn", *turn))
    lines.append(_usage_line("This session", agent.usage_total, agent.cost))
    chat.screen.say("\n".join(lines))


def _usage_line(what: str, u: Usage, cost: Cost) -> str:
    # Prices come from the models.dev catalogue or `[models."name"]` in config.
    return (
        f"{what}: {u.prompt_tokens:,} prompt + {u.completion_tokens:,} completion = {u.total_tokens:,} tokens, "
        f"{cost.describe()}."
    )


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
    import shutil

    from hermes_cli.tool_list import rows, table

    found = rows(tools.tools, yes=tools.settings.yes, always=tools.always)
    lines = [
        f"Tools ({len(found)}), working in {tools.workspace.root}:",
        *table(found, shutil.get_terminal_size((100, 24)).columns),
    ]
    chat.screen.say("\n".join(lines))


def _rollback(chat: Chat, arg: str) -> None:
    from hermes_cli.rollback_cmd import rollback_in_chat

    tools = chat.agent.tools
    rollback_in_chat(tools.checkpoints() if tools is not None else None, arg, chat.screen.say)


def _recent(chat: Chat, limit: int) -> list[SessionInfo]:
    from agent.sessions import SessionStore

    store = chat.recorder.store
    if store is not None:
        return store.recent(limit=limit)
    with SessionStore(chat.wiring.paths.sessions_db) as own:
        return own.recent(limit=limit)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _sessions(chat: Chat, arg: str) -> None:
    try:
        sessions = _recent(chat, 10)
    except HermesError as e:
        chat.screen.error(e)
        return
    if not sessions:
        chat.screen.say("No stored sessions yet.")
        return
    current, now = chat.recorder.session_id, time.time()
    columns = shutil.get_terminal_size((100, 24)).columns
    model_width = min(28, max(len(f"{s.provider}:{s.model}") for s in sessions))
    # "* " + id + age + model + msgs, then the title takes what is left of the line.
    title_width = max(columns - (2 + 12 + 2 + 9 + 2 + model_width + 2 + 9 + 2), 12)
    lines = ["Recent sessions (/resume ID or TITLE continues one):"]
    for s in sessions:
        mark = "*" if s.id == current else " "
        model = _cut(f"{s.provider}:{s.model}", model_width)
        lines.append(
            f"{mark} {s.id}  {ago(s.updated, now):<9}  {model:<{model_width}}  {s.message_count:>4} msgs  "
            f"{_cut(s.title or '(untitled)', title_width)}"
        )
    chat.screen.say("\n".join(lines))


def _complete_session(chat: Chat, arg: str) -> list[tuple[str, str]]:
    try:
        sessions = _recent(chat, 30)
    except HermesError:
        return []
    now = time.time()
    return [
        (s.id, f"{_cut(s.title or '(untitled)', 40)} · {ago(s.updated, now)} · {s.model}")
        for s in sessions
        if s.id != chat.recorder.session_id
    ]


def _resume(chat: Chat, arg: str) -> None:
    if not arg:
        _sessions(chat, "")
        return
    from agent.sessions import SessionStore

    recorder = chat.recorder
    try:
        if recorder.store is not None:
            target = recorder.store.resolve(arg)
            history = recorder.store.messages(target.id)
        else:
            with SessionStore(chat.wiring.paths.sessions_db) as store:
                target = store.resolve(arg)
                history = store.messages(target.id)
        agent = chat.agent
        if (target.provider, target.model) != (agent.route.provider.id, agent.route.model):
            agent.switch_model(target.provider, target.model)
        claimed, forked = recorder.claim(target)
    except HermesError as e:
        chat.screen.error(e)
        return
    agent.messages[:] = history
    agent.system = target.system
    replay(chat)
    if forked:
        chat.screen.notice(f"Session {target.id} is open in another hermes: continuing in a copy, {claimed.id}.")
    chat.screen.say(
        f'Resumed {claimed.id} "{claimed.title or "(untitled)"}" ({len(history)} messages) on {agent.route.label}.'
    )


def replay(chat: Chat) -> None:
    """Show the end of the conversation again, as it was on screen: the last exchanges that fit."""
    messages = chat.agent.messages
    rows = shutil.get_terminal_size((100, 24)).lines - 4
    start, used = len(messages), 0
    while start > 0:
        m = messages[start - 1]
        used += (m.content or "").count("\n") + 2
        if used > rows and start < len(messages):
            break
        start -= 1
    while start < len(messages) and messages[start].role != "user":
        start += 1  # begin at an exchange, not halfway through one
    if start > 0:
        chat.screen.notice(f"… {start} earlier messages (/history shows them all)")
    for m in messages[start:]:
        if m.role == "user":
            chat.screen.say(f"you: {m.content or ''}")
        elif m.role == "assistant" and m.content:
            with chat.screen.answer() as view:
                view.feed(m.content)
        elif m.role == "assistant":
            names = ", ".join((c.get("function") or {}).get("name", "?") for c in m.tool_calls)
            chat.screen.notice(f"⚙ {names}")


def _compress(chat: Chat, arg: str) -> None:
    try:
        for event in chat.agent.compress():
            chat.screen.notice(event.text if isinstance(event, Notice) else "")
    except HermesError as e:
        chat.screen.error(e)


def _reasoning(chat: Chat, arg: str) -> None:
    """show: print reasoning whole from now on (and the last one now); hide: one line; last: reprint it."""
    last = next((m.reasoning for m in reversed(chat.agent.messages) if m.role == "assistant" and m.reasoning), None)
    if arg not in ("show", "hide", "last", ""):
        chat.screen.say("Use /reasoning show, /reasoning hide or /reasoning last.")
        return
    if arg in ("show", "hide"):
        chat.show_reasoning = arg == "show"
        chat.screen.say(
            "Reasoning is shown whole from now on."
            if chat.show_reasoning
            else "Reasoning is summed up in one line from now on."
        )
    if arg in ("show", "last", ""):
        if last:
            chat.screen.notice(last.strip())
        elif arg != "show":
            chat.screen.say("No answer in this conversation came with reasoning.")


def _title(chat: Chat, arg: str) -> None:
    recorder = chat.recorder
    if recorder.session is None:
        chat.screen.say(
            "Nothing is saved yet: the session starts with your first message."
            if recorder.store
            else "Sessions are not saved here (--no-save)."
        )
        return
    if not arg:
        chat.screen.say(f"Title: {recorder.session.title or '(untitled)'}")
        return
    try:
        recorder.set_title(" ".join(arg.split()))
    except HermesError as e:
        chat.screen.error(e)
        return
    chat.screen.say(f'Renamed to "{recorder.session.title}"; hermes chat -r "{recorder.session.title}" resumes it.')


def _branch(chat: Chat, arg: str) -> None:
    recorder = chat.recorder
    if recorder.store is None or recorder.session is None:
        chat.screen.say("Nothing to branch from yet: say something first.")
        return
    original = recorder.session
    try:
        branch = recorder.store.fork(original.id, title=arg or f"{original.title or 'untitled'} (branch)")
        recorder.claim(branch)
    except HermesError as e:
        chat.screen.error(e)
        return
    chat.screen.say(f'Branched: now in {branch.id} "{branch.title}"; {original.id} stays as it was.')


def _edit(chat: Chat, arg: str) -> None:
    """Compose the next message in $VISUAL/$EDITOR; `last` edits the last message and asks again."""
    agent = chat.agent
    last = agent.last_user_index() if arg == "last" else None
    if arg == "last" and last is None:
        chat.screen.say("There is no message of yours to edit.")
        return
    if arg not in ("", "last"):
        chat.screen.say("Use /edit (a new message) or /edit last (change your last message and ask again).")
        return
    start = (agent.messages[last].content or "") if last is not None else ""
    try:
        text = compose(start, chat.wiring.env)
    except HermesError as e:
        chat.screen.error(e)
        return
    if not text.strip() or (last is not None and text.strip() == start.strip()):
        chat.screen.say("Nothing sent: the message is empty or unchanged.")
        return
    if last is not None:
        agent.truncate(last, "edit")  # the old question and its answers stay in the session, superseded
    chat.screen.say(f"you: {text.strip()}")
    chat.send(text.strip())


def compose(text: str, env: Mapping[str, str]) -> str:
    import shlex
    import tempfile

    from providers.errors import UsageError

    editor = env.get("VISUAL") or env.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w+", suffix=".md", prefix="hermes-message-", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        try:
            done = subprocess.run([*shlex.split(editor), f.name], check=False)
        except (OSError, ValueError) as e:
            raise UsageError(f"Cannot start the editor {editor!r}: {e}.", hint="Set $VISUAL or $EDITOR.") from None
        if done.returncode != 0:
            raise UsageError(f"The editor {editor!r} exited {done.returncode}; nothing was sent.")
        with open(f.name, encoding="utf-8", errors="replace") as edited:
            return edited.read()


def _export(chat: Chat, arg: str) -> None:
    recorder = chat.recorder
    if recorder.store is None or recorder.session is None:
        chat.screen.say("Nothing is saved yet to export.")
        return
    from pathlib import Path

    from agent.sessions.export import export_session

    target = Path(arg).expanduser() if arg else Path(f"hermes-{recorder.session.id}.md")
    try:
        text = export_session(recorder.store, recorder.session.id, "markdown")
        target.write_text(text, encoding="utf-8")
    except HermesError as e:
        chat.screen.error(e)
        return
    except OSError as e:
        chat.screen.say(f"Cannot write {target}: {e.strerror}.")
        return
    chat.screen.say(f"Exported {recorder.session.id} to {target} (Markdown).")


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
                subprocess.run(
                    argv,
                    input=text.encode(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    check=True,
                    timeout=5,
                )
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
    Command(
        "model",
        _model,
        "Switch the model; no argument: show the current one and the choices",
        args="[[PROVIDER:]MODEL]",
        complete=_complete_model,
    ),
    Command("new", _new, "Start a fresh conversation", aliases=("clear",)),
    Command("retry", _retry, "Ask again for an answer to your last message"),
    Command("undo", _undo, "Remove your last message and the answer to it"),
    Command("history", _history, "Show the conversation so far"),
    Command("system", _system, "Set the system prompt; no text: show it", args="[TEXT]"),
    Command("usage", _usage, "Tokens used this session"),
    Command("auth", _auth, "The keys of the current provider and their state"),
    Command("tools", _tools, "The tools the model may call"),
    Command("sessions", _sessions, "Recent stored conversations"),
    Command(
        "resume",
        _resume,
        "Continue a stored conversation (Tab completes)",
        args="[ID|TITLE]",
        complete=_complete_session,
    ),
    Command("title", _title, "Name this conversation; no name: show it", args="[NAME]"),
    Command("branch", _branch, "Continue from here in a new session; this one stays as it is", args="[TITLE]"),
    Command(
        "edit", _edit, "Write the next message in $EDITOR; last: edit your last message and ask again", args="[last]"
    ),
    Command("export", _export, "Save this conversation as Markdown", args="[FILE]"),
    Command("compress", _compress, "Summarise the earlier conversation now (the last turns stay word for word)"),
    Command(
        "reasoning",
        _reasoning,
        "A reasoning model's thinking: show it whole, hide it to one line, or print the last",
        args="show|hide|last",
        complete=lambda chat, arg: [(c, "") for c in ("show", "hide", "last")],
    ),
    Command(
        "rollback",
        _rollback,
        "Restore the files tools changed in the last N turns (default 1); shows the diff",
        args="[N]",
    ),
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
        chat.screen.say(
            f"Unknown command /{name}.{suggestion} /help lists them; "
            "start the line with a space to send it as a message."
        )
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
    for choice, meta in command.complete(chat, arg):
        if choice.startswith(arg):
            yield choice, -len(arg), meta
