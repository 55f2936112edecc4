"""What `hermes tools` and `/tools` show of each tool: pure, from the tools and the approval settings."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from agent.tools.base import Effect, Tool


@dataclass(frozen=True)
class ToolRow:
    name: str
    source: str  # "built-in" or "mcp:NAME"
    asks: str  # "no" (reads inside the working directory), "yes", or "approved" (--yes, "always")
    sandboxed: str  # "yes", "no", or "" for a tool that runs no program
    summary: str  # the first line of its description
    confinement: str  # the tool's own words on where it runs ("sandboxed: ...", "not sandboxed: ...")
    hints: tuple[str, ...] = ()  # an MCP server's hints: read-only, destructive, idempotent, open-world

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "source": self.source,
            "asks": self.asks != "no",
            "sandboxed": {"yes": True, "no": False}.get(self.sandboxed),
            "description": self.summary,
            "confinement": self.confinement,
            "hints": list(self.hints),
        }


def rows(tools: Sequence[Tool], *, yes: bool = False, always: Collection[str] = ()) -> list[ToolRow]:
    found = []
    for t in tools:
        asks = "no" if t.effect is Effect.READ else ("approved" if yes or t.name in always else "yes")
        confinement = t.confinement
        sandboxed = (
            "no" if confinement.startswith("not sandboxed") else "yes" if confinement.startswith("sandboxed") else ""
        )
        summary = t.description.strip().splitlines()[0] if t.description.strip() else ""
        found.append(ToolRow(t.name, t.source, asks, sandboxed, summary, confinement, tuple(getattr(t, "hints", ()))))
    return found


def table(found: Sequence[ToolRow], columns: int) -> list[str]:
    """Aligned lines fitting `columns`: each column as wide as its longest cell, the description cut to
    what is left (a long source such as "mcp:filesystem" no longer pushes the others out of line)."""
    heads = ("TOOL", "SOURCE", "ASKS", "SANDBOXED")
    cells = [(r.name, r.source, r.asks, r.sandboxed or "-") for r in found]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(heads)]
    room = columns - 1 - (2 + sum(widths) + 2 * len(widths))  # what is left for the description
    if room < 10:  # a narrow terminal: the description gives way, the columns stay aligned
        room = 0
    lines = [
        (
            "  "
            + "  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=False))
            + ("  DESCRIPTION" if room else "")
        ).rstrip()
    ]
    said = ""
    for row, cell in zip(found, cells, strict=False):
        summary = row.summary if len(row.summary) <= room else row.summary[: room - 1] + "…" if room else ""
        lines.append(
            ("  " + "  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=False)) + "  " + summary).rstrip()
        )
        if row.confinement and row.confinement != said:  # once for a run of tools that share it
            lines.append(" " * (4 + widths[0]) + row.confinement)
        said = row.confinement
    return lines
