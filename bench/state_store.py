"""Benchmark of the credential state stores (run by hand: .venv/bin/python bench/state_store.py).

Per-request overhead of the pool, `select()` + `record_success()` with the round-robin cursor, on
the Redis store (a real loopback redis-server) and the file store, side by side in one run:
1. one process (goal: Redis <= 2 ms, file <= 5 ms per request);
2. 20 processes in parallel on one shared store, as a fleet (or a busy machine) would.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from providers.credentials import Credential
from providers.pool import CredentialPool
from providers.redis_state import open_redis_store
from providers.sqlite_state import SQLiteStateStore
from providers.state import StateStore
from tests.redis_server import RedisServer

KEYS = 10
REQUESTS = 300
PROCESSES = 20


def open_store(target: str, tmp: Path) -> StateStore:
    fallback = SQLiteStateStore(tmp / "fallback.db")
    return (
        open_redis_store(target, fallback=fallback) if target.startswith("redis://") else SQLiteStateStore(Path(target))
    )


def per_request(target: str, requests: int) -> list[float]:
    """Seconds per select + record_success, each; fails if Redis was not actually used."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(target, Path(tmp))
        creds = tuple(Credential(f"id{i:03d}", "bench", "env", f"k{i}", f"secret-{i:03d}-xxxx") for i in range(KEYS))
        pool = CredentialPool("bench", creds, store, strategy="round_robin", clock=time.time)
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            cred = pool.select()
            assert cred is not None
            pool.record_success(cred)
            times.append(time.perf_counter() - start)
        assert getattr(store, "failure", None) is None, "the Redis store fell back to the file"
    return times


def summary(times: list[float]) -> str:
    times = sorted(times)
    return (
        f"median {times[len(times) // 2] * 1000:.2f} ms, mean {statistics.fmean(times) * 1000:.2f} ms, "
        f"p95 {times[int(len(times) * 0.95)] * 1000:.2f} ms"
    )


def figures(name: str, target: str) -> tuple[float, float]:
    """The medians, one process and a fleet, in seconds."""
    one = per_request(target, REQUESTS)
    # Spawned, not forked: a forked child inherits this process's SQLite connection (sqlite3 frees one only
    # at a garbage collection), and closing it there can damage the database the others are using.
    with ProcessPoolExecutor(PROCESSES, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = pool.map(per_request, [target] * PROCESSES, [REQUESTS] * PROCESSES)
        fleet = [t for run in runs for t in run]
    print(f"{name:5}  1 process:     {summary(one)}")
    print(f"{name:5}  {PROCESSES} processes: {summary(fleet)}")
    return statistics.median(one), statistics.median(fleet)


if __name__ == "__main__":
    print(
        f"select + record_use per request: {KEYS} keys, round_robin, {REQUESTS} requests per process, "
        f"{os.cpu_count()} CPUs"
    )
    with RedisServer() as server, tempfile.TemporaryDirectory() as tmp:
        redis_one, redis_fleet = figures("redis", server.url)
        file_one, file_fleet = figures("file", str(Path(tmp) / "credentials.db"))
    print("goals: redis <= 2 ms, file <= 5 ms per request (1 process)")
    print("README rows:")
    print(
        f"| `state_store.py`: per request, one process: Redis / file (SQLite) | {redis_one * 1000:.2f} ms / "
        f"{file_one * 1000:.2f} ms | ≤ 2 / ≤ 5 ms |"
    )
    print(
        f"| `state_store.py`: {PROCESSES} processes at once: Redis / file (median) | {redis_fleet * 1000:.2f} ms / "
        f"{file_fleet * 1000:.2f} ms | |"
    )
