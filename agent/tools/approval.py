"""Which tool calls need the user's yes. Pure: no I/O; the caller asks and reports the answer.

Rules, in order:
1. A dangerous call (`rm -rf /`, `mkfs`, a fork bomb, `curl … | sh`) asks, even with --yes or an
   earlier "always", unless `[agent] allow_dangerous = true`.
2. A call that leaves the confinement --yes approves (a sandboxed command asking for the network, a
   fetch from a local address) asks, even with --yes or an earlier "always".
3. A call touching a path outside the workspace asks, even to read, unless --yes or "always".
4. A read-only call inside the workspace runs.
5. Anything that writes, runs programs or fetches from the network asks, unless --yes or "always".
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from agent.tools.base import Arguments, Effect, Tool, Workspace

RUN = "run"
ASK = "ask"
ALLOW_DANGEROUS = "[agent] allow_dangerous = true"

_WHAT = {
    Effect.WRITE: "changes files",
    Effect.EXEC: "runs a program",
    Effect.NETWORK: "fetches from the network",
}


@dataclass(frozen=True)
class ApprovalSettings:
    yes: bool = False  # --yes: approve what rules 3 and 5 would ask about
    allow_dangerous: bool = False  # [agent] allow_dangerous: rule 1 off


@dataclass(frozen=True)
class Verdict:
    action: str  # RUN or ASK
    reason: str = ""  # why it asks, for the question put to the user: "it {reason}"
    dangerous: bool = False  # asks even with --yes, and "always" must not cover it (rules 1 and 2)
    setting: str = ""  # for such a call: the config setting that would let it run with --yes, if any


def decide(
    tool: Tool, args: Arguments, workspace: Workspace, settings: ApprovalSettings, always: Collection[str] = ()
) -> Verdict:
    """May raise ToolError (a path argument that is not a path)."""
    danger = tool.danger(args, workspace)
    if danger and not settings.allow_dangerous:
        return Verdict(ASK, f"is dangerous: {danger}", dangerous=True, setting=ALLOW_DANGEROUS)
    escape = tool.escapes(args, workspace)
    if escape:
        return Verdict(ASK, escape.reason, dangerous=True, setting=escape.setting)
    approved = settings.yes or tool.name in always
    outside = [p for p in tool.paths(args) if not workspace.contains(workspace.resolve(p))]
    if outside and not approved:
        return Verdict(ASK, f"touches {outside[0]}, outside the workspace {workspace.root}")
    if tool.effect is Effect.READ or approved:
        return Verdict(RUN)
    # An MCP tool may do anything its server does: say whose tool it is rather than guess at "a program".
    what = (
        f"is a tool of MCP server {tool.source.removeprefix('mcp:')!r}"
        if tool.source.startswith("mcp:")
        else _WHAT[tool.effect]
    )
    return Verdict(ASK, f"{what} ({tool.confinement})" if tool.confinement else what)


def unapproved(verdict: Verdict, *, yes: bool) -> str:
    """Why a call that needs the user's yes did not run where no one can answer (no terminal), and what
    would let it run: one sentence, for the user and for the model."""
    if not verdict.dangerous:
        return f"it {verdict.reason} and needs approval, and there is no terminal to ask on; pass -y to allow it"
    text = f"it {verdict.reason}, so it asks even with --yes, and there is no terminal to ask on"
    if not verdict.setting:
        return text + "; only a user at a terminal can allow it"
    return text + f"; set {verdict.setting}" + ("" if yes else " and pass -y") + " to allow it"
