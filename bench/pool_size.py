"""Pool-size benchmark (run by hand: .venv/bin/python bench/pool_size.py [N]).

`hermes ask hi` against the loopback fake with one key, and with 10,000 keys that all have state
(each used once before), with --no-save and saved (the default), N alternated runs each (default 10),
medians. Goal: ratio <= 1.1, and the
bytes one ask adds to the credential state's write-ahead log the same for both pools.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.startup import ANSWER, bench_env, hermes_command, interleaved, timed  # noqa: E402
from providers.credentials import fingerprint  # noqa: E402
from providers.sqlite_state import SQLiteStateStore  # noqa: E402
from tests.fakeserver import FakeServer  # noqa: E402

KEYS = 10_000
GOAL = 1.1


def make_home(root: Path, base_url: str, keys: list[str]) -> dict[str, str]:
    root.mkdir()
    (root / "config.toml").write_text(
        f'[model]\nprovider = "myplan"\n\n[providers.myplan]\nbase_url = "{base_url}"\nmodels = ["model-a"]\n',
        encoding="utf-8",
    )
    # As `hermes auth add` stores them: 10,000 keys are more than one environment variable may hold.
    table = {
        "ids": [fingerprint(k) for k in keys],
        "keys": keys,
        "labels": [f"key{n}" for n in range(1, len(keys) + 1)],
        "base_urls": [None] * len(keys),
        "added": [int(time.time())] * len(keys),
    }
    (root / "state").mkdir()
    document = {"version": 2, "providers": {"myplan": table}}
    (root / "state" / "auth.json").write_text(json.dumps(document), encoding="utf-8")
    store = SQLiteStateStore(root / "state" / "credentials.db")
    now = time.time()
    for key in keys:  # every key has state, as after a long life of rotation
        store.record_use("myplan", fingerprint(key), now)
    return bench_env(root)


def wal_bytes_per_ask(cmd: list[str], env: dict[str, str]) -> int:
    """What one ask appends to the write-ahead log, its only write to the state. The bench holds a connection
    open meanwhile: the last one to close checkpoints and removes the log, which would hide the figure."""
    path = Path(env["HERMES_HOME"]) / "state" / "credentials.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("SELECT count(*) FROM credential_state").fetchone()
    wal = Path(str(path) + "-wal")
    before = wal.stat().st_size
    timed(cmd, env, expect=ANSWER)
    after = wal.stat().st_size
    db.close()
    return after - before


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    hermes = hermes_command()
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as pycache, FakeServer() as fake:
        keys = [f"sk-bench-pool-{i:06d}-abcdef" for i in range(KEYS)]
        envs = {
            "1 key": make_home(Path(tmp, "one"), fake.base_url, keys[:1]),
            f"{KEYS:,} keys": make_home(Path(tmp, "many"), fake.base_url, keys),
        }
        for env in envs.values():
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = pycache
        # Both ways a user asks: --no-save, and the default, which records the session (and so scrubs it
        # with the secret registry, which knows every key).
        cmds = {"--no-save": [*hermes, "ask", "--no-save", "hi"], "saved": [*hermes, "ask", "hi"]}
        wall: dict[tuple[str, str], list[float]] = {(c, name): [] for c in cmds for name in envs}
        cpu: dict[tuple[str, str], list[float]] = {(c, name): [] for c in cmds for name in envs}
        for _ in range(n):  # alternated, so that a busy machine slows both alike
            for c, cmd in cmds.items():
                for name, env in envs.items():
                    for w, u in interleaved(1, {name: cmd}, env, ANSWER)[name]:
                        wall[c, name].append(w)
                        cpu[c, name].append(u)
        written = {name: wal_bytes_per_ask(cmds["--no-save"], env) for name, env in envs.items()}
        print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {n} alternated runs, medians")
        rows = []
        for c in cmds:
            one, many = (statistics.median(wall[c, name]) for name in envs)
            cpu_one, cpu_many = (statistics.median(cpu[c, name]) for name in envs)
            verdict = "ok" if many / one <= GOAL else "MISSED"
            print(
                f"   ask {c:<10} 1 key {one * 1000:7.1f} ms   {KEYS:,} keys {many * 1000:7.1f} ms   "
                f"ratio {many / one:5.2f} (goal <= {GOAL}: {verdict}), CPU {cpu_many / cpu_one:5.2f}"
            )
            rows.append(
                f"| `pool_size.py`: `hermes ask` ({c}) with {KEYS:,} keys that all have state vs 1 key | "
                f"{many * 1000:.0f} vs {one * 1000:.0f} ms: {many / one:.2f}x (CPU {cpu_many / cpu_one:.2f}x) "
                f"| ≤ {GOAL}x |"
            )
        print("   bytes written to the state per ask: " + " / ".join(f"{name} {b:,}" for name, b in written.items()))
        print("README rows:")
        print("\n".join(rows))
        print(
            f"| `pool_size.py`: bytes one ask writes to the credential state, 1 key / {KEYS:,} keys | "
            + " / ".join(f"{b:,}" for b in written.values())
            + " | independent of the pool |"
        )


if __name__ == "__main__":
    main()
