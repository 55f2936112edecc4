"""A real, throwaway `redis-server` on a free loopback port, for tests and benchmarks.

It keeps nothing on disk (`--save '' --appendonly no`) and runs in the foreground, so stop() ends it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import redis


class RedisServerMissing(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """`options`: more redis-server options (`--requirepass`, `--unixsocket`, `--tls-port`...); the plain
    port stays, for the tests' own client. `password`: what that client authenticates with."""

    def __init__(self, *options: str, password: str | None = None) -> None:
        self.port = 0
        self.options = options
        self.password = password
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(port=self.port, db=db, password=self.password, decode_responses=True, socket_timeout=5)

    def start(self, timeout: float = 10) -> RedisServer:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RedisServerMissing(
                "redis-server is not installed, and the Redis state store is tested against a real one: "
                "install it (`apt-get install redis-server`; .ci/run does so in CI)."
            )
        # Another process may take the free port before redis-server binds it: then try another.
        for _ in range(5):
            self.port = free_port()
            self._proc = subprocess.Popen(
                [
                    exe,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    *self.options,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_ready(timeout):
                return self
            self.stop()
        raise RuntimeError("redis-server did not start answering PING")

    def _wait_ready(self, timeout: float) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._proc.poll() is None:
            try:
                with redis.Redis(port=self.port, password=self.password, socket_timeout=0.5) as probe:
                    if probe.ping():
                        return True
            except redis.ConnectionError:
                time.sleep(0.02)
        return False

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
