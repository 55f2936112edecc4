"""Fitting a conversation into a model's context window. Pure: messages in, the messages to send out.

Tokens are estimated from UTF-8 bytes (about four per token for English and code, fewer for other
scripts, so the estimate errs on the safe side). An exact tokenizer (tiktoken) would need to download
its encodings at first use, which an offline machine cannot do; a server's `context_length_exceeded`
answer triggers one more, tighter trim anyway.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

PER_MESSAGE_OVERHEAD = 4
BYTES_PER_TOKEN = 3


def estimate_tokens(message: dict[str, Any]) -> int:
    size = len(str(message.get("content") or "").encode("utf-8"))
    if message.get("tool_calls"):
        size += len(json.dumps(message["tool_calls"]).encode("utf-8"))
    return PER_MESSAGE_OVERHEAD + size // BYTES_PER_TOKEN + 1


def reply_reserve(context: int) -> int:
    """Room left for the answer itself."""
    return min(4096, context // 4)


def _turns(messages: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Group messages so a tool call never loses its results: each group starts at a user message."""
    groups: list[list[dict[str, Any]]] = []
    for m in messages:
        if m.get("role") == "user" or not groups:
            groups.append([m])
        else:
            groups[-1].append(m)
    return groups


def fit(messages: Sequence[dict[str, Any]], budget: int) -> tuple[list[dict[str, Any]], int]:
    """Drop the oldest turns until the estimate fits `budget` tokens; returns (messages, dropped count).

    A leading system message and the last turn (the message being answered) are always kept, even
    when they alone exceed the budget: the server then says so, which is clearer than sending nothing.
    """
    system = [m for m in messages[:1] if m.get("role") == "system"]
    turns = _turns(messages[len(system) :])
    total = sum(estimate_tokens(m) for m in messages)
    dropped = 0
    while total > budget and len(turns) > 1:
        oldest = turns.pop(0)
        total -= sum(estimate_tokens(m) for m in oldest)
        dropped += len(oldest)
    return system + [m for turn in turns for m in turn], dropped
