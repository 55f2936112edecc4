"""Local provider benchmark (run by hand: .venv/bin/python bench/local.py [N]).

Against the bundled llama.cpp server and SmolLM2-135M-Instruct, N runs each (default 5), medians:

1. Time from process start to the first answer byte of `hermes ask -p local`: cold (no server: the
   run starts it) vs warm (the server is alive).
2. Decode rate (tokens/s from the first to the last content byte) of a longer answer streamed through
   `hermes ask`, vs the raw stream itself: the same response's bytes as they left the server, timed by a
   relay on loopback between hermes and the server (`WireTap`), so that both rates are of one answer.
   The server's own speed varies by ±12% from one answer to the next here (a raw client alone reads
   33.6 to 43.3 tok/s), so rates of two answers, even back to back, cannot tell a 5% difference. The
   answer is made the same each time by the server's own means (`[models."local"] extra_body`: greedy,
   EOS ignored, LENGTH tokens) and its tokens are counted with the server's /tokenize. The server
   decodes on one CPU of its own, hermes and the relay on the others (see `pinned_server`); hermes
   reaches the relay as a provider configured with its address, the same streaming path as `-p local`.
   For information, a raw httpx client's rate on answers of its own (median).
   Goal: hermes is at most 5% slower than the stream it reads, in every one of the N runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.startup import bench_env, hermes_command  # noqa: E402
from providers.local_server import LocalServerManager  # noqa: E402
from providers.local_state import LocalServer  # noqa: E402

SHORT = "Say hi."
LONG = "Write a story of about 300 words about a lighthouse keeper."
OVERHEAD_GOAL = 0.05
LENGTH = 300
# The same answer every time, of LENGTH tokens: what the server does to make lengths deterministic.
SAME_ANSWER = {"temperature": 0, "seed": 1, "ignore_eos": True, "max_tokens": LENGTH}


def stream_times(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """(process start, first stdout byte, last content byte) as perf_counter times, and the text. The
    newline `hermes ask` ends its output with, once the whole reply is done, is no content."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    first = last = 0.0
    chunks = []
    while chunk := os.read(proc.stdout.fileno(), 65536):
        now = time.perf_counter()
        first = first or now
        if chunk != b"\n":
            last = now
        chunks.append(chunk)
    _, err = proc.communicate()
    if proc.returncode != 0 or not first:
        raise SystemExit(f"bench: {' '.join(cmd)} failed (exit {proc.returncode}): {err.decode()}")
    return start, first, last, b"".join(chunks).decode()


def raw_stream(server: LocalServer, prompt: str) -> tuple[float, float, str]:
    """The same streamed request hermes sends, with httpx: (first content, last content, text)."""
    body = {
        "model": "local",
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "stream_options": {"include_usage": True},
        **SAME_ANSWER,
    }
    headers = {"Authorization": f"Bearer {server.api_key}", "Accept": "text/event-stream"}
    first = last = 0.0
    parts = []
    with httpx.stream(
        "POST", f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=120, trust_env=False
    ) as r:
        for line in r.iter_lines():
            if not line.startswith("data: ") or line[6:].strip() == "[DONE]":
                continue
            for choice in json.loads(line[6:])["choices"]:
                text = choice["delta"].get("content") or ""
                if text:
                    last = time.perf_counter()
                    first = first or last
                    parts.append(text)
    return first, last, "".join(parts)


class WireTap:
    """A TCP relay on 127.0.0.1 in front of the server, noting when each chunk of answer text passes it
    on its way to the client."""

    TEXT = re.compile(rb'"content":"[^"]')  # a delta with text (not reasoning_content, not empty)

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.times: list[float] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            client, _ = self.listener.accept()
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, answer: bool) -> None:
        try:
            while data := source.recv(65536):
                if answer and self.TEXT.search(data):
                    self.times.append(time.perf_counter())
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (sink, source):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


def tokens(server: LocalServer, text: str) -> int:
    r = httpx.post(
        f"{server.base_url.removesuffix('/v1')}/tokenize",
        json={"content": text},
        headers={"Authorization": f"Bearer {server.api_key}"},
        trust_env=False,
    )
    r.raise_for_status()
    return len(r.json()["tokens"])


def rate(count: int, first: float, last: float) -> float:
    """Tokens per second of `count` tokens arriving from `first` to `last`: the first token's arrival
    starts the clock, so it is not counted."""
    return (count - 1) / (last - first) if last > first else 0.0


