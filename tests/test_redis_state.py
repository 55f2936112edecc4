"""The Redis state store: a fleet of machines shares cooldowns, exhaustion and the round-robin cursor.

Unit tests drive RedisStateStore against a real redis-server; subprocess tests run three `hermes ask`
"machines" (separate HERMES_HOMEs) sharing one Redis. A missing redis-server fails the tests: CI installs it.
"""

from __future__ import annotations

import random
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from providers.credentials import Credential, fingerprint
from providers.errors import UsageError
from providers.pool import CredentialPool
from providers.redis_state import RedisStateStore, open_redis_store
from providers.secrets import mask_url
from providers.sqlite_state import SQLiteStateStore
from providers.state import COOLING, EXHAUSTED, OK, StateStore
from tests.conftest import Hermes, clean_env
from tests.fakeserver import FakeServer, RateLimit, Reply, Status
from tests.redis_server import RedisServer, RedisServerMissing, free_port

K1, K2 = "sk-fleet-key-one-0001", "sk-fleet-key-two-0002"
ID1, ID2 = fingerprint(K1), fingerprint(K2)
WARNING = re.compile(
    r"^hermes: warning: Redis state store at redis://\S+ unreachable \(.+\); using the local file for this run\.$"
)


def start_server() -> RedisServer:
    try:
        return RedisServer().start()
    except RedisServerMissing as e:
        missing = str(e)
    pytest.fail(missing, pytrace=False)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = start_server()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    with redis_server.client() as client:
        client.flushdb()
    return redis_server.url


def closed_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def new_store(url: str, tmp_path: Path) -> RedisStateStore:
    return open_redis_store(url, fallback=SQLiteStateStore(tmp_path / "credentials.db"))


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def status(store: StateStore, provider: str, cred_id: str) -> str:
    return store.read(provider)[cred_id].status(time.time())


# -- the store ---------------------------------------------------------------------------------------


def test_cooldown_ends_when_its_key_expires(redis_url: str, redis_server: RedisServer, tmp_path: Path) -> None:
    store = new_store(redis_url, tmp_path)
    store.cool_down("p", "a", time.time() + 0.3, "429 slow down")
    state = store.read("p")["a"]
    assert state.status(time.time()) == COOLING
    assert 0 < state.cooldown_until - time.time() <= 0.3
    assert (state.cooldown_reason, state.last_error) == ("429 slow down", "429 slow down")
    wait_until(lambda: status(store, "p", "a") == OK)
    with redis_server.client() as client:
        assert not client.exists("hermes:p:a:cooldown")
    assert store.failure is None


def test_the_later_reset_wins(redis_url: str, tmp_path: Path) -> None:
    one, two = new_store(redis_url, tmp_path), new_store(redis_url, tmp_path)
    now = time.time()
    one.cool_down("p", "a", now + 60, "first")
    two.cool_down("p", "a", now + 5, "shorter")
    assert one.read("p")["a"].cooldown_until > now + 50
    two.cool_down("p", "a", now + 120, "longer")
    assert one.read("p")["a"].cooldown_until > now + 110

    # Many machines at once, in any order: the latest reset survives.
    untils = [now + s for s in range(200, 400, 10)]
    random.shuffle(untils)
    stores = [new_store(redis_url, tmp_path) for _ in untils]
    with ThreadPoolExecutor(len(stores)) as pool:
        list(pool.map(lambda su: su[0].cool_down("p", "b", su[1], "429"), zip(stores, untils, strict=False)))
    assert one.read("p")["b"].cooldown_until > max(untils) - 5


