"""fetch_url: GET a web page and hand the model its readable text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

from agent.tools.base import Arguments, BuiltinTool, Effect, ToolError, ToolResult, Workspace, object_schema, truncate

TIMEOUT_SECONDS = 20
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_TEXT_CHARS = 50_000
USER_AGENT = "hermes (fetch_url)"
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_TYPES = frozenset({"application/json", "application/xml", "application/javascript", "application/x-ndjson"})


class FetchUrl(BuiltinTool):
    name = "fetch_url"
    description = (
        "Fetch a web page or document with an HTTP GET (http/https only, redirects followed, 20 s timeout). "
        "HTML comes back as readable text (scripts, styles and navigation dropped); plain text, JSON and "
        "XML as is. Other content types (images, PDFs, archives) are refused. Bodies are cut at 2 MB and "
        "the returned text at 50,000 characters."
    )
    parameters = object_schema(
        {"url": {"type": "string", "description": "An absolute http:// or https:// URL."}},
        ["url"],
    )
    effect = Effect.NETWORK

    def preview(self, args: Arguments, workspace: Workspace) -> str:
        return f"GET {args['url']}"

    def run(self, args: Arguments, workspace: Workspace) -> ToolResult:
        import httpx  # lazily: most sessions never fetch a page

        url: str = args["url"].strip()
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ToolError(f"only absolute http:// and https:// URLs can be fetched, not {url!r}.")
        try:
            client = httpx.Client(follow_redirects=True, timeout=TIMEOUT_SECONDS, headers={"User-Agent": USER_AGENT})
            with client, client.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise ToolError(f"HTTP {response.status_code} {response.reason_phrase} from {response.url}.")
                mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if mime and not _is_text(mime):
                    raise ToolError(f"{response.url} is {mime}, not a text document; fetch_url reads only text.")
                body, cut = _read_capped(response.iter_bytes())
                charset = response.charset_encoding or "utf-8"
                final_url, status = str(response.url), response.status_code
        except httpx.TimeoutException:
            raise ToolError(f"{url}: timed out after {TIMEOUT_SECONDS} s.") from None
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            raise ToolError(f"could not fetch {url}: {e or type(e).__name__}.") from None

        if not mime and b"\0" in body:
            raise ToolError(f"{final_url} has no content type and is not text.")
        text = _decode(body, charset)
        if mime in _HTML_TYPES:
            text = html_to_text(text)
        text = truncate(text, MAX_TEXT_CHARS, "page")
        note = " (body cut at 2 MB)" if cut else ""
        header = f"{final_url} ({mime or 'no content type'}){note}"
        return ToolResult(f"{header}\n\n{text}", f"{status} {mime or '?'}, {len(text):,} chars{note}")


def _is_text(mime: str) -> bool:
    return mime.startswith("text/") or mime in _TEXT_TYPES or mime in _HTML_TYPES or mime.endswith(("+json", "+xml"))


def _read_capped(chunks: Iterator[bytes]) -> tuple[bytes, bool]:
    """At most MAX_BODY_BYTES of the stream, and whether there was more: a huge download stops early."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return bytes(body[:MAX_BODY_BYTES]), True
    return bytes(body), False


def _decode(body: bytes, charset: str) -> str:
    try:
        return body.decode(charset, errors="replace")
    except LookupError:  # a charset name Python does not know
        return body.decode("utf-8", errors="replace")


# --- HTML to text -------------------------------------------------------------------------------------

_SKIP = frozenset({"script", "style", "nav", "noscript", "template", "svg"})
_BLOCK = frozenset({
    "p", "div", "section", "article", "main", "header", "footer", "aside", "form", "table", "ul", "ol", "dl",
    "blockquote", "figure", "figcaption", "hr", "address", "details", "summary",
})
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
