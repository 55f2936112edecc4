"""`hermes rollback [-s SESSION] [N]` and the REPL's `/rollback [N]`: undo what write_file and edit_file
changed in the last N turns, after showing the diff."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from hermes_cli.output import info
from providers.errors import UsageError

if TYPE_CHECKING:
    from agent.checkpoints import Checkpoints, Plan


def describe(plan: Plan, count: int) -> list[str]:
    """What the rollback would do and what it cannot, in sentences (the diff aside)."""
    turns = len(plan.turns)
    if turns == 0:
        return ["No file changes by tools are recorded in this session, so there is nothing to roll back."]
    lines = []
    if turns < count:
        lines.append(
            f"Only {turns} turn{'' if turns == 1 else 's'} with file changes {'is' if turns == 1 else 'are'} "
            "recorded; rolling back those."
        )
    for f in plan.refused:
        lines.append(f"{f.path} changed since hermes wrote it (outside hermes?); it is left as it is.")
    if plan.ran_commands:
        lines.append("These turns also ran commands; what the commands changed is not captured and stays.")
    if not [f for f in plan.files if not f.changed_since]:
        lines.append("The files are already as they were before these turns: nothing to restore.")
    return lines


def restored_line(restored: list[str], turns: int) -> str:
    return (
        f"Restored {len(restored)} file{'' if len(restored) == 1 else 's'} as they were before the last "
        f"{turns} turn{'' if turns == 1 else 's'}: {', '.join(restored)}"
        if restored
        else "Nothing was restored."
    )


def run_rollback(session: str | None, count: int, *, yes: bool) -> None:
    from agent.checkpoints import Checkpoints, latest_session
    from hermes_cli import approvals
    from hermes_cli.wiring import Wiring

    wiring = Wiring()
    root = wiring.paths.state_dir / "checkpoints"
    session_id: str | None
    if session is not None:
        from agent.sessions import SessionStore

        session_id = SessionStore(wiring.paths.sessions_db).resolve(session).id
    else:
        session_id = latest_session(root)
        if session_id is None:
            info("no file changes by tools are recorded, so there is nothing to roll back.")
            return
    checkpoints = Checkpoints(root)
    plan = checkpoints.plan(count, session_id)
    sys.stdout.write(checkpoints.diff(plan))
    for line in describe(plan, count):
        info(line)
    if not [f for f in plan.files if not f.changed_since]:
        return
    if not yes:
        if not approvals.can_ask():
            raise UsageError(
                "Nothing was restored: there is no terminal to confirm on.", hint="Pass -y to restore these files."
            )
        if not _confirm(input):
            info("nothing was restored.")
            return
    info(restored_line(checkpoints.apply(plan), len(plan.turns)))


def rollback_in_chat(checkpoints: Checkpoints | None, arg: str, say: Callable[[str], None]) -> None:
    """`/rollback [N]`: the user asked for it in so many words; the diff shows what it does."""
    from agent.checkpoints import parse_count

    count = parse_count(arg)
    if checkpoints is None:
        say("No file changes by tools are recorded in this session, so there is nothing to roll back.")
        return
    plan = checkpoints.plan(count)
    diff = checkpoints.diff(plan)
    say("\n".join([*([diff.rstrip("\n")] if diff else []), *describe(plan, count)]))
    if [f for f in plan.files if not f.changed_since]:
        say(restored_line(checkpoints.apply(plan), len(plan.turns)))


def _confirm(read: Callable[[str], str]) -> bool:
    try:
        return read("Restore these files? [y/N]: ").strip().lower() in ("y", "yes")
    except EOFError:
        return False
