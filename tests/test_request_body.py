"""The request our transport sends equals what the official `openai` SDK sends for the same conversation.

Both requests are captured by the loopback fake server and compared as parsed JSON, with the
Authorization and Content-Type headers. The SDK is the reference: providers are tested against it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from agent.agent import Agent
from agent.conversation import Message
from agent.route import Target
from agent.transport import HTTPTransport, Timeouts
from hermes_cli.paths import Paths
from hermes_cli.wiring import Wiring
from tests.conftest import Hermes
from tests.fakeserver import FakeServer, LoggedRequest

KEY = "sk-body-test-0123456789abcdef"
MODEL = "model-a"
SYSTEM = 'You are terse. Ünïcödé ✓ and "quotes"\nand a newline.'
HISTORY = [
    ("user", "What is 2+2?"),
    ("assistant", "4"),
    ("user", "And times 3? 日本語 \u2028 \\ backslash"),
]


def sdk_messages() -> list[dict[str, Any]]:
    return [{"role": "system", "content": SYSTEM}, *({"role": r, "content": c} for r, c in HISTORY)]


def sdk_request(
    fake: FakeServer,
    *,
    stream: bool,
    messages: list[dict[str, Any]] | None = None,
    model: str = MODEL,
    tools: list[dict[str, Any]] | None = None,
) -> LoggedRequest:
    client = openai.OpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0)
    before = len(fake.requests())
    extra: dict[str, Any] = {"tools": tools} if tools else {}
    if stream:
        chunks = client.chat.completions.create(
            model=model,
            messages=cast(list[ChatCompletionMessageParam], messages or sdk_messages()),
            stream=True,
            stream_options={"include_usage": True},
            **extra,
        )
        for _ in chunks:
            pass
    else:
        client.chat.completions.create(
            model=model, messages=cast(list[ChatCompletionMessageParam], messages or sdk_messages()), **extra
        )
    client.close()
    requests = fake.requests()
    assert len(requests) == before + 1
    return requests[-1]


def make_agent(tmp_path: Path, fake: FakeServer) -> Agent:
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'[providers.myplan]\nbase_url = "{fake.base_url}"\nmodels = ["{MODEL}"]\n', encoding="utf-8"
    )
    runtime = Wiring({"MYPLAN_API_KEY": KEY}, paths=Paths(config_file, tmp_path / "state", tmp_path / "data"))
    route = runtime.route("myplan", MODEL)
    history = [Message(role, content) for role, content in HISTORY]
    return Agent(runtime, route, system=SYSTEM, messages=history)


def our_request(fake: FakeServer, body: dict[str, Any], *, stream: bool) -> LoggedRequest:
    transport = HTTPTransport(Timeouts(connect=10, read=120))
    before = len(fake.requests())
    try:
        list(transport.chat(Target(fake.base_url, KEY), body, stream=stream))
    finally:
        transport.close()
    requests = fake.requests()
    assert len(requests) == before + 1
    return requests[-1]


def assert_same_request(ours: LoggedRequest, reference: LoggedRequest) -> None:
    assert ours.method == reference.method == "POST"
    assert ours.path == reference.path == "/v1/chat/completions"
    assert ours.body is not None, ours.raw_body
    assert json.loads(ours.raw_body) == json.loads(reference.raw_body)
    assert ours.body == reference.body
    assert ours.headers["authorization"] == reference.headers["authorization"] == f"Bearer {KEY}"
    assert ours.headers["content-type"].split(";")[0] == reference.headers["content-type"].split(";")[0]
    assert ours.key == reference.key == KEY


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_transport_body_equals_sdk(tmp_path: Path, fake: FakeServer, stream: bool) -> None:
    agent = make_agent(tmp_path, fake)
    body = agent.body(stream=stream)
    ours = our_request(fake, body, stream=stream)
    reference = sdk_request(fake, stream=stream)
    assert_same_request(ours, reference)


def test_streaming_body_asks_for_usage(tmp_path: Path, fake: FakeServer) -> None:
    ours = our_request(fake, make_agent(tmp_path, fake).body(stream=True), stream=True).json
    assert ours["stream"] is True
    assert ours["stream_options"] == {"include_usage": True}
    assert [m["role"] for m in ours["messages"]] == ["system", "user", "assistant", "user"]


def test_non_streaming_body_has_no_stream_key(tmp_path: Path, fake: FakeServer) -> None:
    ours = our_request(fake, make_agent(tmp_path, fake).body(stream=False), stream=False).json
    assert "stream" not in ours
    assert "stream_options" not in ours


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_agent_reply_sends_the_sdk_body(tmp_path: Path, fake: FakeServer, stream: bool) -> None:
    """The whole stack (Agent -> recovery -> transport) sends the same request as the SDK."""
    agent = make_agent(tmp_path, fake)
    events = list(agent.reply(stream=stream))
    assert events
    assert agent.last_answer() == "Hello from fake"
    ours = fake.requests()[-1]
    reference = sdk_request(fake, stream=stream)
    assert_same_request(ours, reference)


def test_follow_up_turn_body_equals_sdk(tmp_path: Path, fake: FakeServer) -> None:
    """After a reply, the next request carries the answer as an assistant message, as the SDK would."""
    agent = make_agent(tmp_path, fake)
    list(agent.reply(stream=True))
    agent.add_user("Thanks.")
    list(agent.reply(stream=True))
    ours = fake.requests()[-1]
    messages = [
        *sdk_messages(),
        {"role": "assistant", "content": "Hello from fake"},
        {"role": "user", "content": "Thanks."},
    ]
    reference = sdk_request(fake, stream=True, messages=messages)
    assert_same_request(ours, reference)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_hermes_ask_body_equals_sdk(hermes: Hermes, fake: FakeServer, stream: bool) -> None:
    hermes.write_config(f'[providers.myplan]\nbase_url = "{fake.base_url}"\nmodels = ["{MODEL}"]\n')
    args = ["ask", "-p", "myplan", "-s", SYSTEM, "What is 2+2?"]
    if not stream:
        args.append("--no-stream")
    result = hermes.run(*args, env={"MYPLAN_API_KEY": KEY})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello from fake\n"
    ours = fake.requests()[-1]
    assert "read_file" in [t["function"]["name"] for t in ours.json["tools"]]
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 2+2?"}]
    reference = sdk_request(fake, stream=stream, messages=messages, tools=ours.json["tools"])
    assert_same_request(ours, reference)


def test_a_models_extra_body_is_merged_into_every_request(myplan: Hermes, fake: FakeServer) -> None:
    myplan.write_config(
        (myplan.home / "config.toml").read_text()
        + '\n[models."model-a"]\nextra_body = { ignore_eos = true, top_k = 5, n_probs = [1, 2] }\n'
    )
    for extra in ([], ["--no-stream"]):
        done = myplan.run("ask", "-m", "model-a", *extra, "hi")
        assert done.returncode == 0, done.stderr
    for request in fake.requests():
        body = request.json
        assert (body["ignore_eos"], body["top_k"], body["n_probs"]) == (True, 5, [1, 2])
        assert body["model"] == "model-a"
    other = myplan.run("ask", "-m", "model-b", "hi")
    assert other.returncode == 0 and "ignore_eos" not in (fake.requests()[-1].body or {})


@pytest.mark.parametrize(
    "table",
    [
        '{ model = "other" }',
        "{ messages = [] }",
        "{ stream = false }",
        "{ tools = [] }",
        "{ temperature = nan }",
        "{ when = 2024-01-01 }",
        '"x"',
    ],
)
def test_an_extra_body_that_would_replace_hermess_own_fields_is_a_config_error(
    myplan: Hermes, fake: FakeServer, table: str
) -> None:
    myplan.write_config((myplan.home / "config.toml").read_text() + f'\n[models."model-a"]\nextra_body = {table}\n')
    done = myplan.run("ask", "-m", "model-a", "hi")
    assert done.returncode == 2, done.stderr
    assert "extra_body" in done.stderr and "Traceback" not in done.stderr
    assert fake.requests() == []
