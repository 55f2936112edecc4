"""Benchmark, run by hand: is streamed Markdown rendering linear in the answer's length?

    .venv/bin/python bench/render.py [--tokens 20000]

Streams a long Markdown answer (headings, paragraphs, lists, code blocks, tables) token by token
through the REPL's renderer into a terminal console (force_terminal, writing to /dev/null), and
compares the CPU time (all threads: the live region redraws from its own; best of 3) with
  - plain: the same tokens written and flushed one by one, as the REPL does without colour;
  - one-shot: the same renderer given the finished answer at once (the floor for streaming);
  - rich one-shot: rich's own Markdown given the finished answer at once (what hermes' direct
    drawing of code blocks and tables saves).
Then it doubles the length: a linear renderer takes about twice the time.

End to end, as the issue measures it: a real `hermes chat` on a pseudo-terminal asks the loopback
test server, which streams the same answer token by token; the CPU time of the whole process
rendering Markdown is compared with the same run under NO_COLOR (the REPL writing the bytes
plainly); the runs alternate, and each side keeps its least CPU time of seven. Goal: <= 1.5x.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.markdown import Markdown as RichMarkdown  # noqa: E402

from hermes_cli.repl.markdown_render import Markdown  # noqa: E402
from hermes_cli.repl.markdown_stream import MarkdownStream  # noqa: E402
from tests.conftest import clean_env  # noqa: E402
from tests.fakeserver import FakeServer, Reply  # noqa: E402

CHARS_PER_TOKEN = 4
END = "ENDOFANSWER"  # one word: inside a highlighted code block, words are styled apart


def section(i: int) -> str:
    return f"""## Part {i}: notes on the subject

