"""The keys of `hermes auth add` in auth.json: the second format (one list per field, each key's id stored
beside it) is what hermes writes; a file of the first format (a list of entries) is read as it was, keeps
its ids and so its keys' state, and is written in the second format, every key kept, at the next change.
A file edited by hand is read key by key: a key is stripped, a key given twice is one, a bad one is named."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from providers.credentials import AuthStore, fingerprint
from providers.sqlite_state import SQLiteStateStore
from tests.conftest import Hermes
from tests.fakeserver import FakeServer

K1, K2, K3, K4 = (f"sk-auth-store-key-000{n}" for n in range(1, 5))


def _auth_file(hermes: Hermes) -> Path:
    return hermes.home / "state" / "auth.json"


def _listed(hermes: Hermes) -> list[dict[str, Any]]:
    done = hermes.run("auth", "list", "myplan", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["credentials"])


def _write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    path.chmod(0o600)


def test_a_file_of_the_first_format_keeps_its_keys_ids_and_state_and_is_rewritten_whole(
    hermes: Hermes, fake: FakeServer, fake2: FakeServer
) -> None:
    hermes.write_config(f'[providers.myplan]\nbase_url = "{fake.base_url}"\n')
    first = [
        {"provider": "myplan", "key": K1, "label": "work", "base_url": None, "added": 1764000000.5},
        {"provider": "myplan", "key": K2, "label": "eu", "base_url": fake2.base_url, "added": 1764000001.5},
        {"provider": "other", "key": K3, "label": None, "base_url": None},
    ]
    _write(_auth_file(hermes), {"credentials": first})
    # K1 is cooling down, as a 429 left it under the earlier version: state is keyed by the key's id.
    SQLiteStateStore(hermes.home / "state" / "credentials.db").cool_down(
        "myplan", fingerprint(K1), time.time() + 600, "HTTP 429"
    )
    before = _listed(hermes)
    assert [(c["id"], c["label"], c["pinned_base_url"], c["state"]) for c in before] == [
        (fingerprint(K1), "work", None, "cooling"),
        (fingerprint(K2), "eu", fake2.base_url, "ok"),
    ]
    assert _auth_file(hermes).read_text(encoding="utf-8").startswith('{"credentials"')  # reading changes nothing

    added = hermes.run("auth", "add", "myplan", "--label", "new", input=K4 + "\n")
    assert added.returncode == 0, added.stderr
    document = json.loads(_auth_file(hermes).read_text(encoding="utf-8"))
    assert document == {
        "version": 2,
        "providers": {
            "myplan": {
                "ids": [fingerprint(K1), fingerprint(K2), fingerprint(K4)],
                "keys": [K1, K2, K4],
                "labels": ["work", "eu", "new"],
                "base_urls": [None, fake2.base_url, None],
                "added": [1764000000.5, 1764000001.5, document["providers"]["myplan"]["added"][2]],
            },
            "other": {"ids": [fingerprint(K3)], "keys": [K3], "labels": [None], "base_urls": [None], "added": [None]},
        },
    }
    assert _auth_file(hermes).stat().st_mode & 0o777 == 0o600
    after = _listed(hermes)
    assert [(c["id"], c["state"]) for c in after] == [
        (fingerprint(K1), "cooling"),
        (fingerprint(K2), "ok"),
        (fingerprint(K4), "ok"),
    ]
    # The cooling key stays out of use; the pinned one goes to its own host only.
    done = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert done.returncode == 0, done.stderr
    assert fake.keys_seen() == [] and fake2.keys_seen() == [K2]


def test_add_and_remove_keep_every_other_key_of_every_provider(hermes: Hermes, fake: FakeServer) -> None:
    hermes.write_config(
        f'[providers.myplan]\nbase_url = "{fake.base_url}"\n\n[providers.other]\nbase_url = "{fake.base_url}"\n'
    )
    for provider, key in (("myplan", K1), ("other", K2), ("myplan", K3)):
        assert hermes.run("auth", "add", provider, input=key + "\n").returncode == 0
    duplicate = hermes.run("auth", "add", "myplan", input=K3 + "\n")
    assert duplicate.returncode == 2 and fingerprint(K3) in duplicate.stderr
    assert hermes.run("auth", "remove", "myplan", fingerprint(K1)).returncode == 0
    assert hermes.run("auth", "remove", "myplan", fingerprint(K1)).returncode == 2  # gone already
    providers = json.loads(_auth_file(hermes).read_text(encoding="utf-8"))["providers"]
    assert {name: table["keys"] for name, table in providers.items()} == {"myplan": [K3], "other": [K2]}
    assert hermes.run("auth", "remove", "other", fingerprint(K2)).returncode == 0
    assert "other" not in json.loads(_auth_file(hermes).read_text(encoding="utf-8"))["providers"]
    done = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert done.returncode == 0 and fake.keys_seen() == [K3], done.stderr


def _second_format(keys: list[str], ids: list[str] | None = None) -> dict[str, Any]:
    table = {
        "ids": ids if ids is not None else [fingerprint(k.strip()) for k in keys],
        "keys": keys,
        "labels": [None] * len(keys),
        "base_urls": [None] * len(keys),
        "added": [None] * len(keys),
    }
    return {"version": 2, "providers": {"myplan": table}}


def test_a_file_edited_by_hand_is_read_key_by_key(hermes: Hermes, fake: FakeServer) -> None:
    hermes.write_config(f'[providers.myplan]\nbase_url = "{fake.base_url}"\n')
    _write(_auth_file(hermes), _second_format([f"  {K1}\t", K2, K2]))
    listed = _listed(hermes)
    assert [(c["id"], c["key"]) for c in listed] == [(fingerprint(K1), "sk-…0001"), (fingerprint(K2), "sk-…0002")]
    done = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert done.returncode == 0 and fake.keys_seen() == [K1], done.stderr
    # The same key from the environment and from auth.json is one credential, the environment's.
    hermes.env["MYPLAN_API_KEY"] = K2
    assert [c["source"] for c in _listed(hermes)] == ["env MYPLAN_API_KEY", "auth"]


def test_a_bad_key_edited_into_the_file_is_named_by_its_id_and_never_sent(hermes: Hermes, fake: FakeServer) -> None:
    hermes.write_config(f'[providers.myplan]\nbase_url = "{fake.base_url}"\n')
    bad = "sk-auth-store\nX-Injected: 1"
    before = _second_format([K1, bad], ids=[fingerprint(K1), "0badc0de"])
    _write(_auth_file(hermes), before)
    done = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
    assert done.returncode == 2, done.stderr
    assert "0badc0de" in done.stderr and str(_auth_file(hermes)) in done.stderr and "a line break" in done.stderr
    assert "X-Injected" not in done.stderr and fake.requests() == []
    assert json.loads(_auth_file(hermes).read_text(encoding="utf-8")) == before


def test_a_file_of_an_unknown_shape_is_named_and_left_as_it_is(hermes: Hermes, fake: FakeServer) -> None:
    hermes.write_config(f'[providers.myplan]\nbase_url = "{fake.base_url}"\n')
    hermes.env["MYPLAN_API_KEY"] = K4
    shapes: list[Any] = [
        {"version": 3, "providers": {}},
        {"version": 2},
        {"version": 2, "providers": {"myplan": {**_second_format([K1])["providers"]["myplan"], "labels": []}}},
        {"version": 2, "providers": {"myplan": {**_second_format([K1])["providers"]["myplan"], "keys": [1]}}},
        {"version": 2, "providers": {"myplan": {**_second_format([K1])["providers"]["myplan"], "ids": [""]}}},
        {"version": 2, "providers": {"myplan": {**_second_format([K1])["providers"]["myplan"], "added": [True]}}},
        {"version": 2, "providers": {"": _second_format([K1])["providers"]["myplan"]}},
    ]
    for shape in shapes:
        _write(_auth_file(hermes), shape)
        text = _auth_file(hermes).read_text(encoding="utf-8")
        asked = hermes.run("ask", "-p", "myplan", "-m", "m", "hi")
        assert asked.returncode == 0 and "is unusable" in asked.stderr, (shape, asked.stderr)
        added = hermes.run("auth", "add", "myplan", input=K3 + "\n")
        assert added.returncode == 2 and str(_auth_file(hermes)) in added.stderr, (shape, added.stderr)
        assert _auth_file(hermes).read_text(encoding="utf-8") == text
    assert set(fake.keys_seen()) == {K4}


def test_processes_adding_keys_at_once_keep_every_key(tmp_path: Path) -> None:
    path = tmp_path / "state" / "auth.json"
    script = (
        "import sys\nfrom pathlib import Path\nfrom providers.credentials import AuthStore\n"
        "store = AuthStore(Path(sys.argv[1]))\n"
        "for n in range(6):\n"
        "    store.add('myplan', f'sk-concurrent-{sys.argv[2]}-{n:04d}', label=f'{sys.argv[2]}-{n}', base_url=None)\n"
    )

    def add_six(worker: int) -> subprocess.CompletedProcess[str]:
        args = [sys.executable, "-c", script, str(path), f"w{worker}"]
        return subprocess.run(args, capture_output=True, text=True, check=False)

    with ThreadPoolExecutor(6) as pool:
        done = list(pool.map(add_six, range(6)))
    assert all(d.returncode == 0 for d in done), [d.stderr for d in done]
    stored = AuthStore(path).keys("myplan")
    assert sorted(stored.keys) == sorted(f"sk-concurrent-w{w}-{n:04d}" for w in range(6) for n in range(6))
    assert list(stored.ids) == [fingerprint(k) for k in stored.keys]
    removed = [AuthStore(path).remove("myplan", cred_id) for cred_id in stored.ids[:3]]
    assert removed == [True] * 3 and len(AuthStore(path).keys("myplan").ids) == 33
