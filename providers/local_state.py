"""What the local server's manager and its watchdog share: `<state>/local/server.json`, the file that
names the running llama-server (pid, port, key, who uses it), and the files beside it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

STATE_FILE, LOCK_FILE, LOG_FILE = "server.json", "server.lock", "server.log"


@dataclass(frozen=True)
class LocalServer:
    base_url: str
    api_key: str
    pid: int
    port: int
    model_path: str


@dataclass(frozen=True)
class ServerState:
    """What server.json holds. `clients`: pids of hermes processes that used this server."""

    pid: int
    port: int
    api_key: str
    model_path: str
    started: float
    last_used: float
    keep_alive: float
    watchdog_pid: int = 0
    clients: tuple[int, ...] = field(default_factory=tuple)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def server(self) -> LocalServer:
        return LocalServer(self.base_url, self.api_key, self.pid, self.port, self.model_path)


def read_state(state_file: Path) -> ServerState | None:
    try:
        data = json.loads(state_file.read_text(encoding="utf-8"))
        return ServerState(**{**data, "clients": tuple(data.get("clients", ()))})
    except (OSError, ValueError, TypeError):
        return None  # missing or unreadable: as if nothing runs; a fresh start rewrites it


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
