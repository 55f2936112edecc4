"""The rules that must never break: the session's endpoint stays put, keys go only to their own hosts.

Subprocess tests run the real `hermes ask` against loopback fake servers; each server stands for a
host. B plays the provider's default host, which answers 404 to everything (the seed bug's symptom).
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conftest import Hermes, state_document
from tests.fakeserver import FakeServer, NotFound, RateLimit, Reply, Status

K1, K2, K3 = "sk-plan-key-one-0001", "sk-plan-key-two-0002", "sk-plan-key-three-03"


def plan_config(default: FakeServer, extra: str = "") -> str:
    return f'[providers.myplan]\nbase_url = "{default.base_url}"\n{extra}'


def seed_bug_setup(hermes: Hermes, a: FakeServer, b: FakeServer) -> None:
    b.always(NotFound())
    hermes.write_config(plan_config(b))
    hermes.env.update({"MYPLAN_API_KEYS": f"{K1},{K2}"})


def assert_no_key_leaks(*outputs: str) -> None:
    for out in outputs:
        for key in (K1, K2, K3):
            assert key not in out


def test_seed_bug_rotation_stays_on_the_env_endpoint(hermes: Hermes, fake: FakeServer, fake2: FakeServer) -> None:
    a, b = fake, fake2
    seed_bug_setup(hermes, a, b)
    hermes.env["MYPLAN_BASE_URL"] = a.base_url

    turn1 = hermes.run("ask", "-p", "myplan", "-m", "plan-model", "turn one")
    assert turn1.returncode == 0, turn1.stderr
    assert turn1.stdout == "Hello from fake\n"

    a.script_for_key(K1, RateLimit(retry_after=300))
    turn2 = hermes.run("ask", "-p", "myplan", "-m", "plan-model", "turn two")
    assert turn2.returncode == 0, turn2.stderr
    assert turn2.stdout == "Hello from fake\n"
    assert "rate-limited" in turn2.stderr

    turn3 = hermes.run("ask", "-p", "myplan", "-m", "plan-model", "turn three")
    assert turn3.returncode == 0, turn3.stderr

    assert [(r.key, r.status) for r in a.requests()] == [(K1, 200), (K1, 429), (K2, 200), (K2, 200)]
    assert {r.host for r in a.requests()} == {a.host}
    assert b.log == []
    assert_no_key_leaks(turn1.stdout, turn1.stderr, turn2.stdout, turn2.stderr, turn3.stdout, turn3.stderr)


def test_seed_bug_with_base_url_flag(hermes: Hermes, fake: FakeServer, fake2: FakeServer) -> None:
    a, b = fake, fake2
    seed_bug_setup(hermes, a, b)
    a.script_for_key(K1, Reply("one"), RateLimit(retry_after=300))
    for prompt in ("one", "two", "three"):
        done = hermes.run("ask", "-p", "myplan", "-m", "m", "--base-url", a.base_url, prompt)
        assert done.returncode == 0, done.stderr
    assert [r.key for r in a.requests()] == [K1, K1, K2, K2]
    assert b.log == []


def test_seed_bug_with_model_section_base_url(hermes: Hermes, fake: FakeServer, fake2: FakeServer) -> None:
    a, b = fake, fake2
    seed_bug_setup(hermes, a, b)
    hermes.write_config(f'[model]\nprovider = "myplan"\nname = "m"\nbase_url = "{a.base_url}"\n\n' + plan_config(b))
    a.script_for_key(K1, Reply("one"), RateLimit(retry_after=300))
    for prompt in ("one", "two", "three"):
        done = hermes.run("ask", prompt)
        assert done.returncode == 0, done.stderr
    assert [r.key for r in a.requests()] == [K1, K1, K2, K2]
    assert b.log == []


def test_all_keys_rejected_exit_3_in_one_pass(hermes: Hermes, fake: FakeServer) -> None:
    hermes.write_config(plan_config(fake))
    hermes.env["MYPLAN_API_KEYS"] = f"{K1},{K2},{K3}"
    fake.always(Status(401, body={"error": {"message": f"Invalid key {K1}"}}))
    done = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert done.returncode == 3, done.stderr
    assert [r.key for r in fake.requests()] == [K1, K2, K3]
    assert "Every key of myplan was rejected" in done.stderr
    assert "hermes auth reset myplan" in done.stderr
    assert_no_key_leaks(done.stdout, done.stderr)
    # Exhausted keys stay out: the next run sends nothing and says so.
    again = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert again.returncode == 3
    assert len(fake.requests()) == 3
    listing = hermes.run("auth", "list", "myplan", "--json")
    states = [c["state"] for c in json.loads(listing.stdout)["credentials"]]
    assert states == ["exhausted"] * 3
    assert_no_key_leaks(listing.stdout, listing.stderr)
    reset = hermes.run("auth", "reset", "myplan")
    assert reset.returncode == 0 and "reset 3 keys" in reset.stderr
    fake.always(Reply("back"))
    assert hermes.run("ask", "-p", "myplan", "-m", "m", "hi").stdout == "back\n"


def test_all_keys_rate_limited_exit_4_promptly(hermes: Hermes, fake: FakeServer) -> None:
    hermes.write_config(plan_config(fake) + "\n[credentials]\nmax_wait_seconds = 5\n")
    hermes.env["MYPLAN_API_KEYS"] = f"{K1},{K2}"
    fake.always(RateLimit(retry_after=3600))
    done = hermes.run("ask", "-p", "myplan", "-m", "m", "hi", timeout=20)
    assert done.returncode == 4, done.stderr
    assert [r.key for r in fake.requests()] == [K1, K2]
    assert "earliest resets at" in done.stderr
    assert "Traceback" not in done.stderr


def test_short_rate_limit_waits_within_budget(hermes: Hermes, fake: FakeServer) -> None:
    hermes.write_config(plan_config(fake) + "\n[credentials]\nmax_wait_seconds = 10\n")
    hermes.env["MYPLAN_API_KEY"] = K1
    fake.script(RateLimit(retry_after=1))
    done = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert done.returncode == 0, done.stderr
    assert "waiting" in done.stderr
    assert [(r.key, r.status) for r in fake.requests()] == [(K1, 429), (K1, 200)]


def test_server_error_retries_same_key(hermes: Hermes, fake: FakeServer) -> None:
    hermes.write_config(plan_config(fake))
    hermes.env["MYPLAN_API_KEYS"] = f"{K1},{K2}"
    fake.script(Status(500), Reply("recovered"))
    done = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "recovered\n"
    assert [r.key for r in fake.requests()] == [K1, K1]
    listing = json.loads(hermes.run("auth", "list", "myplan", "--json").stdout)["credentials"]
    assert [c["state"] for c in listing] == ["ok", "ok"]


def test_pinned_credential_keeps_its_own_endpoint(
    hermes: Hermes, fake: FakeServer, fake2: FakeServer, fake3: FakeServer
) -> None:
    a, b, region = fake, fake2, fake3
    b.always(NotFound())
    hermes.write_config(plan_config(b))
    hermes.env.update({"MYPLAN_BASE_URL": a.base_url, "MYPLAN_API_KEY": K1})
    added = hermes.run("auth", "add", "myplan", "--base-url", region.base_url, "--label", "eu", input=K2 + "\n")
    assert added.returncode == 0, added.stderr
    assert_no_key_leaks(added.stdout, added.stderr)
    a.script_for_key(K1, RateLimit(retry_after=300))
    done = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert done.returncode == 0, done.stderr
    assert [r.key for r in a.requests()] == [K1]
    assert [r.key for r in region.requests()] == [K2]
    assert b.log == []
    listing = hermes.run("auth", "list", "myplan")
    assert region.base_url in listing.stdout and K2 not in listing.stdout
    auth_file = hermes.home / "state" / "auth.json"
    assert auth_file.stat().st_mode & 0o777 == 0o600


def test_auth_add_reads_stdin_and_never_echoes(hermes: Hermes, fake: FakeServer) -> None:
    hermes.write_config(plan_config(fake))
    assert hermes.run("auth", "add", "myplan", input="").returncode == 2
    assert hermes.run("auth", "add", "nosuch", input=K1).returncode == 2
    done = hermes.run("auth", "add", "myplan", input=K1 + "\n")
    assert done.returncode == 0
    dup = hermes.run("auth", "add", "myplan", input=K1 + "\n")
    assert dup.returncode == 2 and "already" in dup.stderr
    answer = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert answer.returncode == 0 and fake.keys_seen() == [K1]
    cred_id = json.loads(hermes.run("auth", "list", "--json").stdout)["credentials"][0]["id"]
    assert hermes.run("auth", "remove", "myplan", cred_id).returncode == 0
    assert hermes.run("ask", "-p", "myplan", "-m", "m", "hi").returncode == 2
    for out in (done.stdout, done.stderr, dup.stderr):
        assert K1 not in out


def test_parallel_processes_share_cooldowns_without_corruption(tmp_path: Path, fake: FakeServer) -> None:
    """Ten processes each record a cooldown for a different key of one state file: none is lost."""
    keys = [f"sk-parallel-key-{i:04d}" for i in range(10)]
    home = tmp_path / "home"
    script = (
        "import sys, time\n"
        "from providers.sqlite_state import SQLiteStateStore\n"
        "from pathlib import Path\n"
        "s = SQLiteStateStore(Path(sys.argv[1]))\n"
        "for n in range(20):\n"
        "    s.record_use('myplan', sys.argv[2], time.time())\n"
        "s.cool_down('myplan', sys.argv[2], time.time() + 600, 'HTTP 429')\n"
    )
    state = home / "state" / "credentials.db"
    with ThreadPoolExecutor(10) as pool:
        procs = list(
            pool.map(
                lambda i: subprocess.run([sys.executable, "-c", script, str(state), f"id{i}"], capture_output=True),
                range(10),
            )
        )
    assert all(p.returncode == 0 for p in procs), [p.stderr for p in procs]
    data = state_document(state.parent)["providers"]["myplan"]
    assert sorted(data) == sorted(f"id{i}" for i in range(10))
    assert all(entry["requests"] == 20 and entry["cooldown_until"] > 0 for entry in data.values())
    assert state.stat().st_mode & 0o777 == 0o600
    del keys


def test_parallel_asks_see_each_others_rate_limits(hermes: Hermes, fake: FakeServer) -> None:
    hermes.write_config(plan_config(fake))
    hermes.env["MYPLAN_API_KEYS"] = f"{K1},{K2}"
    fake.always_for_key(K1, RateLimit(retry_after=600))
    first = hermes.run("ask", "-p", "myplan", "-m", "m", "warm up")
    assert first.returncode == 0
    with ThreadPoolExecutor(10) as pool:
        runs = list(pool.map(lambda i: hermes.run("ask", "-p", "myplan", "-m", "m", f"q{i}"), range(10)))
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    keys = [r.key for r in fake.requests()]
    assert keys.count(K1) == 1  # only the very first request met the 429


def test_corrupt_state_file_warns_and_rebuilds(hermes: Hermes, fake: FakeServer) -> None:
    hermes.write_config(plan_config(fake))
    hermes.env["MYPLAN_API_KEY"] = K1
    state = hermes.home / "state" / "credentials.json"
    state.parent.mkdir(parents=True)
    state.write_text("{not json")
    done = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert done.returncode == 0, done.stderr
    assert "unreadable" in done.stderr
    assert state_document(state.parent)["providers"]["myplan"]


def test_corrupt_auth_store_is_never_overwritten(hermes: Hermes, fake: FakeServer) -> None:
    hermes.write_config(plan_config(fake))
    auth = hermes.home / "state" / "auth.json"
    auth.parent.mkdir(parents=True)
    auth.write_text('{"credentials": [ broken')
    done = hermes.run("auth", "add", "myplan", input=K1)
    assert done.returncode == 2 and str(auth) in done.stderr
    assert auth.read_text() == '{"credentials": [ broken'
