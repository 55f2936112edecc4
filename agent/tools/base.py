"""What a tool is, and what running one gives back.

    ToolError   -- the call cannot be done as asked (bad arguments, missing file, timeout...).
                   Not a crash: its message goes back to the model as the tool's result, so the
                   model can correct itself.

A tool is a small object: a name, a description and a JSON schema for the model; an `effect` saying
what it can change (which decides whether the user must approve a call); `run`. Tools run with a
`Workspace`: the directory hermes was started in. Paths outside it need approval, even to read.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

# Linux's limits: a longer name fails in the kernel ("File name too long") wherever it is used.
NAME_MAX = 255  # bytes in one path component
PATH_MAX = 4096  # bytes in a whole path


class ToolError(Exception):
    """A call that cannot be done as asked; the message is what the model reads."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Effect(enum.Enum):
    READ = "read"  # reads files or the clock: runs without asking (inside the workspace)
    WRITE = "write"  # changes files
    EXEC = "exec"  # runs programs (or, for an MCP tool, anything not marked read-only)
    NETWORK = "network"  # talks to other hosts


@dataclass(frozen=True)
class Workspace:
    """The directory tools work in; relative paths are relative to it."""

    root: Path

    def resolve(self, path: str) -> Path:
        """The absolute, normalised path (symlinks followed as far as they exist).

        Raises ToolError for anything the file system could not take as a path, so no tool meets it."""
        if not isinstance(path, str) or not path.strip():
            raise ToolError("path must be a non-empty string.")
        if "\0" in path:
            raise ToolError("path must not contain a NUL character.")
        try:
            encoded = path.encode("utf-8")
        except UnicodeEncodeError:
            raise ToolError("path is not valid Unicode (it holds an unpaired surrogate).") from None
        if len(encoded) >= PATH_MAX or any(len(part) > NAME_MAX for part in encoded.split(b"/")):
            raise ToolError(f"path is too long (at most {NAME_MAX} bytes per name and {PATH_MAX - 1} in all).")
        try:
            resolved = (self.root / Path(path).expanduser()).resolve()
        except RuntimeError:  # "~user" for a user that does not exist, or a symlink loop
            raise ToolError(f"cannot resolve {path!r}: no such user or a symlink loop.") from None
        except OSError as e:
            raise ToolError(f"cannot resolve {path!r} ({e.strerror or e}).") from None
        if len(str(resolved).encode("utf-8")) >= PATH_MAX:
            raise ToolError(f"path is too long once resolved (over {PATH_MAX - 1} bytes).")
        return resolved

    def contains(self, path: Path) -> bool:
        root = self.root.resolve()
        return path == root or root in path.parents


@dataclass(frozen=True)
class Escape:
    """Why a call leaves the confinement that --yes approves (the sandbox, the public network): it asks
    even with --yes, and "always" does not cover it."""

    reason: str  # "needs network access, ...", "reaches a local address: ..."
    setting: str = ""  # the config setting under which such calls stay inside and run without asking, if any


@dataclass(frozen=True)
class ToolResult:
    """`content` is what the model reads; `summary` one short line for the user ("42 lines", "exit 1")."""

    content: str
    summary: str = ""
    ok: bool = True


Arguments = Mapping[str, Any]


@runtime_checkable
class Tool(Protocol):
    name: str
    description: str
    effect: Effect
    source: str  # "built-in", or "mcp:<server>"

    @property
    def parameters(self) -> dict[str, Any]:
        """JSON schema of the arguments (an object)."""
        ...

    @property
    def confinement(self) -> str:
        """For a tool that runs programs: "sandboxed: ..." or "not sandboxed: ..."; else ""."""
        ...

    def paths(self, args: Arguments) -> list[str]:
        """The paths the call touches (as given), for the workspace check."""
        ...

    def preview(self, args: Arguments, workspace: Workspace) -> str:
        """What the user sees when asked to approve: the command, the diff, the URL. May raise ToolError."""
        ...

    def danger(self, args: Arguments, workspace: Workspace) -> str | None:
        """Why this call is dangerous (asks even with --yes), or None."""
        ...

    def escapes(self, args: Arguments, workspace: Workspace) -> Escape | None:
        """How this call leaves the confinement --yes approves (asks even with --yes), or None."""
        ...

    def run(self, args: Arguments, workspace: Workspace) -> ToolResult:
        """Do it. Raises ToolError for anything the model should hear about."""
        ...


class BuiltinTool:
    """Defaults for the built-in tools: a `path` argument if there is one; nothing dangerous; no escape."""

    name: str = ""
    description: str = ""
    parameters: ClassVar[dict[str, Any]] = {}
    effect: Effect = Effect.READ
    source = "built-in"

    @property
    def confinement(self) -> str:
        return ""

    def paths(self, args: Arguments) -> list[str]:
        path = args.get("path")
        return [path] if isinstance(path, str) else []

    def preview(self, args: Arguments, workspace: Workspace) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in args.items())

    def danger(self, args: Arguments, workspace: Workspace) -> str | None:
        return None

    def escapes(self, args: Arguments, workspace: Workspace) -> Escape | None:
        return None

    def run(self, args: Arguments, workspace: Workspace) -> ToolResult:
        raise NotImplementedError


def object_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def truncate(text: str, limit: int, what: str = "output") -> str:
    """Cap what goes back to the model, saying how much was left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[… {what} truncated: {len(text) - limit:,} more characters]"
