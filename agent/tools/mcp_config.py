"""`[mcp.servers.NAME]` tables as checked server configurations (cheap to import: no `mcp` here)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from providers.errors import ConfigError

_NAME = re.compile(r"[^A-Za-z0-9_-]")  # OpenAI's rule for function names: [a-zA-Z0-9_-]{1,64}
NAME_LIMIT = 64


def clean_name(name: str) -> str:
    """A server's or tool's name as a function name (and a file name)."""
    return _NAME.sub("_", name)[:NAME_LIMIT] or "tool"


@dataclass(frozen=True)
class ServerConfig:
    """One `[mcp.servers.NAME]` table, checked."""

    name: str
    command: tuple[str, ...]
    env: Mapping[str, str]  # its own `env` table
    cwd: str | None
    startup_timeout: float
    tool_timeout: float
    required: bool
    enabled: bool  # false: left out of chats (`hermes mcp list` and `test` still see it)


def parse_servers(
    servers: Mapping[str, Mapping[str, Any]],
    *,
    startup_timeout: float,
    tool_timeout: float,
    disabled_too: bool = False,
) -> list[ServerConfig]:
    """The enabled servers of the `[mcp.servers]` table (its values already checked by config's schema),
    and with `disabled_too` the others; the timeouts are the defaults of a server that sets none.
    Raises ConfigError for a malformed one."""
    configs = []
    for name, spec in servers.items():
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"[mcp.servers.{name}] must be a table.",
                hint='For example: [mcp.servers.files] with command = ["python", "-m", "server"]',
            )
        enabled = spec.get("enabled") is not False
        if not enabled and not disabled_too:
            continue
        command, env = _parse_spec(name, spec)
        cwd = spec.get("cwd")
        if cwd is not None and not (isinstance(cwd, str) and cwd):
            raise ConfigError(f"[mcp.servers.{name}] `cwd` must be a directory name.")
        configs.append(
            ServerConfig(
                name,
                tuple(command),
                env,
                os.path.expanduser(cwd) if cwd else None,
                float(spec.get("startup_timeout", startup_timeout)),
                float(spec.get("tool_timeout", tool_timeout)),
                spec.get("required") is True,
                enabled,
            )
        )
    return configs


def _parse_spec(name: str, spec: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
    command = spec.get("command")
    if not (isinstance(command, list) and command and all(isinstance(c, str) and c for c in command)):
        raise ConfigError(
            f"[mcp.servers.{name}] needs `command`: a list of strings, the program first.",
            hint='For example: command = ["npx", "-y", "@modelcontextprotocol/server-memory"]',
        )
    env = spec.get("env") or {}
    if not (isinstance(env, Mapping) and all(isinstance(v, str) for v in env.values())):
        raise ConfigError(
            f"[mcp.servers.{name}] `env` must be a table of strings.", hint='For example: env = { API_TOKEN = "..." }'
        )
    return list(command), {str(k): v for k, v in env.items()}
