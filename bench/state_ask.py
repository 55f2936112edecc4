"""Redis vs file credential state, end to end (run by hand: .venv/bin/python bench/state_ask.py [N]).

`hermes ask hi` against the loopback fake with `[credentials] state` on a real loopback redis-server
and on the file store (SQLite), N alternated rounds (default 7), medians:
1. one ask at a time (process start to end);
2. 16 asks started at once, as a fleet or a busy script would: the batch's wall time.
Goal: Redis / file <= 1.1 for both.
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

from bench.startup import ANSWER, KEY, bench_env, hermes_command, timed  # noqa: E402
from tests.fakeserver import FakeServer  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

PARALLEL = 16
GOAL = 1.1


def make_env(root: Path, base_url: str, state: str, pycache: str) -> dict[str, str]:
    root.mkdir()
    (root / "config.toml").write_text(
        f'[model]\nprovider = "myplan"\n\n[providers.myplan]\nbase_url = "{base_url}"\nmodels = ["model-a"]\n\n'
        f'[credentials]\nstate = "{state}"\n',
        encoding="utf-8",
    )
    env = bench_env(root, pycache=pycache, MYPLAN_API_KEY=KEY)
    return env


def batch(cmd: list[str], env: dict[str, str]) -> float:
    """Wall seconds for PARALLEL asks started together."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(PARALLEL)
    ]
    outputs = [p.communicate() for p in procs]
    elapsed = time.perf_counter() - start
    for proc, (out, err) in zip(procs, outputs, strict=True):
        if proc.returncode != 0 or out.decode() != ANSWER or b"warning" in err:
            raise SystemExit(f"bench: an ask failed (exit {proc.returncode}): {err.decode()}")
    return elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    load = os.getloadavg()[0]  # before: the batches below load the machine themselves
    cmd = [*hermes_command(), "ask", "--no-save", "hi"]
    with (
        tempfile.TemporaryDirectory() as tmp,
        tempfile.TemporaryDirectory() as pycache,
        FakeServer() as fake,
        RedisServer() as redis,
    ):
        envs = {
            "redis": make_env(Path(tmp, "redis"), fake.base_url, redis.url, pycache),
            "file": make_env(Path(tmp, "file"), fake.base_url, "file", pycache),
        }
        for env in envs.values():
            timed(cmd, env, expect=ANSWER)  # warm-up: bytecode, page cache, the state's first write
        one: dict[str, list[float]] = {name: [] for name in envs}
        many: dict[str, list[float]] = {name: [] for name in envs}
        for _ in range(n):  # alternated, so that a busy machine slows both alike
            for name, env in envs.items():
                one[name].append(timed(cmd, env, expect=ANSWER))
            for name, env in envs.items():
                many[name].append(batch(cmd, env))
        with redis.client() as client:
            assert client.exists("hermes:myplan:ids"), "the Redis store was not used"
        print(f"load average before: {load:.2f} on {os.cpu_count()} CPUs; {n} alternated rounds, medians")
        ratios = []
        for label, times in (("1 ask", one), (f"{PARALLEL} asks at once", many)):
            redis_s, file_s = statistics.median(times["redis"]), statistics.median(times["file"])
            ratios.append(redis_s / file_s)
            print(
                f"   {label:<16} redis {redis_s * 1000:7.1f} ms   file {file_s * 1000:7.1f} ms   "
                f"ratio {redis_s / file_s:5.2f}"
            )
        verdict = "ok" if max(ratios) <= GOAL else "MISSED"
        print(f"   goal: redis / file <= {GOAL} for both: {verdict}")
        print(
            f"README: | `state_ask.py`: `hermes ask` with the Redis store vs the file store, 1 / {PARALLEL} at once "
            f"| {ratios[0]:.2f}x / {ratios[1]:.2f}x (load {load:.1f}) | ≤ {GOAL}x |"
        )


if __name__ == "__main__":
    main()
