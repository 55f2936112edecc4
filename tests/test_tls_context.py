"""One TLS context per process, its CA store loaded only for a TLS connection: proxies from the environment
share it, and a plain-http endpoint never loads it. Verification itself is unchanged (the `ssl` module's
PROTOCOL_TLS_CLIENT defaults: certificates and host names checked)."""

from __future__ import annotations

import ssl

import pytest

from agent.route import Target
from agent.transport import HTTPTransport, Timeouts, tls_context
from tests.fakeserver import FakeServer, Reply


def contexts(transport: HTTPTransport) -> set[int]:
    client = transport._client
    pools = [client._transport, *(t for t in client._mounts.values() if t is not None)]
    return {id(pool._pool._ssl_context) for pool in pools}  # type: ignore[attr-defined]  # httpcore's pool keeps its SSL context private


def test_proxies_share_the_one_context_and_plain_http_loads_no_ca_store(
    monkeypatch: pytest.MonkeyPatch, fake: FakeServer
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    fake.always(Reply("hi"))
    first, second = HTTPTransport(Timeouts(10, 120)), HTTPTransport(Timeouts(10, 120))
    assert len(first._client._mounts) >= 2  # the environment's proxies were mounted
    assert contexts(first) == contexts(second) == {id(tls_context())}
    assert first.models(Target(fake.base_url, "sk-tls-test-0001"))
    assert tls_context().cert_store_stats()["x509_ca"] == 0  # plain http: the CA store was never read
    assert tls_context().verify_mode == ssl.CERT_REQUIRED and tls_context().check_hostname
