"""Timings of the session store at 10,000 sessions / 200,000 messages.

Run by hand: `.venv/bin/python bench/sessions.py`. Goals: list and search under 0.3 s, append under 2 ms.
"""

from __future__ import annotations

import random
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from itertools import accumulate
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.conversation import Message
from agent.sessions import SessionStore

SESSIONS = 10_000
MESSAGES_PER_SESSION = 20
RUNS = 7
APPENDS = 200
GOALS = {"list": 0.3, "search": 0.3, "append": 0.002}


class Text:
    """Random text with Zipf-like word frequencies, as in real text: a few very common words, a long tail."""

    def __init__(self, rng: random.Random, size: int = 20_000) -> None:
        letters = "abcdefghijklmnopqrstuvwxyz"
        self.rng = rng
        self.words = ["".join(rng.choices(letters, k=rng.randint(3, 10))) for _ in range(size)]
        self.cum_weights = list(accumulate(1 / (rank + 1) for rank in range(size)))

    def __call__(self) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self.cum_weights, k=self.rng.randint(10, 80)))


def fill(path: Path, rng: random.Random, text: Text) -> None:
    """Bulk insert through a plain connection (one transaction); the store has made the schema."""
    now = time.time()
    conn = sqlite3.connect(path)
    with conn:
        for _ in range(SESSIONS):
            sid = secrets.token_hex(6)
            updated = now - rng.uniform(0, 90 * 86400)
            conn.execute(
                "INSERT INTO sessions (id, title, created, updated, provider, model, base_url, message_count)"
                " VALUES (?, ?, ?, ?, 'openrouter', 'some/model', 'https://openrouter.ai/api/v1', ?)",
                (sid, " ".join(text.words[:5]), updated - 600, updated, MESSAGES_PER_SESSION),
            )
            conn.executemany(
                "INSERT INTO messages (session_id, role, content, created) VALUES (?, ?, ?, ?)",
                [
                    (sid, "user" if i % 2 == 0 else "assistant", text(), updated - 600 + i)
                    for i in range(MESSAGES_PER_SESSION)
                ],
            )
    conn.close()


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(name: str, seconds: float, detail: str = "") -> None:
    goal = GOALS[name]
    verdict = "ok" if seconds < goal else "SLOW"
    print(f"{name:<8} {seconds * 1000:9.2f} ms   (goal < {goal * 1000:g} ms: {verdict}) {detail}")


def main() -> None:
    rng = random.Random(42)
    text = Text(rng)
    words = text.words
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sessions.db"
        store = SessionStore(path)
        store.recent()
        start = time.perf_counter()
        fill(path, rng, text)
        print(
            f"filled {SESSIONS:,} sessions / {SESSIONS * MESSAGES_PER_SESSION:,} messages "
            f"in {time.perf_counter() - start:.1f} s ({path.stat().st_size / 1e6:.0f} MB)"
        )

        report("list", median_time(lambda: store.recent(), RUNS), "(50 newest)")
        for label, query in (
            ("common word", words[0]),
            ("mid word", words[200]),
            ("rare word", words[15_000]),
            ("two words", f"{words[3]} {words[40]}"),
            ("phrase", f'"{words[1]} {words[2]}"'),
            ("bad syntax", f"{words[5]} AND"),
        ):
            hits = store.search(query)
            report("search", median_time(partial(store.search, query), RUNS), f"({label}: {len(hits)} hits)")

        session = store.create(provider="openrouter", model="some/model", base_url="https://x/v1", system=None)
        times = []
        for i in range(APPENDS):
            message = Message("user" if i % 2 == 0 else "assistant", text())
            start = time.perf_counter()
            store.append(session.id, message)
            times.append(time.perf_counter() - start)
        p95 = sorted(times)[APPENDS * 95 // 100]
        report("append", statistics.median(times), f"(median of {APPENDS}; p95 {p95 * 1000:.2f} ms)")
        store.close()


if __name__ == "__main__":
    main()
