"""`hermes chat`: the interactive REPL."""

from __future__ import annotations

from hermes_cli.options import ChatOptions
from hermes_cli.wiring import Wiring


def run_chat(options: ChatOptions) -> None:
    wiring = Wiring()
    agent, recorder = wiring.start_agent(options)
    from hermes_cli.repl.loop import run  # prompt-toolkit and rich load only once the agent is set up

    run(wiring, agent, recorder, attach=options.attach, yes=options.yes)
