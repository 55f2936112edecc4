"""The trust boundary, end to end: no redirect, display, child process or malformed key may move a key
or the conversation where it does not belong.

Each test runs the real `hermes` against loopback fakes and asserts what the user and each host saw.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from providers.secrets import mask_key, mask_url
from tests.conftest import Hermes, state_document
from tests.fakeserver import FakeServer, Reply, Status, ToolCalls

KEY = "sk-myplan-key-0001"


def redirect(status: int, target: FakeServer, path: str = "/chat/completions") -> Status:
    return Status(status, {"error": {"message": "moved"}}, headers={"Location": f"{target.base_url}{path}"})


# -- redirects ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("stream", [True, False])
def test_a_redirect_is_an_endpoint_error_and_nothing_is_resent(
    myplan: Hermes, fake: FakeServer, fake2: FakeServer, status: int, stream: bool
) -> None:
    fake.always(redirect(status, fake2))
    fake2.always(Reply("the other host answered"))
    args = ["ask", "-m", "myplan:model-a", "hello, secret conversation"] + ([] if stream else ["--no-stream"])
    result = myplan.run(*args)
    assert result.returncode == 5, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "other host" not in result.stderr
    assert f"HTTP {status}" in result.stderr
    assert f"{fake2.base_url}/chat/completions" in result.stderr  # the Location, so the user can decide
    assert "base_url" in result.stderr
    assert "Traceback" not in result.stderr and KEY not in result.stderr
    assert fake2.log == [], "the redirect target must receive nothing"
    assert len(fake.requests()) == 1, "a redirect is not retried"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_models_does_not_follow_a_redirect(myplan: Hermes, fake: FakeServer, fake2: FakeServer, status: int) -> None:
    fake.models = redirect(status, fake2, "/models")
    fake2.models = ["evil-model"]
    result = myplan.run("models", "-p", "myplan")
    assert result.returncode == 5, (result.stdout, result.stderr)
    assert "evil-model" not in result.stdout
    assert f"HTTP {status}" in result.stderr
    assert fake2.log == []


def test_a_redirect_does_not_fall_back_or_rotate(myplan: Hermes, fake: FakeServer, fake2: FakeServer) -> None:
    myplan.env["MYPLAN_API_KEYS"] = "sk-myplan-key-0002,sk-myplan-key-0003"
    fake.always(redirect(307, fake2))
    result = myplan.run("ask", "-m", "myplan:model-a", "hi", "--json")
    assert result.returncode == 5
    assert [r.key for r in fake.requests()] == [KEY]
    assert fake2.log == []
    state = state_document(myplan.home / "state")
    assert "exhausted" not in json.dumps(state)


# -- secrets never reach a child process, the model, a record or a display ------------------------------

OTHER_KEYS = {
    "ANTHROPIC_API_KEY": "sk-ant-must-not-leak-000111222",
    "OPENROUTER_API_KEY": "sk-or-v1-must-not-leak-333444555",
    "SOMEVENDOR_API_KEYS": "sv-first-key-0000001,sv-second-key-000002",
}
STATE_PASSWORD = "redis-pass-w0rd-9876"
GITHUB_TOKEN = "ghp_0123456789abcdefGHIJKLMNOPqrstuvwx"
MCP_SERVER = Path(__file__).with_name("mcp_server.py")


def leaked(texts: list[str], secrets: list[str], *, masked_too: bool = True) -> list[str]:
    """Each secret found whole, or (`masked_too`) in the masked form that still identifies it (`sk-…tail`):
    a child process or the model has no business knowing even which key hermes holds. Displays show
    the masked form by design."""
    found = []
    for secret in secrets:
        masked = mask_key(secret)
        for text in texts:
            if secret in text or (masked_too and len(secret) >= 12 and masked in text):
                found.append(secret)
    return found


def every_file(root: Path) -> list[str]:
    return [p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file()]


def all_keys(hermes: Hermes) -> list[str]:
    keys = [KEY, *OTHER_KEYS.values(), STATE_PASSWORD]
    return [k for value in keys for k in value.split(",")]


def with_mcp_and_keys(hermes: Hermes, fake: FakeServer, *, extra: str = "") -> None:
    hermes.write_config(
        f'[model]\nprovider = "myplan"\nname = "model-a"\n\n'
        f'[providers.myplan]\nbase_url = "{fake.base_url}"\n\n'
        f'[mcp.servers.probe]\ncommand = ["{sys.executable}", "{MCP_SERVER}"]\n{extra}'
    )
    hermes.env.update(OTHER_KEYS)
    hermes.env["MYPLAN_API_KEY"] = KEY
    hermes.env["HERMES_STATE_URL"] = f"redis://fleet:{STATE_PASSWORD}@127.0.0.1:1/0"
    hermes.env["GITHUB_TOKEN"] = GITHUB_TOKEN


def test_an_mcp_tool_that_returns_its_environment_holds_no_key(
    hermes: Hermes, fake: FakeServer, tmp_path: Path
) -> None:
    with_mcp_and_keys(hermes, fake)
    fake.script(ToolCalls([("get_env", {})]), Reply("Here is what I saw."))
    result = hermes.run("ask", "show me your environment", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    tool_result = next(m["content"] for m in fake.requests()[-1].body["messages"] if m["role"] == "tool")  # type: ignore[index]  # a JSON body
    assert "PATH=" in tool_result  # the tool did run and return its environment
    assert "GITHUB_TOKEN" not in tool_result  # not named in pass_env: a credential-like variable stays home
    texts = [
        tool_result,
        json.dumps([r.body for r in fake.log]),
        result.stdout,
        result.stderr,
        *every_file(hermes.home),
    ]
    assert leaked(texts, [*all_keys(hermes), GITHUB_TOKEN]) == []


def test_pass_env_hands_a_variable_to_mcp_servers_and_commands_but_the_model_sees_it_masked(
    hermes: Hermes, fake: FakeServer, tmp_path: Path
) -> None:
    with_mcp_and_keys(hermes, fake, extra='\n[tools]\npass_env = ["GITHUB_TOKEN", "MYPLAN_API_KEY"]\n')
    fake.script(
        ToolCalls(
            [("get_env", {}), ("run_command", {"command": 'echo "token:${#GITHUB_TOKEN} key:${#MYPLAN_API_KEY}"'})]
        ),
        Reply("done"),
    )
    result = hermes.run("ask", "-y", "go", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    results = [m["content"] for m in fake.requests()[-1].body["messages"] if m["role"] == "tool"]  # type: ignore[index]  # a JSON body
    assert f"GITHUB_TOKEN={mask_key(GITHUB_TOKEN)}" in results[0]  # passed on, but masked for the model
    assert "MYPLAN_API_KEY" not in results[0]  # a provider key is never passed, even when named
    assert f"token:{len(GITHUB_TOKEN)} key:0" in results[1]
    assert all(
        GITHUB_TOKEN not in text
        for text in [json.dumps([r.body for r in fake.log]), result.stdout, result.stderr, *every_file(hermes.home)]
    )
    assert leaked([*results, *every_file(hermes.home)], all_keys(hermes)) == []


def test_run_command_env_has_no_provider_key_or_state_password(
    hermes: Hermes, fake: FakeServer, tmp_path: Path
) -> None:
    with_mcp_and_keys(hermes, fake)
    hermes.write_config(
        f'[model]\nprovider = "myplan"\nname = "model-a"\n\n[providers.myplan]\nbase_url = "{fake.base_url}"\n'
    )
    fake.script(ToolCalls([("run_command", {"command": "env; echo END"})]), Reply("ok"))
    result = hermes.run("ask", "-y", "go", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    output = next(m["content"] for m in fake.requests()[-1].body["messages"] if m["role"] == "tool")  # type: ignore[index]  # a JSON body
    assert "END" in output and "PATH=" in output
    for name in [*OTHER_KEYS, "MYPLAN_API_KEY", "HERMES_STATE_URL", "GITHUB_TOKEN"]:
        assert f"{name}=" not in output
    assert leaked([output, *every_file(hermes.home)], [*all_keys(hermes), GITHUB_TOKEN]) == []


def config_with_three_secret_kinds(hermes: Hermes, fake: FakeServer, *, userinfo: bool) -> None:
    base_url = fake.base_url.replace("http://", "http://plan-user:url-pass-w0rd-1234@") if userinfo else fake.base_url
    hermes.write_config(
        f'[model]\nprovider = "myplan"\nname = "model-a"\n\n'
        f'[providers.myplan]\nbase_url = "{base_url}"\napi_keys = ["{KEY}"]\n\n'
        f'[credentials]\nstate = "redis://fleet:{STATE_PASSWORD}@127.0.0.1:1/0"\n\n'
        f'[mcp.servers.gh]\ncommand = ["{sys.executable}", "{MCP_SERVER}"]\n'
        f'env = {{ GITHUB_TOKEN = "{GITHUB_TOKEN}", LOG_LEVEL = "warn" }}\n'
    )


@pytest.mark.parametrize(
    "args",
    [
        ["config", "show"],
        ["config", "show", "--json"],
        ["config", "get", "mcp"],
        ["config", "get", "credentials.state"],
        ["config", "get", "providers.myplan.api_keys"],
        ["providers"],
        ["providers", "--json"],
        ["auth", "list"],
        ["auth", "list", "--json"],
        ["--debug", "ask", "-m", "myplan:model-a", "hi"],
    ],
)
def test_displays_mask_every_secret_kind(hermes: Hermes, fake: FakeServer, args: list[str]) -> None:
    config_with_three_secret_kinds(hermes, fake, userinfo=False)
    fake.stop()  # the ask fails (connection refused): its error and --debug traceback are displays too
    result = hermes.run(*args)
    assert result.returncode in (0, 5), (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr or args[0] == "--debug"
    assert leaked([result.stdout, result.stderr], [KEY, STATE_PASSWORD, GITHUB_TOKEN], masked_too=False) == []
    if args[:2] == ["config", "show"]:
        assert "warn" in result.stdout  # an ordinary value stays readable
        assert "fleet:***@127.0.0.1" in result.stdout


@pytest.mark.parametrize("args", [["config", "show"], ["providers"], ["ask", "hi"], ["--debug", "ask", "hi"]])
def test_a_base_url_with_userinfo_is_refused_and_never_shown(hermes: Hermes, fake: FakeServer, args: list[str]) -> None:
    config_with_three_secret_kinds(hermes, fake, userinfo=True)
    result = hermes.run(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "not in the URL" in result.stderr or "user:password@" in result.stderr
    assert (
        leaked(
            [result.stdout, result.stderr], [KEY, STATE_PASSWORD, GITHUB_TOKEN, "url-pass-w0rd-1234"], masked_too=False
        )
        == []
    )
    assert fake.log == []


@pytest.mark.parametrize("where", ["env", "flag"])
def test_a_base_url_with_userinfo_from_env_or_flag_is_refused(myplan: Hermes, fake: FakeServer, where: str) -> None:
    url = fake.base_url.replace("http://", "http://u:url-pass-w0rd-1234@")
    env = {"MYPLAN_BASE_URL": url} if where == "env" else {}
    flags = ["--base-url", url] if where == "flag" else []
    result = myplan.run("ask", "-m", "myplan:model-a", *flags, "hi", env=env)
    assert result.returncode == 2, result.stderr
    assert "url-pass-w0rd-1234" not in result.stderr + result.stdout
    assert fake.log == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://fleet:pw@h:6379/0", "redis://fleet:***@h:6379/0"),
        ("https://sk-lone-user-as-key@h/v1", "https://***@h/v1"),
        (
            "https://h/v1?api-version=2024-06&api_key=sk-q&X-Amz-Credential=c&token=&x",
            "https://h/v1?api-version=2024-06&api_key=***&X-Amz-Credential=***&token=&x",
        ),
        ("https://h/v1#access_token=t", "https://h/v1#***"),
        ("http://127.0.0.1:8080/v1?q=a%20b", "http://127.0.0.1:8080/v1?q=a%20b"),
        ("http://[x", "http://[x"),
        ("http://u:url-pass-w0rd-1234@[x", "http://***"),
    ],
)
def test_mask_url_masks_every_place_a_credential_can_sit(url: str, shown: str) -> None:
    assert mask_url(url) == shown


@pytest.mark.parametrize("url", ["http://[x", "http://u:url-pass-w0rd-1234@[x/v1"])
def test_a_base_url_that_cannot_be_parsed_is_refused_without_echoing_it(myplan: Hermes, url: str) -> None:
    for args in (("ask", "-m", "myplan:model-a", "--base-url", url, "hi"), ("config", "set", "model.base_url", url)):
        result = myplan.run(*args)
        assert result.returncode == 2, result.stderr  # it was exit 1: masking the URL for the message raised
        assert "url-pass-w0rd-1234" not in result.stderr + result.stdout


def test_config_set_refuses_a_url_with_userinfo_without_echoing_it(hermes: Hermes) -> None:
    result = hermes.run("config", "set", "providers.myplan.base_url", "https://u:url-pass-w0rd-1234@h.test/v1")
    assert result.returncode == 2
    assert "url-pass-w0rd-1234" not in result.stderr + result.stdout
    assert not (hermes.home / "config.toml").exists()


# -- malformed keys are refused at the door --------------------------------------------------------------

BAD_KEYS = {
    "newline": "sk-myplan-0123456789\nX-Injected: 1",
    "non-ascii": "sk-myplan-0123456789\u00e9\u4e2d",
    "tab": "sk-myplan-01234\t56789",
    "control": "sk-myplan-01234\x0156789",
}


@pytest.mark.parametrize("kind", BAD_KEYS)
@pytest.mark.parametrize("source", ["MYPLAN_API_KEY", "MYPLAN_API_KEYS", "config"])
def test_a_malformed_key_is_refused_before_any_request(
    hermes: Hermes, fake: FakeServer, kind: str, source: str
) -> None:
    bad = BAD_KEYS[kind]
    config = f'[providers.myplan]\nbase_url = "{fake.base_url}"\n'
    if source == "config":
        config += f"api_keys = [{json.dumps(bad)}]\n"
    else:
        hermes.env[source] = bad if source == "MYPLAN_API_KEY" else f"sk-good-key-00000001,{bad}"
    hermes.write_config(config)
    result = hermes.run("ask", "-m", "myplan:model-a", "hi")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert (source if source != "config" else "api_keys") in result.stderr  # names where it came from
    assert fake.log == []
    secret_part = bad.split("\n")[0] if kind == "newline" else bad
    assert "sk-myplan-0123456789" not in result.stderr + result.stdout
    assert all("sk-myplan-01234" not in text for text in every_file(hermes.home) if not text.startswith("[prov"))
    assert secret_part not in result.stderr


@pytest.mark.parametrize("kind", ["non-ascii", "tab", "control"])
def test_auth_add_refuses_a_malformed_key(hermes: Hermes, kind: str) -> None:
    result = hermes.run("auth", "add", "openrouter", input=BAD_KEYS[kind].encode() + b"\n")
    assert result.returncode == 2, result.stderr
    assert "sk-myplan" not in result.stderr + result.stdout
    assert not (hermes.home / "state" / "auth.json").exists()
    assert all("sk-myplan" not in text for text in every_file(hermes.home))


@pytest.mark.parametrize("where", ["config", "env", "flag"])
def test_a_base_url_with_a_key_in_its_query_is_refused_and_never_shown(
    myplan: Hermes, fake: FakeServer, where: str
) -> None:
    url = f"{fake.base_url}?api-version=2024-10&api_key=query-key-0123456789"
    if where == "config":
        myplan.write_config(f'[providers.myplan]\nbase_url = "{url}"\nmodels = ["model-a"]\n')
    env = {"MYPLAN_BASE_URL": url} if where == "env" else {}
    flags = ["--base-url", url] if where == "flag" else []
    result = myplan.run("ask", "-m", "myplan:model-a", *flags, "hi", env=env)
    assert result.returncode == 2, result.stderr
    assert "key in" in result.stderr and "api_key" in result.stderr
    assert "query-key-0123456789" not in result.stderr + result.stdout
    assert fake.log == []
