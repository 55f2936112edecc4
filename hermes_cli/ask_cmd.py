"""`hermes ask`: one answer for scripts. Only the answer goes to stdout; all else to stderr."""

from __future__ import annotations

import math
import shutil
import sys
import textwrap
import time
from typing import TYPE_CHECKING, Any

from agent.events import (
    ApprovalNeeded,
    Notice,
    ReasoningDelta,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from hermes_cli import approvals
from hermes_cli.options import ChatOptions
from hermes_cli.output import info, print_json
from hermes_cli.wiring import Wiring
from hermes_cli.wrap import WordWrap
from providers import errors

if TYPE_CHECKING:
    from agent.agent import Agent


FLUSH_SECONDS = 0.05  # a pipe's reader sees the answer arrive at least this often


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


def run_ask(options: ChatOptions, prompt: str, *, as_json: bool, stream: bool, show_reasoning: bool = False) -> None:
    wiring = Wiring()
    # `-a -`: stdin is the attachment (an image, say), not text joined to the prompt.
    stdin_attached = "-" in options.attach
    raw = sys.stdin.buffer.read() if stdin_attached and sys.stdin is not None and not sys.stdin.isatty() else None
    if stdin_attached and not raw:
        raise errors.UsageError(
            "-a - attaches stdin, but nothing was piped in.",
            hint='Pipe the file in: cat shot.png | hermes ask -a - "what is this?"',
        )
    text = build_prompt("" if stdin_attached else read_stdin(), prompt)
    from hermes_cli.attach import gather_attachments

    limit = wiring.settings.agent.max_attachment_bytes
    attachments = gather_attachments(text, options.attach, yes=options.yes, max_bytes=limit, stdin=raw)
    agent, recorder = wiring.start_agent(options)
    agent.add_user(text, attachments)
    answer: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    wrote_text = False
    new_message = False
    interactive = approvals.can_ask()
    terminal = sys.stdout.isatty()
    # A terminal shows each token; a pipe or file gets them in batches (one write, whatever buffering
    # PYTHONUNBUFFERED asks for), at least every FLUSH_SECONDS so that a reader sees the answer arrive,
    # and before anything on stderr so that both keep their order. The first piece goes out at once.
    pending: list[str] = []
    flushed = -math.inf

    def flush() -> None:
        nonlocal flushed
        if pending:
            sys.stdout.write("".join(pending))
            pending.clear()
        sys.stdout.flush()
        flushed = time.monotonic()

    wrap = WordWrap(sys.stdout.write, shutil.get_terminal_size((80, 24)).columns) if terminal else None
    write = wrap.feed if wrap is not None else pending.append  # a pipe gets the text exactly
    reasoned = False  # reasoning on stderr ended mid-line
    try:
        for event in agent.reply(stream=stream):
            if not isinstance(event, TextDelta) and wrote_text:
                flush()
            if isinstance(event, TextDelta):
                if reasoned:
                    sys.stderr.write("\n")
                    reasoned = False
                text = event.text
                if new_message and answer:
                    # What the model said before its tool calls, then its answer: two paragraphs.
                    so_far = "".join(answer)
                    text = "\n" * max(0, 2 - (len(so_far) - len(so_far.rstrip("\n")))) + text
                new_message = False
                answer.append(text)
                if not as_json:
                    write(text)
                    wrote_text = True
                    if terminal or time.monotonic() - flushed >= FLUSH_SECONDS:
                        flush()
            elif isinstance(event, ReasoningDelta):
                if show_reasoning:  # stderr: stdout holds the answer alone
                    sys.stderr.write(event.text)
                    sys.stderr.flush()
                    reasoned = not event.text.endswith("\n")
            elif isinstance(event, Notice):
                info(event.text)
            elif isinstance(event, ToolCallStarted):
                new_message = True
                info(f"tool {event.name} {event.summary}".rstrip())
                if event.preview:
                    print(textwrap.indent(event.preview.rstrip("\n"), "  "), file=sys.stderr)
            elif isinstance(event, ToolCallFinished):
                tool_calls.append(
                    {"name": event.name, "ok": event.ok, "summary": event.summary, "seconds": round(event.seconds, 3)}
                )
                info(f"  {'done' if event.ok else 'failed'}: {event.summary} ({event.seconds:.2f} s)")
            elif isinstance(event, ApprovalNeeded):
                if interactive:
                    approvals.ask(event)
                else:
                    info(f"{event.name} not run: {event.refusal}.")
    finally:
        if wrap is not None:
            wrap.close()
        if wrote_text and not "".join(answer).endswith("\n"):
            pending.append("\n")
        if wrote_text:
            flush()
    if as_json:
        route = agent.route
        usage: dict[str, Any] | None = None
        last = agent.messages[-1] if agent.messages else None
        turn = agent.last_turn_usage()
        if turn is not None:
            tokens, cost = turn
            # cost_usd sums the priced answers; cost_complete is false when some had no known price.
            usage = {
                "prompt_tokens": tokens.prompt_tokens,
                "completion_tokens": tokens.completion_tokens,
                "total_tokens": tokens.total_tokens,
                "cost_usd": cost.known,
                "cost_complete": not cost.unpriced,
                "session": {
                    "prompt_tokens": agent.usage_total.prompt_tokens,
                    "completion_tokens": agent.usage_total.completion_tokens,
                    "total_tokens": agent.usage_total.total_tokens,
                    "cost_usd": agent.cost.known,
                    "cost_complete": not agent.cost.unpriced,
                },
            }
        print_json(
            {
                "content": wiring.scrub("".join(answer)),
                "provider": route.provider.id,
                "model": route.model,
                "base_url": route.endpoint.url,
                "base_url_source": route.endpoint.source,
                "usage": usage,
                "tool_calls": tool_calls,
                "finish_reason": last.finish_reason if last else None,
                "session_id": recorder.session_id,
            }
            | ({"reasoning": wiring.scrub(thoughts)} if (thoughts := _reasoning(agent)) else {})
        )


def _reasoning(agent: Agent) -> str:
    """The reasoning of this turn's answers (a turn with tool calls has several)."""
    start = agent.last_user_index() or 0
    return "\n\n".join(m.reasoning for m in agent.messages[start:] if m.role == "assistant" and m.reasoning)