def pinned_server(manager: LocalServerManager) -> LocalServer:
    """The server on a CPU of its own (it takes one thread per CPU it may use), this process and the
    clients it starts on the others: on 2 cores, a server sharing both with the clients decodes up to
    ±18% faster or slower from one run to the next, whichever client reads it."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return manager.ensure_running()
    manager.stop()
    os.sched_setaffinity(0, cpus[:1])
    try:
        server = manager.ensure_running()
    finally:
        os.sched_setaffinity(0, cpus[1:])
    return server


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    hermes = hermes_command()
    with tempfile.TemporaryDirectory() as home:
        same = ", ".join(f"{k} = {json.dumps(v)}" for k, v in SAME_ANSWER.items())
        config = f'[local]\nkeep_alive = "5m"\n\n[models."local"]\nextra_body = {{ {same} }}\n'
        Path(home, "config.toml").write_text(config, encoding="utf-8")
        env = bench_env(home)
        manager = LocalServerManager(state_dir=Path(home, "state"), model=None, keep_alive=300)
        # --no-tools: the same request body as the raw stream below (tool schemas lengthen the prompt).
        ask = [*hermes, "ask", "-p", "local", "--no-save", "--no-tools"]
        try:
            print(f"hermes: {' '.join(hermes)}   runs: {n}, medians\n")
            cold, warm = [], []
            for _ in range(n):
                manager.stop()
                start, first, _, _ = stream_times([*ask, SHORT], env)
                cold.append(first - start)
                start, first, _, _ = stream_times([*ask, SHORT], env)
                warm.append(first - start)
            cold_s, warm_s = statistics.median(cold), statistics.median(warm)
            print('1. process start to first answer byte, `hermes ask -p local "Say hi."`')
            print(f"   cold (starts the server)  {cold_s * 1000:7.0f} ms")
            print(f"   warm (server alive)       {warm_s * 1000:7.0f} ms")
            print(f"   server start-up costs     {(cold_s - warm_s) * 1000:7.0f} ms\n")

            server = pinned_server(manager)
            tap = WireTap(server.port)
            tapped_config = config + (
                f'\n[providers.tapped]\nbase_url = "http://127.0.0.1:{tap.port}/v1"\nmodels = ["local"]\n'
            )
            Path(home, "config.toml").write_text(tapped_config, encoding="utf-8")
            tapped = bench_env(home, TAPPED_API_KEY=server.api_key)
            ours, wire, raws = [], [], []
            for _ in range(n):
                tap.times.clear()
                _, first, last, text = stream_times(
                    [*hermes, "ask", "-p", "tapped", "-m", "local", "--no-save", "--no-tools", LONG], tapped
                )
                if not tap.times:
                    raise SystemExit("bench: the relay saw no answer text pass to hermes")
                count = tokens(server, text)
                ours.append(rate(count, first, last))
                wire.append(rate(count, tap.times[0], tap.times[-1]))
                first, last, text = raw_stream(server, LONG)
                raws.append(rate(tokens(server, text), first, last))
            overheads = [1 - o / w for o, w in zip(ours, wire, strict=True)]
            ours_s, wire_s, raw_s = statistics.median(ours), statistics.median(wire), statistics.median(raws)
            verdict = "ok" if max(overheads) <= OVERHEAD_GOAL else "MISSED"
            print(f"2. decode rate of a {LENGTH}-token answer (the same each time), first to last content byte")
            print(f"   hermes ask (streamed)     {ours_s:7.1f} tok/s (median)")
            print(f"   the stream it read        {wire_s:7.1f} tok/s (median; on the wire, the same answers)")
            print(f"   raw httpx stream          {raw_s:7.1f} tok/s (median; answers of its own, for information)")
            shown = ", ".join(f"{o * 100:.1f}" for o in overheads)
            goal = f"goal <= {OVERHEAD_GOAL * 100:.0f}% every run"
            print(f"   hermes slower per run     {shown} %   ({goal}: {verdict})")
            load = os.getloadavg()[0]
            print(
                f"README (load {load:.1f}): | `local.py`: decode rate through `hermes ask` vs the raw stream it "
                f"reads (on the wire), {n} runs | {ours_s:.1f} vs {wire_s:.1f} tok/s; hermes slower by {shown} % "
                "| ≤ 5% slower, every run |"
            )
        finally:
            manager.stop()


if __name__ == "__main__":
    main()
