"""`hermes sessions list|show|search|export|delete`: the stored conversations."""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agent.sessions import HIGHLIGHT, SessionInfo, SessionStore
from hermes_cli.ages import age
from hermes_cli.output import color_enabled, console, info, print_json, print_table
from hermes_cli.paths import resolve_paths
from providers.cost import Cost
from providers.errors import UsageError

if TYPE_CHECKING:
    from hermes_cli.wiring import Wiring

sessions_app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
IdArg = Annotated[str, typer.Argument(help="Session id, or a unique prefix of it.")]


class ExportFormat(StrEnum):
    markdown = "markdown"
    json = "json"


def _store() -> SessionStore:
    # Only the store's path: the config (and what reading it imports) is for pricing, when there is usage.
    return SessionStore(resolve_paths(os.environ).sessions_db)


def _snippet_cell(snippet: str) -> Any:
    if not color_enabled(sys.stdout):
        return snippet.replace(HIGHLIGHT, "")  # plain text: no ** around the matched words
    from rich.text import Text

    pieces = re.split(re.escape(HIGHLIGHT) + "(.*?)" + re.escape(HIGHLIGHT), snippet)
    # re.split keeps the captured terms at the odd positions.
    return Text.assemble(*((p, "bold yellow") if i % 2 else p for i, p in enumerate(pieces)))


def _cost(usage: list[tuple[str, str, int, int, int]], wiring: Wiring, total: Cost) -> Cost:
    """`total` plus what the answers recorded without their cost cost at today's prices (per model:
    the priced models' sum, and how many of them have no price)."""
    for provider, model, prompt, completion, cached in usage:
        total = total.plus(wiring.model_info(model, provider or None).cost(prompt, completion, cached))
    return total


def _session_row(s: SessionInfo, now: float, cost: Cost) -> list[str]:
    shown = cost.describe(short=True)
    return [s.id, s.title or "(untitled)", f"{s.provider}:{s.model}", str(s.message_count), shown, age(s.updated, now)]


@sessions_app.command("list")
def list_cmd(
    json_: JsonOpt = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most N sessions.")] = 50,
) -> None:
    """Stored sessions, the most recently active first."""
    with _store() as store:
        sessions = store.recent(limit=limit)
        recorded, usage = store.costs([s.id for s in sessions])  # usage: answers recorded without a cost
    wiring = None
    if usage:  # the price list, only for those: loading it is most of what a listing would cost
        from hermes_cli.wiring import Wiring

        wiring = Wiring()

    def cost_of(session_id: str) -> Cost:
        if session_id not in recorded and session_id not in usage:
            return Cost(unpriced=1)  # no answer yet
        total = Cost(*recorded[session_id]) if session_id in recorded else Cost()
        return _cost(usage[session_id], wiring, total) if wiring and session_id in usage else total

    costs = {s.id: cost_of(s.id) for s in sessions}
    if json_:
        print_json(
            [asdict(s) | {"cost_usd": costs[s.id].known, "cost_complete": not costs[s.id].unpriced} for s in sessions]
        )
    elif not sessions:
        info("no stored sessions yet.")
    else:
        now = time.time()
        print_table(
            ["ID", "TITLE", "MODEL", "MESSAGES", "COST", "AGE"],
            [_session_row(s, now, costs[s.id]) for s in sessions],
        )


@sessions_app.command("show")
def show_cmd(session_id: IdArg, json_: JsonOpt = False) -> None:
    """A session's conversation, readable (Markdown): each answer's route, and what was undone or
    replaced, marked as superseded."""
    from agent.sessions.export import export_session

    with _store() as store:
        text = export_session(store, store.resolve(session_id).id, "json" if json_ else "markdown", superseded=True)
    if json_ or not color_enabled(sys.stdout):
        sys.stdout.write(text)
        return
    from rich.markdown import Markdown

    console().print(Markdown(text))


@sessions_app.command("search")
def search_cmd(
    text: Annotated[list[str], typer.Argument(help="Words to find (SQLite FTS5 syntax, or plain text).")],
    json_: JsonOpt = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most N matches.")] = 20,
) -> None:
    """Messages matching TEXT, best match first, with the matching words highlighted."""
    with _store() as store:
        hits = store.search(" ".join(text), limit=limit)
    if json_:
        print_json([{"session": asdict(h.session), "role": h.role, "snippet": h.snippet, "rank": h.rank} for h in hits])
    elif not hits:
        info("no message matches.")
    else:
        rows = [[h.session.id, h.session.title or "(untitled)", h.role, _snippet_cell(h.snippet)] for h in hits]
        print_table(["ID", "TITLE", "ROLE", "MATCH"], rows)


@sessions_app.command("export")
def export_cmd(
    session_id: IdArg,
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="Output format.")] = ExportFormat.markdown,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to FILE instead of stdout.")] = None,
) -> None:
    """A session as Markdown or JSON, on stdout or into a file (created with mode 0600)."""
    from agent.sessions.export import export_session

    with _store() as store:
        text = export_session(store, store.resolve(session_id).id, fmt.value)
    if output is None:
        sys.stdout.write(text)
        return
    from providers.atomic import write_atomic

    write_atomic(output, text.encode())
    info(f"wrote {output}.")


@sessions_app.command("delete")
def delete_cmd(
    session_id: IdArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
) -> None:
    """Delete a session and its messages (asks first on a terminal)."""
    with _store() as store:
        session = store.resolve(session_id)
        if not yes and not _confirmed(session):
            info("nothing deleted.")
            return
        store.delete(session.id)
    info(f"deleted session {session.id} ({session.title or 'untitled'}).")


def _confirmed(session: SessionInfo) -> bool:
    if not sys.stdin.isatty():
        raise UsageError(f"Not deleting session {session.id} without confirmation.", hint="Pass -y to delete it.")
    return typer.confirm(
        f"Delete session {session.id} ({session.title or 'untitled'}, {session.message_count} messages)?",
        default=False,
        err=True,
    )
