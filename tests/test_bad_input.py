"""Exit 1 means a bug: each input a hostile run found to get exit 1, a traceback or damaged state (issue 14),
run through the installed command. Disk full and read-only file systems are real ones, made with bwrap.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.conversation import Message
from agent.sessions import SessionStore
from providers.credentials import fingerprint
from providers.sqlite_state import SQLiteStateStore
from providers.state import MAX_AHEAD_SECONDS
from tests.conftest import Hermes, state_document
from tests.fakeserver import FakeServer, Reply
from tests.jail import jailed, needs_bwrap

KEY = "sk-myplan-key-0001"  # the `myplan` fixture's key
KEY_ID = fingerprint(KEY)


def strict_json(data: bytes) -> object:
    def refuse(constant: str) -> object:
        raise AssertionError(f"{constant} in a state file: not strict JSON")

    return json.loads(data, parse_constant=refuse)


def assert_no_bug(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode != 1, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr


# -- 1. the state side of a huge Retry-After -------------------------------------------------------


@pytest.mark.parametrize("cooldown", ["Infinity", "1e20", "NaN", "-Infinity", "1e400"])
def test_a_poisoned_cooldown_is_dropped_and_the_state_file_becomes_strict_json(myplan: Hermes, cooldown: str) -> None:
    state = myplan.home / "state" / "credentials.json"
    state.parent.mkdir(parents=True)
    state.write_text(f'{{"providers": {{"myplan": {{"{KEY_ID}": {{"cooldown_until": {cooldown}, "requests": 3}}}}}}}}')
    listed = myplan.run("auth", "list", "myplan")
    assert listed.returncode == 0, listed.stderr
    assert "ok" in listed.stdout.split("\n")[1] and str(state) in listed.stderr  # the key is usable, the file named
    asked = myplan.run("ask", "-m", "model-a", "hi")
    assert asked.returncode == 0 and asked.stdout == "Hello from fake\n", asked.stderr
    entry = state_document(state.parent)["providers"]["myplan"][KEY_ID]
    assert "cooldown_until" not in entry and entry["requests"] == 4  # the valid counter was kept


def test_the_store_never_writes_a_cooldown_a_read_would_reject(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "credentials.db")
    store.cool_down("p", "a", float("inf"), "429")
    store.cool_down("p", "b", 1e300, "429")
    data = state_document(tmp_path)
    read_again = SQLiteStateStore(tmp_path / "credentials.db").read("p")
    for cred in ("a", "b"):
        until = data["providers"]["p"][cred]["cooldown_until"]
        assert until <= (tmp_path / "credentials.db").stat().st_mtime + MAX_AHEAD_SECONDS + 1
        assert read_again[cred].cooldown_until == until  # held at the bound, not dropped as invalid


# -- 2. non-finite and absurd numbers in config ------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "1e999", "nan", "-inf", "86401", "-1"])
def test_config_set_refuses_a_non_finite_or_absurd_timeout_naming_key_and_range(hermes: Hermes, value: str) -> None:
    config = hermes.write_config("# mine\n[agent]\ntimeout = 30\n")
    done = hermes.run("config", "set", "--", "agent.timeout", value)
    assert done.returncode == 2, done.stderr
    assert "agent.timeout must be a number from 0 to 86400" in done.stderr
    assert config.read_text() == "# mine\n[agent]\ntimeout = 30\n"


@pytest.mark.parametrize(
    ("setting", "shown"),
    [
        ("[agent]\ntimeout = inf", "agent.timeout must be a number from 0 to 86400"),
        ("[agent]\nconnect_timeout = nan", "agent.connect_timeout must be a number from 0 to 3600"),
        ("[credentials]\nmax_wait_seconds = -inf", "credentials.max_wait_seconds must be a number from 0 to 86400"),
        ("[credentials]\ncooldown_seconds = 1e999", "credentials.cooldown_seconds must be a number from 0 to 86400"),
        ("[agent]\nmax_retries = 1000000000", "agent.max_retries must be a whole number from 0 to 100"),
        (
            "[agent]\nmax_tool_iterations = 99999999999",
            "agent.max_tool_iterations must be a whole number from 0 to 1000",
        ),
        ('[models."model-a"]\ncontext = 99999999999999999999', "context must be a whole number from 0 to 100000000"),
        ('[models."model-a"]\ninput_price = inf', "input_price must be a number from 0 to 1000000"),
        ('[local]\nkeep_alive = "99999999999h"', "local.keep_alive must be a duration of at most a year"),
        ("[model.name]\nx = 1", "model.name must be a string"),
        ("credentials = 5", "credentials must be a table"),
        ("fallback = [1, 2]", "fallback must be a list of tables"),
        ("[[fallback]]\nname = nan", "fallback[].name must be a string, not nan"),
    ],
)
def test_a_hand_written_bad_number_or_shape_is_exit_2_naming_the_key(myplan: Hermes, setting: str, shown: str) -> None:
    config = myplan.home / "config.toml"
    text = setting + "\n" + config.read_text()
    config.write_text(text)
    done = myplan.run("ask", "-p", "myplan", "-m", "model-a", "hi")
    assert done.returncode == 2, done.stderr
    assert shown in done.stderr and str(config) in done.stderr
    assert config.read_text() == text


def test_nesting_deeper_than_a_parser_follows_is_a_clear_error(myplan: Hermes) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    config = myplan.home / "config.toml"
    config.write_text(f"x = {deep}\n" + config.read_text())
    done = myplan.run("ask", "-p", "myplan", "-m", "model-a", "hi")
    assert done.returncode == 2 and "nests arrays or tables too deeply" in done.stderr, done.stderr
    config.unlink()
    set_deep = myplan.run("config", "set", "providers.myplan.models", deep)
    assert set_deep.returncode == 2 and "must be a list of strings" in set_deep.stderr, set_deep.stderr
    for name in ("credentials.json", "auth.json"):
        (myplan.home / "state").mkdir(exist_ok=True)
        (myplan.home / "state" / name).write_text(deep)
    listed = myplan.run("auth", "list")
    assert listed.returncode == 0 and "auth.json is unusable (it is not JSON)" in listed.stderr, listed.stderr
    assert "credentials.json is unreadable" in listed.stderr


# -- 3. credentials.json of the wrong shape -------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        '{"providers": "x"}',
        '{"providers": {"myplan": [1]}}',
        f'{{"providers": {{"myplan": {{"{KEY_ID}": [1]}}}}}}',
        f'{{"providers": {{"myplan": {{"{KEY_ID}": {{"requests": "many", "exhausted": 5}}}}}}}}',
        '{"cursors": "x"}',
        '{"cursors": {"myplan": 1e400}}',
        "[]",
        "",
        "\xff\xfe garbage",
    ],
)
def test_a_wrongly_shaped_credentials_json_is_rebuilt_and_no_command_exits_1(myplan: Hermes, content: str) -> None:
    myplan.write_config((myplan.home / "config.toml").read_text() + '[credentials]\nstrategy = "round_robin"\n')
    state = myplan.home / "state" / "credentials.json"
    state.parent.mkdir(parents=True)
    state.write_text(content, encoding="latin-1")
    asked = myplan.run("ask", "-p", "myplan", "-m", "model-a", "hi")
    assert asked.returncode == 0 and asked.stdout == "Hello from fake\n", asked.stderr
    assert asked.stderr.count(str(state)) == 1  # warned once
    listed = myplan.run("auth", "list")
    assert listed.returncode == 0 and KEY_ID in listed.stdout, listed.stderr
    reset = myplan.run("auth", "reset")
    assert reset.returncode == 0, reset.stderr
    assert not state.exists() and state.with_name("credentials.json.migrated").exists()
    assert KEY_ID in state_document(state.parent)["providers"]["myplan"]


def test_a_directory_in_place_of_credentials_json_is_named_and_kept(myplan: Hermes) -> None:
    state = myplan.home / "state" / "credentials.json"
    state.mkdir(parents=True)
    (state / "notes").write_text("mine")
    asked = myplan.run("ask", "-p", "myplan", "-m", "model-a", "hi")
    assert asked.returncode == 0 and asked.stdout == "Hello from fake\n", asked.stderr
    assert f"credential state {state} is a directory" in asked.stderr
    listed = myplan.run("auth", "list")
    assert listed.returncode == 0 and KEY_ID in listed.stdout
    reset = myplan.run("auth", "reset")
    assert reset.returncode == 0 and "Traceback" not in reset.stderr
    assert (state / "notes").read_text() == "mine"


def test_a_directory_in_place_of_the_state_database_is_named_and_kept(myplan: Hermes) -> None:
    state = myplan.home / "state" / "credentials.db"
    state.mkdir(parents=True)
    (state / "notes").write_text("mine")
    asked = myplan.run("ask", "-p", "myplan", "-m", "model-a", "hi")
    assert asked.returncode == 0 and asked.stdout == "Hello from fake\n", asked.stderr
    assert f"cannot save credential state to {state}" in asked.stderr and "kept in memory" in asked.stderr
    listed = myplan.run("auth", "list")
    assert listed.returncode == 0 and KEY_ID in listed.stdout
    reset = myplan.run("auth", "reset")
    assert reset.returncode == 2 and str(state) in reset.stderr and "Traceback" not in reset.stderr
    assert (state / "notes").read_text() == "mine"


# -- 4. a corrupt auth.json ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content", ["{not json", '{"credentials": "x"}', '{"credentials": [{"provider": "myplan", "key": 5}]}', "[]"]
)
def test_a_corrupt_auth_json_is_named_by_every_command_and_never_overwritten(
    hermes: Hermes, fake: FakeServer, content: str
) -> None:
    hermes.write_config(f'[providers.myplan]\nbase_url = "{fake.base_url}"\nmodels = ["model-a"]\n')
    auth = hermes.home / "state" / "auth.json"
    auth.parent.mkdir(parents=True)
    auth.write_text(content)
    asked = hermes.run("ask", "-p", "myplan", "-m", "model-a", "hi")
    assert asked.returncode == 2, asked.stderr
    assert str(auth) in asked.stderr and "run `hermes auth add" not in asked.stderr
    assert "move it aside" in asked.stderr.lower()
    listed = hermes.run("auth", "list")
    assert listed.returncode == 0 and str(auth) in listed.stderr
    added = hermes.run("auth", "add", "myplan", input="sk-new-key-000000002\n")
    assert added.returncode == 2 and str(auth) in added.stderr and "not changed" in added.stderr
    removed = hermes.run("auth", "remove", "myplan", "abcd1234")
    assert removed.returncode == 2 and str(auth) in removed.stderr
    assert auth.read_text() == content
    with_env = hermes.run("ask", "-p", "myplan", "-m", "model-a", "hi", env={"MYPLAN_API_KEY": KEY})
    assert with_env.returncode == 0 and str(auth) in with_env.stderr  # answers, and still says so


# -- 5. the machine refuses a file -------------------------------------------------------------------


@needs_bwrap
def test_a_full_disk_is_exit_2_with_one_line_and_no_file_changes(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    script = (
        'mkdir -p "$HERMES_HOME" && printf \'[model]\\nname = "mine"\\n\' > "$HERMES_HOME/config.toml"\n'
        'head -c 70000 /dev/zero > "$HERMES_HOME/filler" 2>/dev/null\n'
        f'"{sys.executable}" -m hermes_cli config set model.name "$(head -c 5000 /dev/zero | tr "\\0" a)"\n'
        'echo "rc=$?"\n'
        f'echo sk-full-disk-key-0001 | "{sys.executable}" -m hermes_cli auth add openrouter\n'
        'echo "rc=$?"\n'
        'cat "$HERMES_HOME/config.toml"; ls -A "$HERMES_HOME/state"\n'
    )
    home = disk / "home"
    done = jailed(
        ["bash", "-c", script],
        small_disk=(disk, 64 * 1024),
        env={**os.environ, "HERMES_HOME": str(home), "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        timeout=120,
    )
    lines = done.stderr.strip().splitlines()
    assert done.stdout.count("rc=2") == 2, (done.stdout, done.stderr)
    assert len(lines) == 2 and all("No space left on device" in line for line in lines), done.stderr
    assert f"{home}/config.toml" in lines[0] and f"{home}/state/auth.json" in lines[1]
    assert 'name = "mine"' in done.stdout and "auth.json" not in done.stdout.split("rc=2")[-1]


@needs_bwrap
def test_a_read_only_home_is_exit_2_and_ask_still_answers_without_saving(myplan: Hermes) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return jailed(
            [sys.executable, "-m", "hermes_cli", *args],
            read_only=[myplan.home],
            env=myplan.env,
            input="sk-read-only-key-0001\n",
        )

    before = (myplan.home / "config.toml").read_text()
    for args in (("config", "set", "model.name", "b"), ("auth", "add", "myplan"), ("auth", "reset")):
        done = run(*args)
        assert done.returncode == 2 and "Read-only file system" in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1
    asked = run("ask", "--no-save", "-p", "myplan", "-m", "model-a", "hi")
    assert asked.returncode == 0 and asked.stdout == "Hello from fake\n", asked.stderr
    assert "kept in memory" in asked.stderr
    saving = run("ask", "-p", "myplan", "-m", "model-a", "hi")
    assert saving.returncode == 2 and "sessions database" in saving.stderr and "--no-save" in saving.stderr
    assert (myplan.home / "config.toml").read_text() == before


def test_a_name_too_long_is_exit_2(hermes: Hermes) -> None:
    home = hermes.home / ("h" * 300)
    done = hermes.run("config", "set", "model.name", "x", env={"HERMES_HOME": str(home)})
    assert done.returncode == 2 and "File name too long" in done.stderr, done.stderr


# -- 6. a closed pipe ---------------------------------------------------------------------------


def _read_a_little_then_close(hermes: Hermes, *args: str) -> tuple[int, bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hermes_cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=hermes.env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(5)
    proc.stdout.close()
    stderr = proc.stderr.read()
    return proc.wait(timeout=60), stderr


@pytest.mark.parametrize("buffered", [False, True])
def test_ask_into_a_closed_pipe_stops_quietly_with_141(myplan: Hermes, fake: FakeServer, buffered: bool) -> None:
    fake.always(Reply("word " * 40_000, chunks=["word " * 400] * 100))  # far more than a pipe holds
    if buffered:
        myplan.env.pop("PYTHONUNBUFFERED")
    code, stderr = _read_a_little_then_close(myplan, "ask", "-p", "myplan", "-m", "model-a", "hi")
    assert (code, stderr) == (141, b"")


def test_sessions_list_into_a_closed_pipe_stops_quietly_with_141(hermes: Hermes) -> None:
    with SessionStore(hermes.home / "data" / "sessions.db") as store:
        for n in range(1500):
            session = store.create(provider="myplan", model="model-a", base_url="http://127.0.0.1:1/v1", system=None)
            store.append(session.id, Message("user", f"question number {n} " + "x" * 40))
    code, stderr = _read_a_little_then_close(hermes, "sessions", "list", "-n", "1500")
    assert (code, stderr) == (141, b"")


def test_ctrl_c_during_an_ask_is_exit_130_with_one_line(myplan: Hermes, fake: FakeServer) -> None:
    """The command body's interrupt is hermes's to report: typer alone would exit 130 without a word."""
    from tests.fakeserver import Hang

    fake.always(Hang(30))
    proc = subprocess.Popen(
        [sys.executable, "-m", "hermes_cli", "ask", "-p", "myplan", "-m", "model-a", "hi"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=myplan.env,
    )
    deadline = time.monotonic() + 30
    while not fake.requests() and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert (proc.returncode, stdout, stderr) == (130, b"", b"\nhermes: interrupted.\n")


@pytest.mark.parametrize("closed", ["stdout", "stderr"])
def test_ask_with_stdout_or_stderr_closed_still_answers(myplan: Hermes, closed: str) -> None:
    fd = 1 if closed == "stdout" else 2
    done = subprocess.run(
        [sys.executable, "-m", "hermes_cli", "ask", "-p", "myplan", "-m", "model-a", "hi"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=myplan.env,
        timeout=60,
        preexec_fn=lambda: os.close(fd),
    )
    assert done.returncode == 0, done.stderr
    assert len(SessionStore(myplan.home / "data" / "sessions.db").recent()) == 1


# -- 7. non-UTF-8 argv ------------------------------------------------------------------------


def test_a_non_utf8_argument_is_exit_2_naming_it(myplan: Hermes) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hermes_cli", "ask", b"caf\xe9"], capture_output=True, env=myplan.env, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.decode() == (
        "hermes: error: argument 2 ('caf\\xe9') is not UTF-8 text. Convert it first, e.g. with `iconv -t utf-8`.\n"
    )


@pytest.mark.parametrize("name", ["HERMES_MODEL", "HERMES_PROVIDER", "MYPLAN_API_KEY", "MYPLAN_BASE_URL"])
def test_a_non_utf8_variable_hermes_reads_is_exit_2_naming_it_not_its_value(myplan: Hermes, name: str) -> None:
    env = {k.encode(): v.encode() for k, v in myplan.env.items()}
    env[name.encode()] = b"sk-caf\xe9-secret-0001"
    done = subprocess.run([sys.executable, "-m", "hermes_cli", "ask", "hi"], capture_output=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.decode() == (
        f"hermes: error: the environment variable {name} is not UTF-8 text. "
        "Convert it first, e.g. with `iconv -t utf-8`.\n"
    )


def test_permission_denied_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from hermes_cli.exit_codes import report

    # EACCES cannot be made for real as root (the tests' usual user); the mapping is the one ENOSPC goes through.
    assert report(PermissionError(13, "Permission denied", "/home/u/.local/state/hermes/auth.json")) == 2
    assert capsys.readouterr().err == (
        "hermes: error: Cannot use /home/u/.local/state/hermes/auth.json: Permission denied. "
        "Check the permissions of the file and its directory.\n"
    )


# -- 9. config set never turns bad list input into a key ------------------------------------------


@pytest.mark.parametrize("value", ["[1,2]", "[sk-unclosed", '["a", 3]', "[[]]"])
def test_config_set_refuses_array_text_that_is_not_a_list_of_strings(hermes: Hermes, value: str) -> None:
    config = hermes.write_config('[providers.myplan]\napi_keys = ["sk-the-real-key-0001"]\n')
    done = hermes.run("config", "set", "providers.myplan.api_keys", value)
    assert done.returncode == 2 and "api_keys must be a list of strings" in done.stderr, done.stderr
    assert value not in done.stderr  # a secret setting's value is not echoed
    assert config.read_text() == '[providers.myplan]\napi_keys = ["sk-the-real-key-0001"]\n'


def test_config_set_splits_an_mcp_command_line_as_the_shell_would(hermes: Hermes) -> None:
    done = hermes.run("config", "set", "mcp.servers.files.command", "python -m 'my server'")
    assert done.returncode == 0, done.stderr
    assert 'command = ["python", "-m", "my server"]' in (hermes.home / "config.toml").read_text()
    unbalanced = hermes.run("config", "set", "mcp.servers.files.command", "python -m 'my server")
    assert unbalanced.returncode == 2 and "must be a list of strings" in unbalanced.stderr


# -- 10. a symlinked config.toml ----------------------------------------------------------------


def test_config_set_writes_through_a_symlinked_config(hermes: Hermes) -> None:
    dotfiles = hermes.home / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "hermes.toml"
    target.write_text('# from my dotfiles\n[model]\nname = "old"\n')
    link = hermes.home / "config.toml"
    link.symlink_to(target)
    done = hermes.run("config", "set", "model.name", "new")
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and link.resolve() == target
    assert target.read_text() == '# from my dotfiles\n[model]\nname = "new"\n'
    assert sorted(p.name for p in dotfiles.iterdir()) == ["hermes.toml"]  # no temp file left beside it


# -- the sessions database -----------------------------------------------------------------------


def _foreign_db(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE sessions (name TEXT)")
    conn.execute("INSERT INTO sessions VALUES ('my data')")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    "kind", ["foreign sqlite", "garbage", "one byte", "directory", "newer hermes", "newer migration"]
)
def test_an_unusable_sessions_db_is_named_and_left_untouched(myplan: Hermes, kind: str) -> None:
    db = myplan.home / "data" / "sessions.db"
    db.parent.mkdir(parents=True)
    if kind == "foreign sqlite":
        _foreign_db(db)
    elif kind == "garbage":
        db.write_bytes(os.urandom(4096))
    elif kind == "one byte":
        db.write_bytes(b"\0")
    elif kind == "directory":
        db.mkdir()
    elif kind == "newer migration":  # the schema version is this hermes's, but one more step was applied
        with SessionStore(db) as store:
            store.recent()
        conn = sqlite3.connect(db)
        conn.execute("INSERT INTO _migrations (name, applied) VALUES ('m099_from_the_future', 0)")
        conn.commit()
        conn.close()
    else:
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA user_version = 99")
        conn.close()
    before = db.read_bytes() if db.is_file() else None
    for args in (("ask", "-p", "myplan", "-m", "model-a", "hi"), ("sessions", "list"), ("ask", "-c", "hi")):
        done = myplan.run(*args)
        assert_no_bug(done)
        assert done.returncode == 2 and str(db) in done.stderr, (args, done.stderr)
    assert (db.read_bytes() if db.is_file() else None) == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["sessions.db"]  # no -wal or -shm beside it


# -- guarded() lets a command's deliberate exit through ----------------------------------------------


def test_config_get_of_an_unset_key_is_its_documented_exit_not_a_bug(hermes: Hermes) -> None:
    done = hermes.run("config", "get", "model.name")
    assert done.returncode == 1 and "is not set" in done.stderr and "internal error" not in done.stderr


@pytest.mark.parametrize("value", ["[]", '"x"', "1", "[1, 2]"])
def test_a_provider_entry_that_is_not_a_table_is_named_never_a_crash(
    hermes: Hermes, fake: FakeServer, value: str
) -> None:
    """Found by the config fuzz test: `[providers] x = []` was warned of, then read as a table (exit 1)."""
    hermes.write_config(f'[providers]\nx = {value}\n"" = {value}\n\n[providers.myplan]\nbase_url = "{fake.base_url}"\n')
    result = hermes.run("ask", "-p", "myplan", "-m", "m", "--no-tools", "hi", env={"MYPLAN_API_KEY": "sk-myplan-0001"})
    assert result.returncode in (0, 2), result.stderr  # a scalar is refused, a list ignored: never exit 1
    assert "providers.x" in result.stderr and "Traceback" not in result.stderr
