"""`hermes ask`: one answer for scripts. Only the answer goes to stdout; all else to stderr."""

from __future__ import annotations

import sys
from typing import Any

from agent import errors
from agent.events import Notice, TextDelta
from hermes_cli.context import Context
from hermes_cli.options import ChatOptions
from hermes_cli.output import info, print_json
from hermes_cli.startup import start_agent


def read_stdin() -> str:
    """Piped stdin, decoded strictly: a binary file piped by mistake is an error, not mojibake."""
    if sys.stdin is None or sys.stdin.isatty():
        return ""
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise errors.UsageError(
            f"stdin is not UTF-8 text (invalid byte at offset {e.start}).",
            hint="Convert it first, e.g. with `iconv -t utf-8`.",
        ) from None


def build_prompt(stdin_text: str, prompt: str) -> str:
    stdin_text, prompt = stdin_text.strip("\n"), prompt.strip()
    if stdin_text.strip() and prompt:
        return f"{stdin_text}\n\n{prompt}"
    text = stdin_text if stdin_text.strip() else prompt
    if not text.strip():
        raise errors.UsageError("Nothing to ask.", hint='Give a prompt (hermes ask "...") or pipe text on stdin.')
    return text


def run_ask(options: ChatOptions, prompt: str, *, as_json: bool, stream: bool) -> None:
    ctx = Context()
    text = build_prompt(read_stdin(), prompt)
    agent, recorder = start_agent(ctx, options)
    agent.add_user(text)
    answer: list[str] = []
    wrote_text = False
    try:
        for event in agent.reply(stream=stream):
            if isinstance(event, TextDelta):
                answer.append(event.text)
                if not as_json:
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
                    wrote_text = True
            elif isinstance(event, Notice):
                info(event.text)
    finally:
        if wrote_text and not "".join(answer).endswith("\n"):
            sys.stdout.write("\n")
            sys.stdout.flush()
    if as_json:
        route = agent.route
        usage: dict[str, Any] | None = None
        last = agent.messages[-1] if agent.messages else None
        if last is not None and last.usage is not None:
            usage = {
                "prompt_tokens": last.usage.prompt_tokens,
                "completion_tokens": last.usage.completion_tokens,
                "total_tokens": last.usage.total_tokens,
                "cost_usd": agent.message_cost(last),
                "session": {
                    "prompt_tokens": agent.usage_total.prompt_tokens,
                    "completion_tokens": agent.usage_total.completion_tokens,
                    "total_tokens": agent.usage_total.total_tokens,
                    "cost_usd": agent.cost_total,
                },
            }
        print_json({
            "content": "".join(answer),
            "provider": route.provider.id,
            "model": route.model,
            "base_url": route.endpoint.url,
            "base_url_source": route.endpoint.source,
            "usage": usage,
            "finish_reason": last.finish_reason if last else None,
            "session_id": recorder.session_id,
        })
