"""The REPL's bottom toolbar: where you stand, in one line that fits the terminal.

provider:model │ host │ context used of the window │ session cost │ the last answer's speed.
On a narrow terminal the host goes first, then the speed, then the context; the cost goes last.
Pure: figures in, text out.
"""

from __future__ import annotations

from dataclasses import dataclass

SEPARATOR = " │ "


@dataclass(frozen=True)
class Status:
    route: str  # provider:model
    host: str
    context_used: int  # tokens the conversation takes (the last request's, or an estimate)
    context_window: int
    cost: str  # "$0.0123", "≥ $0.0100", or "" when nothing is priced
    tokens_per_second: float | None = None


def _tokens(n: int) -> str:
    """12400 -> 12.4K, 200000 -> 200K, 950 -> 950."""
    if n < 1000:
        return str(n)
    return f"{n / 1000:.1f}".removesuffix(".0") + "K"


def toolbar(status: Status, width: int) -> str:
    percent = 100 * status.context_used / status.context_window if status.context_window else 0.0
    parts: dict[str, str] = {
        "route": status.route,
        "host": status.host,
        "context": f"{_tokens(status.context_used)}/{_tokens(status.context_window)} ({percent:.0f}%)",
        "cost": status.cost,
        "speed": f"{status.tokens_per_second:.0f} tok/s" if status.tokens_per_second else "",
    }
    order = ["route", "host", "context", "cost", "speed"]
    for dropped in ("host", "speed", "context", "cost"):
        line = " " + SEPARATOR.join(parts[k] for k in order if parts[k]) + " "
        if len(line) <= width:
            return line
        parts[dropped] = ""
    line = f" {status.route} "
    return line if len(line) <= width else line[: max(width - 1, 0)] + "…"
