"""Asking the user to approve a tool call, on the terminal. Used by `ask` and the REPL alike."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from agent.events import APPROVE, APPROVE_ALWAYS, DENY, ApprovalNeeded

PREVIEW_LINES = 40
_CHOICES = {
    "y": APPROVE,
    "yes": APPROVE,
    "n": DENY,
    "no": DENY,
    "": DENY,
    "a": APPROVE_ALWAYS,
    "always": APPROVE_ALWAYS,
}


def can_ask() -> bool:
    """Only a user at a terminal can answer; a script piping into hermes cannot."""
    return sys.stdin is not None and sys.stdin.isatty() and sys.stderr.isatty()


def question(request: ApprovalNeeded) -> str:
    lines = request.preview.splitlines() or [""]
    if len(lines) > PREVIEW_LINES:
        lines = [*lines[:PREVIEW_LINES], f"… {len(lines) - PREVIEW_LINES} more lines"]
    head = f"{request.name} {request.reason}" + (" — it asks even with --yes" if request.dangerous else "")
    return "\n".join([head + ":", *("  " + line for line in lines)])


def ask(request: ApprovalNeeded, *, read: Callable[[str], str] = input, out: TextIO | None = None) -> None:
    """Put the question; answer the request with y, n or a (a: always, for this session). Ctrl-D is no."""
    out = out or sys.stderr
    print(question(request), file=out, flush=True)
    options = "[y]es / [N]o" if request.dangerous else "[y]es / [N]o / [a]lways this session"
    while True:
        try:
            reply = read(f"Allow? {options}: ").strip().lower()
        except EOFError:
            reply = "n"
        choice = _CHOICES.get(reply)
        if choice == APPROVE_ALWAYS and request.dangerous:
            choice = None
        if choice is not None:
            request.answer(choice)
            return
        print("Answer y or n" + ("" if request.dangerous else " (or a for always)") + ".", file=out, flush=True)
