"""The direct drawing of code blocks and tables looks exactly like rich's own, cell by cell."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich import markdown as rich_markdown
from rich.color import ColorSystem
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from hermes_cli.repl.markdown_render import Markdown

LINK_ID = re.compile(r"id=\d+;")  # rich numbers each hyperlink afresh


def screen(markdown: type[rich_markdown.Markdown], text: str, width: int) -> list[list[str]]:
    """What a truecolor terminal shows: one entry per cell, the character with its escape codes."""
    console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=width)
    lines = console.render_lines(markdown(text), pad=False)
    rows = []
    for line in lines:
        row = [
            LINK_ID.sub("", segment.style.render(char, color_system=ColorSystem.TRUECOLOR)) if segment.style else char
            for segment in line
            if not segment.control
            for char in segment.text
        ]
        while row and row[-1] == " ":
            row.pop()
        rows.append(row)
    return rows


def same_as_rich(text: str, width: int) -> None:
    assert screen(Markdown, text, width) == screen(rich_markdown.Markdown, text, width)


CODE = "def f(values):\n\tfor v in values:  # 中文 comment\n        yield v * 2\n\n\nprint('done')   "


@pytest.mark.parametrize("language", ["python", "js", "", "nosuchlanguage"])
@pytest.mark.parametrize("width", [12, 40, 100])
def test_code_blocks_look_like_rich(language: str, width: int) -> None:
    same_as_rich(f"```{language}\n{CODE}\n```\n", width)
    same_as_rich(f"- item\n\n  ```{language}\n  {CODE.replace(chr(10), chr(10) + '  ')}\n  ```\n", width)
    same_as_rich("    indented code\n\n    more\n", width)
    same_as_rich("```\n```\n", width)


code_lines = st.lists(st.text(alphabet="ab xyz(){}:#'\"\t\r\x07中é=0", max_size=30), max_size=6)


@settings(max_examples=150, deadline=None)
@given(lines=code_lines, language=st.sampled_from(["python", "text", "rust", ""]), width=st.integers(4, 60))
def test_any_code_block_looks_like_rich(lines: list[str], language: str, width: int) -> None:
    same_as_rich(f"```{language}\n" + "\n".join(lines) + "\n```\n", width)


TABLE = """\
| name | **value** | note |
|------|------:|:----:|
| alpha *x* | 1 | first `code` |
| beta | 22 | [a link](https://example.com) |
| 中文 |  | |
"""


@pytest.mark.parametrize("width", [10, 30, 80])
def test_tables_look_like_rich(width: int) -> None:
    same_as_rich(TABLE, width)
    same_as_rich("| only a header |\n|---|\n", width)
    same_as_rich("> | a | b |\n> |---|---|\n> | 1 | 2 |\n", width)


words = st.text(alphabet="abc XYZ中é1", min_size=0, max_size=12).map(str.strip)
cells = st.tuples(words, st.sampled_from(["{}", "*{}*", "**{}**", "`{}`", "[{}](http://e.x)"])).map(
    lambda pair: pair[1].format(pair[0]) if pair[0] else ""
)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), columns=st.integers(1, 4), rows=st.integers(0, 4), width=st.integers(8, 90))
def test_any_table_looks_like_rich(data: st.DataObject, columns: int, rows: int, width: int) -> None:
    align = data.draw(st.lists(st.sampled_from(["---", ":--", ":-:", "--:"]), min_size=columns, max_size=columns))
    table = [data.draw(st.lists(cells, min_size=columns, max_size=columns)) for _ in range(rows + 1)]
    table.insert(1, align)
    same_as_rich("".join("| " + " | ".join(row) + " |\n" for row in table), width)


def _refuse(*args: object) -> None:
    raise AssertionError("went the general way")


def test_what_fits_is_drawn_directly_and_the_rest_by_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Syntax, "__rich_console__", _refuse)
    monkeypatch.setattr(Table, "__rich_console__", _refuse)
    screen(Markdown, f"```python\n{CODE}\n```\n\n{TABLE}", 80)
    with pytest.raises(AssertionError, match="general way"):
        screen(Markdown, "```python\n" + "x = 1  # " + "long " * 30 + "\n```\n", 80)
    with pytest.raises(AssertionError, match="general way"):
        screen(Markdown, TABLE, 20)
