"""The sandbox that `run_command` runs commands in: bubblewrap (`bwrap`) on Linux.

A confined command sees the whole filesystem read-only except the workspace and a private /tmp; /run,
where local daemons keep their sockets (D-Bus, Docker), is an empty tmpfs; /dev holds only the
harmless devices. It runs with no capabilities, in namespaces of its own: user, PID (it sees and
signals only its own processes; /proc/PID/root of hermes would otherwise lead back to the writable
filesystem), IPC, UTS and network (only loopback, unless the user allows the network); and it dies
with hermes.

Process 1 inside is `sandbox_init.py`, which keeps background jobs alive after the shell exits and
reports the shell's exit code on a pipe of its own: the `bwrap` process itself lives as long as the
sandbox does, so its exit cannot be what `run_command` waits for.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from agent.tools.base import ToolError

PROBE_TIMEOUT = 10.0
_INIT = Path(__file__).with_name("sandbox_init.py")


@dataclass(frozen=True)
class Sandbox:
    bwrap: str  # path of the bwrap program

    def arguments(self, *, workspace: Path, cwd: Path, network: bool) -> list[str]:
        """bwrap's options: everything before `--` and the command."""
        args = [self.bwrap, *_confinement(network)]
        # Bound after the tmpfs of /tmp and /run, so that what lives under them stays visible: the Python
        # that runs process 1 (a venv in /tmp, as a CI checkout may have), the programs on PATH
        # (read-only), and the workspace.
        for path in hidden_but_needed():
            args += ["--ro-bind-try", path, path]
        args += ["--bind", str(workspace), str(workspace)]
        args += ["--dev", "/dev", "--proc", "/proc", "--chdir", str(cwd)]
        return args

    def start(
        self, command: str, *, workspace: Path, cwd: Path, network: bool, env: Mapping[str, str]
    ) -> SandboxedShell:
        import tempfile

        out_r, out_w = os.pipe()
        status_r, status_w = os.pipe()
        # bwrap's own messages: the file lives as long as the sandbox (SandboxedShell closes it), not a pipe.
        errors = tempfile.TemporaryFile()  # noqa: SIM115
        argv = [
            *self.arguments(workspace=workspace, cwd=cwd, network=network),
            "--",
            sys.executable,
            "-I",
            "-S",
            str(_INIT),
            str(out_w),
            str(status_w),
            command,
        ]
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                pass_fds=(out_w, status_w),
                env=dict(env),
                start_new_session=True,  # its own process group (to kill it whole) and no controlling terminal
            )
        except OSError as e:
            os.close(out_r)
            os.close(status_r)
            errors.close()
            raise ToolError(f"cannot start the sandbox ({self.bwrap}): {e}") from None
        finally:  # the write ends belong to the sandbox now
            os.close(out_w)
            os.close(status_w)
        return SandboxedShell(proc, out_r, status_r, errors)


class SandboxedShell:
    """A command running in the sandbox: its output pipe, its exit code when the shell exits, and a kill
    that ends every process in it."""

    def __init__(self, proc: subprocess.Popen[bytes], output: int, status: int, errors: IO[bytes]) -> None:
        self._proc = proc
        self.output = output
        self._status = status
        self._errors = errors

    def wait(self, timeout: float) -> int | None:
        """The shell's exit code, or None after `timeout` seconds. Raises ToolError when the sandbox
        could not be set up."""
        import select

        ready, _, _ = select.select([self._status], [], [], timeout)
        if not ready:
            return None
        line = os.read(self._status, 64)
        os.close(self._status)
        if line.strip().lstrip(b"-").isdigit():
            self._errors.close()
            return int(line)
        try:  # no exit code: bwrap failed before the command started
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
        with self._errors:
            self._errors.seek(0)
            message = self._errors.read().decode("utf-8", "replace").strip()
        message = message or f"bwrap exited with {self._proc.returncode}"
        raise ToolError(f"the sandbox could not start: {message}")

    def kill(self) -> None:
        """SIGKILL to the group; and once bwrap is gone, process 1 inside dies with it, taking along any
        process that left the group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
        self._errors.close()


def _confinement(network: bool) -> list[str]:
    args = [
        "--unshare-all",
        *(["--share-net"] if network else []),
        "--as-pid-1",
        "--die-with-parent",
        "--cap-drop",
        "ALL",  # as root, bwrap would otherwise keep every capability (and could remount /)
        "--ro-bind",
        "/",
        "/",
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        "/run",
    ]
    resolv = os.path.realpath("/etc/resolv.conf")
    if network and resolv.startswith("/run/"):  # systemd-resolved's stub lives under the hidden /run
        args += ["--ro-bind-try", resolv, resolv]
    return args


_HIDDEN = ("/tmp", "/run")  # the tmpfs the sandbox puts over them


def hidden_but_needed() -> list[str]:
    """Directories under /tmp or /run that commands need to run: the interpreter of process 1 (its
    venv and its installation), this package, and PATH's directories."""
    candidates = [
        sys.prefix,
        sys.base_prefix,
        os.path.dirname(sys.executable),
        os.path.dirname(os.path.realpath(sys.executable)),
        str(_INIT.parent.resolve()),
        *os.environ.get("PATH", "").split(os.pathsep),
    ]
    found: list[str] = []
    for path in candidates:
        real = os.path.realpath(path) if path else ""
        for p in dict.fromkeys([path, real]):
            if p and any(p == h or p.startswith(h + "/") for h in _HIDDEN) and p not in found:
                found.append(p)
    return found


@functools.cache
def find() -> Sandbox | str:
    """The sandbox, or why commands cannot be sandboxed here. Probed once: bwrap may be installed in a
    container that forbids the namespaces it needs."""
    import shutil

    if not sys.platform.startswith("linux"):
        return "sandboxing needs Linux and bubblewrap"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    try:
        probe = subprocess.run(
            [bwrap, *_confinement(False), "--dev", "/dev", "--proc", "/proc", "--", "/bin/sh", "-c", "true"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap does not work here ({e or type(e).__name__})"
    if probe.returncode != 0:
        detail = probe.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"bwrap cannot create its namespaces here ({detail[0] if detail else f'exit {probe.returncode}'})"
    return Sandbox(bwrap)
