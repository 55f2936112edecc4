"""`hermes ask` end to end: the real CLI as a subprocess against scripted loopback providers.

Asserted: stdout (the answer and nothing else), stderr (short, no traceback, no whole key), the exit
code of the contract, and which server got which request with which key.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from tests.conftest import Hermes
from tests.fakeserver import (
    CutStream,
    FakeServer,
    Html,
    InvalidJson,
    NotFound,
    RateLimit,
    Reply,
    Status,
)

KEY = "sk-myplan-0123456789abcdef"
DS_KEY = "sk-deepseek-fedcba9876543210"
SECRETS = (KEY, DS_KEY)
ANSWER = "Hello from fake"
ANSI = re.compile(r"\x1b[\[\]()]")


def use_myplan(hermes: Hermes, fake: FakeServer, *, retries: int | None = None, extra: str = "") -> None:
    """A custom provider on the fake, made the default, with one key in MYPLAN_API_KEY."""
    config = (
        '[model]\nprovider = "myplan"\n\n'
        f'[providers.myplan]\nbase_url = "{fake.base_url}"\nmodels = ["model-a", "model-b"]\n'
    )
    if retries is not None:
        config += f"\n[agent]\nmax_retries = {retries}\n"
    hermes.write_config(config + extra)
    hermes.env["MYPLAN_API_KEY"] = KEY


def use_deepseek(hermes: Hermes, fake: FakeServer) -> None:
    """The built-in deepseek provider pointed at a fake by DEEPSEEK_BASE_URL."""
    hermes.env["DEEPSEEK_BASE_URL"] = fake.base_url
    hermes.env["DEEPSEEK_API_KEY"] = DS_KEY


def no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def assert_failed(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """Exit `code`, nothing on stdout, a short plain message on stderr naming what failed."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    return assert_stderr(result, *needles)


