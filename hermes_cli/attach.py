"""The files a message attaches: `-a FILE` and the `@path` words of its text, read and checked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.attachments import Attachment


def gather_attachments(
    text: str, named: Sequence[str], *, yes: bool, max_bytes: int, stdin: bytes | None = None
) -> list[Attachment]:
    """One outside the working directory asks first, as read_file does (--yes approves; with no
    terminal it is refused). `max_bytes` is `[agent] max_attachment_bytes`."""
    from agent.attachments import AttachmentError, from_bytes, mentions, outside, read_attachment

    cwd = Path.cwd()
    found: list[Attachment] = []
    for path in dict.fromkeys([*named, *mentions(text, cwd)]):
        if path == "-":
            found.append(from_bytes("stdin", stdin or b"", max_bytes=max_bytes))
            continue
        if outside(path, cwd) and not yes and not _approve_outside(path, cwd):
            raise AttachmentError(
                f"{path} is outside the working directory {cwd}, so it was not attached.",
                hint="Pass -y to attach it, or run hermes from its directory.",
            )
        found.append(read_attachment(path, cwd=cwd, max_bytes=max_bytes))
    return found


def _approve_outside(path: str, cwd: Path) -> bool:
    from agent.events import APPROVE, APPROVE_ALWAYS, ApprovalNeeded
    from hermes_cli import approvals

    if not approvals.can_ask():
        return False
    request = ApprovalNeeded("attach", path, f"reads a file outside the working directory {cwd}", False)
    approvals.ask(request)
    return request.choice in (APPROVE, APPROVE_ALWAYS)
