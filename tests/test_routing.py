"""In-process tests of the agent core against loopback servers: switch_model and the (host, key) invariant.

The clock and sleep are passed in (a fake clock, no real sleeping); the HTTP traffic is real.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.agent import Agent
from hermes_cli.config import Config
from hermes_cli.paths import Paths
from hermes_cli.settings import settings_from
from hermes_cli.wiring import Wiring
from providers import errors
from providers.credentials import AuthStore
from providers.registry import BUILTIN, Registry
from tests.fakeserver import FakeServer, NotFound, RateLimit, Reply, Status


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def make_runtime(
    state_dir: Path, config: dict[str, Any], env: dict[str, str], clock: FakeClock, registry: Registry | None = None
) -> Wiring:
    runtime = Wiring(
        env,
        settings=settings_from(Config(state_dir / "config.toml", config), env),
        paths=Paths(state_dir / "config.toml", state_dir, state_dir),
        clock=clock,
        sleep=clock.sleep,
    )
    if registry is not None:
        runtime.registry = registry
    return runtime


def ask(agent: Agent, text: str) -> str:
    agent.add_user(text)
    return "".join(getattr(e, "text", "") for e in agent.reply() if type(e).__name__ == "TextDelta")


def test_builtin_provider_section_override_never_touches_registry_default(
    tmp_path: Path, fake: FakeServer, fake2: FakeServer
) -> None:
    """xiaomi's registry default is host B here; [providers.xiaomi].base_url moves the session to A."""
    a, b = fake, fake2
    b.always(NotFound())
    xiaomi = replace(next(s for s in BUILTIN if s.id == "xiaomi"), base_url=b.base_url)
    clock = FakeClock()
    runtime = make_runtime(
        tmp_path,
        {"providers": {"xiaomi": {"base_url": a.base_url}}},
        {"XIAOMI_API_KEYS": "xk-one-000001,xk-two-000002"},
        clock,
        Registry((xiaomi,)),
    )
    agent = Agent(runtime, runtime.route("xiaomi", "mimo"))
    assert ask(agent, "one") == "Hello from fake"
    a.script_for_key("xk-one-000001", RateLimit(retry_after=120))
    assert ask(agent, "two") == "Hello from fake"
    assert ask(agent, "three") == "Hello from fake"
    assert [r.key for r in a.requests()] == ["xk-one-000001", "xk-one-000001", "xk-two-000002", "xk-two-000002"]
    assert b.log == []
    assert agent.route.endpoint.url == a.base_url


def two_provider_runtime(tmp_path: Path, a: FakeServer, b: FakeServer, clock: FakeClock) -> Wiring:
    config = {"providers": {"alpha": {"base_url": a.base_url}, "beta": {"base_url": b.base_url}}}
    env = {"ALPHA_API_KEYS": "ak-first-00001,ak-second-0002", "BETA_API_KEY": "bk-only-000001"}
    return make_runtime(tmp_path, config, env, clock)


def test_cross_provider_switch_uses_only_the_new_providers_keys_and_host(
    tmp_path: Path, fake: FakeServer, fake2: FakeServer
) -> None:
    a, b = fake, fake2
    clock = FakeClock()
    runtime = two_provider_runtime(tmp_path, a, b, clock)
    agent = Agent(runtime, runtime.route("alpha", "a-model"))
    ask(agent, "first")
    agent.switch_model("beta", "b-model")
    # Even a rate limit on the new provider never reaches back into the old pool.
    b.script(RateLimit(retry_after=1))
    ask(agent, "second")
    assert [r.key for r in a.requests()] == ["ak-first-00001"]
    assert [r.key for r in b.requests()] == ["bk-only-000001", "bk-only-000001"]
    body = b.requests()[-1].json
    assert body["model"] == "b-model"
    assert [m["content"] for m in body["messages"]] == ["first", "Hello from fake", "second"]
    agent.switch_model("alpha", "a-model")
    ask(agent, "third")
    assert [r.key for r in a.requests()] == ["ak-first-00001", "ak-first-00001"]


def test_same_provider_switch_keeps_cooldowns(tmp_path: Path, fake: FakeServer, fake2: FakeServer) -> None:
    a = fake
    clock = FakeClock()
    runtime = two_provider_runtime(tmp_path, a, fake2, clock)
    agent = Agent(runtime, runtime.route("alpha", "a-model"))
    a.script_for_key("ak-first-00001", RateLimit(retry_after=600))
    ask(agent, "one")
    pool = agent.client.pool
    agent.switch_model("alpha", "other-model")
    assert agent.client.pool is pool
    ask(agent, "two")
    assert [r.key for r in a.requests()] == ["ak-first-00001", "ak-second-0002", "ak-second-0002"]
    assert a.requests()[-1].json["model"] == "other-model"


def test_failed_switch_changes_nothing(tmp_path: Path, fake: FakeServer, fake2: FakeServer) -> None:
    clock = FakeClock()
    runtime = two_provider_runtime(tmp_path, fake, fake2, clock)
    agent = Agent(runtime, runtime.route("alpha", "a-model"))
    with pytest.raises(errors.NoCredentialError):
        agent.switch_model("openai", "gpt-4o")
    with pytest.raises(errors.UsageError):
        agent.switch_model("nosuch", "x")
    assert agent.route.provider.id == "alpha"
    ask(agent, "still here")
    assert [r.key for r in fake.requests()] == ["ak-first-00001"]


