"""MCP start-up benchmark (run by hand: .venv/bin/python bench/mcp.py [N]).

`hermes ask hi` (no tool called) with four MCP servers configured, against the same ask with none,
N runs each (default 10), alternated in one process so a busy machine slows both alike; medians.
The servers are tests/mcp_server.py with `--slow-start` (2 s before it answers, as npx-launched servers
take): a warm-up run lists their tools into the cache, after which an ask that calls no tool must
start none of them. Goal: ratio <= 1.15. Also checked: no server process was started by the timed
runs, and the `mcp` SDK was not imported (`-X importtime`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from startup import ANSWER, KEY, bench_env, hermes_command  # noqa: E402  (bench/startup.py, beside this file)

from tests.fakeserver import FakeServer, Reply  # noqa: E402

RATIO_GOAL = 1.15
SERVERS = 4


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or done.stdout.decode() != ANSWER:
        raise SystemExit(
            f"bench: {' '.join(cmd)} failed (exit {done.returncode}):\n"
            f"stdout: {done.stdout.decode()!r}\nstderr: {done.stderr.decode()}"
        )
    return elapsed, done


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    hermes = hermes_command()
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as pycache, FakeServer() as fake:
        fake.always(Reply(ANSWER.strip()))
        base = (
            f'[model]\nprovider = "myplan"\n\n[providers.myplan]\nbase_url = "{fake.base_url}"\nmodels = ["model-a"]\n'
        )
        started = Path(tmp, "started")
        server = [sys.executable, str(ROOT / "tests" / "mcp_server.py"), "--slow-start"]
        homes = {"no MCP server": Path(tmp, "plain"), f"{SERVERS} MCP servers": Path(tmp, "mcp")}
        for home in homes.values():
            home.mkdir()
        Path(homes["no MCP server"], "config.toml").write_text(base, encoding="utf-8")
        Path(homes[f"{SERVERS} MCP servers"], "config.toml").write_text(
            base
            + "".join(
                f'\n[mcp.servers.s{i}]\ncommand = {json.dumps(server)}\nenv = {{ STARTED_FILE = "{started}" }}\n'
                for i in range(SERVERS)
            ),
            encoding="utf-8",
        )
        envs = {name: bench_env(home, pycache=pycache, MYPLAN_API_KEY=KEY) for name, home in homes.items()}
        cmd = [*hermes, "ask", "--no-save", "hi"]

        print(f"hermes: {' '.join(hermes)}   runs: {n} each, alternated (+1 warm-up each), medians\n")
        for name in homes:
            run(cmd, envs[name])  # warm-up: bytecode, page cache, and the servers' tool lists cached
        cold = len(started.read_text().splitlines()) if started.exists() else 0
        times: dict[str, list[float]] = {name: [] for name in homes}
        for _ in range(n):
            for name in homes:
                times[name].append(run(cmd, envs[name])[0])
        warm = (len(started.read_text().splitlines()) if started.exists() else 0) - cold
        _, profiled = run(cmd, {**envs[f"{SERVERS} MCP servers"], "PYTHONPROFILEIMPORTTIME": "1"})
        sdk = any(
            line.split("|")[-1].strip() == "mcp"
            for line in profiled.stderr.decode().splitlines()
            if line.startswith("import time:")
        )

        print(f"   load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        for name, values in times.items():
            print(f"   {name:<18} {statistics.median(values) * 1000:8.1f} ms median  {min(values) * 1000:7.1f} ms min")
        ratio = statistics.median(times[f"{SERVERS} MCP servers"]) / statistics.median(times["no MCP server"])
        verdict = "ok" if ratio <= RATIO_GOAL and warm == 0 and not sdk else "MISSED"
        print(f"   ratio              {ratio:8.2f}    (goal <= {RATIO_GOAL}: {verdict})")
        print(
            f"   servers started: {cold} by the warm-up (nothing cached), {warm} by the {n} timed runs; "
            f"mcp SDK imported: {'yes' if sdk else 'no'}"
        )
        base = statistics.median(times["no MCP server"])
        print(
            f"README: | `mcp.py`: `hermes ask hi` with four MCP servers (tool lists cached, none called) vs none | "
            f"{base * ratio * 1000:.0f} vs {base * 1000:.0f} ms: {ratio:.2f}x (load {os.getloadavg()[0]:.1f}), "
            f"{warm} servers started | ≤ {RATIO_GOAL}x |"
        )


if __name__ == "__main__":
    main()
