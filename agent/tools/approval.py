"""Which tool calls need the user's yes. Pure: no I/O; the caller asks and reports the answer.

Rules, in order:
1. A dangerous call (`rm -rf /`, `mkfs`, a fork bomb, `curl … | sh`) asks, even with --yes or an
   earlier "always", unless `[agent] allow_dangerous = true`.
2. A call touching a path outside the workspace asks, even to read, unless --yes or "always".
3. A read-only call inside the workspace runs.
4. Anything that writes, runs programs or fetches from the network asks, unless --yes or "always".
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from agent.tools.base import Arguments, Effect, Tool, Workspace

RUN = "run"
ASK = "ask"

_WHAT = {
    Effect.WRITE: "changes files",
    Effect.EXEC: "runs a program",
    Effect.NETWORK: "fetches from the network",
}


@dataclass(frozen=True)
class ApprovalSettings:
    yes: bool = False  # --yes: approve what rule 2 and 4 would ask about
    allow_dangerous: bool = False  # [agent] allow_dangerous: rule 1 off


@dataclass(frozen=True)
class Verdict:
    action: str  # RUN or ASK
    reason: str = ""  # why it asks, for the question put to the user
    dangerous: bool = False  # "always" must not cover it


def decide(tool: Tool, args: Arguments, workspace: Workspace, settings: ApprovalSettings,
           always: Collection[str] = ()) -> Verdict:
    """May raise ToolError (a path argument that is not a path)."""
    danger = tool.danger(args)
    if danger and not settings.allow_dangerous:
        return Verdict(ASK, f"dangerous: {danger}", dangerous=True)
    approved = settings.yes or tool.name in always
    outside = [p for p in tool.paths(args) if not workspace.contains(workspace.resolve(p))]
    if outside and not approved:
        return Verdict(ASK, f"touches {outside[0]}, outside the workspace {workspace.root}")
    if tool.effect is Effect.READ or approved:
        return Verdict(RUN)
    return Verdict(ASK, _WHAT[tool.effect])
