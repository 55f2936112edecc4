"""run_command: a shell command in the workspace, in the sandbox where there is one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from agent.tools.base import Arguments, BuiltinTool, Effect, Escape, ToolError, ToolResult, Workspace, object_schema
from agent.tools.sandbox import Sandbox
from agent.tools.sandbox import find as find_sandbox
from providers.secrets import Secrets

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
        "to commands that would prompt. Where hermes has a sandbox (Linux with bubblewrap), commands can "
        "write only in the workspace and a private /tmp (fresh for each command), and have no network "
        "unless you pass network: true (the user is asked)."
    )
    parameters = object_schema(
        {
            "command": {"type": "string", "description": "The shell command line."},
            "cwd": {"type": "string", "description": "Working directory, relative to the workspace (default: root)."},
            "timeout_seconds": {"type": "number", "minimum": 1, "maximum": MAX_TIMEOUT, "description": "Default 60."},
            "network": {
                "type": "boolean",
                "description": "True if the command needs network access (downloads, "
                "package installs); the user is asked.",
            },
        },
        ["command"],
    )
    effect = Effect.EXEC

    def __init__(
        self,
        *,
        env: Callable[[], Mapping[str, str]] | None = None,
        network: bool = False,
        sandbox: bool = True,
    ) -> None:
        # Called when a command runs, not before: the secret registry behind it reads every key of every
        # pool, which an ask that runs no command should not pay for. None: hermes's own environment less
        # anything secret-looking.
        self._env = env
        self._network = network  # [tools] network: sandboxed commands have the network
        self._use_sandbox = sandbox  # [tools] sandbox: false runs commands unconfined even where bwrap works
        self._said_unsandboxed = False

    def sandbox(self) -> Sandbox | str:
        """The sandbox commands run in, or why there is none."""
        return find_sandbox() if self._use_sandbox else "[tools] sandbox = false"

    @property
    def confinement(self) -> str:
        box = self.sandbox()
        if isinstance(box, str):
            return f"not sandboxed: {box}"
        return "sandboxed: writes only in the workspace and a private /tmp" + ("" if self._network else ", no network")

    def paths(self, args: Arguments) -> list[str]:
        cwd = args.get("cwd")
        return [cwd] if isinstance(cwd, str) else []

    def preview(self, args: Arguments, workspace: Workspace) -> str:
        cwd = args.get("cwd")
        text = f"$ {args['command']}" + (f"\n(in {cwd})" if cwd else "")
        box = self.sandbox()
        if isinstance(box, Sandbox) and self._wants_network(args):
            text += "\n(with network access)"
        if isinstance(box, str) and not self._said_unsandboxed:
            self._said_unsandboxed = True  # said once per session, with the first command
            text += f"\n(commands are not sandboxed in this session: {box})"
        return text

    def danger(self, args: Arguments, workspace: Workspace) -> str | None:
        # Lazily: the parser loads only when the model runs a command.
        from agent.tools.dangerous import dangerous_reason

        return dangerous_reason(
            args["command"],
            cwd=str(self._cwd(args, workspace)),
            home=self._home(),
            sandboxed=isinstance(self.sandbox(), Sandbox),
        )

    def escapes(self, args: Arguments, workspace: Workspace) -> Escape | None:
        if args.get("network") is True and not self._network and isinstance(self.sandbox(), Sandbox):
            return Escape("needs network access, which sandboxed commands do not have", "[tools] network = true")
        return None

    def run(self, args: Arguments, workspace: Workspace) -> ToolResult:
        command: str = args["command"]
        if not command.strip():
            raise ToolError("command must not be empty.")
        timeout = args.get("timeout_seconds", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 1 <= timeout <= MAX_TIMEOUT:
            raise ToolError(f"timeout_seconds must be a number from 1 to {MAX_TIMEOUT}.")
        cwd = self._cwd(args, workspace)
        if not cwd.is_dir():
            raise ToolError(f"cwd {cwd} is not an existing directory.")

        started = time.monotonic()
        box = self.sandbox()
        env = self._environment()
        shell: _Shell
        if isinstance(box, Sandbox):
            shell = box.start(
                command, workspace=workspace.root.resolve(), cwd=cwd, network=self._wants_network(args), env=env
            )
        else:
            shell = _PlainShell(command, cwd, env)
        output = _Output(shell.output)
        code = shell.wait(timeout)
        if code is None:
            shell.kill()
            output.join(5)
            so_far = output.text()
            raise ToolError(f"timed out after {timeout:g} s" + (f"; output so far:\n{so_far}" if so_far else ""))
        output.join(min(BACKGROUND_GRACE, max(0.0, started + timeout - time.monotonic())))
        stopped = output.is_alive()  # background jobs still write to the pipe: the answer must not wait on them
        if stopped:
            shell.kill()
            output.join(5)
        elapsed = time.monotonic() - started
        status = f"exit code {code}" if code >= 0 else f"killed by signal {-code}"
        short = f"exit {code}" if code >= 0 else f"signal {-code}"
        text = output.text()
        if stopped:
            text += (
                f"\n[background jobs still held the output {BACKGROUND_GRACE:g} s after the shell exited and were "
                "stopped; to leave one running, redirect its output: cmd > log 2>&1 &]"
            )
        return ToolResult(f"{status}\n{text}" if text else f"{status} (no output)", f"{short} in {elapsed:.1f} s")

    def _wants_network(self, args: Arguments) -> bool:
        return self._network or args.get("network") is True

    def _cwd(self, args: Arguments, workspace: Workspace) -> Path:
        return workspace.resolve(args["cwd"]) if args.get("cwd") else workspace.root

    def _environment(self) -> dict[str, str]:
        return dict(self._env()) if self._env is not None else Secrets().child_env(os.environ)

    def _home(self) -> str:
        """Where `~` leads in the command's shell."""
        return self._environment().get("HOME") or str(Path.home())