def test_stream_cut_after_text_is_not_replayed(tmp_path: Path, fake: FakeServer) -> None:
    from tests.fakeserver import CutStream

    clock = FakeClock()
    runtime = make_runtime(
        tmp_path,
        {"providers": {"alpha": {"base_url": fake.base_url}}},
        {"ALPHA_API_KEYS": "ak-first-00001,ak-second-0002"},
        clock,
    )
    agent = Agent(runtime, runtime.route("alpha", "m"))
    fake.script(CutStream("partial answer that", after=2))
    agent.add_user("q")
    seen = []
    with pytest.raises(errors.StreamInterrupted):
        for event in agent.reply():
            seen.append(getattr(event, "text", ""))
    assert "".join(seen) == "partial answer that"[:16]
    assert len(fake.requests()) == 1
    assert agent.messages[-1].finish_reason == "interrupted"
    assert agent.messages[-1].content == "".join(seen)


# -- the invariant, for any configuration and any sequence of answers --------------------------------

ANSWERS = st.sampled_from(["ok", "401", "403", "429", "500", "301", "302", "303", "307", "308"])


def answer(kind: str) -> Any:
    if kind.startswith("3"):  # a redirect to the trap host, which must never be reached
        return Status(int(kind), headers={"Location": f"{TRAP.base_url}/chat/completions"})
    return {
        "ok": Reply("fine"),
        "401": Status(401),
        "403": Status(403),
        "429": RateLimit(retry_after=30),
        "500": Status(500),
    }[kind]


TRAP = FakeServer()


@pytest.fixture(scope="module")
def hosts() -> Any:
    servers = [FakeServer().start() for _ in range(4)]
    TRAP.start()
    yield servers
    for s in [*servers, TRAP]:
        s.stop()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_keys=st.integers(1, 4),
    pinned=st.lists(st.booleans(), min_size=4, max_size=4),
    override=st.sampled_from(["env", "provider_section", "model_section", "none"]),
    scripts=st.lists(st.lists(ANSWERS, max_size=6), min_size=4, max_size=4),
    turns=st.integers(1, 3),
    other_turns=st.integers(0, 2),
)
def test_every_request_goes_to_an_allowed_host_with_its_own_key(
    hosts: list[FakeServer],
    n_keys: int,
    pinned: list[bool],
    override: str,
    scripts: list[list[str]],
    turns: int,
    other_turns: int,
) -> None:
    default, session, region, other = hosts
    for s in [*hosts, TRAP]:
        s.reset()
    default.always(NotFound())
    keys = [f"pk-{i}-{'x' * 12}" for i in range(n_keys)]
    for key, script in zip(keys, scripts, strict=False):
        default_answer = answer(script[-1]) if script else Reply("fine")
        session.script_for_key(key, *(answer(k) for k in script))
        region.script_for_key(key, *(answer(k) for k in script))
        session.always_for_key(key, default_answer)
        region.always_for_key(key, default_answer)
    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp)
        store = AuthStore(state_dir / "auth.json")
        allowed: dict[str, str] = {}
        for i, key in enumerate(keys):
            if pinned[i]:
                store.add("plan", key, label=f"k{i}", base_url=region.base_url)
                allowed[key] = region.host
            else:
                allowed[key] = session.host if override != "none" else default.host
        env = {}
        config: dict[str, Any] = {
            "providers": {"plan": {"base_url": default.base_url}, "other": {"base_url": other.base_url}},
            "credentials": {"max_wait_seconds": 0},
        }
        unpinned = [k for i, k in enumerate(keys) if not pinned[i]]
        if unpinned:
            env["PLAN_API_KEYS"] = ",".join(unpinned)
        env["OTHER_API_KEY"] = "ok-other-key-0001"
        if override == "env":
            env["PLAN_BASE_URL"] = session.base_url
        elif override == "provider_section":
            # A built-in-like override: the section's base_url moves a provider whose default is B.
            config["providers"]["plan"] = {"base_url": session.base_url}
        elif override == "model_section":
            config["model"] = {"provider": "plan", "name": "m", "base_url": session.base_url}
        clock = FakeClock()
        runtime = make_runtime(state_dir, config, env, clock)
        agent = Agent(runtime, runtime.route("plan", "m"))
        for t in range(turns):
            with contextlib.suppress(errors.HermesError):
                ask(agent, f"turn {t}")
            clock.now += 15
        agent.switch_model("other", "o")
        for t in range(other_turns):
            ask(agent, f"other {t}")

    if override == "provider_section":
        # Here the section *is* the provider's endpoint; the default host was replaced, not overridden.
        allowed = {k: (region.host if pinned[i] else session.host) for i, k in enumerate(keys)}
    for srv in (default, session, region):
        for r in srv.requests():
            assert r.key in allowed, f"{r.key} is not a key of provider plan"
            assert allowed[r.key] == srv.host, f"key {r.key} reached {srv.host}, allowed only {allowed[r.key]}"
    assert TRAP.log == [], "a redirect was followed"
    assert all(r.key == "ok-other-key-0001" for r in other.requests())
    assert len(other.requests()) == other_turns
