"""HTML to readable text for fetch_url: headings as '# ...', list items as '- ...', blank lines between
blocks, whitespace collapsed except inside <pre>."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP = frozenset({"script", "style", "nav", "noscript", "template", "svg"})
_BLOCK = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "main",
        "header",
        "footer",
        "aside",
        "form",
        "table",
        "ul",
        "ol",
        "dl",
        "blockquote",
        "figure",
        "figcaption",
        "hr",
        "address",
        "details",
        "summary",
    }
)
_LINE = frozenset({"br", "tr", "dt", "dd"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_PRE = "\x00"  # marks lines inside <pre>, whose whitespace is kept


class _TextExtractor(HTMLParser):
    """Readable text: headings as '# ...', list items as '- ...', blank lines between blocks,
    whitespace collapsed except inside <pre>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.title = ""
        self._skip = 0  # depth inside elements whose text is not content
        self._in_title = False
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIP:
            self._skip += 1
        elif tag in _HEADINGS:
            self._break(2)
            self.out.append("#" * _HEADINGS[tag] + " ")
        elif tag == "li":
            self._break(1)
            self.out.append("- ")
        elif tag == "pre":
            self._pre += 1
            self._break(2)
        elif tag in _BLOCK:
            self._break(2)
        elif tag in _LINE:
            self._break(1)
        elif tag in ("td", "th"):
            self.out.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIP:
            self._skip = max(self._skip - 1, 0)
        elif tag == "pre":
            self._pre = max(self._pre - 1, 0)
            self._break(2)
        elif tag in _HEADINGS or tag in _BLOCK:
            self._break(2)
        elif tag in _LINE or tag == "li":
            self._break(1)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.out.append(data.replace("\n", "\n" + _PRE) if self._pre else re.sub(r"\s+", " ", data))

    def _break(self, newlines: int) -> None:
        """End the line with at least `newlines` newlines (</li><li> is one line break, not two)."""
        have = 0
        for piece in reversed(self.out):
            tail = piece.rstrip(" " + _PRE)
            have += len(tail) - len(tail.rstrip("\n"))
            if tail.strip("\n"):
                break
        self.out.append("\n" * max(newlines - have, 0) + (_PRE if self._pre else ""))

    def text(self) -> str:
        lines = [
            line.partition(_PRE)[2].rstrip() if _PRE in line else re.sub(r" {2,}", " ", line).strip()
            for line in "".join(self.out).split("\n")
        ]
        body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
        title = re.sub(r"\s+", " ", self.title).strip()
        return f"# {title}\n\n{body}" if title and body else title or body


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html.replace(_PRE, ""))
    parser.close()
    return parser.text()
