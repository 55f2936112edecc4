"""A stored conversation as text: Markdown to read (`sessions show`, `/export`) or JSON for scripts.

The formatting is pure (`to_markdown`, `to_json`); `export_session` reads what they format from the store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

from agent.conversation import Message
from agent.sessions.store import SessionInfo, SessionStore
from providers.errors import UsageError

EXPORT_FORMATS = ("markdown", "json")


def export_session(store: SessionStore, session_id: str, fmt: str, *, superseded: bool = False) -> str:
    """The conversation as Markdown or JSON; with `superseded`, what was undone or replaced too, marked."""
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"Unknown export format {fmt!r}.", hint=f"Use one of: {', '.join(EXPORT_FORMATS)}.")
    info = store.get(session_id)
    history = store.history(session_id) if superseded else [(m, None) for m in store.messages(session_id)]
    if fmt == "json":
        return to_json(info, history, superseded=superseded)
    return to_markdown(info, history)


def to_json(info: SessionInfo, messages: Sequence[tuple[Message, str | None]], *, superseded: bool) -> str:
    """`messages` as in `to_markdown`; each carries its `superseded` reason only when asked for."""
    data = {
        "session": asdict(info),
        "messages": [message_to_dict(m) | ({"superseded": why} if superseded else {}) for m, why in messages],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def message_to_dict(message: Message) -> dict[str, Any]:
    """The message as JSON values; attachments by name, type, hash and size (never their contents)."""
    data = asdict(replace(message, attachments=()))
    data["tool_calls"] = list(message.tool_calls)
    data["attachments"] = [
        {"name": a.name, "mime": a.mime, "sha256": a.sha256, "bytes": len(a.data)} for a in message.attachments
    ]
    return data


def to_markdown(info: SessionInfo, messages: Sequence[tuple[Message, str | None]]) -> str:
    """`messages` with, for each, why it was superseded (None: part of the conversation)."""
    lines = [
        f"# {info.title or '(untitled)'}",
        "",
        f"- session: {info.id}",
        f"- model: {info.provider}:{info.model}",
        f"- endpoint: {info.base_url}",
        f"- created: {_timestamp(info.created)}",
        f"- updated: {_timestamp(info.updated)}",
    ]
    if info.system:
        lines += ["", "## System", "", info.system]
    for message, superseded in messages:
        mark = f" · ~~superseded ({superseded})~~" if superseded else ""
        lines += ["", f"## {_heading(message)}{mark}", ""]
        if message.content:
            lines.append(message.content if message.role != "tool" else _fenced(message.content))
        if message.attachments:
            lines += ["", "Attached: " + ", ".join(f"`{a.name}` ({a.mime})" for a in message.attachments)]
        for call in message.tool_calls:
            function = call.get("function", {})
            lines += [
                f"Tool call `{function.get('name', '?')}` ({call.get('id', '')}):",
                "",
                _fenced(function.get("arguments", "")),
            ]
        if message.finish_reason in ("interrupted", "error", "length"):
            lines += ["", f"*({message.finish_reason})*"]
    return "\n".join(lines) + "\n"


def _heading(message: Message) -> str:
    parts = [message.role.capitalize()]
    if message.role == "tool":
        parts.append(f"`{message.name or '?'}` ({message.tool_call_id or ''})")
    if message.model:
        parts.append(f"{message.provider}:{message.model}" if message.provider else message.model)
    if message.endpoint:
        parts.append(f"at {message.endpoint}")
    if message.usage:
        parts.append(f"{message.usage.prompt_tokens}+{message.usage.completion_tokens} tokens")
    parts.append(_timestamp(message.created))
    return " · ".join(parts)


def _fenced(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}\n{text}\n{fence}"


def _timestamp(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat(sep=" ", timespec="seconds")
