"""The local server's watchdog: a process of its own, started beside llama-server
(`python -m providers.local_watchdog --watch STATEFILE`), that stops the server after `[local] keep_alive`
of idle time, like ollama. Idle means: no hermes process that used it is still alive, and nothing used it
for keep_alive; so a chat left open never loses its server mid-conversation."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO

from providers.local_state import LOCK_FILE, ServerState, format_duration, read_state
from providers.processes import pid_alive, runs, terminate


def watch(state_file: Path, log: IO[str]) -> None:
    """Stop the server named in `state_file` once it has been idle for its keep_alive (said in `log`).

    Exits as soon as that server is gone or replaced. The stop itself is done under the start lock,
    so it cannot race a hermes process that is about to reuse the server.
    """
    from filelock import FileLock, Timeout

    first = read_state(state_file)
    if first is None:
        return
    lock = FileLock(str(state_file.with_name(LOCK_FILE)), timeout=0)
    busy_until = time.time()  # the last moment a client process was seen alive

    def idle(state: ServerState) -> bool:
        nonlocal busy_until
        now = time.time()
        if any(pid_alive(p) for p in state.clients):
            busy_until = now
            return False
        return now - max(state.last_used, busy_until) >= state.keep_alive

    while True:
        state = read_state(state_file)
        if state is None:
            # The state dir is gone (a deleted HERMES_HOME): no hermes can reach the server any more,
            # so it would run forever. Stop it, if that pid is still the server we watched.
            if runs(first.pid, "--port", str(first.port)):
                terminate(first.pid)
            return
        if state.pid != first.pid or not pid_alive(state.pid):
            return
        if idle(state):
            try:
                with lock:
                    current = read_state(state_file)  # a hermes process may have used it meanwhile
                    if current is not None and current.pid == state.pid and idle(current):
                        log.write(
                            f"--- hermes: idle for {format_duration(current.keep_alive)} (keep_alive); "
                            f"stopping pid {current.pid} at {time.ctime()}\n"
                        )
                        log.flush()
                        terminate(current.pid)
                        state_file.unlink(missing_ok=True)
                        return
            except Timeout:
                pass  # a hermes process holds the lock: it is about to use the server
        time.sleep(min(5.0, max(0.2, state.keep_alive / 20)))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--watch":
        sys.exit("usage: python -m providers.local_watchdog --watch STATEFILE")
    watch(Path(sys.argv[2]), sys.stdout)  # the watchdog's stdout is the server's log
