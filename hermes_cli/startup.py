"""Setting up a conversation for `ask` and `chat`: runtime, route, resumed history, and saving."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from agent.conversation import Agent, Message
from hermes_cli.context import Context
from hermes_cli.options import ChatOptions
from providers.endpoint import normalize_base_url

if TYPE_CHECKING:
    from filelock import FileLock

    from agent.attachments import Attachment
    from agent.runtime import Runtime
    from agent.sessions import SessionInfo, SessionStore
    from agent.tools.toolset import ToolSet
    from providers.secrets import Secrets


@dataclass
class Recorder:
    """The session store as the agent's ConversationLog: every change to the conversation is recorded
    as it happens (each message as it completes, undo and retry as superseded records, the system
    prompt, the title), so `-c`/`-r` restore exactly what was on screen. The session row is created
    on the first message. One writer per session: the recorder holds the session's lock, and a
    session another process holds is forked rather than written by two."""

    store: SessionStore | None
    lock_dir: Path | None = None
    agent: Agent | None = None
    session: SessionInfo | None = None
    _lock: FileLock | None = None

    @property
    def session_id(self) -> str | None:
        return self.session.id if self.session else None

    def append(self, message: Message) -> None:
        if self.store is None or self.agent is None:
            return
        route = self.agent.route
        if self.session is None:
            self.session = self.store.create(
                provider=route.provider.id, model=route.model, base_url=route.endpoint.url, system=self.agent.system
            )
            self._take(self.session.id)
        elif (self.session.provider, self.session.model) != (route.provider.id, route.model):
            self.store.set_route(
                self.session.id, provider=route.provider.id, model=route.model, base_url=route.endpoint.url
            )
            self.session = replace(self.session, provider=route.provider.id, model=route.model)
        stored = scrubbed(message, self.agent.runtime.secrets())
        self.store.append(self.session.id, stored)
        if not self.session.title and message.role == "user":
            from agent.sessions import title_from

            self.session = replace(self.session, title=title_from(stored.content))

    def truncate(self, keep: int, reason: str) -> None:
        if self.store is not None and self.session is not None:
            self.store.truncate(self.session.id, keep, reason)

    def set_system(self, text: str | None) -> None:
        if self.store is not None and self.session is not None:
            self.store.set_system(self.session.id, text)

    def set_title(self, title: str) -> None:
        if self.store is not None and self.session is not None:
            self.store.set_title(self.session.id, title)
            self.session = replace(self.session, title=title)

    def start_new(self) -> None:
        self._release()
        self.session = None

    def claim(self, session: SessionInfo) -> tuple[SessionInfo, bool]:
        """Become the writer of `session`; when another process already is, continue in a fork of it
        (the same history, a new id) instead. Returns the session written to and whether it forked."""
        self._release()
        if self.store is None:
            self.session = session
            return session, False
        forked = not self._take(session.id)
        if forked:
            session = self.store.fork(session.id)
            self._take(session.id)
        self.session = session
        return session, forked

    def _take(self, session_id: str) -> bool:
        if self.lock_dir is None:
            return True
        from filelock import FileLock, Timeout

        lock = FileLock(self.lock_dir / f"{session_id}.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        except OSError:
            return True  # no lock dir to be had (a read-only state dir): nothing to coordinate with
        self._release()
        self._lock = lock
        return True

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def scrubbed(message: Message, secrets: Secrets) -> Message:
    """The message as it may be stored: no known secret in its text or its tool calls' arguments."""
    calls = tuple(
        {**c, "function": {**c["function"], "arguments": secrets.scrub(c["function"]["arguments"])}}
        if isinstance(c.get("function"), dict) and isinstance(c["function"].get("arguments"), str)
        else c
        for c in message.tool_calls
    )
    content = secrets.scrub(message.content) if message.content else message.content
    reasoning = secrets.scrub(message.reasoning) if message.reasoning else message.reasoning
    if content == message.content and calls == message.tool_calls and reasoning == message.reasoning:
        return message
    return replace(message, content=content, tool_calls=calls, reasoning=reasoning)


def build_toolset(
    ctx: Context, runtime: Runtime, options: ChatOptions, session_id: Callable[[], str | None] = lambda: None
) -> ToolSet | None:
    """The built-in tools and those of the configured MCP servers, working in the current directory.

    Commands and servers get their environment from the secret registry: no provider key, whatever
    the tool; only what `[tools] pass_env` (and a server's own `env`) names beyond the usual.
    A server that cannot start is named on stderr once and left out (ConfigError if `required`).
    What write_file and edit_file change is checkpointed per turn of `session_id` for /rollback.
    """
    if options.no_tools:
        return None
    from agent.tools.approval import ApprovalSettings
    from agent.tools.base import Workspace
    from agent.tools.builtin import builtin_tools
    from agent.tools.toolset import DEFAULT_MAX_ITERATIONS, ToolSet

    tools = builtin_tools(
        command_env=runtime.child_env(),
        network=ctx.config.get("tools", "network", default=False) is True,
        sandbox=ctx.config.get("tools", "sandbox", default=True) is not False,
    )
    servers = ctx.config.table("mcp", "servers")
    if servers:
        from agent.tools.mcp import McpServers  # the mcp package loads only when a server is configured

        mcp = McpServers.start(
            servers,
            reserved={t.name for t in tools},
            log_dir=ctx.paths.state_dir / "mcp",
            cache_dir=ctx.paths.state_dir / "mcp",
            environment=lambda own: runtime.child_env(extra=own, minimal=True),
        )
        for failure in mcp.failures:
            print(
                f"hermes: {failure.message} Going on without its tools. {failure.hint or ''}".rstrip(), file=sys.stderr
            )
        tools = [*tools, *mcp.tools]
    settings = ApprovalSettings(
        yes=options.yes, allow_dangerous=ctx.config.get("agent", "allow_dangerous", default=False) is True
    )
    limit = ctx.config.get("agent", "max_tool_iterations", default=DEFAULT_MAX_ITERATIONS)
    return ToolSet(
        tools,
        Workspace(Path.cwd()),
        settings,
        max_iterations=limit,
        checkpoint_dir=ctx.paths.state_dir / "checkpoints",
        session_id=session_id,
    )


