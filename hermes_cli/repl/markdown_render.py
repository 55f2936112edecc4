"""rich's Markdown with cheaper code blocks and tables: the same look, at a fraction of the cost.

rich lays out a code block (`Syntax`) and a table (`Table`) through its general renderer, which
measures, wraps and pads every line and every cell: about a millisecond each, most of the cost of
a long answer. In the usual case, where every line of code and every table row fits the width,
there is nothing to wrap, so `CodeBlock` and `TableElement` draw the lines directly. Anything
else (a line too long, a theme without a background, a cell that would need wrapping, an ASCII-only
terminal) goes the general way. Both ways look the same on screen.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar

from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound
from rich import markdown
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax, SyntaxTheme
from rich.text import Text

if TYPE_CHECKING:
    from pygments.lexer import Lexer
    from rich.console import Console, ConsoleOptions, RenderResult

TAB_SIZE = 4  # Syntax's default


@lru_cache(maxsize=64)
def _lexer(name: str) -> Lexer:
    """The lexer `Syntax` would pick for a fence's language, built once per language."""
    try:
        return get_lexer_by_name(name, stripnl=False, ensurenl=True, tabsize=TAB_SIZE)
    except ClassNotFound:
        return get_lexer_by_name("text", stripnl=False, ensurenl=True, tabsize=TAB_SIZE)


@lru_cache(maxsize=8)
def _theme(name: str) -> SyntaxTheme:
    return Syntax.get_theme(name)


class CodeBlock(markdown.CodeBlock):
    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        code = str(self.text).rstrip()
        theme = _theme(self.theme)
        lexer = _lexer(self.lexer_name)
        background = theme.get_background_style()
        width = options.max_width - 2  # a margin of one column on each side
        lines = None if background.transparent_background else _highlight(code, lexer, theme, width)
        if lines is None:
            yield Syntax(code, lexer, theme=theme, word_wrap=True, padding=1)
            return
        new_line = Segment.line()
        margin = Segment(" ", background)
        blank = Segment(" " * options.max_width, background)
        yield blank
        yield new_line
        for segments, length in lines:
            yield margin
            yield from segments
            yield Segment(" " * (width - length + 1), background)  # the rest of the line and the right margin
            yield new_line
        yield blank
        yield new_line


def _highlight(code: str, lexer: Lexer, theme: SyntaxTheme, width: int) -> list[tuple[list[Segment], int]] | None:
    """Each line of the code as highlighted segments, with its width; None if a line is wider
    than `width`. The same tokens and styles as `Syntax.highlight`, without building a Text."""
    background = theme.get_background_style()
    styles: dict[object, Style] = {}
    lines: list[tuple[list[Segment], int]] = []
    segments: list[Segment] = []
    length = 0
    for token_type, value in lexer.get_tokens(code.expandtabs(TAB_SIZE) + "\n"):
        style = styles.get(token_type)
        if style is None:
            style = styles[token_type] = background + theme.get_style_for_token(token_type)
        first = True
        for part in value.split("\n"):
            if not first:
                lines.append((segments, length))
                segments, length = [], 0
            first = False
            if part:
                segments.append(Segment(part, style))
                length += cell_len(part)
                if length > width:
                    return None
    if segments or not lines:
        lines.append((segments, length))
    return lines


class TableElement(markdown.TableElement):
    """rich's Markdown table (box.SIMPLE, no outer padding, collapsed padding), drawn directly
    when every cell is one line and the table fits the width at its natural size."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        rows = self._rows()
        if rows is None or options.ascii_only or options.legacy_windows:
            yield from super().__rich_console__(console, options)
            return
        columns = len(rows[0])
        gaps = [1] * (columns - 1) + [0]  # each column's right padding: none at the edge
        widths = [max(cell.cell_len for cell in column) for column in zip(*rows, strict=False)]
        table_width = sum(widths) + sum(gaps) + columns + 1  # + edges and dividers
        if table_width > options.max_width or 0 in widths:
            yield from super().__rich_console__(console, options)
            return
        border = console.get_style("markdown.table.border")
        header_style = console.get_style("table.header")
        edge = Segment(" ", border)
        new_line = Segment.line()
        yield Segment(" " * table_width, border)
        yield new_line
        for index, row in enumerate(rows):
            style = header_style if index == 0 else Style.null()
            yield edge
            for cell, width, gap in zip(row, widths, gaps, strict=False):
                space = width - cell.cell_len
                left = space // 2 if cell.justify == "center" else space if cell.justify == "right" else 0
                if left:
                    yield Segment(" " * left, style)
                yield from Segment.apply_style(cell.render(console), style)
                if space - left + gap:
                    yield Segment(" " * (space - left + gap), style)
                yield edge
            yield new_line
            if index == 0:
                yield Segment(" " + "─" * (table_width - 2) + " ", border)
                yield new_line
        yield Segment(" " * table_width, border)
        yield new_line

    def _rows(self) -> list[list[Text]] | None:
        """The header and body cells, or None when some cell is more than plain one-line text."""
        if self.header is None or self.header.row is None or not self.header.row.cells:
            return None
        heading = []
        for column in self.header.row.cells:
            cell = column.content.copy()
            cell.stylize("markdown.table.header")
            heading.append(cell)
        rows = [heading] + [[cell.content for cell in row.cells] for row in (self.body.rows if self.body else [])]
        for row in rows:
            if len(row) != len(heading):
                return None
            for cell in row:
                plain = cell.plain
                if "\n" in plain or "\t" in plain or plain != plain.strip():
                    return None
        return rows


class Markdown(markdown.Markdown):
    elements: ClassVar[dict[str, type[markdown.MarkdownElement]]] = {
        **markdown.Markdown.elements,
        "fence": CodeBlock,
        "code_block": CodeBlock,
        "table_open": TableElement,
    }