def test_exhaustion_stays_until_reset(redis_url: str, redis_server: RedisServer, tmp_path: Path) -> None:
    store = new_store(redis_url, tmp_path)
    store.record_use("p", "a", time.time())
    store.exhaust("p", "a", "401 invalid key")
    with redis_server.client() as client:
        assert client.pttl("hermes:p:a:exhausted") == -1  # no expiry
    store.record_use("p", "a", time.time())
    state = new_store(redis_url, tmp_path).read("p")["a"]
    assert (state.status(time.time()), state.exhausted, state.requests) == (EXHAUSTED, "401 invalid key", 2)
    assert store.reset("p", "a") == 1
    state = store.read("p")["a"]
    assert (state.status(time.time()), state.requests, state.last_error) == (OK, 2, "401 invalid key")


def test_counters_are_shared_and_atomic(redis_url: str, tmp_path: Path) -> None:
    stores = [new_store(redis_url, tmp_path) for _ in range(4)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: stores[i % 4].record_use("p", "a", 1000.0 + i), range(100)))
    stores[0].record_use("p", "a", 2000.0, error="502 bad gateway")
    state = stores[1].read("p")["a"]
    assert (state.requests, state.errors, state.last_error, state.last_used) == (101, 1, "502 bad gateway", 2000.0)
    assert stores[1].read("other") == {}


def test_round_robin_cursor_spreads_load_across_machines(redis_url: str, tmp_path: Path) -> None:
    creds = tuple(Credential(f"id{i}", "p", "env", f"k{i}", f"secret-{i}") for i in range(3))
    pools = [
        CredentialPool("p", creds, new_store(redis_url, tmp_path), strategy="round_robin", clock=time.time)
        for _ in range(2)
    ]
    picked = [pools[i % 2].select() for i in range(6)]
    assert [c.id for c in picked if c] == ["id0", "id1", "id2", "id0", "id1", "id2"]
    assert new_store(redis_url, tmp_path).next_cursor("other") == 0


def test_least_used_balances_load_across_machines(redis_url: str, tmp_path: Path) -> None:
    """Two machines sharing the counters: each request goes to the usable key the fleet has used least."""
    creds = tuple(Credential(f"id{i}", "p", "env", f"k{i}", f"secret-{i}") for i in range(3))
    pools = [
        CredentialPool("p", creds, new_store(redis_url, tmp_path), strategy="least_used", clock=time.time)
        for _ in range(2)
    ]
    pools[0].cool_down(creds[0], time.time() + 600, "429")  # id0: one request, and cooling
    for i in range(4):
        picked = pools[i % 2].select()
        assert picked is not None
        pools[i % 2].record_success(picked)
    assert new_store(redis_url, tmp_path).request_counts("p") == {"id0": 1, "id1": 2, "id2": 2}


def test_reset_one_id_one_provider_or_all(redis_url: str, tmp_path: Path) -> None:
    store = new_store(redis_url, tmp_path)
    for provider in ("p1", "p2"):
        for cred_id in ("a", "b"):
            store.exhaust(provider, cred_id, "401")
    store.cool_down("p1", "a", time.time() + 60, "429")  # cooling and exhausted: one credential
    store.record_use("p2", "c", time.time())  # nothing to reset
    assert store.reset("p1", "a") == 1
    assert [status(store, "p1", c) for c in ("a", "b")] == [OK, EXHAUSTED]
    assert store.reset("p1") == 1
    assert status(store, "p2", "a") == EXHAUSTED
    assert store.reset() == 2
    assert {status(store, p, c) for p in ("p1", "p2") for c in ("a", "b")} == {OK}
    assert store.reset() == 0


def test_unreachable_redis_falls_back_to_the_file_with_one_warning(tmp_path: Path) -> None:
    url = closed_url().replace("redis://", "redis://fleet:hunter2@")
    warnings: list[str] = []
    store = open_redis_store(url, fallback=SQLiteStateStore(tmp_path / "credentials.db"), warn=warnings.append)
    assert store.read("p") == {}
    store.exhaust("p", "a", "401")
    store.record_use("p", "a", time.time())
    assert store.next_cursor("p") == 0
    assert status(store, "p", "a") == EXHAUSTED
    assert status(SQLiteStateStore(tmp_path / "credentials.db"), "p", "a") == EXHAUSTED
    assert store.describe() == f"redis {mask_url(url)} (unreachable, using file {tmp_path / 'credentials.db'})"
    assert len(warnings) == 1 and WARNING.match("hermes: warning: " + warnings[0]), warnings
    err = warnings[0]
    assert "hunter2" not in err and "fleet:***@127.0.0.1" in err


