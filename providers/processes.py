"""Processes hermes started and left running (the local model server and its watchdog): is a pid
still alive, still the program we started, and how to stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path

STOP_TIMEOUT = 5.0  # seconds after SIGTERM before SIGKILL, and after SIGKILL before giving up


def pid_alive(pid: int) -> bool:
    """True for a running process; a zombie (exited, not yet reaped) counts as gone."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return sys.platform != "linux"  # no /proc elsewhere: trust kill(0)
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def cmdline(pid: int) -> list[str] | None:
    """The process's argv on Linux; None where /proc cannot tell."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode("utf-8", "replace").split("\0")


def runs(pid: int, *args: str) -> bool:
    """Is `pid` still the process we started (its argv holds `args`)? Guards against pid reuse, so a
    stale state file never makes us kill a stranger."""
    if not pid_alive(pid):
        return False
    argv = cmdline(pid)
    return argv is None or all(a in argv for a in args)


def reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (the hermes that started it)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def terminate(pid: int, wait: float = STOP_TIMEOUT) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `wait` seconds of each."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            reap(pid)
            if not pid_alive(pid):
                return
            time.sleep(0.02)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
