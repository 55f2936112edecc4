"""The SQLite credential state: concurrent processes lose no update, a process killed mid-write leaves a
readable state, a request writes the same few pages whatever the pool's size, and the JSON state file of
earlier versions is migrated with every cooldown, exhaustion, counter and cursor."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from providers.credentials import fingerprint
from providers.sqlite_state import SQLiteStateStore
from providers.state import COOLING, EXHAUSTED, OK, CredentialState
from tests.conftest import Hermes, state_document
from tests.fakeserver import FakeServer
from tests.jail import jailed, needs_bwrap

K1, K2, K3 = "sk-migrate-key-0001", "sk-migrate-key-0002", "sk-migrate-key-0003"


def run_children(script: str, *args_each: list[str]) -> list[str]:
    with ThreadPoolExecutor(len(args_each)) as pool:
        done = list(
            pool.map(
                lambda args: subprocess.run(
                    [sys.executable, "-c", script, *args], capture_output=True, text=True, check=False
                ),
                args_each,
            )
        )
    assert all(d.returncode == 0 and not d.stderr for d in done), [d.stderr for d in done]
    return [d.stdout for d in done]


def test_processes_updating_the_same_key_lose_no_update(tmp_path: Path) -> None:
    script = (
        "import sys, time\nfrom pathlib import Path\nfrom providers.sqlite_state import SQLiteStateStore\n"
        "s = SQLiteStateStore(Path(sys.argv[1]), warn=lambda m: print(m, file=sys.stderr))\n"
        "for n in range(25):\n"
        "    s.record_use('p', 'same', time.time(), error='HTTP 500' if n % 5 == 0 else '')\n"
        "    print(s.next_cursor('p'))\n"
    )
    path = tmp_path / "state" / "credentials.db"
    outputs = run_children(script, *([str(path)] for _ in range(8)))
    state = SQLiteStateStore(path).read("p")["same"]
    assert state.requests == 200 and state.errors == 40
    cursors = sorted(int(n) for out in outputs for n in out.split())
    assert cursors == list(range(200))  # every process got its own turn of the round-robin cursor


def test_a_process_killed_mid_write_leaves_a_readable_state(tmp_path: Path) -> None:
    """Killed (SIGKILL, no clean-up) at a random point of a write loop, again and again: each time the state
    is intact, and no committed count is ever lost."""
    path = tmp_path / "credentials.db"
    script = (
        "import sys, time\nfrom pathlib import Path\nfrom providers.sqlite_state import SQLiteStateStore\n"
        "s = SQLiteStateStore(Path(sys.argv[1]))\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    s.record_use('p', 'a', time.time())\n"
        "    s.cool_down('p', 'b', time.time() + 600, 'HTTP 429')\n"
    )
    seen = 0
    for delay in (0.05, 0.2, 0.35, 0.5):
        child = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        store = SQLiteStateStore(path)
        states = store.read("p")
        assert states["a"].requests >= seen and states["b"].status(time.time()) == COOLING
        seen = states["a"].requests
        store.record_use("p", "a", time.time())  # and it takes writes again
        seen += 1
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
    assert seen > 4


def _wal_growth(path: Path, keys: int) -> int:
    """Bytes the write-ahead log grows by for one request's writes, with `keys` credentials that have state."""
    store = SQLiteStateStore(path)
    for i in range(keys):
        store.record_use("p", f"id{i:05d}", time.time())
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    wal = Path(str(path) + "-wal")
    before = wal.stat().st_size
    fresh = SQLiteStateStore(path)
    assert fresh.troubled("p", time.time()) == {}
    fresh.next_cursor("p")
    fresh.record_use("p", f"id{keys // 2:05d}", time.time())
    return wal.stat().st_size - before


def test_a_request_writes_the_same_pages_whatever_the_pool_size(tmp_path: Path) -> None:
    small = _wal_growth(tmp_path / "small.db", 3)
    large = _wal_growth(tmp_path / "large.db", 5000)
    assert 0 < large <= small  # a page or two per write: the 5,000 other rows are neither read nor written


def test_the_database_and_its_log_are_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "credentials.db"
    SQLiteStateStore(path).record_use("p", "a", time.time())
    for name in ("credentials.db", "credentials.db-wal", "credentials.db-shm"):
        assert (path.parent / name).stat().st_mode & 0o777 == 0o600, name