def test_url_masking_and_a_bad_url(tmp_path: Path) -> None:
    assert mask_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert mask_url("rediss://u:p@w@h/1") == "rediss://u:***@h/1"
    assert mask_url("redis://h:6379/0") == "redis://h:6379/0"
    with pytest.raises(UsageError):
        new_store("http://127.0.0.1:6379", tmp_path)


# -- what a Redis URL can say: password, user, database, unix socket, TLS; a dropped or silent server ----


def test_password_and_database_from_the_url(tmp_path: Path) -> None:
    with RedisServer("--requirepass", "s3cret-pass-0001", password="s3cret-pass-0001") as server:
        store = new_store(f"redis://:s3cret-pass-0001@127.0.0.1:{server.port}/3", tmp_path)
        store.exhaust("p", "a", "401")
        assert status(store, "p", "a") == EXHAUSTED and store.failure is None
        with server.client(db=3) as client:
            assert client.get("hermes:p:a:exhausted") == "401"
        with server.client(db=0) as client:
            assert client.dbsize() == 0
        for url in (f"redis://:wrong-pass-0002@127.0.0.1:{server.port}/0", f"redis://127.0.0.1:{server.port}/0"):
            warnings: list[str] = []
            fallback = SQLiteStateStore(tmp_path / "fallback.db")
            refused = open_redis_store(url, fallback=fallback, warn=warnings.append)
            assert refused.read("p") == {} and len(warnings) == 1, warnings
            assert "wrong-pass" not in warnings[0] and "s3cret" not in warnings[0]


def test_an_acl_user_and_the_database_in_the_query(tmp_path: Path) -> None:
    with RedisServer("--user", "fleet", "on", ">fleet-pass-0003", "~*", "&*", "+@all") as server:
        store = new_store(f"redis://fleet:fleet-pass-0003@127.0.0.1:{server.port}/?db=2", tmp_path)
        store.record_use("p", "a", 1000.0)
        assert store.read("p")["a"].requests == 1 and store.failure is None
        with server.client(db=2) as client:
            assert client.hget("hermes:p:a:stats", "requests") == "1"


def test_a_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "redis.sock"
    with RedisServer("--unixsocket", str(sock)) as server:
        store = new_store(f"unix://{sock}?db=1", tmp_path)
        store.cool_down("p", "a", time.time() + 60, "429")
        assert status(store, "p", "a") == COOLING and store.failure is None
        with server.client(db=1) as client:
            assert client.exists("hermes:p:a:cooldown")


