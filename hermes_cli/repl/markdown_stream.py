"""Streaming Markdown: cut an answer into blocks as it arrives, and print each finished block once.

Re-rendering the whole answer on every token is quadratic in its length. Here a block (paragraph,
heading, fenced code, table, list, quote) is rendered once, when the next line proves it complete;
only the open block is drawn in a live region. Blocks end only where Markdown itself ends a block,
so printing them one by one looks the same as rendering the whole answer at once.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.live import Live
    from rich.segment import Segment
    from rich.spinner import Spinner

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})[^`\n]*$")
_HEADING = re.compile(r" {0,3}#{1,6}(?:[ \t]|$)")
_BULLET = re.compile(r" {0,3}[-+*][ \t]+\S")
_ORDERED = re.compile(r" {0,3}(\d{1,9})[.)][ \t]+\S")
_LIST_ITEM = re.compile(r" {0,3}(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)")
_QUOTE = re.compile(r" {0,3}>")


class _Kind(Enum):
    TEXT = "text"  # paragraph or table: ends at a blank line or where another block starts
    QUOTE = "quote"  # like TEXT, but its own `>` lines never cut it
    FENCE = "fence"  # ends at its closing fence, whatever lies between
    LIST = "list"  # survives blank lines while the next line is indented or another item
    INDENTED = "indented"  # indented code: survives blank lines while the next line is indented


def _blank(line: str) -> bool:
    return not line.strip()


def _indented(line: str) -> bool:
    return line.startswith((" ", "\t"))


def _closes(line: str, fence: str, *, any_indent: bool = False) -> bool:
    """True when `line` is a closing fence for `fence` (same character, at least as long)."""
    body = line.strip()
    if not any_indent and len(line) - len(line.lstrip(" ")) > 3:
        return False
    return len(body) >= len(fence) and body == fence[0] * len(body)


def _interrupts_text(line: str) -> bool:
    """Lines that start a new block right after a paragraph line, without a blank line between."""
    if _FENCE.match(line) or _HEADING.match(line) or _QUOTE.match(line) or _BULLET.match(line):
        return True
    ordered = _ORDERED.match(line)  # only a list that starts at 1 may cut a paragraph short
    return bool(ordered and ordered.group(1) == "1")


class BlockSplitter:
    """Pure and incremental: `feed` text as it comes and get back the blocks it completed.

    Every character fed ends up in exactly one block, so the blocks joined are the input. Blank
    lines between blocks lead the block after them.
    """

    def __init__(self) -> None:
        self._lines: list[str] = []  # the open block's complete lines
        self._partial: list[str] = []  # the line still arriving, in pieces (a long line stays linear)
        self._kind: _Kind | None = None
        self._fence = ""  # the fence that closes the open code block, or a code block inside a list
        self._gap = False  # the list or indented code has seen a blank line: the next line decides
        self._done: list[str] = []

    @property
    def pending(self) -> str:
        """The open block as it stands, including the unfinished last line."""
        return "".join(self._lines) + "".join(self._partial)

    def feed(self, text: str) -> list[str]:
        *complete, rest = text.split("\n")
        if complete:
            complete[0] = "".join(self._partial) + complete[0]
            self._partial = [rest] if rest else []
            for line in complete:
                self._line(line + "\n")
        elif rest:
            self._partial.append(rest)
        done, self._done = self._done, []
        return done

    def close(self) -> list[str]:
        """The end of the answer: whatever is open is complete now."""
        if self._partial:
            self._line("".join(self._partial))
            self._partial = []
        if self._lines:
            self._emit()
        done, self._done = self._done, []
        return done

    def _line(self, line: str) -> None:
        kind = self._kind
        if kind is _Kind.FENCE:
            self._lines.append(line)
            if _closes(line, self._fence):
                self._emit()
            return
        if kind is _Kind.LIST or kind is _Kind.INDENTED:
            if self._continues(line, kind):
                self._lines.append(line)
                return
            self._emit_before_gap()
        elif kind is _Kind.TEXT or kind is _Kind.QUOTE:
            own_line = kind is _Kind.QUOTE and _QUOTE.match(line)
            if not _blank(line) and (own_line or not _interrupts_text(line)):
                self._lines.append(line)
                return
            self._emit()
        self._start(line)

    def _continues(self, line: str, kind: _Kind) -> bool:
        if self._fence:
            if _closes(line, self._fence, any_indent=True):
                self._fence = ""
            return True
        if _blank(line):
            self._gap = True
            return True
        if kind is _Kind.INDENTED:
            goes_on = line.startswith(("    ", "\t"))
        elif _indented(line):
            goes_on = True
        elif self._gap:
            goes_on = bool(_LIST_ITEM.match(line))
        else:  # a lazy continuation line, unless it starts a block of its own
            goes_on = not (_HEADING.match(line) or _FENCE.match(line) or _QUOTE.match(line))
        if goes_on:
            self._gap = False
            opener = _FENCE.match(line.lstrip()) if kind is _Kind.LIST else None
            if opener:
                self._fence = opener.group(1)
        return goes_on

    def _start(self, line: str) -> None:
        self._lines.append(line)
        if _blank(line):
            return
        opener = _FENCE.match(line)
        if opener:
            self._kind, self._fence = _Kind.FENCE, opener.group(1)
        elif _HEADING.match(line):
            self._emit()
        elif _LIST_ITEM.match(line):
            self._kind = _Kind.LIST
        elif _QUOTE.match(line):
            self._kind = _Kind.QUOTE
        elif line.startswith(("    ", "\t")):
            self._kind = _Kind.INDENTED
        else:
            self._kind = _Kind.TEXT

    def _emit(self) -> None:
        self._done.append("".join(self._lines))
        self._lines = []
        self._kind, self._fence, self._gap = None, "", False

    def _emit_before_gap(self) -> None:
        """The block ended at its blank lines, which lead the next block instead."""
        end = len(self._lines)
        while end and _blank(self._lines[end - 1]):
            end -= 1
        gap = self._lines[end:]
        self._lines = self._lines[:end]
        self._emit()
        self._lines = gap


def render_block(console: Console, blocks: str, *, code_theme: str = "monokai") -> list[Segment]:
    """Finished blocks rendered, without the blank lines rich puts around some elements."""
    from hermes_cli.repl.markdown_render import Markdown

    segments = [s for s in console.render(Markdown(blocks, code_theme=code_theme)) if s.text or s.control]
    start = 0
    while start < len(segments) and segments[start].text == "\n":
        start += 1
    end = len(segments)
    while end - start >= 2 and segments[end - 1].text == "\n" and segments[end - 2].text.endswith("\n"):
        end -= 1
    return segments[start:end]


def _trim(lines: list[list[Segment]]) -> list[list[Segment]]:
    from rich.segment import Segment

    start, end = 0, len(lines)
    while start < end and Segment.get_line_length(lines[start]) == 0:
        start += 1
    while end > start and Segment.get_line_length(lines[end - 1]) == 0:
        end -= 1
    return lines[start:end]


REASONING_LINES = 6  # of a reasoning model's thinking, the live region shows the last lines


class Reasoning:
    """A reasoning model's thinking as it arrives, and the line it collapses to once the answer starts."""

    def __init__(self, clock: Callable[[], float], *, show: bool = False) -> None:
        self._clock = clock
        self._parts: list[str] = []
        self._started: float | None = None
        self.show = show  # /reasoning show: print it whole instead of collapsing it
        self.open = False

    def add(self, text: str) -> None:
        if self._started is None:
            self._started = self._clock()
        self._parts.append(text)
        self.open = True

    def text(self) -> str:
        return "".join(self._parts)

    def finish(self) -> str:
        """What stays on screen once the answer starts: the summary line (or, shown, the whole text)."""
        if not self.open or self._started is None:
            return ""
        self.open = False
        text = self.text().strip()
        if self.show:
            return text
        return summary(text, self._clock() - self._started)


