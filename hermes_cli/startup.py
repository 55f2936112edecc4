"""Setting up a conversation for `ask` and `chat`: runtime, route, resumed history, and saving."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.conversation import Agent, Message
from hermes_cli.context import Context
from hermes_cli.options import ChatOptions
from providers.endpoint import normalize_base_url

if TYPE_CHECKING:
    from agent.sessions import SessionInfo, SessionStore
    from agent.tools.toolset import ToolSet


@dataclass
class Recorder:
    """Saves each message as it completes; creates the session row on the first one."""

    store: SessionStore | None
    agent: Agent | None = None
    session: SessionInfo | None = None

    @property
    def session_id(self) -> str | None:
        return self.session.id if self.session else None

    def __call__(self, message: Message) -> None:
        if self.store is None or self.agent is None:
            return
        route = self.agent.route
        if self.session is None:
            self.session = self.store.create(
                provider=route.provider.id, model=route.model, base_url=route.endpoint.url, system=self.agent.system
            )
        elif (self.session.provider, self.session.model) != (route.provider.id, route.model):
            self.store.set_route(self.session.id, provider=route.provider.id, model=route.model,
                                 base_url=route.endpoint.url)
        self.store.append(self.session.id, message)

    def start_new(self) -> None:
        self.session = None


def build_toolset(ctx: Context, options: ChatOptions) -> ToolSet | None:
    """The built-in tools and those of the configured MCP servers, working in the current directory."""
    if options.no_tools:
        return None
    from agent.tools.approval import ApprovalSettings
    from agent.tools.base import Workspace
    from agent.tools.builtin import builtin_tools
    from agent.tools.toolset import DEFAULT_MAX_ITERATIONS, ToolSet

    tools = builtin_tools(network=ctx.config.get("tools", "network", default=False) is True,
                          sandbox=ctx.config.get("tools", "sandbox", default=True) is not False)
    servers = ctx.config.table("mcp", "servers")
    if servers:
        from agent.tools.mcp import McpServers  # the mcp package loads only when a server is configured

        mcp = McpServers.start(servers, reserved={t.name for t in tools}, log_dir=ctx.paths.state_dir / "mcp")
        tools = [*tools, *mcp.tools]
    settings = ApprovalSettings(
        yes=options.yes, allow_dangerous=ctx.config.get("agent", "allow_dangerous", default=False) is True
    )
    limit = ctx.config.get("agent", "max_tool_iterations", default=DEFAULT_MAX_ITERATIONS)
    return ToolSet(tools, Workspace(Path.cwd()), settings, max_iterations=limit)


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
                from agent.errors import UsageError

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

    recorder = Recorder(store if saving_enabled(ctx, options) else None, session=resumed)
    agent = Agent(
        runtime, runtime.route(provider, model), system=system, messages=history, on_message=recorder,
        fallbacks=() if options.no_fallback else runtime.fallbacks(), tools=build_toolset(ctx, options),
    )
    recorder.agent = agent
    if resumed is not None and recorder.store is not None and options.system is not None:
        recorder.store.set_system(resumed.id, options.system)
    return agent, recorder
