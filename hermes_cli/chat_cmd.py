"""`hermes chat`: the interactive REPL."""

from __future__ import annotations

from hermes_cli.context import Context
from hermes_cli.options import ChatOptions
from hermes_cli.startup import start_agent


def run_chat(options: ChatOptions) -> None:
    ctx = Context()
    agent, recorder = start_agent(ctx, options)
    from hermes_cli.repl.loop import run  # prompt-toolkit and rich load only once the agent is set up

    run(ctx, agent, recorder, attach=options.attach, yes=options.yes)
