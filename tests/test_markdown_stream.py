"""The streamed-Markdown block splitter and renderer: blocks end only where Markdown ends them."""

from __future__ import annotations

import functools
import io
import random
import time

import pytest
from rich.console import Console
from rich.markdown import Markdown

from hermes_cli.repl.markdown_stream import BlockSplitter, MarkdownStream
from tests.conftest import terminal_lines

DOC = """\
# Title

Some *intro* text
over two lines.
## Section
- item one
- item two
  - nested

  more of two
- three

```python
def f(x):

    return x
```

| a | b |
|---|---|
| 1 | 2 |

> quote
>
> more

---

After the rule.

1. first
2. second

   ```js
   let a = 1;

   a++;
   ```
3. third

Text then fence:
~~~
raw
~~~
    indented code

    more indented
Final para with `code` and **bold**.
"""


def split(text: str, size: int) -> list[str]:
    splitter = BlockSplitter()
    blocks: list[str] = []
    for i in range(0, len(text), size):
        blocks += splitter.feed(text[i : i + size])
    return blocks + splitter.close()


def content(blocks: list[str]) -> list[str]:
    return [b.strip("\n") for b in blocks if b.strip()]


def test_blocks_of_a_document() -> None:
    assert content(split(DOC, len(DOC))) == [
        "# Title",
        "Some *intro* text\nover two lines.",
        "## Section",
        "- item one\n- item two\n  - nested\n\n  more of two\n- three",
        "```python\ndef f(x):\n\n    return x\n```",
        "| a | b |\n|---|---|\n| 1 | 2 |",
        "> quote\n>\n> more",
        "---",
        "After the rule.",
        "1. first\n2. second\n\n   ```js\n   let a = 1;\n\n   a++;\n   ```\n3. third",
        "Text then fence:",
        "~~~\nraw\n~~~",
        "    indented code\n\n    more indented",
        "Final para with `code` and **bold**.",
    ]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_any_chunking_gives_the_same_blocks(size: int) -> None:
    assert split(DOC, size) == split(DOC, len(DOC))


def test_random_chunks_give_the_same_blocks_and_lose_nothing() -> None:
    rng = random.Random(7)
    for _ in range(50):
        splitter, blocks, i = BlockSplitter(), [], 0
        while i < len(DOC):
            n = rng.randint(1, 12)
            blocks += splitter.feed(DOC[i : i + n])
            i += n
        blocks += splitter.close()
        assert "".join(blocks) == DOC
        assert blocks == split(DOC, len(DOC))


def test_a_fence_split_across_chunks_stays_one_block_until_it_closes() -> None:
    splitter = BlockSplitter()
    assert splitter.feed("Intro:\n\n`") == ["Intro:\n"]
    assert splitter.feed("``py\nx = 1\n\n# not a heading\n- not a list\n``") == []
    assert splitter.pending == "\n```py\nx = 1\n\n# not a heading\n- not a list\n``"
    assert splitter.feed("`") == []
    assert splitter.feed("\nafter") == ["\n```py\nx = 1\n\n# not a heading\n- not a list\n```\n"]
    assert splitter.close() == ["after"]


def test_a_shorter_fence_inside_a_longer_one_does_not_close_it() -> None:
    text = "````md\n```\ninner\n```\n````\nnext\n"
    assert content(split(text, 1)) == ["````md\n```\ninner\n```\n````", "next"]


def test_an_unclosed_fence_is_one_block_at_the_end() -> None:
    assert content(split("```\nstill code\n\nmore", 1)) == ["```\nstill code\n\nmore"]


def test_a_heading_is_complete_as_soon_as_its_line_is() -> None:
    splitter = BlockSplitter()
    assert splitter.feed("## Setup") == []
    assert splitter.feed("\n") == ["## Setup\n"]


def test_a_paragraph_ends_at_a_blank_line_not_before() -> None:
    splitter = BlockSplitter()
    assert splitter.feed("one line\nanother line\n") == []
    assert splitter.feed("\n") == ["one line\nanother line\n"]


def test_a_table_is_one_block() -> None:
    text = "| x | y |\n|:--|--:|\n| 1 | 2 |\n| 3 | 4 |\n\nafter\n"
    assert content(split(text, 1)) == ["| x | y |\n|:--|--:|\n| 1 | 2 |\n| 3 | 4 |", "after"]


def test_nested_lists_with_blank_lines_and_code_are_one_block() -> None:
    text = "- a\n  - b\n\n    - c\n\n  ```\n  x\n\ny\n  ```\n- d\n\nafter\n"
    assert content(split(text, 1)) == ["- a\n  - b\n\n    - c\n\n  ```\n  x\n\ny\n  ```\n- d", "after"]


def test_a_list_ends_at_a_heading_or_fence_even_without_a_blank_line() -> None:
    assert content(split("- a\n# H\n- b\n```\nc\n```\n", 1)) == ["- a", "# H", "- b", "```\nc\n```"]


def test_a_paragraph_is_cut_by_a_list_starting_at_one_but_not_by_other_numbers() -> None:
    assert content(split("text\n1. one\n", 1)) == ["text", "1. one"]
    assert content(split("In\n2024. was a year\n", 1)) == ["In\n2024. was a year"]


def test_a_quote_stays_whole() -> None:
    assert content(split("> a\n> - b\n> # c\n\nafter\n", 1)) == ["> a\n> - b\n> # c", "after"]