def _legacy_document(now: float) -> dict[str, Any]:
    return {
        "providers": {
            "myplan": {
                fingerprint(K1): {
                    "cooldown_until": now + 900,
                    "cooldown_reason": "HTTP 429",
                    "requests": 7,
                    "errors": 2,
                    "last_error": "HTTP 429",
                    "last_used": now - 5,
                },
                fingerprint(K2): {
                    "exhausted": "HTTP 401: bad key",
                    "last_error": "HTTP 401: bad key",
                    "requests": 1,
                    "errors": 1,
                },
                fingerprint(K3): {"requests": 40, "last_used": now - 60},
            },
            "other": {"abcd1234": {"exhausted": "HTTP 403"}},
        },
        "cursors": {"myplan": 12},
    }


def test_migration_keeps_every_cooldown_exhaustion_counter_and_cursor(tmp_path: Path) -> None:
    now = time.time()
    legacy = tmp_path / "credentials.json"
    document = _legacy_document(now)
    legacy.write_text(json.dumps(document))
    store = SQLiteStateStore(tmp_path / "credentials.db", legacy=legacy)
    for provider, table in document["providers"].items():
        assert store.read(provider) == {cid: CredentialState.from_json(s) for cid, s in table.items()}
    assert store.next_cursor("myplan") == 12
    assert not legacy.exists() and json.loads((tmp_path / "credentials.json.migrated").read_text()) == document
    assert state_document(tmp_path)["providers"]["myplan"][fingerprint(K2)]["exhausted"] == "HTTP 401: bad key"


def test_processes_migrating_at_once_migrate_once(tmp_path: Path) -> None:
    legacy = tmp_path / "credentials.json"
    legacy.write_text(json.dumps(_legacy_document(time.time())))
    script = (
        "import sys\nfrom pathlib import Path\nfrom providers.sqlite_state import SQLiteStateStore\n"
        "d = Path(sys.argv[1])\n"
        "print(SQLiteStateStore(d / 'credentials.db', legacy=d / 'credentials.json').read('myplan')"
        f"[{fingerprint(K3)!r}].requests)\n"
    )
    outputs = run_children(script, *([str(tmp_path)] for _ in range(6)))
    assert [out.strip() for out in outputs] == ["40"] * 6  # counted once, not once per process


def test_an_upgrade_keeps_the_pools_state_end_to_end(hermes: Hermes, fake: FakeServer) -> None:
    """A user's credentials.json from an earlier version: the cooled-down and the exhausted key stay out of
    use, `auth list` shows them as before, and `auth reset` still clears them."""
    hermes.write_config(f'[providers.myplan]\nbase_url = "{fake.base_url}"\n')
    hermes.env["MYPLAN_API_KEYS"] = f"{K1},{K2},{K3}"
    state_dir = hermes.home / "state"
    state_dir.mkdir(parents=True)
    (state_dir / "credentials.json").write_text(json.dumps(_legacy_document(time.time())))
    listed = json.loads(hermes.run("auth", "list", "myplan", "--json").stdout)["credentials"]
    assert [(c["state"], c["requests"]) for c in listed] == [(COOLING, 7), (EXHAUSTED, 1), (OK, 40)]
    done = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert done.returncode == 0, done.stderr
    assert [r.key for r in fake.requests()] == [K3]
    assert hermes.run("auth", "reset", "myplan").returncode == 0
    listed = json.loads(hermes.run("auth", "list", "myplan", "--json").stdout)["credentials"]
    assert [(c["state"], c["requests"]) for c in listed] == [(OK, 7), (OK, 1), (OK, 41)]


def test_least_used_takes_the_usable_key_with_fewest_requests_end_to_end(hermes: Hermes, fake: FakeServer) -> None:
    """least_used reads only the counters: the key with the fewest requests that is not cooling down, and a
    count hermes never writes (another program's text) counts as none."""
    hermes.write_config(f'[providers.myplan]\nbase_url = "{fake.base_url}"\n[credentials]\nstrategy = "least_used"\n')
    hermes.env["MYPLAN_API_KEYS"] = f"{K1},{K2},{K3}"
    db = hermes.home / "state" / "credentials.db"
    store = SQLiteStateStore(db)
    for key, uses in ((K1, 5), (K3, 2)):
        for _ in range(uses):
            store.record_use("myplan", fingerprint(key), time.time())
    store.cool_down("myplan", fingerprint(K2), time.time() + 600, "HTTP 429")  # no requests, but cooling
    for _ in range(2):
        assert hermes.run("ask", "--no-save", "-p", "myplan", "-m", "m", "hi").returncode == 0
    with sqlite3.connect(db) as edit:
        edit.execute("UPDATE credential_state SET requests = 'lots' WHERE cred_id = ?", (fingerprint(K1),))
    assert hermes.run("ask", "--no-save", "-p", "myplan", "-m", "m", "hi").returncode == 0
    assert [r.key for r in fake.requests()] == [K3, K3, K1]