def _certificates(where: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_verifies_the_server(tmp_path: Path) -> None:
    cert, key = _certificates(tmp_path)
    tls_port = free_port()
    options = ("--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key))
    with RedisServer(*options, "--tls-auth-clients", "no"):
        trusted = new_store(f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={cert}", tmp_path)
        trusted.exhaust("p", "a", "401")
        assert status(trusted, "p", "a") == EXHAUSTED and trusted.failure is None
        warnings: list[str] = []
        stranger = open_redis_store(
            f"rediss://127.0.0.1:{tls_port}/0", fallback=SQLiteStateStore(tmp_path / "f.db"), warn=warnings.append
        )
        assert stranger.read("p") == {} and len(warnings) == 1 and "CERTIFICATE_VERIFY_FAILED" in warnings[0]
        unverified = new_store(f"rediss://127.0.0.1:{tls_port}/0?ssl_cert_reqs=none", tmp_path)
        assert status(unverified, "p", "a") == EXHAUSTED and unverified.failure is None


def test_a_connection_the_server_closed_is_made_again_once(
    redis_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    store = new_store(redis_url, tmp_path)
    store.record_use("p", "a", 1000.0)
    with redis_server.client() as client:
        assert client.client_kill_filter(_type="normal", skipme=True) == 1  # hermes's idle connection
    store.record_use("p", "a", 2000.0)
    assert store.read("p")["a"].requests == 2 and store.failure is None


def test_a_silent_server_costs_one_timeout_then_the_file(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        warnings: list[str] = []
        store = open_redis_store(
            f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
            fallback=SQLiteStateStore(tmp_path / "credentials.db"),
            warn=warnings.append,
        )
        started = time.monotonic()
        assert store.read("p") == {}
        store.record_use("p", "a", 1000.0)
        assert time.monotonic() - started < 2
        assert len(warnings) == 1 and "no answer in time" in warnings[0], warnings


@pytest.mark.parametrize(
    "url", ["redis://h:port/0", "redis://h/0?socket_timeout=5", "redis://h/?db=x", "rediss://h/?ssl_cert_reqs=maybe"]
)
def test_a_url_redis_cannot_mean_is_a_usage_error(url: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is not a Redis URL"):
        new_store(url, tmp_path)


# -- a fleet: three `hermes` processes with their own homes, one Redis -----------------------------


def machines(tmp_path: Path, fake: FakeServer, url: str, count: int = 3) -> list[Hermes]:
    fleet = []
    for i in range(1, count + 1):
        home = tmp_path / f"machine{i}"
        home.mkdir(parents=True)
        machine = Hermes(home, clean_env(home, MYPLAN_API_KEYS=f"{K1},{K2}"))
        machine.write_config(f'[providers.myplan]\nbase_url = "{fake.base_url}"\n\n[credentials]\nstate = "{url}"\n')
        fleet.append(machine)
    return fleet


def ask(machine: Hermes) -> subprocess.CompletedProcess[str]:
    done = machine.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr
    return done


def assert_no_raw_key_in_redis(server: RedisServer) -> None:
    with server.client() as client:
        read = {"string": client.get, "hash": client.hgetall, "set": client.smembers}
        dump = "\n".join(f"{key} {read[client.type(key)](key)}" for key in client.scan_iter("*"))
    assert ID1 in dump and ID2 in dump  # the state is there, by credential id
    assert K1 not in dump and K2 not in dump


def test_a_429_on_one_machine_cools_the_key_for_all(
    tmp_path: Path, fake: FakeServer, redis_url: str, redis_server: RedisServer
) -> None:
    m1, m2, m3 = machines(tmp_path, fake, redis_url)
    fake.script_for_key(K1, RateLimit(retry_after=600))  # long enough for any machine's start-ups
    ask(m1)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(ask, (m2, m3)))
    assert [(r.key, r.status) for r in fake.requests()] == [(K1, 429), (K2, 200), (K2, 200), (K2, 200)]

    store = new_store(redis_url, tmp_path)
    assert status(store, "myplan", ID1) == COOLING
    with redis_server.client() as client:  # the cooldown's end, as Redis sees it: its key's TTL runs out
        assert client.pexpire(f"hermes:myplan:{ID1}:cooldown", 1)
    wait_until(lambda: status(store, "myplan", ID1) == OK)  # the key expired: K1 is usable again
    ask(m2)
    ask(m3)
    assert [r.key for r in fake.requests()[4:]] == [K1, K1]
    assert not list(tmp_path.rglob("credentials.db"))  # the state lived in Redis only
    assert_no_raw_key_in_redis(redis_server)


def test_exhaustion_on_one_machine_is_seen_and_reset_by_all(
    tmp_path: Path, fake: FakeServer, redis_url: str, redis_server: RedisServer
) -> None:
    m1, m2, m3 = machines(tmp_path, fake, redis_url)
    fake.script_for_key(K1, Status(401, body={"error": {"message": f"Invalid key {K1}"}}))
    ask(m1)
    ask(m2)
    ask(m3)
    assert [(r.key, r.status) for r in fake.requests()] == [(K1, 401), (K2, 200), (K2, 200), (K2, 200)]
    listing = m3.run("auth", "list", "myplan")
    assert listing.returncode == 0, listing.stderr
    assert "exhausted" in listing.stdout
    assert_no_raw_key_in_redis(redis_server)

    reset = m2.run("auth", "reset", "myplan")
    assert reset.returncode == 0 and "reset 1 key" in reset.stderr, reset.stderr
    ask(m1)
    ask(m3)
    assert [r.key for r in fake.requests()[4:]] == [K1, K1]


def test_auth_list_names_the_store_and_its_health(tmp_path: Path, fake: FakeServer, redis_url: str) -> None:
    (up,) = machines(tmp_path / "up", fake, redis_url, count=1)
    listing = up.run("auth", "list", "myplan")
    assert listing.returncode == 0, listing.stderr
    assert f"state store: redis {redis_url} (ok)" in listing.stderr

    (down,) = machines(tmp_path / "down", fake, closed_url(), count=1)
    listing = down.run("auth", "list", "myplan")
    assert listing.returncode == 0, listing.stderr
    assert re.search(r"state store: redis redis://\S+ \(unreachable, using file \S+credentials\.db\)", listing.stderr)


def test_an_unreachable_redis_still_answers_with_one_warning(tmp_path: Path, fake: FakeServer) -> None:
    (machine,) = machines(tmp_path, fake, closed_url(), count=1)
    done = machine.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert (done.returncode, done.stdout) == (0, "Hello from fake\n"), done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and WARNING.match(warnings[0]), done.stderr


def test_redis_stopped_mid_run_still_answers_with_one_warning(tmp_path: Path, fake: FakeServer) -> None:
    server = start_server()
    (machine,) = machines(tmp_path, fake, server.url, count=1)
    fake.always(Reply("still here", delay=1))
    proc = subprocess.Popen(
        [sys.executable, "-m", "hermes_cli", "ask", "-p", "myplan", "-m", "m", "hi"],
        env=machine.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with server.client() as client:
            wait_until(lambda: len(client.client_list()) > 1)  # hermes has read the state
        server.stop()
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        server.stop()
        proc.kill()
    assert (proc.returncode, stdout) == (0, "still here\n"), stderr
    warnings = [line for line in stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and WARNING.match(warnings[0]), stderr
    assert [r.key for r in fake.requests()] == [K1]


def test_garbage_values_in_redis_are_no_crash_and_no_cooldown_for_ever(
    tmp_path: Path, fake: FakeServer, redis_url: str, redis_server: RedisServer
) -> None:
    """Values hermes would never write (a stranger's, a hand edit, bytes that are not UTF-8) read as no state."""
    with redis_server.client() as client:
        client.sadd("hermes:myplan:ids", ID1, ID2)
        client.hset(
            f"hermes:myplan:{ID1}:stats",
            mapping={
                "requests": "many",
                "errors": "1e400",
                "last_used": "nan",
                "last_error": b"\xff\xfe bad",
            },
        )
        client.hset(f"hermes:myplan:{ID2}:stats", mapping={"requests": "-5", "last_used": "inf"})
        client.set(f"hermes:myplan:{ID2}:cooldown", b"\xff", px=10**15)  # ~30,000 years
    (machine,) = machines(tmp_path, fake, redis_url, count=1)
    listing = machine.run("auth", "list", "myplan")
    assert listing.returncode == 0, listing.stderr
    rows = [line.split("\t") for line in listing.stdout.splitlines()[1:]]
    assert [(row[1], row[6], row[7]) for row in rows] == [(ID1, "ok", "0 / 0 err"), (ID2, "ok", "0 / 0 err")]
    done = machine.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert (done.returncode, done.stdout) == (0, "Hello from fake\n"), done.stderr