This paragraph explains step {i} in some detail, with *emphasis*, **strong words**, `inline code`
and a [link](https://example.com/{i}). It goes on for a while so that it wraps on a terminal of
ordinary width, as the answers of a chatty model do.

- first point of part {i}
- second point, with a nested list:
  - nested a
  - nested b
- third point

```python
def step_{i}(values: list[int]) -> int:
    total = 0
    for v in values:
        total += v * {i}
    return total
```

| name | value | note |
|------|------:|------|
| alpha | {i} | first |
| beta | {i * 2} | second |
| gamma | {i * 3} | third |

"""


def answer(tokens: int) -> str:
    text, i = "", 0
    while len(text) < tokens * CHARS_PER_TOKEN:
        text += section(i)
        i += 1
    return text[: tokens * CHARS_PER_TOKEN]


def chunks(text: str) -> list[str]:
    return [text[i : i + CHARS_PER_TOKEN] for i in range(0, len(text), CHARS_PER_TOKEN)]


def terminal(sink: TextIO) -> Console:
    return Console(file=sink, force_terminal=True, color_system="truecolor", width=100, height=40)


def cpu(fn: Callable[[], None], repeat: int = 3) -> float:
    """The least CPU time of a few runs: other load on the machine only ever adds to it."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def streamed(pieces: list[str], sink: TextIO) -> None:
    with MarkdownStream(terminal(sink)) as stream:
        for piece in pieces:
            stream.feed(piece)


def plain(pieces: list[str], sink: TextIO) -> None:
    for piece in pieces:
        sink.write(piece)
        sink.flush()


def one_shot(text: str, sink: TextIO) -> None:
    terminal(sink).print(Markdown(text))


def rich_one_shot(text: str, sink: TextIO) -> None:
    terminal(sink).print(RichMarkdown(text))


def measure(tokens: int, sink: TextIO) -> dict[str, float]:
    text = answer(tokens)
    pieces = chunks(text)
    return {
        "streamed": cpu(lambda: streamed(pieces, sink)),
        "plain": cpu(lambda: plain(pieces, sink)),
        "one-shot": cpu(lambda: one_shot(text, sink)),
        "rich one-shot": cpu(lambda: rich_one_shot(text, sink)),
    }


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def chat_cpu(base_url: str, *, colour: bool) -> float:
    """CPU time of one `hermes chat` process that asks once, shows the answer and leaves."""
    import pexpect

    with tempfile.TemporaryDirectory() as home:
        env = clean_env(
            Path(home), MYPLAN_API_KEY="sk-bench-render-0001", PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm-256color"
        )
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: hermes' modules compiled once, not per run
        if colour:
            env.pop("NO_COLOR")
        Path(home, "config.toml").write_text(
            f'[model]\nprovider = "myplan"\nname = "m"\n\n[providers.myplan]\nbase_url = "{base_url}"\n'
            "\n[sessions]\nsave = false\n"
        )
        before = children_cpu()
        child = pexpect.spawn(
            sys.executable,
            ["-m", "hermes_cli", "chat"],
            env=env,
            dimensions=(40, 100),
            encoding="utf-8",
            timeout=120,
            maxread=65536,
            cwd=str(ROOT),
        )
        child.expect_exact("›")
        child.send("write\r")
        child.expect_exact(END)
        child.expect_exact("›")  # the next prompt: the whole answer has been shown
        child.sendeof()
        child.expect(pexpect.EOF)
        child.close()
        return children_cpu() - before


def serve(tokens: int) -> None:
    """The test server streaming the answer, in a process of its own, as a provider would be: in
    this process, the reading of the terminal would take turns with it for the GIL."""
    text = answer(tokens) + f"\n\n{END}\n"
    with FakeServer() as server:
        server.always(Reply(text, chunks=chunks(text)))
        print(server.base_url, flush=True)
        sys.stdin.read()  # until the benchmark is done


def end_to_end(tokens: int) -> tuple[float, float]:
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(tokens)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        chat_cpu(base_url, colour=True)  # warm the bytecode cache
        runs = [(chat_cpu(base_url, colour=True), chat_cpu(base_url, colour=False)) for _ in range(7)]
    finally:
        server.communicate()
    return min(r for r, _ in runs), min(p for _, p in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--serve", type=int, metavar="TOKENS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    with open(os.devnull, "w", encoding="utf-8") as sink:
        measure(500, sink)  # warm up imports, pygments lexers and caches
        base = measure(args.tokens, sink)
        double = measure(args.tokens * 2, sink)
    for label, figures in ((f"{args.tokens:,} tokens", base), (f"{args.tokens * 2:,} tokens", double)):
        print(f"{label:>15}: " + ", ".join(f"{k} {v:.3f}s" for k, v in figures.items()))
    print(f"streamed / one-shot:      {base['streamed'] / base['one-shot']:.2f}x")
    print(f"one-shot / rich one-shot: {base['one-shot'] / base['rich one-shot']:.2f}x")
    print(f"streamed / plain writes:  {base['streamed'] / base['plain']:.1f}x")
    print(f"doubling the length:      {double['streamed'] / base['streamed']:.2f}x time (goal <= 2.2x)")
    rendered, plain_run = end_to_end(args.tokens)
    print(
        f"hermes chat on a pty, {args.tokens:,} tokens from the test server: Markdown {rendered:.2f}s CPU, "
        f"NO_COLOR {plain_run:.2f}s CPU: {rendered / plain_run:.2f}x (goal <= 1.5x)"
    )
    print("README rows:")
    print(
        f"| `render.py`: hermes' Markdown vs rich's own, the finished answer at once | {base['one-shot']:.2f} vs "
        f"{base['rich one-shot']:.2f} s: {base['one-shot'] / base['rich one-shot']:.2f}x | |"
    )
    print(f"| `render.py`: streamed vs the finished answer at once | {base['streamed'] / base['one-shot']:.2f}x | |")
    print(
        f"| `render.py`: doubling the answer's length | {double['streamed'] / base['streamed']:.1f}x the time "
        "| ≤ 2.2x (linear) |"
    )
    print(
        f"| `render.py`: `hermes chat` on a pty, {args.tokens:,} tokens, Markdown vs NO_COLOR, CPU | "
        f"{rendered:.2f} vs {plain_run:.2f} s: {rendered / plain_run:.2f}x | ≤ 1.5x |"
    )


if __name__ == "__main__":
    main()