def gather_attachments(
    ctx: Context, text: str, named: Sequence[str], *, yes: bool, stdin: bytes | None = None
) -> list[Attachment]:
    """The files `-a` names and the `@path` words of `text` name, read and checked. One outside the
    working directory asks first, as read_file does (--yes approves; with no terminal it is refused)."""
    from agent.attachments import MAX_BYTES, AttachmentError, from_bytes, mentions, outside, read_attachment

    cwd = Path.cwd()
    limit = int(ctx.config.get("agent", "max_attachment_bytes", default=MAX_BYTES))
    found: list[Attachment] = []
    for path in dict.fromkeys([*named, *mentions(text, cwd)]):
        if path == "-":
            found.append(from_bytes("stdin", stdin or b"", max_bytes=limit))
            continue
        if outside(path, cwd) and not yes and not _approve_outside(path, cwd):
            raise AttachmentError(
                f"{path} is outside the working directory {cwd}, so it was not attached.",
                hint="Pass -y to attach it, or run hermes from its directory.",
            )
        found.append(read_attachment(path, cwd=cwd, max_bytes=limit))
    return found


def _approve_outside(path: str, cwd: Path) -> bool:
    from agent.events import APPROVE, APPROVE_ALWAYS, ApprovalNeeded
    from hermes_cli import approvals

    if not approvals.can_ask():
        return False
    request = ApprovalNeeded("attach", path, f"reads a file outside the working directory {cwd}", False)
    approvals.ask(request)
    return request.choice in (APPROVE, APPROVE_ALWAYS)


def project_context(ctx: Context, options: ChatOptions) -> str | None:
    """AGENTS.md / .hermes.md from here up to the repository root, named on stderr when used."""
    if options.no_project_context or ctx.config.get("agent", "project_context", default=True) is False:
        return None
    from agent.project_context import MAX_BYTES, find_project_context

    cwd = Path.cwd()
    found = find_project_context(cwd)
    if found is None:
        return None
    cut = f" (cut to its first {MAX_BYTES // 1024} KB)" if found.cut else ""
    print(f"hermes: using {found.names(cwd)}{cut} (--no-project-context leaves it out)", file=sys.stderr)
    return found.text


def saving_enabled(ctx: Context, options: ChatOptions) -> bool:
    return not options.no_save and ctx.config.get("sessions", "save", default=True) is not False


def start_agent(ctx: Context, options: ChatOptions) -> tuple[Agent, Recorder]:
    """Build the Agent the options ask for, resuming a stored session when -c or -r says so."""
    if options.base_url:
        normalize_base_url(options.base_url, what="--base-url")
    store = None
    resumed: SessionInfo | None = None
    history: list[Message] = []
    wants_resume = options.continue_latest or options.resume
    if saving_enabled(ctx, options) or wants_resume:
        from agent.sessions import SessionStore

        store = SessionStore(ctx.paths.sessions_db)
    if wants_resume:
        assert store is not None
        if options.resume:
            resumed = store.resolve(options.resume)
        else:
            resumed = store.latest()
            if resumed is None:
                from providers.errors import UsageError

                raise UsageError("There is no earlier session to continue.", hint="Start one without -c.")
        history = store.messages(resumed.id)

    runtime = ctx.runtime()
    provider, model = options.provider, options.model
    if resumed is not None and not provider and not model:
        provider, model = resumed.provider, resumed.model
    provider, model = runtime.choose(provider, model)
    for note in runtime.notes:
        print(f"hermes: {note}", file=sys.stderr)
    if options.base_url:
        runtime.attach_base_url(provider, options.base_url)
    system = options.system if options.system is not None else (resumed.system if resumed else None)

    recorder = Recorder(store if saving_enabled(ctx, options) else None, ctx.paths.state_dir / "sessions")
    if resumed is not None:
        claimed, forked = recorder.claim(resumed)
        if forked:
            print(
                f"hermes: session {resumed.id} is open in another hermes; continuing in a copy of it, "
                f"{claimed.id}, so neither records the other's turns.",
                file=sys.stderr,
            )
    agent = Agent(
        runtime,
        runtime.route(provider, model),
        system=system,
        messages=history,
        log=recorder,
        fallbacks=() if options.no_fallback else runtime.fallbacks(),
        tools=build_toolset(ctx, runtime, options, lambda: recorder.session_id),
        project_context=project_context(ctx, options),
    )
    recorder.agent = agent
    if resumed is not None and options.system is not None:
        recorder.set_system(options.system)
    return agent, recorder