class _Shell(Protocol):
    output: int  # the read end of the pipe that the command's stdout and stderr write to

    def wait(self, timeout: float) -> int | None:
        """The shell's exit code (negative: killed by that signal), or None after `timeout` seconds."""
        ...

    def kill(self) -> None:
        """Kill the shell and every process it started."""
        ...


class _PlainShell:
    """A command run without a sandbox, in a process group of its own."""

    def __init__(self, command: str, cwd: Path, env: Mapping[str, str]) -> None:
        read, write = os.pipe()
        try:
            self._proc = subprocess.Popen(
                ["/bin/sh", "-c", command],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=write,
                stderr=write,
                start_new_session=True,
                env=dict(env),  # its own process group, to kill it whole
            )
        except OSError as e:
            os.close(read)
            raise ToolError(f"cannot start /bin/sh: {e}") from None
        finally:
            os.close(write)
        self.output = read

    def wait(self, timeout: float) -> int | None:
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()


class _Output(threading.Thread):
    """Reads the pipe to its end, keeping only head and tail, so a flood of output costs no memory."""

    def __init__(self, pipe: int) -> None:
        super().__init__(daemon=True)  # daemon: a process that escaped the group may hold the pipe forever
        self._pipe = pipe
        self._head = bytearray()
        self._tail = bytearray()
        self._total = 0
        self._lock = threading.Lock()
        self.start()

    def run(self) -> None:
        try:
            while chunk := os.read(self._pipe, 65536):  # whatever is there, not 64 KB
                with self._lock:
                    self._total += len(chunk)
                    room = max(OUTPUT_HEAD_BYTES - len(self._head), 0)
                    self._head += chunk[:room]
                    self._tail += chunk[room:]
                    del self._tail[:-OUTPUT_TAIL_BYTES]
        finally:
            os.close(self._pipe)

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
