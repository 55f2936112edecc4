"""A small synchronous Redis client: the commands the state store sends, without redis-py's start-up cost.

Importing redis-py imports its asyncio client, cluster support and OpenTelemetry hooks whatever one uses:
~140 ms of CPU in every process, half of a whole `hermes ask`. This speaks RESP2 over one socket (TCP,
TLS for rediss://, or a unix socket) and leaves the protocol to hiredis, the parser redis-py itself uses
when installed. URLs mean what they mean to redis-py's `Redis.from_url`.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

Arg = str | int | float | bytes

_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
_QUERY = ("db", "username", "password", "ssl_cert_reqs", "ssl_ca_certs")


class RedisError(Exception):
    """Redis could not be used: no connection, a lost one, or no answer in time."""


class ReplyError(RedisError):
    """The server answered a command with an error (`NOSCRIPT ...`, `WRONGPASS ...`)."""


@dataclass(frozen=True)
class Address:
    host: str = "localhost"
    port: int = 6379
    path: str | None = None  # a unix socket instead of host and port
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0
    cert_reqs: ssl.VerifyMode = ssl.CERT_REQUIRED
    ca_certs: str | None = None

    @property
    def where(self) -> str:
        return self.path or f"{self.host}:{self.port}"


def parse_url(url: str) -> Address:
    """`redis://[[user]:password@]host[:port][/db]`, `rediss://` the same over TLS, or
    `unix://[[user]:password@]/path/to.sock`; the query may give db, username, password, ssl_cert_reqs
    (none, optional, required) and ssl_ca_certs. ValueError, saying why, for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("the scheme must be redis://, rediss:// or unix://")
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    for name in query:
        if name not in _QUERY:
            raise ValueError(f"unknown parameter {name!r}; known: {', '.join(_QUERY)}")
    db = query.get("db")
    if db is not None and not db.isdigit():
        raise ValueError("db must be a number")
    if query.get("ssl_cert_reqs", "required") not in _CERT_REQS:
        raise ValueError(f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}")
    username = unquote(parts.username) if parts.username else query.get("username")
    password = unquote(parts.password) if parts.password else query.get("password")
    common: dict[str, Any] = {
        "username": username,
        "password": password,
        "cert_reqs": _CERT_REQS[query.get("ssl_cert_reqs", "required")],
        "ca_certs": query.get("ssl_ca_certs"),
    }
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("a unix:// URL needs the socket's path")
        return Address(path=unquote(parts.path), db=int(db or 0), **common)
    path_db = unquote(parts.path).replace("/", "")
    if db is None and path_db.isdigit():  # as redis-py: a path that is no number is no database
        db = path_db
    return Address(
        host=parts.hostname or "localhost",
        port=parts.port or 6379,  # a port that is no number raises ValueError here
        tls=parts.scheme == "rediss",
        db=int(db or 0),
        **common,
    )


def _packed(commands: Sequence[Sequence[Arg]]) -> bytes:
    # A float is sent as redis-py sends it, with all its digits.
    return b"".join(
        hiredis.pack_command(tuple(repr(a) if isinstance(a, float) else a for a in command))  # type: ignore[arg-type]  # its stub says a 1-tuple
        for command in commands
    )


# What a connection the server closed looks like (over TLS too); a timeout is not among them.
_CLOSED = (ConnectionError, EOFError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


def _reason(error: Exception) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


class Redis:
    """One connection, opened on first use and kept. When one that has worked is found closed (the
    server dropped it while idle, or restarted), the command is sent once more on a new one; a timeout
    is never retried, so a black-holed server costs one timeout per command. Threads take turns."""

    def __init__(self, address: Address, *, timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._reader = hiredis.Reader(encoding="utf-8", errors="replace")
        self._lock = threading.Lock()

    def execute(self, *command: Arg) -> Any:
        return self.pipeline([command])[0]

    def pipeline(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Several commands in one round trip (not atomic), their replies in order; ReplyError if any failed."""
        with self._lock:
            replies = self._round_trip(_packed(commands), len(commands))
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                raise ReplyError(str(reply))
        return replies

    def transaction(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """The commands as one MULTI/EXEC: all or none; their replies in order."""
        replies = self.pipeline([("MULTI",), *commands, ("EXEC",)])[-1]
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                raise ReplyError(str(reply))
        return list(replies)

    def scan_iter(self, match: str) -> Iterator[str]:
        cursor = "0"
        while True:
            cursor, keys = self.execute("SCAN", cursor, "MATCH", match)
            yield from keys
            if cursor == "0":
                return

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _round_trip(self, payload: bytes, count: int) -> list[Any]:
        if self._sock is not None:
            try:
                return self._exchange(self._sock, payload, count)
            except _CLOSED:
                self.close()  # found closed: once more, on a new connection
            except OSError as e:
                self.close()
                raise RedisError(f"{self.address.where}: {_reason(e)}") from None
        sock = self._connect()
        try:
            return self._exchange(sock, payload, count)
        except (OSError, EOFError) as e:
            self.close()
            raise RedisError(f"{self.address.where}: {_reason(e)}") from None

    def _connect(self) -> socket.socket:
        a = self.address
        sock: socket.socket | None = None
        try:
            if a.path is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(a.path)
            else:
                sock = socket.create_connection((a.host, a.port), timeout=self.timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if a.tls:
                context = ssl.create_default_context(cafile=a.ca_certs)
                context.check_hostname = a.cert_reqs != ssl.CERT_NONE
                context.verify_mode = a.cert_reqs
                sock = context.wrap_socket(sock, server_hostname=a.host)
        except OSError as e:
            if sock is not None:
                sock.close()
            raise RedisError(f"cannot connect to {a.where}: {_reason(e)}") from None
        self._sock = sock
        self._reader = hiredis.Reader(encoding="utf-8", errors="replace")
        setup: list[tuple[Arg, ...]] = []
        if a.password:
            setup.append(("AUTH", a.username, a.password) if a.username else ("AUTH", a.password))
        if a.db:
            setup.append(("SELECT", a.db))
        if setup:
            try:
                replies = self._exchange(sock, _packed(setup), len(setup))
            except (OSError, EOFError) as e:
                self.close()
                raise RedisError(f"cannot connect to {a.where}: {_reason(e)}") from None
            for reply in replies:
                if isinstance(reply, hiredis.ReplyError):
                    self.close()
                    raise ReplyError(str(reply))
        return sock

    def _exchange(self, sock: socket.socket, payload: bytes, count: int) -> list[Any]:
        sock.sendall(payload)
        replies: list[Any] = []
        try:
            while len(replies) < count:
                reply = self._reader.gets()
                if reply is not False:
                    replies.append(reply)
                    continue
                data = sock.recv(65536)
                if not data:
                    raise EOFError("the server closed the connection")
                self._reader.feed(data)
        except hiredis.ProtocolError as e:
            self.close()
            raise RedisError(f"{self.address.where} does not speak Redis ({e})") from None
        return replies


class Script:
    """A Lua script, sent by its SHA1 (EVALSHA) and in full only when the server does not have it yet."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, client: Redis, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        try:
            return client.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except ReplyError as e:
            if not str(e).startswith("NOSCRIPT"):
                raise
        return client.execute(*self.command(keys, args))

    def command(self, keys: Sequence[str], args: Sequence[Arg]) -> tuple[Arg, ...]:
        """The script as one command of a pipeline (EVAL: one round trip, whether or not it was loaded)."""
        return ("EVAL", self.source, len(keys), *keys, *args)
