"""Startup benchmark (run by hand: .venv/bin/python bench/startup.py [N]).

Against a loopback fake provider (tests.fakeserver), N runs each (default 10), medians reported:

1. `hermes ask hi` from process start to the end of a short streamed answer, and `hermes ask --no-stream
   hi`, vs a ~10-line raw httpx script (`python -c`) doing the same streamed request. Goal: ratio <= 1.3.
   For information, the raw script again with httpx's command-line client kept out as hermes keeps it
   out (`import httpx` imports it, with rich and pygments, whenever they are installed). And the same ask with
   HTTP_PROXY/HTTPS_PROXY set (NO_PROXY=127.0.0.1, so it still goes straight to the fake) vs without:
   goal <= 1.05 (httpx mounts a transport per proxy; hermes shares one TLS context and loads no CA
   store for plain http).
   Child processes get a private bytecode cache (PYTHONPYCACHEPREFIX in a temp dir), filled by a
   warm-up run, so that both sides load precompiled modules as an installed hermes would.
2. `hermes --version` wall time, and the import time `-X importtime` reports for it. Goal: <= 0.15 s.
   For information: `python -c pass` (the interpreter's own floor), `hermes --help`, and the
   import time of `hermes_cli.app` (what every other command loads before its own work).
   `hermes --help` and `hermes sessions list`: goal <= 80 ms over `python -c pass`. The listing is timed
   on an empty store and on the sessions the asks above saved (each priced: the registry and catalogue).
   For information, `import typer` and a bare two-command Typer app's `--help`: what the contract's Typer
   costs on the machine before hermes does anything.
3. `hermes providers` and `hermes models -p openrouter --catalog` wall time, with the catalogue's
   index built by the warm-up run.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakeserver import FakeServer  # noqa: E402

KEY = "sk-bench-0123456789abcdef"
ANSWER = "Hello from fake\n"
RATIO_GOAL = 1.3
PROXY_GOAL = 1.05
OVER_FLOOR_GOAL = 0.080
VERSION_IMPORT_GOAL = 0.15

RAW_SCRIPT = """\
import httpx, json, os, sys
body = {"model": "model-a", "messages": [{"role": "user", "content": "hi"}],
        "stream": True, "stream_options": {"include_usage": True}}
headers = {"Authorization": "Bearer " + os.environ["MYPLAN_API_KEY"], "Accept": "text/event-stream"}
with httpx.stream("POST", sys.argv[1] + "/chat/completions", json=body, headers=headers) as r:
    for line in r.iter_lines():
        if line.startswith("data: ") and line[6:].strip() != "[DONE]":
            for choice in json.loads(line[6:])["choices"]:
                sys.stdout.write(choice["delta"].get("content") or "")
print()
"""


LEAN_PREFIX = 'import sys; sys.modules["httpx._main"] = None\n'  # what hermes_cli/__main__.py does

# What any command line built with Typer pays before its own work: the floor under `hermes --help`.
BARE_TYPER_APP = """\
import typer
app = typer.Typer(rich_markup_mode=None)
app.command("one", help="The first.")(lambda: None)
app.command("two", help="The second.")(lambda: None)
app()
"""


def bench_env(home: str | Path | None, *, pycache: str | None = None, **extra: str) -> dict[str, str]:
    """This process's environment without provider keys, endpoints or HERMES_ variables, plain output,
    hermes at `home`, and `extra`. With `pycache`, modules load from bytecode kept there, as after
    `pip install`: an editable install under PYTHONDONTWRITEBYTECODE would recompile hermes' modules
    on every start (~80 ms) while httpx's come precompiled; nothing is written to the repository."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith(("_API_KEY", "_API_KEYS", "_BASE_URL")) and not k.startswith("HERMES_")
    }
    env["NO_COLOR"] = "1"
    if home is not None:
        env["HERMES_HOME"] = str(home)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    env.update(extra)
    return env


def hermes_command() -> list[str]:
    script = Path(sys.executable).parent / "hermes"
    if script.exists():
        return [str(script)]
    found = shutil.which("hermes")
    return [found] if found else [sys.executable, "-m", "hermes_cli"]


def editable_install() -> bool:
    """Whether this venv's hermes is an editable install (`pip install -e`): its import finder, loaded by
    `site` at every interpreter start (this one's too), loads pathlib, urllib.parse and ipaddress, so
    `python -c pass` pays them and the figures over that floor read ~20 ms low. What a user's
    `pip install .` pays is measured without it."""
    return any(name.startswith("__editable___hermes_") for name in sys.modules)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str], *, expect: str | None = None) -> float:
    return timed_cpu(cmd, env, expect=expect)[0]


