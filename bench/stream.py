"""Streaming benchmark (run by hand: .venv/bin/python bench/stream.py [N]).

A 20,000-token answer streamed by the loopback fake to `hermes ask --no-save`, stdout on /dev/null, vs
the raw httpx script of bench/startup.py doing the same request: wall and CPU medians of N alternated
runs each (default 7). Goal: both ratios <= 1.25.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.startup import KEY, RAW_SCRIPT, _children_cpu, bench_env, hermes_command  # noqa: E402
from tests.fakeserver import FakeServer, Reply  # noqa: E402

TOKENS = 20_000
GOAL = 1.25


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    cpu = _children_cpu()
    start = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        done = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed (exit {done.returncode}): {done.stderr.decode()}")
    return wall, _children_cpu() - cpu


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    chunks = [f"word{i % 100} " for i in range(TOKENS)]
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as pycache, FakeServer() as fake:
        fake.always(Reply("".join(chunks), chunks=chunks))
        Path(home, "config.toml").write_text(
            f'[model]\nprovider = "myplan"\n\n[providers.myplan]\nbase_url = "{fake.base_url}"\nmodels = ["model-a"]\n',
            encoding="utf-8",
        )
        env = bench_env(home, pycache=pycache, MYPLAN_API_KEY=KEY)
        env.pop("PYTHONUNBUFFERED", None)  # the raw script's stdout buffered, as in a user's shell
        cmds = {
            "hermes ask": [*hermes_command(), "ask", "--no-save", "hi"],
            "raw httpx": [sys.executable, "-c", RAW_SCRIPT, fake.base_url],
        }
        for cmd in cmds.values():
            run(cmd, env)  # warm-up
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in cmds}
        for _ in range(n):
            for name, cmd in cmds.items():
                times[name].append(run(cmd, env))
        print(
            f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {TOKENS:,} tokens to /dev/null, "
            f"{n} alternated runs, medians"
        )
        med = {
            name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for name, t in times.items()
        }
        for name, (wall, cpu) in med.items():
            print(f"   {name:<12} wall {wall * 1000:7.1f} ms   CPU {cpu * 1000:7.1f} ms")
        wall_ratio = med["hermes ask"][0] / med["raw httpx"][0]
        cpu_ratio = med["hermes ask"][1] / med["raw httpx"][1]
        verdict = "ok" if max(wall_ratio, cpu_ratio) <= GOAL else "MISSED"
        print(f"   ratio        wall {wall_ratio:7.2f}      CPU {cpu_ratio:7.2f}      (goal <= {GOAL}: {verdict})")
        print(
            f"README (load {os.getloadavg()[0]:.1f}): | `stream.py`: {TOKENS:,} streamed tokens to /dev/null vs raw "
            f"httpx, wall / CPU | {wall_ratio:.2f}x / {cpu_ratio:.2f}x | ≤ {GOAL}x |"
        )


if __name__ == "__main__":
    main()
