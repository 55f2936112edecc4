"""Streamed plain text for a terminal, broken at spaces instead of mid-word.

Used where hermes prints an answer without rich (NO_COLOR) on a terminal; off a terminal the text
goes out exactly as it came, since scripts read it. A word is held until the space or line break
after it arrives, so a word split across two chunks of the stream is never broken.
"""

from __future__ import annotations

from collections.abc import Callable


class WordWrap:
    def __init__(self, write: Callable[[str], object], width: int) -> None:
        self._write = write
        self._width = max(width, 10)
        self._column = 0
        self._word = ""
        self._space = False  # one space is due before the next word, unless that word starts a line

    def feed(self, text: str) -> None:
        out: list[str] = []
        for ch in text:
            if ch == "\n":
                self._flush(out)
                out.append("\n")
                self._column, self._space = 0, False
            elif ch == " ":
                self._flush(out)
                if self._space:  # a run of spaces (indentation, alignment) stays as it was
                    out.append(" ")
                    self._column += 1
                self._space = True
            else:
                self._word += ch
                if len(self._word) >= self._width:  # longer than a line: cut, as the terminal would
                    self._flush(out)
        if out:
            self._write("".join(out))

    def close(self) -> None:
        out: list[str] = []
        self._flush(out)
        if out:
            self._write("".join(out))

    def _flush(self, out: list[str]) -> None:
        if not self._word:
            return
        gap = 1 if self._space and self._column else 0
        if self._column + gap + len(self._word) > self._width and self._column:
            out.append("\n")
            self._column, gap = 0, 0
        out.append(" " * gap + self._word)
        self._column += gap + len(self._word)
        self._word, self._space = "", False