def assert_stderr(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    stderr = result.stderr
    assert "Traceback" not in stderr
    assert not ANSI.search(stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, stderr
    for needle in needles:
        assert needle.lower() in stderr.lower(), (needle, stderr)
    no_secret(result.stdout, stderr)
    return stderr


def last_body(fake: FakeServer) -> dict[str, Any]:
    requests = fake.requests()
    assert requests, "the fake server got no chat request"
    return requests[-1].json


# -- answers ---------------------------------------------------------------------------------------


def test_streamed_answer_is_all_of_stdout(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("ask", "--no-tools", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ANSWER + "\n"
    assert not ANSI.search(result.stderr)
    [request] = fake.requests()
    assert (request.host, request.key, request.path) == (fake.host, KEY, "/v1/chat/completions")
    assert request.body == {
        "model": "model-a",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_prompt_words_are_joined(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("ask", "what", "is", "2+2?")
    assert result.returncode == 0, result.stderr
    assert last_body(fake)["messages"] == [{"role": "user", "content": "what is 2+2?"}]


@pytest.mark.parametrize(
    ("reply", "stdout"),
    [
        (Reply("ends with a newline\n"), "ends with a newline\n"),
        (Reply("héllo wörld ✓ 日本語 and a longer tail"), "héllo wörld ✓ 日本語 and a longer tail\n"),
        (Reply("two\nlines"), "two\nlines\n"),
        (Reply("tiny", chunks=["t", "i", "n", "y"]), "tiny\n"),
    ],
)
def test_answer_text_is_exact(hermes: Hermes, fake: FakeServer, reply: Reply, stdout: str) -> None:
    use_myplan(hermes, fake)
    fake.always(reply)
    for extra in ([], ["--no-stream"]):
        result = hermes.run("ask", *extra, "hi")
        assert result.returncode == 0, result.stderr
        assert result.stdout == stdout


def test_stdin_comes_first_then_a_blank_line_then_the_prompt(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("ask", "Summarise", "this.", input="first line\nsecond line\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ANSWER + "\n"
    assert last_body(fake)["messages"] == [{"role": "user", "content": "first line\nsecond line\n\nSummarise this."}]


def test_stdin_alone_is_the_prompt(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("ask", input="just stdin ✓\n")
    assert result.returncode == 0, result.stderr
    [message] = last_body(fake)["messages"]
    assert message["role"] == "user"
    assert message["content"].rstrip("\n") == "just stdin ✓"


def test_json_output(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("ask", "--json", "hi")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["content"] == ANSWER
    assert data["provider"] == "myplan"
    assert data["model"] == "model-a"
    assert data["base_url"] == fake.base_url
    assert data["usage"]["prompt_tokens"] == 10
    assert data["usage"]["completion_tokens"] == 5
    assert data["usage"]["total_tokens"] == 15
    assert isinstance(data["session_id"], str) and data["session_id"]
    assert data["base_url_source"].startswith("[providers.myplan]")
    no_secret(result.stdout, result.stderr)


def test_json_no_stream(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("ask", "--json", "--no-stream", "hi")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["content"] == ANSWER
    assert data["usage"]["total_tokens"] == 15
    assert "stream" not in last_body(fake)


def test_no_stream_sends_no_stream_key(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("ask", "--no-stream", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ANSWER + "\n"
    body = last_body(fake)
    assert "stream" not in body
    assert "stream_options" not in body
    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_system_prompt_is_the_first_message(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("ask", "-s", "Answer in French.", "hi")
    assert result.returncode == 0, result.stderr
    assert last_body(fake)["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "hi"},
    ]
    result = hermes.run("ask", "--system", "Be brief.", "hello", input="context\n")
    assert result.returncode == 0, result.stderr
    assert last_body(fake)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "context\n\nhello"},
    ]


def test_model_flag_with_provider_prefix(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("ask", "--json", "-m", "myplan:model-b", "hi")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == "model-b"
    assert last_body(fake)["model"] == "model-b"
    result = hermes.run("ask", "-m", "model-b", "hi")
    assert result.returncode == 0, result.stderr
    assert last_body(fake)["model"] == "model-b"


def test_builtin_provider_via_env_base_url(hermes: Hermes, fake: FakeServer, fake2: FakeServer) -> None:
    use_myplan(hermes, fake)
    use_deepseek(hermes, fake2)
    result = hermes.run("ask", "--json", "-p", "deepseek", "hi")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["provider"], data["model"], data["base_url"]) == ("deepseek", "deepseek-chat", fake2.base_url)
    assert "DEEPSEEK_BASE_URL" in data["base_url_source"]
    assert fake.requests() == []
    [request] = fake2.requests()
    assert (request.host, request.key) == (fake2.host, DS_KEY)
    assert request.json["model"] == "deepseek-chat"


def test_provider_prefix_switches_provider_host_and_key(hermes: Hermes, fake: FakeServer, fake2: FakeServer) -> None:
    use_myplan(hermes, fake)
    use_deepseek(hermes, fake2)
    result = hermes.run("ask", "-m", "deepseek:deepseek-reasoner", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ANSWER + "\n"
    assert fake.requests() == []
    assert fake2.keys_seen() == [DS_KEY]
    assert last_body(fake2)["model"] == "deepseek-reasoner"
    # And back: the default provider's own key goes to its own host.
    result = hermes.run("ask", "hi")
    assert result.returncode == 0, result.stderr
    assert fake.keys_seen() == [KEY]
    assert fake2.keys_seen() == [DS_KEY]


def test_base_url_flag_overrides(hermes: Hermes, fake: FakeServer, fake2: FakeServer) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("ask", "--json", "--base-url", fake2.base_url + "/", "hi")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["base_url"] == fake2.base_url
    assert data["base_url_source"] == "flag --base-url"
    assert fake.requests() == []
    [request] = fake2.requests()
    assert (request.key, request.path) == (KEY, "/v1/chat/completions")


def test_base_url_flag_for_a_builtin_provider(hermes: Hermes, fake: FakeServer, fake2: FakeServer) -> None:
    use_deepseek(hermes, fake)
    result = hermes.run("ask", "-p", "deepseek", "--base-url", fake2.base_url, "hi")
    assert result.returncode == 0, result.stderr
    assert fake.requests() == []
    assert fake2.keys_seen() == [DS_KEY]


def test_providers_json_shows_endpoint_sources(hermes: Hermes, fake: FakeServer, fake2: FakeServer) -> None:
    use_myplan(hermes, fake)
    use_deepseek(hermes, fake2)
    result = hermes.run("providers", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["myplan"]["base_url"] == fake.base_url
    assert rows["myplan"]["base_url_source"].startswith("[providers.myplan]")
    assert rows["deepseek"]["base_url"] == fake2.base_url
    assert rows["deepseek"]["base_url_source"] == "env DEEPSEEK_BASE_URL"
    assert rows["openai"]["base_url"] == "https://api.openai.com/v1"
    assert rows["openai"]["base_url_source"] == "registry default"
    assert rows["myplan"]["keys"] == 1 and rows["deepseek"]["keys"] == 1
    no_secret(result.stdout, result.stderr)
    # No provider is contacted to list them.
    assert fake.log == [] and fake2.log == []

    result = hermes.run("providers", "--json", "-p", "myplan", "--base-url", fake2.base_url)
    assert result.returncode == 0, result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["myplan"]["base_url"] == fake2.base_url
    assert rows["myplan"]["base_url_source"] == "flag --base-url"
    assert rows["deepseek"]["base_url_source"] == "env DEEPSEEK_BASE_URL"


def test_providers_table_is_plain_text(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("providers")
    assert result.returncode == 0, result.stderr
    assert fake.base_url in result.stdout
    assert not ANSI.search(result.stdout)


def test_models_lists_the_providers_models(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    fake.models = ["zeta-1", "alpha:7b", "beta/2"]
    result = hermes.run("models", "-p", "myplan")
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == ["alpha:7b", "beta/2", "zeta-1"]
    [request] = fake.requests("/models")
    assert (request.method, request.path, request.key) == ("GET", "/v1/models", KEY)


def test_models_of_builtin_provider_go_to_its_endpoint(hermes: Hermes, fake: FakeServer, fake2: FakeServer) -> None:
    use_myplan(hermes, fake)
    use_deepseek(hermes, fake2)
    result = hermes.run("models", "--provider", "deepseek")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["model-a", "model-b"]
    assert fake.log == []
    assert [r.key for r in fake2.requests("/models")] == [DS_KEY]


# -- bad input: exit 2, nothing sent ---------------------------------------------------------------


def test_unknown_flag(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("ask", "--frobnicate", "hi")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "--frobnicate" in result.stderr
    assert "Traceback" not in result.stderr
    assert fake.log == []


def test_unknown_provider_suggests(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("ask", "-p", "deepsek", "hi")
    assert_failed(result, 2, "deepsek", "deepseek")
    assert fake.log == []


def test_unknown_provider_prefix_in_model(hermes: Hermes, fake: FakeServer) -> None:
    use_deepseek(hermes, fake)
    hermes.write_config('[model]\nprovider = "deepseek"\n')
    result = hermes.run("ask", "-m", "nope:model", "hi")
    assert_failed(result, 2, "nope")
    result = hermes.run("ask", "-m", "deepsek:deepseek-chat", "hi")
    assert_failed(result, 2, "deepseek:deepseek-chat")
    assert fake.log == []


def test_no_credential_names_the_env_var(hermes: Hermes, fake: FakeServer) -> None:
    hermes.env["DEEPSEEK_BASE_URL"] = fake.base_url
    result = hermes.run("ask", "-p", "deepseek", "hi")
    assert_failed(result, 2, "DEEPSEEK_API_KEY")
    use_myplan(hermes, fake)
    del hermes.env["MYPLAN_API_KEY"]
    result = hermes.run("ask", "hi")
    assert_failed(result, 2, "MYPLAN_API_KEY")
    assert fake.log == []


def test_no_provider_at_all(hermes: Hermes) -> None:
    hermes.write_config("[local]\nauto = false\n")  # else the bundled local model would answer
    result = hermes.run("ask", "hi")
    assert_failed(result, 2, "provider")


def test_non_utf8_stdin(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("ask", "hi", input=b"caf\xe9 \xff\xfe binary\n")
    assert_failed(result, 2, "UTF-8")
    assert fake.log == []


@pytest.mark.parametrize(
    ("args", "stdin"), [([], b""), ([""], b""), (["   "], b"\n\n  \n")], ids=["nothing", "empty-arg", "blank"]
)
def test_empty_prompt_and_empty_stdin(hermes: Hermes, fake: FakeServer, args: list[str], stdin: bytes) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("ask", *args, input=stdin)
    assert_failed(result, 2)
    assert fake.log == []


@pytest.mark.parametrize("bad", ["notaurl", "ftp://127.0.0.1/v1", "127.0.0.1:9/v1"])
def test_bad_base_url_flag(hermes: Hermes, fake: FakeServer, bad: str) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("ask", "--base-url", bad, "hi")
    assert_failed(result, 2, bad)
    assert fake.log == []


def test_bad_base_url_env(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    result = hermes.run("ask", "hi", env={"MYPLAN_BASE_URL": "notaurl"})
    assert_failed(result, 2, "MYPLAN_BASE_URL")
    assert fake.log == []


# -- provider and network failures: exit 5 (3, 4) --------------------------------------------------


def test_html_answer(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake, retries=0)
    fake.always(Html(502))
    result = hermes.run("ask", "hi")
    assert_failed(result, 5, "502", "HTML")
    assert len(fake.requests()) == 1


def test_html_answer_with_200(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake, retries=0)
    fake.always(Status(200, "<html><body>Welcome to nginx</body></html>", content_type="text/html"))
    result = hermes.run("ask", "hi")
    assert_failed(result, 5, "HTML")


def test_invalid_json_200(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake, retries=0)
    fake.always(InvalidJson())
    for extra in ([], ["--no-stream"]):
        result = hermes.run("ask", *extra, "hi")
        assert_failed(result, 5, "JSON")


def test_connection_refused(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake, retries=0)
    fake.stop()
    result = hermes.run("ask", "hi")
    assert_failed(result, 5, fake.host)


def test_connection_refused_after_retries(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake, retries=1)
    fake.stop()
    result = hermes.run("ask", "hi")
    assert result.returncode == 5
    assert result.stdout == ""
    assert fake.host in result.stderr
    assert "Traceback" not in result.stderr


def test_404_names_the_endpoint(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    fake.always(NotFound())
    result = hermes.run("ask", "hi")
    assert_failed(result, 5, fake.base_url, "404")
    # A 404 means the endpoint is wrong: it is not retried.
    assert len(fake.requests()) == 1


def test_stream_cut_halfway(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    fake.always(CutStream("abcdefghijklmnopqrstuvwxyz", after=2))
    result = hermes.run("ask", "hi")
    assert result.returncode == 5, result.stderr
    assert result.stdout == "abcdefghijklmnop\n"
    assert_stderr(result)


def test_401_on_the_only_key(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    fake.always(Status(401, {"error": {"message": f"Invalid API Key {KEY}", "code": 401}}))
    result = hermes.run("ask", "hi")
    assert_failed(result, 3, "myplan")
    assert fake.keys_seen() == [KEY]


def test_403_on_the_only_key(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    fake.always(Status(403))
    result = hermes.run("ask", "hi")
    assert_failed(result, 3)
    assert fake.keys_seen() == [KEY]


def test_429_with_long_retry_after_on_the_only_key(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    fake.always(RateLimit(retry_after=3600))
    result = hermes.run("ask", "hi")
    stderr = assert_failed(result, 4)
    # It says when the earliest key resets, and gives up at once: exactly one request.
    assert re.search(r"\d{1,2}:\d{2}", stderr), stderr
    assert len(fake.requests()) == 1
    # The cooldown is shared: a second run does not knock on the rate-limited key again.
    result = hermes.run("ask", "hi")
    assert_failed(result, 4)
    assert len(fake.requests()) == 1


def test_500_then_200_is_answered(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    fake.script(Status(500))
    result = hermes.run("ask", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ANSWER + "\n"
    assert fake.keys_seen() == [KEY, KEY]
    assert "Traceback" not in result.stderr


def test_500_then_200_json(hermes: Hermes, fake: FakeServer) -> None:
    use_myplan(hermes, fake)
    fake.script(Status(503))
    result = hermes.run("ask", "--json", "hi")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["content"] == ANSWER


# -- plain output ----------------------------------------------------------------------------------


@pytest.mark.parametrize("no_color", [True, False], ids=["NO_COLOR", "pipe"])
def test_no_ansi_escapes_off_a_terminal(hermes: Hermes, fake: FakeServer, no_color: bool) -> None:
    use_myplan(hermes, fake)
    hermes.env["TERM"] = "xterm-256color"
    if not no_color:
        hermes.env.pop("NO_COLOR", None)
    fake.always(Reply("# Title\n\n**bold** and `code`\n\n```python\nprint(1)\n```\n"))
    runs = [
        hermes.run("ask", "hi"),
        hermes.run("ask", "--json", "hi"),
        hermes.run("providers"),
        hermes.run("models", "-p", "myplan"),
        hermes.run("config", "show"),
        hermes.run("ask", "-p", "deepsek", "hi"),
    ]
    for result in runs:
        assert not ANSI.search(result.stdout), result.args
        assert not ANSI.search(result.stderr), result.args
    # Markdown is not rendered in a pipe: the answer is the text the model sent.
    assert runs[0].stdout == "# Title\n\n**bold** and `code`\n\n```python\nprint(1)\n```\n"
