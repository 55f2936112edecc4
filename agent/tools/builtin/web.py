"""fetch_url: GET a web page and hand the model its readable text; a local address only when the user says yes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from agent.tools.base import (
    Arguments,
    BuiltinTool,
    Effect,
    Escape,
    ToolError,
    ToolResult,
    Workspace,
    object_schema,
    truncate,
)

if TYPE_CHECKING:
    import ipaddress

    import httpx

    Address = ipaddress.IPv4Address | ipaddress.IPv6Address
    Resolver = Callable[[str, int], list[Address]]

TIMEOUT_SECONDS = 20
MAX_REDIRECTS = 5
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_TEXT_CHARS = 50_000
USER_AGENT = "hermes (fetch_url)"
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_TYPES = frozenset({"application/json", "application/xml", "application/javascript", "application/x-ndjson"})


class FetchUrl(BuiltinTool):
    name = "fetch_url"
    description = (
        "Fetch a web page or document with an HTTP GET (http/https only, up to 5 redirects followed, 20 s "
        "timeout). HTML comes back as readable text (scripts, styles and navigation dropped); plain text, JSON "
        "and XML as is. Other content types (images, PDFs, archives) are refused. Bodies are cut at 2 MB and "
        "the returned text at 50,000 characters. A local address (this machine, the private network) is "
        "fetched only when the user approves that URL."
    )
    parameters = object_schema(
        {"url": {"type": "string", "description": "An absolute http:// or https:// URL."}},
        ["url"],
    )
    effect = Effect.NETWORK

    def __init__(self, *, resolve: Resolver | None = None) -> None:
        self._resolve = resolve or resolve_host
        # The addresses each URL resolved to when its approval was decided: run() connects to those,
        # so a DNS answer that changes in between cannot move an approved fetch to a local address.
        self._checked: dict[str, Hop] = {}

    def preview(self, args: Arguments, workspace: Workspace) -> str:
        return f"GET {args['url']}"

    def escapes(self, args: Arguments, workspace: Workspace) -> Escape | None:
        url = args["url"].strip()
        hop = target(url, self._resolve, strict=False)
        self._checked[url] = hop
        return Escape(f"reaches a local address ({hop.local})") if hop.local else None

    def run(self, args: Arguments, workspace: Workspace) -> ToolResult:
        import httpx  # lazily: most sessions never fetch a page

        url: str = args["url"].strip()
        checked = self._checked.pop(url, None)
        hop = checked if checked is not None and checked.addresses else target(url, self._resolve)
        if hop.local and checked is not None and not checked.local:
            raise ToolError(
                f"{url} now resolves to a local address ({hop.local}), which it did not when the call "
                "was approved; call fetch_url with it again so that the user is asked."
            )
        approved = hop.origin if hop.local else None  # the local origin the user said yes to, if any
        try:
            with httpx.Client(timeout=TIMEOUT_SECONDS, headers={"User-Agent": USER_AGENT}) as client:
                for _ in range(MAX_REDIRECTS + 1):
                    with _open(client, hop) as response:
                        location = response.headers.get("location") if response.is_redirect else None
                        if location is None:
                            return _result(hop.url, response)
                    hop = next_hop(hop, location, approved, self._resolve)
                raise ToolError(f"{url}: more than {MAX_REDIRECTS} redirects.")
        except httpx.TimeoutException:
            raise ToolError(f"{url}: timed out after {TIMEOUT_SECONDS} s.") from None
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            raise ToolError(f"could not fetch {url}: {e or type(e).__name__}.") from None


# --- where a URL leads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """One URL to fetch, with the addresses its host resolved to and whether any is local."""

    url: str
    host: str
    port: int
    addresses: tuple[Address, ...]  # empty: the name did not resolve
    local: str  # "127.0.0.1, loopback" for the first local address; "" when none is

    @property
    def origin(self) -> str:
        return f"{urlsplit(self.url).scheme.lower()}://{self.host}:{self.port}"


def resolve_host(host: str, port: int) -> list[Address]:
    """The addresses a connection to host:port may reach, from the system's resolver."""
    import ipaddress
    import socket

    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


