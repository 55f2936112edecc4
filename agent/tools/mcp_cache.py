"""The cached tool list of each MCP server, so that a server is started only when one of its tools is called.

One JSON file per server in the state dir (`tools-NAME.json`): the key it was listed under, when, and the
tool specs as the server gave them (wire format). The key is a digest of everything that could change
what the server offers: its command and arguments, its environment, its working directory, and the
identity (path, size, mtime) of its program and of every argument that names an existing file, so that
upgrading the server or editing its script lists it afresh. Only the digest is stored, never the values.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_UNKEYED = frozenset({"TERM"})
STALE_AFTER = 24 * 3600.0  # seconds after which a cached list is used once more and refreshed in the background


@dataclass(frozen=True)
class CachedList:
    tools: list[dict[str, Any]]
    listed_at: float

    @property
    def stale(self) -> bool:
        return time.time() - self.listed_at > STALE_AFTER


def cache_key(command: Sequence[str], env: Mapping[str, str], cwd: str | None) -> str:
    base = Path(cwd) if cwd else Path.cwd()
    program = shutil.which(command[0], path=env.get("PATH")) or command[0]
    files = [_identity(program, base), *(_identity(arg, base) for arg in command[1:])]
    # TERM differs between a terminal and a pipe, and no server offers other tools for it.
    payload = {
        "command": list(command),
        "env": sorted((k, v) for k, v in env.items() if k not in _UNKEYED),
        "cwd": cwd,
        "files": files,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def _identity(arg: str, base: Path) -> list[Any] | None:
    """Path, size and mtime of the file `arg` names, or None when it names none (a flag, a module name)."""
    if not arg or arg.startswith("-") or len(arg) > 1024 or "\0" in arg:
        return None
    try:
        path = (base / os.path.expanduser(arg)).resolve()
        stat = path.stat()
    except (OSError, RuntimeError, ValueError):
        return None
    return [str(path), stat.st_size, stat.st_mtime_ns] if path.is_file() else None


def cache_path(cache_dir: Path, name: str) -> Path:
    from agent.tools.mcp_config import clean_name

    return cache_dir / f"tools-{clean_name(name)}.json"


def load(cache_dir: Path, name: str, key: str) -> CachedList | None:
    """The cached list of server `name` if it was listed under `key`; None when absent, other or unreadable."""
    try:
        data = json.loads(cache_path(cache_dir, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    tools, listed_at = data.get("tools"), data.get("listed_at")
    if not (
        isinstance(tools, list) and all(isinstance(t, dict) for t in tools) and isinstance(listed_at, (int, float))
    ):
        return None
    return CachedList(tools, float(listed_at))


def save(cache_dir: Path, name: str, key: str, tools: list[dict[str, Any]]) -> None:
    """Best effort: a state dir that cannot be written only means the server is started next time too."""
    from providers.atomic import write_atomic

    data = {"key": key, "listed_at": time.time(), "tools": tools}
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(cache_path(cache_dir, name), json.dumps(data, ensure_ascii=False).encode("utf-8"))
    except OSError:
        pass