def written(console: Console) -> str:
    """What was printed to a console made on an io.StringIO."""
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def render_whole(text: str) -> str:
    console = Console(file=io.StringIO(), width=80, force_terminal=False, color_system=None)
    console.print(Markdown(text))
    return written(console)


def render_streamed(text: str, size: int) -> str:
    # Off a terminal the live region draws nothing: what remains is exactly the printed blocks.
    console = Console(file=io.StringIO(), width=80, force_terminal=False, color_system=None)
    with MarkdownStream(console) as stream:
        for i in range(0, len(text), size):
            stream.feed(text[i : i + size])
    return written(console)


@pytest.mark.parametrize("size", [1, 5, 10_000])
def test_printing_block_by_block_looks_like_rendering_the_whole_answer(size: int) -> None:
    assert render_streamed(DOC, size) == render_whole(DOC)


def test_an_interrupted_answer_prints_what_arrived() -> None:
    console = Console(file=io.StringIO(), width=80, force_terminal=False, color_system=None)
    with pytest.raises(KeyboardInterrupt), MarkdownStream(console) as stream:
        stream.feed("Start.\n\n```py\nprint('so far')\n")
        raise KeyboardInterrupt
    out = written(console)
    assert "Start." in out and "print('so far')" in out


def test_on_a_terminal_blocks_are_styled() -> None:
    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system="truecolor")
    with MarkdownStream(console) as stream:
        for ch in "## Head\n\nPara **bold**.\n\n```python\nanswer = 42\n```\n":
            stream.feed(ch)
    out = written(console)
    assert "\x1b[" in out
    assert "Head" in out and "bold" in out
    assert "answer" in out and "42" in out


def test_blocks_finished_close_together_are_printed_together_and_none_is_lost() -> None:
    now = [0.0]
    console = Console(file=io.StringIO(), width=80, force_terminal=False, color_system=None)
    printed = functools.partial(written, console)
    with MarkdownStream(console, clock=lambda: now[0]) as stream:
        stream.feed("First.\n\n")
        assert "First." in printed()
        stream.feed("Second.\n\n")
        assert "Second." not in printed()
        assert stream.pending().strip() == "Second."  # shown in the live region meanwhile
        stream.feed("Third.\n\n")
        assert "Second." not in printed()
        now[0] += MarkdownStream.PRINT_INTERVAL
        stream.feed("Fourth")
        assert "Second." in printed() and "Third." in printed() and "Fourth" not in printed()
        stream.notice("a notice")
        stream.feed(".\n\nFifth.\n\n")
    out = printed()
    assert out.index("Third.") < out.index("a notice") < out.index("Fourth.") < out.index("Fifth.")
    assert render_whole("First.\n\nSecond.\n\nThird.\n\n") in out


def test_on_a_terminal_every_block_ends_up_once_while_the_live_region_redraws() -> None:
    # Prints (main thread) and live-region redraws (its own thread) interleave many times here;
    # the terminal must end up showing each block once, none erased, no draft left behind.
    filler = "lorem *ipsum* dolor " * 40
    text = "".join(
        f"## Part {i}\n\nWords of part {i}. {filler}\n\n- item {i}\n\n```python\nx = {i}\n```\n\n" for i in range(40)
    )
    console = Console(file=io.StringIO(), width=80, height=24, force_terminal=True, color_system="truecolor")
    with MarkdownStream(console) as stream:
        stream.PRINT_INTERVAL = 0  # a print for every block
        for i in range(0, len(text), 12):
            stream.feed(text[i : i + 12])
            time.sleep(0.0005)
    output = written(console).replace("\n", "\r\n")  # as a tty sends it
    shown = "\n".join(terminal_lines(output, 80, 24))
    assert "```" not in shown and "## " not in shown
    position = 0
    for i in range(40):
        for marker in (f"Part {i}\n", f"Words of part {i}.", f"item {i}\n", f"x = {i}\n"):
            assert shown.count(marker) == 1, f"{marker!r} shown {shown.count(marker)} times"
            position = shown.index(marker, position)


def test_finished_blocks_are_printed_before_the_live_region_outgrows_its_preview_limit() -> None:
    console = Console(file=io.StringIO(), width=80, force_terminal=False, color_system=None)
    printed = functools.partial(written, console)
    with MarkdownStream(console, clock=lambda: 0.0, preview_limit=60) as stream:
        stream.feed("First.\n\n")  # printed at once: nothing was printed before
        stream.feed("A second paragraph.\n\n")
        assert "second" not in printed()  # held: within the print interval, and short
        stream.feed("A third paragraph, long enough to pass the limit.\n\nAnd")
        assert "second" in printed() and "third" in printed() and "And" not in printed()
        assert stream.pending().strip() == "And"


def test_a_long_code_block_is_previewed_highlighted_while_it_streams() -> None:
    console = Console(file=io.StringIO(), width=80, height=24, force_terminal=True, color_system="truecolor")
    code = "".join(f"value_{i} = compute({i})  # step {i}\n" for i in range(120))  # past the preview limit
    with MarkdownStream(console) as stream:
        stream.feed("```python\n" + code)
        # The live region redraws on its own thread; its first highlighted draw imports pygments, which on
        # a busy machine takes longer than a few refresh intervals.
        deadline = time.monotonic() + 20
        while "value_119" not in written(console) and time.monotonic() < deadline:
            time.sleep(MarkdownStream.REFRESH_INTERVAL)
        drafts = written(console)
        stream.feed("```\n")
    assert "value_119" in drafts and "```" not in drafts  # the tail, not raw Markdown
    assert "48;2;39;40;34m" in drafts  # on the code block's background
