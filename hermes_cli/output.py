"""Output conventions: answers on stdout, everything else on stderr; plain text unless a colour TTY."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def color_enabled(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def console(*, stderr: bool = False) -> Console:
    """A rich Console that degrades to plain text off a terminal (rich is imported only here)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    plain = not color_enabled(stream)
    return Console(
        file=stream,
        no_color=plain,
        highlight=False,
        emoji=False,
        soft_wrap=plain,
        force_terminal=None if not plain else False,
        color_system=None if plain else "auto",
    )


def info(message: str) -> None:
    print(f"hermes: {message}", file=sys.stderr)


def warn(message: str) -> None:
    print(f"hermes: warning: {message}", file=sys.stderr)


def print_json(data: Any) -> None:
    import json  # only for --json: a listing shown as a table never loads it

    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def print_table(
    columns: list[str],
    rows: list[list[Any]],
    *,
    title: str | None = None,
    no_wrap: set[str] | frozenset[str] = frozenset(),
) -> None:
    """A rich table on a terminal; tab-separated lines with a header when piped (easy to cut/awk).

    Cells are plain strings (never read as markup: user text may contain "[/INST]") or rich Text.
    Columns in `no_wrap` (URLs, ids) are cut with an ellipsis rather than broken across lines.
    """
    if not color_enabled(sys.stdout):
        if title:
            print(f"# {title}")
        print("\t".join(columns))
        for row in rows:
            print("\t".join(str(c) for c in row))
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    # Wide tables (the provider registry) lose their vertical rules: 100 columns keep whole URLs.
    table = Table(
        title=title, show_lines=False, box=box.SIMPLE_HEAD if no_wrap else box.HEAVY_HEAD, pad_edge=not no_wrap
    )
    for c in columns:
        table.add_column(c, overflow="ellipsis" if c in no_wrap else "fold", no_wrap=c in no_wrap)
    for row in rows:
        table.add_row(*(Text(c) if isinstance(c, str) else c for c in row))
    console().print(table)
