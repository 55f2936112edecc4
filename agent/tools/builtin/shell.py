"""run_command: a shell command in the workspace, and the patterns that make one dangerous."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import IO

from agent.tools.base import Arguments, BuiltinTool, Effect, ToolError, ToolResult, Workspace, object_schema

DEFAULT_TIMEOUT = 60
MAX_TIMEOUT = 600
BACKGROUND_GRACE = 2.0  # after the shell exits, how long a background job may keep the output open
OUTPUT_HEAD_BYTES = 15_000  # the output's start and end are kept: errors and summaries are usually there
OUTPUT_TAIL_BYTES = 15_000


class RunCommand(BuiltinTool):
    name = "run_command"
    description = (
        "Run a shell command with /bin/sh -c in the workspace (or `cwd`), stdin empty, and return its exit "
        "code and combined stdout+stderr. Output over ~30,000 characters keeps its start and end. Killed "
        "(with every process it started) after timeout_seconds: default 60, at most 600. A background job "
        "(`cmd &`) that still holds the output 2 s after the shell exits is stopped; to leave one running, "
        "redirect its output (`cmd > log 2>&1 &`). Not interactive: pass flags such as --yes or --no-pager "
        "to commands that would prompt."
    )
    parameters = object_schema(
        {
            "command": {"type": "string", "description": "The shell command line."},
            "cwd": {"type": "string", "description": "Working directory, relative to the workspace (default: root)."},
            "timeout_seconds": {"type": "number", "minimum": 1, "maximum": MAX_TIMEOUT, "description": "Default 60."},
        },
        ["command"],
    )
    effect = Effect.EXEC

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(env) if env is not None else command_env(os.environ)

    def paths(self, args: Arguments) -> list[str]:
        cwd = args.get("cwd")
        return [cwd] if isinstance(cwd, str) else []

    def preview(self, args: Arguments, workspace: Workspace) -> str:
        cwd = args.get("cwd")
        return f"$ {args['command']}" + (f"\n(in {cwd})" if cwd else "")

    def danger(self, args: Arguments) -> str | None:
        return dangerous_reason(args["command"])

    def run(self, args: Arguments, workspace: Workspace) -> ToolResult:
        command: str = args["command"]
        if not command.strip():
            raise ToolError("command must not be empty.")
        timeout = args.get("timeout_seconds", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 1 <= timeout <= MAX_TIMEOUT:
            raise ToolError(f"timeout_seconds must be a number from 1 to {MAX_TIMEOUT}.")
        cwd = workspace.resolve(args["cwd"]) if args.get("cwd") else workspace.root
        if not cwd.is_dir():
            raise ToolError(f"cwd {cwd} is not an existing directory.")

        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", command], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True,  # its own process group, to kill it whole
                env=self.env,
            )
        except OSError as e:
            raise ToolError(f"cannot start /bin/sh: {e}") from None
        assert proc.stdout is not None
        output = _Output(proc.stdout)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait()
            output.join(5)
            so_far = output.text()
            raise ToolError(f"timed out after {timeout:g} s" + (f"; output so far:\n{so_far}" if so_far else ""))
        output.join(min(BACKGROUND_GRACE, max(0.0, started + timeout - time.monotonic())))
        stopped = output.is_alive()  # background jobs still write to the pipe: the answer must not wait on them
        if stopped:
            _kill_group(proc.pid)
            output.join(5)
        elapsed = time.monotonic() - started
        code = proc.returncode
        status = f"exit code {code}" if code >= 0 else f"killed by signal {-code}"
        short = f"exit {code}" if code >= 0 else f"signal {-code}"
        text = output.text()
        if stopped:
            text += (f"\n[background jobs still held the output {BACKGROUND_GRACE:g} s after the shell exited and were "
                     "stopped; to leave one running, redirect its output: cmd > log 2>&1 &]")
        return ToolResult(f"{status}\n{text}" if text else f"{status} (no output)", f"{short} in {elapsed:.1f} s")


class _Output(threading.Thread):
    """Reads the pipe to its end, keeping only head and tail, so a flood of output costs no memory."""

    def __init__(self, pipe: IO[bytes]) -> None:
        super().__init__(daemon=True)  # daemon: a process that escaped the group may hold the pipe forever
        self._pipe = pipe
        self._head = bytearray()
        self._tail = bytearray()
        self._total = 0
        self._lock = threading.Lock()
        self.start()

    def run(self) -> None:
        with self._pipe:
            while chunk := os.read(self._pipe.fileno(), 65536):  # whatever is there, not 64 KB
                with self._lock:
                    self._total += len(chunk)
                    room = max(OUTPUT_HEAD_BYTES - len(self._head), 0)
                    self._head += chunk[:room]
                    self._tail += chunk[room:]
                    del self._tail[:-OUTPUT_TAIL_BYTES]

    def text(self) -> str:
        with self._lock:
            head, tail, total = bytes(self._head), bytes(self._tail), self._total
        omitted = total - len(head) - len(tail)
        if omitted <= 0:
            return (head + tail).decode("utf-8", errors="replace")
        return (
            head.decode("utf-8", errors="replace")
            + f"\n[… {omitted:,} bytes of output omitted …]\n"
            + tail.decode("utf-8", errors="replace")
        )


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # already gone


# --- dangerous commands -------------------------------------------------------------------------------

# The root, the home directory and the top-level system directories: recursive rm/chmod/chown there wrecks
# the machine. Deeper paths (/tmp/x, /usr/local/lib/foo) are ordinary work and must not cry wolf.
_SYSTEM_DIRS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/opt", "/proc", "/root", "/sbin",
    "/srv", "/sys", "/usr", "/var",
})
_DISK = r"/dev/(?:sd[a-z]|nvme\d|hd[a-z]|vd[a-z]|xvd[a-z]|mmcblk\d|disk\d)"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\bdd\b[^;&|\n]*\bof=\s*{_DISK}"), "dd writes to a raw disk device"),
    (re.compile(rf">\|?\s*{_DISK}"), "redirects output onto a raw disk device"),
    (
        re.compile(r"\b(?:curl|wget)\b[^|;\n]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:\S*/)?(?:ba|z|da|k|fi)?sh\b"),
        "pipes a downloaded script straight into a shell",
    ),
    (
        re.compile(r"\b(?:ba|z|da|k)?sh\s+(?:-c\s+)?[\"']?(?:<\(|\$\()\s*(?:curl|wget)\b"),
        "runs a downloaded script straight in a shell",
    ),
]
# A fork bomb, matched with all whitespace removed: `:(){ :|:& };:` or any function name.
_FORK_BOMB = re.compile(r"([\w:.-]+)\(\)\{\1\|\1&\};?\1")
_SEPARATORS = re.compile(r"&&|\|\||[;&|\n()`]|\$\(")
_WRAPPERS = frozenset({"sudo", "doas", "env", "nohup", "time", "exec", "command", "nice", "builtin"})
_POWER = frozenset({"shutdown", "reboot", "halt", "poweroff"})
_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh"})


def command_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of a command the model runs: without the provider keys hermes was given
    (`env` would hand them to the model) or the state-store URL (it may hold a password)."""
    return {k: v for k, v in environ.items()
            if not k.endswith(("_API_KEY", "_API_KEYS")) and k != "HERMES_STATE_URL"}