def timed_cpu(cmd: list[str], env: dict[str, str], *, expect: str | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child): CPU time barely moves when the machine is busy."""
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    if done.returncode != 0 or (expect is not None and done.stdout.decode() != expect):
        raise SystemExit(
            f"bench: {' '.join(cmd)} failed (exit {done.returncode}):\n"
            f"stdout: {done.stdout.decode()!r}\nstderr: {done.stderr.decode()}"
        )
    return elapsed, cpu


def median_of(n: int, cmd: list[str], env: dict[str, str], *, expect: str | None = None) -> float:
    timed(cmd, env, expect=expect)  # warm-up: .pyc files, page cache
    return statistics.median(timed(cmd, env, expect=expect) for _ in range(n))


def interleaved(
    n: int,
    cmds: dict[str, list[str]],
    env: dict[str, str],
    expect: str | None,
    *,
    envs: dict[str, dict[str, str]] | None = None,
) -> dict[str, list[tuple[float, float]]]:
    """Each round runs every command once, so a busy machine slows all of them alike. `envs`: a command's
    own environment, where it is not `env`."""
    envs = envs or {}
    for name, cmd in cmds.items():
        timed(cmd, envs.get(name, env), expect=expect)  # warm-up
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cmds}
    for _ in range(n):
        for name, cmd in cmds.items():
            times[name].append(timed_cpu(cmd, envs.get(name, env), expect=expect))
    return times


def import_seconds(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(all imports, hermes' own packages) in seconds, summed over top-level `-X importtime` entries."""
    done = subprocess.run(
        cmd,
        env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    total = own = 0
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
        if not m or m.group(2):  # only top-level entries: their cumulative time includes their children
            continue
        us, name = int(m.group(1)), m.group(3)
        total += us
        if name.split(".")[0] in ("hermes_cli", "agent", "providers"):
            own += us
    return total / 1e6, own / 1e6


def median_import(n: int, cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    import_seconds(cmd, env)
    runs = [import_seconds(cmd, env) for _ in range(n)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    hermes = hermes_command()
    py = sys.executable
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as pycache, FakeServer() as fake:
        Path(home, "config.toml").write_text(
            f'[model]\nprovider = "myplan"\n\n[providers.myplan]\nbase_url = "{fake.base_url}"\nmodels = ["model-a"]\n',
            encoding="utf-8",
        )
        env = bench_env(home, pycache=pycache, MYPLAN_API_KEY=KEY)

        print(f"hermes: {' '.join(hermes)}   python: {py}   runs: {n} (+1 warm-up each), medians")
        if editable_install():
            print(
                "WARNING: hermes is an editable install in this venv: its import finder runs at every start, so\n"
                "         the figures over `python -c pass` read ~20 ms low. Bench a `pip install .` venv."
            )
        print(f"fake provider: {fake.base_url}\n")

        proxied = {
            **env,
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1",
        }
        times = interleaved(
            n,
            {
                "hermes ask hi": [*hermes, "ask", "hi"],
                "hermes ask --no-stream hi": [*hermes, "ask", "--no-stream", "hi"],
                "hermes ask --no-save hi": [*hermes, "ask", "--no-save", "hi"],
                "raw httpx script": [py, "-c", RAW_SCRIPT, fake.base_url],
                "raw, without httpx's CLI": [py, "-c", LEAN_PREFIX + RAW_SCRIPT, fake.base_url],
                "hermes ask hi, proxy env": [*hermes, "ask", "hi"],
            },
            env,
            ANSWER,
            envs={"hermes ask hi, proxy env": proxied},
        )
        wall = {name: [w for w, _ in v] for name, v in times.items()}
        cpu = {name: [c for _, c in v] for name, v in times.items()}
        print(f"   load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs\n")
        print("1. one short streamed answer, process start to end")
        print(f"   {'':<26} {'wall median':>11} {'wall min':>9} {'CPU median':>11}")
        for name in times:
            print(
                f"   {name:<26} {statistics.median(wall[name]) * 1000:8.1f} ms {min(wall[name]) * 1000:6.1f} ms"
                f" {statistics.median(cpu[name]) * 1000:8.1f} ms"
            )
        raw = statistics.median(wall["raw httpx script"])
        ratios = {}
        for name in ("hermes ask hi", "hermes ask --no-stream hi"):
            ratios[name] = statistics.median(wall[name]) / raw
            verdict = "ok" if ratios[name] <= RATIO_GOAL else "MISSED"
            cpu_ratio = statistics.median(cpu[name]) / statistics.median(cpu["raw httpx script"])
            print(
                f"   {name + '/raw':<33} {ratios[name]:5.2f}    (wall medians; goal <= {RATIO_GOAL}: {verdict}; "
                f"wall minimums {min(wall[name]) / min(wall['raw httpx script']):.2f}, CPU medians {cpu_ratio:.2f})"
            )
        ask = statistics.median(wall["hermes ask hi"])
        lean = ask / statistics.median(wall["raw, without httpx's CLI"])
        print(f"   hermes ask hi/raw without httpx's CLI {lean:5.2f}    (for information)")
        proxy_ratio = statistics.median(wall["hermes ask hi, proxy env"]) / ask
        print(
            f"   ratio proxy env/without           {proxy_ratio:5.2f}    (wall medians; goal <= {PROXY_GOAL}: "
            f"{'ok' if proxy_ratio <= PROXY_GOAL else 'MISSED'})\n"
        )

        with tempfile.TemporaryDirectory() as empty:
            # Interleaved like the asks: this machine's speed drifts by a third within a minute.
            start = interleaved(
                n,
                {
                    "floor": [py, "-c", "pass"],
                    "version": [*hermes, "--version"],
                    "help": [*hermes, "--help"],
                    "listing": [*hermes, "sessions", "list"],
                    "empty listing": [*hermes, "sessions", "list"],
                    "typer": [py, "-c", "import typer"],
                    "typer app": [py, "-c", BARE_TYPER_APP, "--help"],
                },
                env,
                None,
                envs={"empty listing": {**env, "HERMES_HOME": empty}},
            )
        floor, version, helptime, listing, empty_listing, typer_alone, typer_app = (
            statistics.median(w for w, _ in start[name]) for name in start
        )
        saved = (
            len(
                subprocess.run(
                    [*hermes, "sessions", "list", "-n", "1000"], env=env, capture_output=True
                ).stdout.splitlines()
            )
            - 1
        )
        v_total, v_own = median_import(n, [*hermes, "--version"], env)
        a_total, a_own = median_import(n, [py, "-c", "import hermes_cli.app"], env)
        verdict = "ok" if v_total <= VERSION_IMPORT_GOAL else "MISSED"
        print("2. startup")
        print(f"   python -c pass           {floor * 1000:7.1f} ms   (interpreter floor)")
        print(f"   hermes --version         {version * 1000:7.1f} ms   wall")
        print(
            f"   hermes --version imports {v_total * 1000:7.1f} ms   (-X importtime, all modules; "
            f"hermes' own {v_own * 1000:.1f} ms; goal <= {VERSION_IMPORT_GOAL * 1000:.0f} ms: {verdict})"
        )
        for name, value in (
            ("hermes --help", helptime),
            ("hermes sessions list, empty", empty_listing),
            (f"hermes sessions list, {saved}", listing),
        ):
            verdict = "ok" if value - floor <= OVER_FLOOR_GOAL else "MISSED"
            print(
                f"   {name:<28} {value * 1000:7.1f} ms   wall, {(value - floor) * 1000:.0f} ms over the floor "
                f"(goal <= {OVER_FLOOR_GOAL * 1000:.0f} ms: {verdict})"
            )
        print(
            f"   import hermes_cli.app    {a_total * 1000:7.1f} ms   (-X importtime, all modules; "
            f"hermes' own {a_own * 1000:.1f} ms)"
        )
        for name, value in (("import typer", typer_alone), ("a bare Typer app's --help", typer_app)):
            print(
                f"   {name:<28} {value * 1000:7.1f} ms   wall, {(value - floor) * 1000:.0f} ms over the floor "
                "(for information: what any Typer command costs here)"
            )

        # The models.dev catalogue: the index is built on the first run (the warm-up), read after.
        providers = median_of(n, [*hermes, "providers"], env)
        catalogue = median_of(n, [*hermes, "models", "-p", "openrouter", "--catalog"], env)
        print("3. the models.dev catalogue (index cached in the state dir)")
        print(f"   hermes providers         {providers * 1000:7.1f} ms   wall (every provider, endpoint and key)")
        print(f"   hermes models --catalog  {catalogue * 1000:7.1f} ms   wall (openrouter's models, no request)")
        load = os.getloadavg()[0]
        ask_cpu = statistics.median(cpu["hermes ask hi"]) / statistics.median(cpu["raw httpx script"])
        rows = [
            (
                "`hermes ask hi` (streamed / `--no-stream`) vs a 10-line raw httpx script, process start to end",
                f"{ask * 1000:.0f} vs {raw * 1000:.0f} ms: {ratios['hermes ask hi']:.2f}x / "
                f"{ratios['hermes ask --no-stream hi']:.2f}x (CPU {ask_cpu:.2f}x)",
                f"≤ {RATIO_GOAL}x",
            ),
            ("`hermes ask hi` with HTTP_PROXY/HTTPS_PROXY set vs without", f"{proxy_ratio:.2f}x", f"≤ {PROXY_GOAL}x"),
            (
                f"`hermes --help` / `hermes sessions list` (empty / {saved} sessions, priced) over `python -c pass`",
                f"{(helptime - floor) * 1000:.0f} / {(empty_listing - floor) * 1000:.0f} / "
                f"{(listing - floor) * 1000:.0f} ms",
                f"≤ {OVER_FLOOR_GOAL * 1000:.0f} ms",
            ),
            ("`hermes --version` imports", f"{v_total * 1000:.0f} ms", f"≤ {VERSION_IMPORT_GOAL * 1000:.0f} ms"),
            (
                "for information: `import typer` / a bare two-command Typer app's `--help`, over `python -c pass`",
                f"{(typer_alone - floor) * 1000:.0f} / {(typer_app - floor) * 1000:.0f} ms",
                "",
            ),
        ]
        print(f"\nREADME rows (load {load:.1f}):")
        for what, measured, goal in rows:
            print(f"| `startup.py`: {what} | {measured} | {goal} |")


if __name__ == "__main__":
    main()
