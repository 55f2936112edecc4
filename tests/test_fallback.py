"""Keep answering: the [[fallback]] chain, going back to the primary, context trimming, usage and cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.agent import Agent
from agent.conversation import Message
from agent.events import Notice
from agent.fallback import FallbackEntry
from providers import errors
from tests.conftest import Hermes
from tests.fakeserver import FakeServer, RateLimit, Reply, Status
from tests.test_routing import FakeClock, make_runtime

PK, BK = "pk-primary-key-0001", "bk-backup-key-00001"


def chain_config(a: FakeServer, b: FakeServer, extra: str = "") -> str:
    return (
        f'[model]\nprovider = "prim"\nname = "pm"\n\n'
        f'[providers.prim]\nbase_url = "{a.base_url}"\n\n'
        f'[providers.back]\nbase_url = "{b.base_url}"\n\n'
        f'[[fallback]]\nprovider = "back"\nname = "bm"\n{extra}'
    )


def test_rate_limited_primary_falls_back_to_the_fallbacks_own_host_and_key(
    hermes: Hermes, fake: FakeServer, fake2: FakeServer
) -> None:
    a, b = fake, fake2
    hermes.write_config(chain_config(a, b))
    hermes.env.update({"PRIM_API_KEY": PK, "BACK_API_KEY": BK})
    a.always(RateLimit(retry_after=3600))
    b.always(Reply("from the backup"))
    done = hermes.run("ask", "--json", "hello")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["content"] == "from the backup"
    assert (result["provider"], result["model"], result["base_url"]) == ("back", "bm", b.base_url)
    assert "using back:bm (prim rate-limited until" in done.stderr
    assert [r.key for r in a.requests()] == [PK]
    assert [r.key for r in b.requests()] == [BK]
    assert b.requests()[0].json["model"] == "bm"
    # --no-fallback: the primary's own verdict, exit 4, and the backup is not asked.
    again = hermes.run("ask", "--no-fallback", "hello")
    assert again.returncode == 4
    assert len(b.requests()) == 1
    for out in (done.stdout, done.stderr, again.stderr):
        assert PK not in out and BK not in out


def test_fallback_with_its_own_base_url_never_uses_another_providers(
    hermes: Hermes, fake: FakeServer, fake2: FakeServer, fake3: FakeServer
) -> None:
    a, b, c = fake, fake2, fake3
    hermes.write_config(chain_config(a, b, f'base_url = "{c.base_url}"\n') + "\n[agent]\nmax_retries = 0\n")
    hermes.env.update({"PRIM_API_KEY": PK, "BACK_API_KEY": BK})
    a.always(Status(503))
    done = hermes.run("ask", "hello")
    assert done.returncode == 0, done.stderr
    assert "using back:bm (prim unavailable)" in done.stderr
    assert [r.key for r in c.requests()] == [BK]
    assert b.log == []
    assert {r.key for r in a.requests()} == {PK}


def test_every_provider_failing_names_each_reason(hermes: Hermes, fake: FakeServer, fake2: FakeServer) -> None:
    a, b = fake, fake2
    hermes.write_config(chain_config(a, b) + "\n[agent]\nmax_retries = 0\n")
    hermes.env.update({"PRIM_API_KEY": PK, "BACK_API_KEY": BK})
    a.always(RateLimit(retry_after=3600))
    b.always(Status(500))
    done = hermes.run("ask", "hello")
    assert done.returncode == 4, done.stderr  # the primary's reason decides the code
    assert "prim:pm" in done.stderr and "back:bm" in done.stderr
    assert "rate-limited" in done.stderr and "HTTP 500" in done.stderr
    assert "Traceback" not in done.stderr


def two_chain(tmp_path: Path, a: FakeServer, b: FakeServer, clock: FakeClock, **config: Any) -> Agent:
    cfg = {"providers": {"prim": {"base_url": a.base_url}, "back": {"base_url": b.base_url}}, **config}
    runtime = make_runtime(tmp_path, cfg, {"PRIM_API_KEY": PK, "BACK_API_KEY": BK}, clock)
    return Agent(runtime, runtime.route("prim", "pm"), fallbacks=[FallbackEntry("back", "bm")])


def turn(agent: Agent, text: str) -> tuple[str, list[str]]:
    agent.add_user(text)
    answer, notices = [], []
    for event in agent.reply():
        if isinstance(event, Notice):
            notices.append(event.text)
        elif hasattr(event, "text"):
            answer.append(event.text)
    return "".join(answer), notices


def test_back_on_the_primary_once_its_key_resets(tmp_path: Path, fake: FakeServer, fake2: FakeServer) -> None:
    a, b = fake, fake2
    clock = FakeClock()
    agent = two_chain(tmp_path, a, b, clock)
    a.script(RateLimit(retry_after=30))
    b.always(Reply("backup"))
    assert turn(agent, "one")[0] == "backup"
    assert agent.route.provider.id == "back" and agent.on_fallback
    clock.now += 10
    # Still cooling: the next turn stays on the fallback, and the primary host hears nothing.
    assert turn(agent, "two")[0] == "backup"
    assert len(a.requests()) == 1
    clock.now += 25
    answer, notices = turn(agent, "three")
    assert answer == "Hello from fake"
    assert "back on prim:pm" in notices
    assert not agent.on_fallback
    assert [r.key for r in a.requests()] == [PK, PK]
    assert [r.key for r in b.requests()] == [BK, BK]
    # The whole conversation travelled: the primary got the turns the backup answered.
    assert [m["content"] for m in a.requests()[-1].body["messages"]] == [
        "one",
        "backup",
        "two",
        "backup",
        "three",
    ]


def test_trimmed_to_a_small_context_keeps_system_and_last_message(
    tmp_path: Path, fake: FakeServer, fake2: FakeServer
) -> None:
    clock = FakeClock()
    # compress_at = 0: no summary first, so this is about leaving out the oldest turns.
    agent = two_chain(tmp_path, fake, fake2, clock, models={"pm": {"context": 400}}, agent={"compress_at": 0})
    agent.system = "SYSTEM PROMPT"
    for i in range(20):
        agent.messages += [Message("user", f"question {i} " + "x" * 200), Message("assistant", f"answer {i}")]
    answer, notices = turn(agent, "the last question")
    assert answer == "Hello from fake"
    assert any("left out the" in n for n in notices)
    sent = fake.requests()[-1].json["messages"]
    assert sent[0] == {"role": "system", "content": "SYSTEM PROMPT"}
    assert sent[-1] == {"role": "user", "content": "the last question"}
    assert len(sent) < 20
    assert len(agent.messages) == 42  # the history itself is kept whole


def test_context_length_exceeded_is_retried_once_trimmed(tmp_path: Path, fake: FakeServer, fake2: FakeServer) -> None:
    clock = FakeClock()
    agent = two_chain(tmp_path, fake, fake2, clock)
    for i in range(6):
        agent.messages += [Message("user", f"q{i} " + "y" * 300), Message("assistant", f"a{i}")]
    overflow = {
        "error": {"message": "This model's maximum context length is 300 tokens", "code": "context_length_exceeded"}
    }
    fake.script(Status(400, body=overflow))
    assert turn(agent, "final")[0] == "Hello from fake"
    first, second = (r.json["messages"] for r in fake.requests())
    assert len(second) < len(first)
    assert second[-1]["content"] == "final"
    assert fake2.log == []  # a bad request is not an outage: no fallback
    fake.script(Status(400, body=overflow), Status(400, body=overflow))
    with pytest.raises(errors.HTTPStatusError):
        turn(agent, "again")


def test_usage_and_cost_add_up(tmp_path: Path, fake: FakeServer, fake2: FakeServer, hermes: Hermes) -> None:
    clock = FakeClock()
    agent = two_chain(tmp_path, fake, fake2, clock, models={"pm": {"input_price": 1.0, "output_price": 2.0}})
    fake.script(Reply("a", usage=(100, 10)), Reply("b", usage=(200, 20)))
    turn(agent, "one")
    turn(agent, "two")
    assert (agent.usage_total.prompt_tokens, agent.usage_total.completion_tokens) == (300, 30)
    assert agent.cost.known == pytest.approx((300 * 1.0 + 30 * 2.0) / 1e6)

    hermes.write_config(
        f'[providers.prim]\nbase_url = "{fake.base_url}"\n\n[models.pm]\ninput_price = 1.0\noutput_price = 2.0\n'
    )
    hermes.env["PRIM_API_KEY"] = PK
    fake.script(Reply("c", usage=(100, 10)), Reply("d", usage=(50, 5)))
    first = json.loads(hermes.run("ask", "--json", "-p", "prim", "-m", "pm", "one").stdout)
    second = json.loads(hermes.run("ask", "--json", "-c", "two").stdout)
    assert first["usage"]["cost_usd"] == pytest.approx(120 / 1e6)
    assert second["usage"]["total_tokens"] == 55
    assert second["usage"]["session"]["total_tokens"] == 165
    assert second["usage"]["session"]["cost_usd"] == pytest.approx(180 / 1e6)
    listing = json.loads(hermes.run("sessions", "list", "--json").stdout)
    assert listing[0]["cost_usd"] == pytest.approx(180 / 1e6)
    table = hermes.run("sessions", "list").stdout
    assert "$0.0002" in table