def local_kind(address: Address) -> str:
    """What kind of non-public address this is ("loopback", "private"...), or "" for a public one."""
    import ipaddress

    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind, test in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("private", address.is_private),
    ):
        if test:
            return kind
    return "" if address.is_global else "not a public address"


def target(url: str, resolve: Resolver, *, strict: bool = True) -> Hop:
    """The hop to `url`. Raises ToolError for a URL that is not absolute http(s), and, when `strict`,
    for a host that does not resolve (not strict: a Hop without addresses)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number
        host = port = None
    if scheme not in ("http", "https") or not host:
        raise ToolError(f"only absolute http:// and https:// URLs can be fetched, not {url!r}.")
    port = port or (443 if scheme == "https" else 80)
    import ipaddress

    try:
        addresses: tuple[Address, ...] = (ipaddress.ip_address(host),)  # an IP literal is its own address
    except ValueError:
        addresses = ()
    try:
        addresses = addresses or tuple(resolve(host, port))
    except (OSError, UnicodeError) as e:
        if strict:
            raise ToolError(f"could not fetch {url}: cannot resolve {host} ({e}).") from None
        addresses = ()
    local = next((f"{a}, {kind}" for a in addresses if (kind := local_kind(a))), "")
    return Hop(url, host, port, addresses, local)


def next_hop(hop: Hop, location: str, approved: str | None, resolve: Resolver) -> Hop:
    """Where a redirect from `hop` leads. A local address is followed only within the origin the user
    approved (`approved`); anywhere else local, the model must ask for that URL itself."""
    url = urljoin(hop.url, location)
    following = target(url, resolve)
    if following.local and following.origin != approved:
        raise ToolError(
            f"{hop.url} redirects to {url}, a local address ({following.local}); fetch_url does not follow a "
            "redirect to a local address the user did not approve. To fetch it, call fetch_url with that URL "
            "directly, so that the user is asked."
        )
    return following


@contextlib.contextmanager
def _open(client: httpx.Client, hop: Hop) -> Iterator[httpx.Response]:
    """GET the hop from the addresses it was checked at, in turn, with its own name for Host and TLS."""
    import httpx

    parts = urlsplit(hop.url)
    netloc = parts.netloc.rpartition("@")[2]
    error: httpx.ConnectError | None = None
    for address in hop.addresses:
        request = client.build_request(
            "GET",
            httpx.URL(hop.url).copy_with(host=str(address)),
            headers={"Host": netloc},
            extensions={"sni_hostname": hop.host} if parts.scheme.lower() == "https" else {},
        )
        try:
            response = client.send(request, stream=True)
        except httpx.ConnectError as e:
            error = e
            continue
        try:
            yield response
        finally:
            response.close()
        return
    raise error or httpx.ConnectError(f"{hop.host} has no address")


def _result(url: str, response: httpx.Response) -> ToolResult:
    if response.status_code >= 400:
        raise ToolError(f"HTTP {response.status_code} {response.reason_phrase} from {url}.")
    mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if mime and not _is_text(mime):
        raise ToolError(f"{url} is {mime}, not a text document; fetch_url reads only text.")
    body, cut = _read_capped(response.iter_bytes())
    if not mime and b"\0" in body:
        raise ToolError(f"{url} has no content type and is not text.")
    text = _decode(body, response.charset_encoding or "utf-8")
    if mime in _HTML_TYPES:
        from agent.tools.builtin.html_text import html_to_text  # html.parser: only when a page is HTML

        text = html_to_text(text)
    text = truncate(text, MAX_TEXT_CHARS, "page")
    note = " (body cut at 2 MB)" if cut else ""
    header = f"{url} ({mime or 'no content type'}){note}"
    return ToolResult(f"{header}\n\n{text}", f"{response.status_code} {mime or '?'}, {len(text):,} chars{note}")


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
