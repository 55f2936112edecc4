"""fetch_url and local addresses: this machine and the private network are reached only when the user
approves that URL, after DNS resolution and again at every redirect."""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from agent.tools.base import ToolError, Workspace
from agent.tools.builtin.web import FetchUrl, Hop, local_kind, next_hop, target
from tests.conftest import Hermes
from tests.fakeserver import FakeServer, Reply, ToolCalls
from tests.test_tools import ask_on_a_terminal, tool_messages

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def resolver(table: dict[str, str]) -> Any:
    def resolve(host: str, port: int) -> list[Address]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return [ipaddress.ip_address(table[host])]

    return resolve


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "not a public address"),
        ("93.184.216.34", ""),
        ("2606:4700::1111", ""),
        ("8.8.8.8", ""),
        ("172.32.0.1", ""),
    ],
)
def test_local_kind(address: str, kind: str) -> None:
    assert local_kind(ipaddress.ip_address(address)) == kind


PUBLIC = resolver(
    {
        "example.test": "93.184.216.34",
        "cdn.test": "151.101.1.1",
        "metadata.test": "169.254.169.254",
        "intranet.test": "10.0.0.7",
    }
)


def test_a_redirect_from_a_public_address_to_a_local_one_is_refused() -> None:
    start = target("https://example.test/a", PUBLIC)
    assert start.local == "" and start.addresses == (ipaddress.ip_address("93.184.216.34"),)
    assert next_hop(start, "https://cdn.test/b", None, PUBLIC).url == "https://cdn.test/b"
    for location in (
        "http://metadata.test/latest/meta-data/",
        "http://intranet.test:8080/",
        "http://127.0.0.1:9/x",
        "http://[::1]/",
        "http://0.0.0.0:22/",
    ):
        with pytest.raises(ToolError) as refused:
            next_hop(start, location, None, PUBLIC)
        assert refused.value.message.startswith(f"https://example.test/a redirects to {location}, a local address (")
        assert "call fetch_url with that URL directly, so that the user is asked" in refused.value.message


def test_a_redirect_stays_within_the_local_origin_the_user_approved() -> None:
    approved = target("http://127.0.0.1:8000/a", PUBLIC)
    assert approved.local == "127.0.0.1, loopback"
    assert next_hop(approved, "/b", approved.origin, PUBLIC).url == "http://127.0.0.1:8000/b"
    with pytest.raises(ToolError, match="a local address"):
        next_hop(approved, "http://127.0.0.1:8001/", approved.origin, PUBLIC)  # another service on this machine
    with pytest.raises(ToolError, match="a local address"):
        next_hop(approved, "http://metadata.test/", approved.origin, PUBLIC)


def test_a_local_url_escapes_and_a_public_one_does_not(tmp_path: Path) -> None:
    tool = FetchUrl(resolve=PUBLIC)
    ws = Workspace(tmp_path)
    escape = tool.escapes({"url": "http://metadata.test/latest/"}, ws)
    assert escape is not None and escape.reason == "reaches a local address (169.254.169.254, link-local)"
    assert escape.setting == ""  # only a user at a terminal can allow it
    assert tool.escapes({"url": "https://example.test/"}, ws) is None
    assert tool.escapes({"url": "https://nowhere.test/"}, ws) is None  # does not resolve: run() says so


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"host header: {self.headers['Host']}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Redirect(BaseHTTPRequestHandler):
    to: ClassVar[str] = ""

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.to)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def page() -> Iterator[int]:
    yield from serve(_Page)


def test_the_fetch_connects_to_the_address_that_was_checked(tmp_path: Path, page: int) -> None:
    # The name resolves to this machine when the call is checked, to another address after: the fetch
    # goes where the check (and the user) saw it go, with the name in Host.
    answers = iter(["127.0.0.1", "10.9.9.9"])
    lookups: list[str] = []

    def rebinding(host: str, port: int) -> list[Address]:
        lookups.append(host)
        return [ipaddress.ip_address(next(answers))]

    tool = FetchUrl(resolve=rebinding)
    args = {"url": f"http://rebind.test:{page}/"}
    assert tool.escapes(args, Workspace(tmp_path)) is not None
    result = tool.run(args, Workspace(tmp_path))
    assert result.content == f"http://rebind.test:{page}/ (text/plain)\n\nhost header: rebind.test:{page}\n"
    assert lookups == ["rebind.test"]


@pytest.fixture
def tls_page(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An HTTPS server on 127.0.0.1 whose certificate names only `pinned.test`, and that certificate."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=pinned.test",
            "-addext",
            "subjectAltName=DNS:pinned.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1], cert
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")
def test_https_to_the_checked_address_verifies_the_name(
    tmp_path: Path, tls_page: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Connecting to the IP that was checked, TLS still sends and verifies the URL's name.
    port, cert = tls_page
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    tool = FetchUrl(resolve=resolver({"pinned.test": "127.0.0.1", "other.test": "127.0.0.1"}))
    result = tool.run({"url": f"https://pinned.test:{port}/"}, Workspace(tmp_path))
    assert result.content.endswith(f"host header: pinned.test:{port}\n")
    with pytest.raises(ToolError, match="could not fetch"):  # a name the certificate does not hold
        tool.run({"url": f"https://other.test:{port}/"}, Workspace(tmp_path))


# --- end to end ---------------------------------------------------------------------------------------


def test_fetching_a_local_address_asks_even_with_yes(myplan: Hermes, fake: FakeServer, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{fake.port}/private-data"
    fake.script(ToolCalls([("fetch_url", {"url": url})]), Reply("Could not."))
    result = myplan.run("ask", "-y", "Read it.", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (
        "fetch_url not run: it reaches a local address (127.0.0.1, loopback), so it asks even with --yes, and "
        "there is no terminal to ask on; only a user at a terminal can allow it."
    ) in result.stderr
    assert fake.requests("/private-data") == []
    (message,) = tool_messages(fake.requests()[1].json)
    assert message["content"].startswith("Not run: it reaches a local address")


def test_an_approved_local_fetch_does_not_follow_a_redirect_to_another_local_service(
    myplan: Hermes, fake: FakeServer, fake2: FakeServer, tmp_path: Path
) -> None:
    _Redirect.to = f"http://127.0.0.1:{fake2.port}/admin"
    ports = serve(_Redirect)
    port = next(ports)
    try:
        fake.script(ToolCalls([("fetch_url", {"url": f"http://127.0.0.1:{port}/start"})]), Reply("Refused."))
        assert ask_on_a_terminal(myplan, tmp_path, ["-y", "Fetch it."], "reaches a local address", "y", "Refused.") == 0
    finally:
        next(ports, None)
    assert fake2.log == []
    (message,) = tool_messages(fake.requests()[1].json)
    assert message["content"] == (
        f"Error: http://127.0.0.1:{port}/start redirects to http://127.0.0.1:{fake2.port}/admin, a local address "
        "(127.0.0.1, loopback); fetch_url does not follow a redirect to a local address the user did not approve. "
        "To fetch it, call fetch_url with that URL directly, so that the user is asked."
    )


def test_a_hop_knows_its_origin() -> None:
    assert Hop("HTTPS://Example.test/x", "example.test", 443, (), "").origin == "https://example.test:443"
