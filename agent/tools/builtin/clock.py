"""current_time: the model has no clock of its own."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from agent.tools.base import Arguments, BuiltinTool, Effect, ToolError, ToolResult, Workspace, object_schema

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo


class CurrentTime(BuiltinTool):
    name = "current_time"
    description = (
        "The current date and time as ISO 8601 with UTC offset, and the weekday: in the user's local "
        "time zone, or in `timezone` (an IANA name such as 'Europe/Paris' or 'UTC')."
    )
    parameters = object_schema(
        {"timezone": {"type": "string", "description": "IANA time zone name. Default: the user's local zone."}},
        [],
    )
    effect = Effect.READ

    def run(self, args: Arguments, workspace: Workspace) -> ToolResult:
        name = args.get("timezone")
        if name is None:
            now = datetime.now().astimezone()
            zone = now.tzname() or "local time"
        else:
            now = datetime.now(_zone(name))
            zone = name
        now = now.replace(microsecond=0)
        line = f"{now.isoformat()} ({now:%A}, {zone})"
        return ToolResult(line, line)


def _zone(name: str) -> ZoneInfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # only when a zone is asked for: not at every start

    if not name.strip():
        raise ToolError("timezone must be an IANA name such as 'Europe/Paris', or left out for local time.")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: not a zone key at all ("../x", "/abs")
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise ToolError(f"unknown time zone {shown!r}; use an IANA name such as 'Europe/Paris' or 'UTC'.") from None