def dangerous_reason(command: str) -> str | None:
    """Why `command` could destroy the system or run code from the internet unseen, or None. A heuristic
    for a second look: it asks the user even when they said --yes; it is not a sandbox."""
    if _FORK_BOMB.search(re.sub(r"\s+", "", command)):
        return "fork bomb"
    for pattern, reason in _PATTERNS:
        if pattern.search(command):
            return reason
    for part in _SEPARATORS.split(command):
        reason = _dangerous_argv(_words(part))
        if reason:
            return reason
    return None


def _words(part: str) -> list[str]:
    try:
        return shlex.split(part)
    except ValueError:  # unbalanced quotes (a separator split inside a quoted string)
        return part.split()


def _dangerous_argv(argv: list[str]) -> str | None:
    argv = _strip_wrappers(argv)
    if not argv:
        return None
    program = PurePosixPath(argv[0]).name
    args = argv[1:]
    if program in _SHELLS and "-c" in args[:-1]:
        return dangerous_reason(args[args.index("-c") + 1])
    if program == "rm":
        if "--no-preserve-root" in args:
            return "rm --no-preserve-root"
        target = _critical_target(args) if _has_flag(args, "rR", "--recursive") else None
        return f"recursive rm of {target}" if target else None
    if program in ("chmod", "chown", "chgrp"):
        target = _critical_target(args) if _has_flag(args, "R", "--recursive") else None
        return f"recursive {program} of {target}" if target else None
    if program.startswith("mkfs") or program == "mke2fs":
        return "creates a filesystem (erases a disk)"
    if program in _POWER or (program == "systemctl" and _POWER.intersection(args)):
        return "shuts down or reboots the machine"
    if program in ("init", "telinit") and args[:1] in (["0"], ["6"]):
        return "shuts down or reboots the machine"
    return None


def _strip_wrappers(argv: list[str]) -> list[str]:
    """`sudo -u root env X=1 rm ...` -> `rm ...`."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in _WRAPPERS or re.fullmatch(r"[A-Za-z_]\w*=.*", word):
            i += 1
        elif word.startswith("-") and i > 0:
            i += 2 if word in ("-u", "-g", "-n") else 1  # a wrapper's option (sudo -u USER, nice -n 10)
        else:
            break
    return argv[i:]


def _has_flag(args: list[str], letters: str, long: str) -> bool:
    return any(
        a == long or (a.startswith("-") and not a.startswith("--") and any(c in a[1:] for c in letters))
        for a in args
    )


def _critical_target(args: list[str]) -> str | None:
    home = str(Path.home())
    for arg in args:
        if arg.startswith("-") and arg != "-":
            continue
        target = re.sub(r"^(?:\$HOME|\$\{HOME\})", "~", re.sub(r"/+", "/", arg))
        target = target.removesuffix("*").rstrip("/") or "/"
        if target in _SYSTEM_DIRS or target == "~" or target == home:
            return arg
    return None