def summary(text: str, seconds: float) -> str:
    tokens = max(1, len(text.encode("utf-8")) // 4)  # the usual ~4 bytes a token; providers rarely say
    return f"thought for {seconds:.0f} s, ~{tokens:,} tokens — /reasoning to show"


class MarkdownStream:
    """Shows a streamed answer on a terminal console: finished blocks printed once, below one
    blank line like rich's own spacing; the open block (or a thinking spinner) in a live region.

    Blocks that finish within PRINT_INTERVAL of the last print wait, shown in the live region,
    and are printed together: a fast stream then costs a few prints, not one per block. They are
    printed sooner when the live region would otherwise grow past `preview_limit`. Use as
    a context manager; `feed` the text as it arrives. On leaving, what is still open is printed
    as it stands, so an interrupted answer keeps what arrived.

    The live region is redrawn from a thread of ours, never while a print is under way: rich's
    own refresh thread can draw between a print's rendering and its writing, after which rich
    erases the wrong number of lines on the next draw and wipes finished blocks off the screen.
    """

    PRINT_INTERVAL = 0.25
    REFRESH_INTERVAL = 1 / 8

    def __init__(
        self,
        console: Console,
        *,
        code_theme: str = "monokai",
        preview_limit: int = 2000,
        clock: Callable[[], float] = time.monotonic,
        show_reasoning: bool = False,
    ) -> None:
        self.console = console
        self.code_theme = code_theme
        # Past this size the live region previews raw text: a redraw must stay cheap.
        self.preview_limit = preview_limit
        self._clock = clock
        self._splitter = BlockSplitter()
        self._lock = threading.Lock()  # the live region redraws from its own thread
        self._output = threading.Lock()  # one print or redraw at a time
        self._stop = threading.Event()
        self._held: list[str] = []  # finished blocks not printed yet
        self._unprinted = 0  # characters fed and not printed: the live region's text
        self._version = 0  # bumped on every feed
        self._prints = 0  # bumped on every print: the live region may show what is now above it
        self._printed_at = float("-inf")
        self._printed = False
        self._live: Live | None = None
        self.started = clock()
        self.reasoning = Reasoning(clock, show=show_reasoning)

    def __enter__(self) -> MarkdownStream:
        from rich.live import Live

        self._live = Live(
            _OpenBlock(self),
            console=self.console,
            transient=True,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
            vertical_overflow="crop",
        )
        self._live.start(refresh=True)
        threading.Thread(target=self._refresh, name="hermes-live", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._end_reasoning()
        with self._lock:
            self._held += self._splitter.close()
        self._stop.set()
        with self._output:  # the refresher, if it is redrawing, finishes first; then it finds no live region
            if self._live is not None:
                self._live.stop()
                self._live = None
        self._print()

    def _refresh(self) -> None:
        while not self._stop.wait(self.REFRESH_INTERVAL):
            with self._output:
                if self._live is not None:
                    self._live.refresh()

    def reason(self, text: str) -> None:
        """Reasoning before the answer: its tail, dimmed, in the live region until the answer starts."""
        self.reasoning.add(text)

    def _end_reasoning(self) -> None:
        from rich.text import Text

        shown = self.reasoning.finish()
        if shown:
            with self._output:
                self.console.print(Text(shown, style="dim"))

    def feed(self, text: str) -> None:
        if self.reasoning.open:
            self._end_reasoning()
        with self._lock:
            self._held += self._splitter.feed(text)
            self._version += 1
        self._unprinted += len(text)
        if self._held and (
            self._unprinted > self.preview_limit or self._clock() - self._printed_at >= self.PRINT_INTERVAL
        ):
            self._print()

    def notice(self, text: str) -> None:
        """A line that is not part of the answer, printed above the open block."""
        from rich.text import Text

        self._print()
        with self._output:
            self.console.print(Text(text, style="dim"))

    def progress(self) -> tuple[int, int]:
        return self._version, self._prints

    def pending(self) -> str:
        """What the live region shows: the blocks not printed yet and the open block."""
        with self._lock:
            return "".join(self._held) + self._splitter.pending

    def _print(self) -> None:
        from rich.segment import Segment, Segments

        if not self._held:
            return  # nothing left the live region: keep its drawing
        blocks = "".join(self._held)
        self._unprinted -= len(blocks)
        segments: list[Segment] = []
        if not _blank(blocks):
            if self._printed:
                segments.append(Segment.line())
            segments.extend(render_block(self.console, blocks, code_theme=self.code_theme))
            self._printed = True
        with self._lock:
            self._held = []
            self._prints += 1
            self._printed_at = self._clock()
        if segments:
            with self._output:
                self.console.print(Segments(segments), crop=False)  # rendered to the width already


class _OpenBlock:
    """The live region: a spinner until text arrives, then the tail of what is not printed yet.

    It is redrawn each time something prints above it; so its text is rendered afresh at most
    every INTERVAL (a little less than the live region's own refresh period, so that each of its
    ticks shows the latest text), else reused.
    """

    INTERVAL = 0.1

    def __init__(self, stream: MarkdownStream) -> None:
        self._stream = stream
        self._key: tuple[int, int, int] | None = None  # (version, prints, width) of the rendering held
        self._prints = 0
        self._lines: list[list[Segment]] = []
        self._rendered_at = float("-inf")
        self._spinner: Spinner | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.segment import SegmentLines

        version, prints = self._stream.progress()
        if version == 0:
            thoughts = self._stream.reasoning
            if thoughts.open:
                yield from self._reasoning(console, options, thoughts)
                return
            yield self._thinking()
            return
        now = time.monotonic()
        key = (version, prints, options.max_width)
        if key != self._key:
            if now - self._rendered_at >= self.INTERVAL:
                self._lines = self._render(console, options, self._stream.pending())
                self._key, self._prints, self._rendered_at = key, prints, now
            elif prints != self._prints:
                self._lines, self._prints = [], prints  # that text is printed above by now
        yield SegmentLines(self._lines[-max(1, console.height - 2) :], new_lines=True)

    def _thinking(self) -> Spinner:
        from rich.spinner import Spinner

        text = f"thinking… {time.monotonic() - self._stream.started:.0f} s"
        if self._spinner is None:
            self._spinner = Spinner("dots", text=text, style="dim")
        else:
            self._spinner.update(text=text)
        return self._spinner

    def _reasoning(self, console: Console, options: ConsoleOptions, thoughts: Reasoning) -> RenderResult:
        from rich.segment import SegmentLines
        from rich.text import Text

        lines = console.render_lines(Text(thoughts.text(), style="dim"), options.update(height=None), pad=False)
        yield self._thinking()
        yield SegmentLines(lines[-REASONING_LINES:], new_lines=True)

    def _render(self, console: Console, options: ConsoleOptions, text: str) -> list[list[Segment]]:
        from rich.text import Text

        from hermes_cli.repl.markdown_render import Markdown

        if not text.strip():
            return []
        theme = self._stream.code_theme
        if len(text) <= self._stream.preview_limit:
            renderable: Markdown | Text = Markdown(text, code_theme=theme)
        else:  # only what fits on screen: the tail, as code when the open block is a fenced one
            tail = "\n".join(text.rsplit("\n", console.height)[-console.height :])
            opener = text.lstrip("\n").partition("\n")[0]
            if _FENCE.match(opener) and not _indented(opener):
                renderable = Markdown(f"{opener}\n{tail}", code_theme=theme)
            else:
                renderable = Text(tail, no_wrap=True, overflow="ellipsis")
        return _trim(console.render_lines(renderable, options.update(height=None), pad=False))