@needs_bwrap
def test_a_read_only_state_dir_still_honours_the_cooldowns_stored_there(tmp_path: Path) -> None:
    """Where the database cannot be written (a read-only home), the state is kept in memory, starting from
    what the file holds: a key another process cooled down stays out of use."""
    state = tmp_path / "state"
    SQLiteStateStore(state / "credentials.db").cool_down("p", "a", time.time() + 600, "HTTP 429")
    script = (
        "import sys, time\nfrom pathlib import Path\nfrom providers.sqlite_state import SQLiteStateStore\n"
        "s = SQLiteStateStore(Path(sys.argv[1]), warn=lambda m: print(m, file=sys.stderr))\n"
        "s.record_use('p', 'a', time.time())\n"
        "print(s.troubled('p', time.time())['a'].status(time.time()), s.read('p')['a'].requests)\n"
    )
    done = jailed([sys.executable, "-c", script, str(state / "credentials.db")], read_only=[state])
    assert done.returncode == 0 and "kept in memory" in done.stderr, done.stderr
    assert done.stdout.split() == [COOLING, "1"]  # the stored cooldown, and this use counted


def damaged_database(path: Path) -> None:
    """A credentials.db whose header is sound but whose tables are not, as a failing disk leaves one:
    it opens, and its first query finds the damage ("database disk image is malformed")."""
    store = SQLiteStateStore(path)
    for i in range(300):
        store.record_use("myplan", f"id{i:04d}-{'x' * 40}", time.time(), error="e" * 100)
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    with path.open("r+b") as f:
        for page in range(1, path.stat().st_size // 4096):
            f.seek(page * 4096)
            f.write(b"\x0d" + b"\xff" * 7)  # every page after the first: a leaf header pointing nowhere
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):
        sqlite3.connect(path).execute("SELECT count(*) FROM credential_state").fetchone()


def test_a_damaged_database_is_set_aside_and_every_command_goes_on(myplan: Hermes, fake: FakeServer) -> None:
    state = myplan.home / "state" / "credentials.db"
    state.parent.mkdir(parents=True)
    damaged_database(state)
    damaged = state.read_bytes()
    first = myplan.run("ask", "-m", "myplan:model-a", "hi")
    assert first.returncode == 0 and first.stdout == "Hello from fake\n", first.stderr
    assert "is damaged; it was moved to" in first.stderr and "internal error" not in first.stderr
    assert (state.parent / "credentials.db.unreadable").read_bytes() == damaged  # kept, as it was
    again = myplan.run("ask", "-m", "myplan:model-a", "hi")
    assert again.returncode == 0 and again.stderr == ""
    listed = json.loads(myplan.run("auth", "list", "myplan", "--json").stdout)["credentials"]
    assert [c["requests"] for c in listed] == [2]  # both asks counted in the new file
    assert myplan.run("auth", "reset").returncode == 0


def test_processes_finding_the_same_damage_set_it_aside_once(tmp_path: Path) -> None:
    """Two processes that opened the damaged file: the second to find the damage uses the file the first
    started, rather than moving that one aside too."""
    path = tmp_path / "credentials.db"
    damaged_database(path)
    first, second = SQLiteStateStore(path), SQLiteStateStore(path)
    second._conn()  # opened, as at its first request, before the first process finds the damage
    first.record_use("p", "a", time.time())
    second.record_use("p", "a", time.time())
    assert SQLiteStateStore(path).read("p")["a"].requests == 2
    assert sorted(p.name for p in tmp_path.iterdir() if "unreadable" in p.name) == ["credentials.db.unreadable"]


@needs_bwrap
def test_a_damaged_database_that_cannot_be_set_aside_is_replaced_by_memory(tmp_path: Path) -> None:
    """On a read-only disk the damaged file can be neither set aside nor copied: the state starts empty in
    memory, and requests go on."""
    state = tmp_path / "state"
    state.mkdir()
    damaged_database(state / "credentials.db")
    script = (
        "import sys, time\nfrom pathlib import Path\nfrom providers.sqlite_state import SQLiteStateStore\n"
        "s = SQLiteStateStore(Path(sys.argv[1]), warn=lambda m: print(m, file=sys.stderr))\n"
        "s.record_use('p', 'a', time.time())\n"
        "print(s.read('p')['a'].requests, len(s.troubled('myplan', time.time())))\n"
    )
    done = jailed([sys.executable, "-c", script, str(state / "credentials.db")], read_only=[state])
    assert done.returncode == 0 and "kept in memory" in done.stderr, done.stderr
    assert done.stdout.split() == ["1", "0"]
