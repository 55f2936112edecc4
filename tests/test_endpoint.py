"""Endpoint resolution and the choice of provider and model, as units (no subprocess, no network).

Precedence of the endpoint, highest first (CONTRACT.md "Endpoint resolution"):
flag --base-url > <ID>_BASE_URL > [model].base_url (only for [model].provider) > [providers.<id>].base_url
> the registry default (a custom provider: its own base_url). Each level is asserted with its source.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from hermes_cli.config import Config
from hermes_cli.paths import Paths
from hermes_cli.settings import settings_from
from hermes_cli.wiring import Wiring
from providers.endpoint import Endpoint, normalize_base_url, resolve_endpoint
from providers.errors import UsageError
from providers.registry import BUILTIN, ProviderSpec, build_registry, env_prefix

FLAG_URL = "http://127.0.0.1:9001/v1"
ENV_URL = "http://127.0.0.1:9002/v1"
MODEL_URL = "http://127.0.0.1:9003/v1"
PROVIDER_URL = "http://127.0.0.1:9004/v1"
CUSTOM_URL = "http://127.0.0.1:9005/v1"


def runtime_from_toml(tmp_path: Path, toml: str = "", env: Mapping[str, str] | None = None) -> Wiring:
    file = tmp_path / "config.toml"
    file.write_text(toml, encoding="utf-8")
    return Wiring(dict(env or {}), paths=Paths(file, tmp_path / "state", tmp_path / "data"))


def runtime_from(tmp_path: Path, data: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Wiring:
    """Settings with no file behind them."""
    env = dict(env or {})
    settings = settings_from(Config(Path("config.toml"), dict(data or {})), env)
    return Wiring(env, settings=settings, paths=Paths(tmp_path / "config.toml", tmp_path / "state", tmp_path / "data"))


def builtin(provider_id: str) -> ProviderSpec:
    return next(s for s in BUILTIN if s.id == provider_id)


def custom(provider_id: str, base_url: str = CUSTOM_URL) -> ProviderSpec:
    settings = settings_from(Config(Path("config.toml"), {"providers": {provider_id: {"base_url": base_url}}}), {})
    spec = build_registry(settings.providers).get(provider_id)
    assert spec is not None
    return spec


# -- resolve_endpoint: each level, with its source -------------------------------------------------


ALL_LEVELS = dict(flag_base_url=FLAG_URL, model_base_url=MODEL_URL, provider_base_url=PROVIDER_URL)


def test_flag_beats_everything() -> None:
    ep = resolve_endpoint(builtin("deepseek"), env={"DEEPSEEK_BASE_URL": ENV_URL}, **ALL_LEVELS)
    assert ep == Endpoint(FLAG_URL, "flag --base-url")


def test_env_beats_config_and_registry() -> None:
    levels = {**ALL_LEVELS, "flag_base_url": None}
    ep = resolve_endpoint(builtin("deepseek"), env={"DEEPSEEK_BASE_URL": ENV_URL}, **levels)
    assert ep.url == ENV_URL
    assert ep.source == "env DEEPSEEK_BASE_URL"


def test_model_section_beats_provider_section() -> None:
    ep = resolve_endpoint(builtin("deepseek"), env={}, model_base_url=MODEL_URL, provider_base_url=PROVIDER_URL)
    assert ep == Endpoint(MODEL_URL, "[model].base_url")


def test_provider_section_beats_registry() -> None:
    ep = resolve_endpoint(builtin("deepseek"), env={}, provider_base_url=PROVIDER_URL)
    assert ep == Endpoint(PROVIDER_URL, "[providers.deepseek].base_url")


def test_registry_default() -> None:
    ep = resolve_endpoint(builtin("deepseek"), env={})
    assert ep == Endpoint("https://api.deepseek.com/v1", "registry default")


def test_custom_provider_default_is_its_own_base_url() -> None:
    ep = resolve_endpoint(custom("myplan"), env={})
    assert ep == Endpoint(CUSTOM_URL, "[providers.myplan] (custom)")


def test_custom_provider_env_override() -> None:
    ep = resolve_endpoint(custom("myplan"), env={"MYPLAN_BASE_URL": ENV_URL})
    assert ep == Endpoint(ENV_URL, "env MYPLAN_BASE_URL")


def test_env_of_another_provider_is_ignored() -> None:
    ep = resolve_endpoint(builtin("deepseek"), env={"OPENAI_BASE_URL": ENV_URL, "MYPLAN_BASE_URL": ENV_URL})
    assert ep == Endpoint("https://api.deepseek.com/v1", "registry default")


def test_empty_env_value_is_not_an_override() -> None:
    ep = resolve_endpoint(builtin("deepseek"), env={"DEEPSEEK_BASE_URL": ""}, provider_base_url=PROVIDER_URL)
    assert ep == Endpoint(PROVIDER_URL, "[providers.deepseek].base_url")


@pytest.mark.parametrize(
    ("provider_id", "env_name"),
    [("my-plan", "MY_PLAN_BASE_URL"), ("myplan", "MYPLAN_BASE_URL"), ("a-b-c", "A_B_C_BASE_URL")],
)
def test_env_prefix_for_ids_with_dashes(provider_id: str, env_name: str) -> None:
    spec = custom(provider_id)
    assert spec.base_url_env == env_name
    assert env_prefix(provider_id) + "_BASE_URL" == env_name
    ep = resolve_endpoint(spec, env={env_name: ENV_URL})
    assert ep == Endpoint(ENV_URL, f"env {env_name}")


def test_env_name_with_dash_is_not_used() -> None:
    # A shell cannot even export "MY-PLAN_BASE_URL"; only the underscore form counts.
    ep = resolve_endpoint(custom("my-plan"), env={"MY-PLAN_BASE_URL": ENV_URL})
    assert ep == Endpoint(CUSTOM_URL, "[providers.my-plan] (custom)")


# -- validation and normalisation ------------------------------------------------------------------


@pytest.mark.parametrize("level", ["flag_base_url", "model_base_url", "provider_base_url"])
@pytest.mark.parametrize("bad", ["notaurl", "ftp://127.0.0.1/v1", "http://", "127.0.0.1:8080/v1"])
def test_invalid_url_is_a_usage_error(level: str, bad: str) -> None:
    with pytest.raises(UsageError) as info:
        resolve_endpoint(builtin("deepseek"), env={}, **{level: bad})
    assert bad in str(info.value)


def test_invalid_env_url_is_a_usage_error_naming_the_variable() -> None:
    with pytest.raises(UsageError) as info:
        resolve_endpoint(builtin("deepseek"), env={"DEEPSEEK_BASE_URL": "notaurl"})
    assert "DEEPSEEK_BASE_URL" in str(info.value)
    assert "notaurl" in str(info.value)


def test_invalid_custom_base_url_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        resolve_endpoint(custom("myplan", "not a url"), env={})


def test_custom_provider_without_base_url_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as info:
        resolve_endpoint(custom("myplan", ""), env={})
    assert "myplan" in str(info.value)
    assert "MYPLAN_BASE_URL" in str(info.value)


@pytest.mark.parametrize("level", ["flag_base_url", "model_base_url", "provider_base_url"])
def test_trailing_slash_is_dropped(level: str) -> None:
    ep = resolve_endpoint(builtin("openai"), env={}, **{level: "http://127.0.0.1:9009/v1/"})
    assert ep.url == "http://127.0.0.1:9009/v1"


def test_trailing_slash_of_env_and_custom_default_is_dropped() -> None:
    assert (
        resolve_endpoint(builtin("openai"), env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1/"}).url
        == "http://127.0.0.1:9/v1"
    )
    assert resolve_endpoint(custom("myplan", "http://127.0.0.1:9/api/v1/"), env={}).url == "http://127.0.0.1:9/api/v1"


def test_normalize_base_url() -> None:
    assert normalize_base_url(" https://example.test/v1/ ", what="x") == "https://example.test/v1"
    assert normalize_base_url("http://127.0.0.1:8080", what="x") == "http://127.0.0.1:8080"
    with pytest.raises(UsageError):
        normalize_base_url("mailto:someone@example.test", what="x")


def test_endpoint_host() -> None:
    assert Endpoint("http://127.0.0.1:9001/v1", "x").host == "127.0.0.1:9001"


def test_every_registry_default_is_a_valid_normalised_url() -> None:
    for spec in BUILTIN:
        if getattr(spec, "managed", False):
            continue  # hermes runs that server itself; its endpoint is known only once it runs
        ep = resolve_endpoint(spec, env={})
        assert ep.source == "registry default"
        assert ep.url == spec.base_url.rstrip("/")
        assert ep.url.startswith(("http://", "https://"))


# -- Wiring.endpoint: the same levels from a real config file -------------------------------------


def test_runtime_endpoint_from_config_file(tmp_path: Path) -> None:
    toml = f"""
[model]
provider = "openrouter"
base_url = "{MODEL_URL}/"

[providers.openrouter]
base_url = "{PROVIDER_URL}"

[providers.deepseek]
base_url = "{PROVIDER_URL}"

[providers.myplan]
base_url = "{CUSTOM_URL}"
"""
    rt = runtime_from_toml(tmp_path, toml)
    assert rt.endpoint("openrouter") == Endpoint(MODEL_URL, "[model].base_url")
    assert rt.endpoint("deepseek") == Endpoint(PROVIDER_URL, "[providers.deepseek].base_url")
    # A custom provider's own base_url is both level 4 and 5; either label names the table.
    assert rt.endpoint("myplan").url == CUSTOM_URL
    assert rt.endpoint("myplan").source.startswith("[providers.myplan]")
    assert rt.endpoint("openai") == Endpoint("https://api.openai.com/v1", "registry default")


def test_model_base_url_only_applies_to_the_model_provider(tmp_path: Path) -> None:
    toml = f"""
[model]
provider = "deepseek"
name = "deepseek-chat"
base_url = "{MODEL_URL}"
"""
    rt = runtime_from_toml(tmp_path, toml)
    assert rt.endpoint("deepseek") == Endpoint(MODEL_URL, "[model].base_url")
    # Another provider never inherits [model].base_url (its key would go to the wrong host).
    assert rt.endpoint("openrouter") == Endpoint("https://openrouter.ai/api/v1", "registry default")
    assert rt.endpoint("openai") == Endpoint("https://api.openai.com/v1", "registry default")


def test_model_base_url_without_model_provider_applies_to_none(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path, {"model": {"base_url": MODEL_URL}, "providers": {"myplan": {"base_url": CUSTOM_URL}}})
    assert rt.endpoint("deepseek") == Endpoint("https://api.deepseek.com/v1", "registry default")
    assert rt.endpoint("myplan").url == CUSTOM_URL
    assert rt.endpoint("myplan").source.startswith("[providers.myplan]")


def test_model_base_url_beats_custom_provider_base_url(tmp_path: Path) -> None:
    rt = runtime_from(
        tmp_path,
        {"model": {"provider": "myplan", "base_url": MODEL_URL}, "providers": {"myplan": {"base_url": CUSTOM_URL}}},
    )
    assert rt.endpoint("myplan") == Endpoint(MODEL_URL, "[model].base_url")


def test_env_beats_model_section_in_runtime(tmp_path: Path) -> None:
    rt = runtime_from(
        tmp_path, {"model": {"provider": "deepseek", "base_url": MODEL_URL}}, env={"DEEPSEEK_BASE_URL": ENV_URL}
    )
    assert rt.endpoint("deepseek") == Endpoint(ENV_URL, "env DEEPSEEK_BASE_URL")


def test_flag_belongs_to_the_chosen_provider_only(tmp_path: Path) -> None:
    rt = runtime_from(
        tmp_path,
        {"model": {"provider": "deepseek", "base_url": MODEL_URL}},
        env={"DEEPSEEK_BASE_URL": ENV_URL, "OPENAI_BASE_URL": ENV_URL},
    )
    rt.attach_base_url("deepseek", FLAG_URL + "/")
    assert rt.endpoint("deepseek") == Endpoint(FLAG_URL, "flag --base-url")
    # A provider switched to later keeps its own resolution.
    assert rt.endpoint("openai") == Endpoint(ENV_URL, "env OPENAI_BASE_URL")
    assert rt.endpoint("mistral") == Endpoint("https://api.mistral.ai/v1", "registry default")


def test_runtime_route_carries_the_endpoint(tmp_path: Path) -> None:
    rt = runtime_from(
        tmp_path,
        {"providers": {"my-plan": {"base_url": CUSTOM_URL, "models": ["m1"]}}},
        env={"MY_PLAN_BASE_URL": ENV_URL + "/"},
    )
    route = rt.route("my-plan", "m1")
    assert route.provider.id == "my-plan"
    assert route.model == "m1"
    assert route.endpoint == Endpoint(ENV_URL, "env MY_PLAN_BASE_URL")


def test_runtime_endpoint_invalid_env_url(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path, env={"OPENAI_BASE_URL": "api.openai.com/v1"})
    with pytest.raises(UsageError):
        rt.endpoint("openai")


def test_runtime_endpoint_unknown_provider(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path)
    with pytest.raises(UsageError) as info:
        rt.endpoint("deepsek")
    assert "deepseek" in str(info.value)


# -- Wiring.split_model ---------------------------------------------------------------------------


def test_split_provider_prefix(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path)
    assert rt.split_model("deepseek:deepseek-reasoner", None) == ("deepseek", "deepseek-reasoner")
    assert rt.split_model("openrouter:meta-llama/llama-3.1-8b-instruct:free", None) == (
        "openrouter",
        "meta-llama/llama-3.1-8b-instruct:free",
    )


def test_split_bare_model(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path)
    assert rt.split_model("gpt-4o", None) == (None, "gpt-4o")


def test_split_model_with_path_and_tag_stays_a_model(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path)
    assert rt.split_model("meta-llama/llama-3.1-8b-instruct:free", None) == (
        None,
        "meta-llama/llama-3.1-8b-instruct:free",
    )
    assert rt.split_model("meta-llama/x:free", "openrouter") == (None, "meta-llama/x:free")


def test_split_unknown_prefix_is_a_usage_error_with_suggestion(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path)
    with pytest.raises(UsageError) as info:
        rt.split_model("deepsek:deepseek-chat", None)
    text = str(info.value)
    assert "deepsek" in text
    assert "deepseek:deepseek-chat" in text  # the suggestion, ready to paste


def test_split_unknown_prefix_without_close_match(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path)
    with pytest.raises(UsageError) as info:
        rt.split_model("nope:model", None)
    assert "nope" in str(info.value)


def test_split_prefix_without_model(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path)
    with pytest.raises(UsageError):
        rt.split_model("deepseek:", None)


@pytest.mark.parametrize("local", ["ollama", "lmstudio", "llamacpp"])
def test_tagged_local_provider_keeps_the_colon(tmp_path: Path, local: str) -> None:
    rt = runtime_from(tmp_path)
    assert rt.split_model("llama3:8b", local) == (None, "llama3:8b")


def test_tag_on_a_keyed_provider_is_rejected(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path)
    with pytest.raises(UsageError):
        rt.split_model("llama3:8b", "openai")


# -- Wiring.choose --------------------------------------------------------------------------------


def test_choose_provider_prefix(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path)
    assert rt.choose(None, "deepseek:deepseek-reasoner") == ("deepseek", "deepseek-reasoner")


def test_choose_flag_provider_and_bare_model(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path)
    assert rt.choose("deepseek", "deepseek-reasoner") == ("deepseek", "deepseek-reasoner")


def test_choose_flag_provider_default_model(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path)
    assert rt.choose("deepseek", None) == ("deepseek", "deepseek-chat")


def test_choose_agreeing_prefix_and_provider(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path)
    assert rt.choose("deepseek", "deepseek:deepseek-chat") == ("deepseek", "deepseek-chat")


def test_choose_disagreeing_prefix_and_provider(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path)
    with pytest.raises(UsageError):
        rt.choose("deepseek", "openai:gpt-4o")


def test_choose_unknown_prefix(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path, env={"OPENAI_API_KEY": "sk-test-0000000000000001"})
    with pytest.raises(UsageError) as info:
        rt.choose(None, "opnai:gpt-4o")
    assert "openai:gpt-4o" in str(info.value)


def test_choose_unknown_provider_flag_suggests(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path)
    with pytest.raises(UsageError) as info:
        rt.choose("deepsek", None)
    assert "deepseek" in str(info.value)


def test_choose_openrouter_free_model(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path, env={"OPENROUTER_API_KEY": "sk-or-test-000000000001"})
    assert rt.choose(None, "meta-llama/llama-3.1-8b-instruct:free") == (
        "openrouter",
        "meta-llama/llama-3.1-8b-instruct:free",
    )
    assert rt.choose("openrouter", "meta-llama/x:free") == ("openrouter", "meta-llama/x:free")


@pytest.mark.parametrize("local", ["ollama", "lmstudio", "llamacpp"])
def test_choose_tagged_local_model(tmp_path: Path, local: str) -> None:
    rt = runtime_from(tmp_path)
    assert rt.choose(local, "llama3:8b") == (local, "llama3:8b")


def test_choose_tagged_model_with_configured_local_provider(tmp_path: Path) -> None:
    rt = runtime_from_toml(tmp_path, '[model]\nprovider = "ollama"\n')
    assert rt.choose(None, "qwen2.5:7b") == ("ollama", "qwen2.5:7b")


def test_choose_tagged_model_with_env_local_provider(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path, env={"HERMES_PROVIDER": "ollama"})
    assert rt.choose(None, "qwen2.5:7b") == ("ollama", "qwen2.5:7b")


def test_choose_tagged_model_of_custom_provider(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path, {"providers": {"myplan": {"base_url": CUSTOM_URL}}})
    assert rt.choose("myplan", "org/model:tag") == ("myplan", "org/model:tag")
    assert rt.choose("myplan", "model:tag") == ("myplan", "model:tag")


def test_choose_env_provider_and_model(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path, env={"HERMES_PROVIDER": "deepseek", "HERMES_MODEL": "deepseek-reasoner"})
    assert rt.choose(None, None) == ("deepseek", "deepseek-reasoner")


def test_choose_env_provider_alone_uses_its_default_model(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path, env={"HERMES_PROVIDER": "mistral"})
    assert rt.choose(None, None) == ("mistral", "mistral-large-latest")


def test_choose_env_model_applies_to_env_provider_only(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path, env={"HERMES_PROVIDER": "deepseek", "HERMES_MODEL": "deepseek-reasoner"})
    # -p another provider: HERMES_MODEL names a deepseek model, so that provider's default applies.
    assert rt.choose("openai", None) == ("openai", "gpt-4o-mini")


def test_choose_model_section(tmp_path: Path) -> None:
    rt = runtime_from_toml(tmp_path, '[model]\nprovider = "deepseek"\nname = "deepseek-reasoner"\n')
    assert rt.choose(None, None) == ("deepseek", "deepseek-reasoner")


def test_choose_env_beats_model_section(tmp_path: Path) -> None:
    rt = runtime_from_toml(
        tmp_path,
        '[model]\nprovider = "deepseek"\nname = "deepseek-reasoner"\n',
        env={"HERMES_PROVIDER": "openai", "HERMES_MODEL": "gpt-4.1"},
    )
    assert rt.choose(None, None) == ("openai", "gpt-4.1")


def test_choose_flags_beat_env_and_config(tmp_path: Path) -> None:
    rt = runtime_from_toml(
        tmp_path,
        '[model]\nprovider = "deepseek"\nname = "deepseek-reasoner"\n',
        env={"HERMES_PROVIDER": "openai", "HERMES_MODEL": "gpt-4.1"},
    )
    assert rt.choose("mistral", None) == ("mistral", "mistral-large-latest")
    assert rt.choose(None, "groq:llama-3.1-8b-instant") == ("groq", "llama-3.1-8b-instant")


def test_choose_model_name_of_another_provider_is_not_reused(tmp_path: Path) -> None:
    # [model].name belongs to [model].provider; -p another provider takes that provider's default.
    rt = runtime_from_toml(tmp_path, '[model]\nprovider = "deepseek"\nname = "deepseek-reasoner"\n')
    assert rt.choose("openai", None) == ("openai", "gpt-4o-mini")


def test_choose_flag_model_with_configured_provider(tmp_path: Path) -> None:
    rt = runtime_from_toml(tmp_path, '[model]\nprovider = "deepseek"\nname = "deepseek-chat"\n')
    assert rt.choose(None, "deepseek-reasoner") == ("deepseek", "deepseek-reasoner")


def test_choose_custom_provider_first_model(tmp_path: Path) -> None:
    rt = runtime_from(
        tmp_path,
        {
            "model": {"provider": "myplan"},
            "providers": {"myplan": {"base_url": CUSTOM_URL, "models": ["model-a", "b"]}},
        },
    )
    assert rt.choose(None, None) == ("myplan", "model-a")


def test_choose_custom_provider_without_models_needs_a_model(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path, {"providers": {"myplan": {"base_url": CUSTOM_URL}}})
    with pytest.raises(UsageError):
        rt.choose("myplan", None)
    assert rt.choose("myplan", "x") == ("myplan", "x")


@pytest.mark.parametrize(
    ("env_name", "provider", "model"),
    [
        ("DEEPSEEK_API_KEY", "deepseek", "deepseek-chat"),
        ("DEEPSEEK_API_KEYS", "deepseek", "deepseek-chat"),
        ("OPENAI_API_KEY", "openai", "gpt-4o-mini"),
        ("KIMI_API_KEY", "kimi", "kimi-k2-0905-preview"),
        ("XIAOMI_TOKEN_PLAN_CN_API_KEY", "xiaomi-token-plan-cn", ""),  # a catalogue provider's own variable
    ],
)
def test_choose_detects_provider_from_a_key_in_env(tmp_path: Path, env_name: str, provider: str, model: str) -> None:
    rt = runtime_from(tmp_path, env={env_name: "sk-test-000000000000000001"})
    if model:
        assert rt.choose(None, None) == (provider, model)
    else:
        assert rt.default_provider() == provider


@pytest.mark.parametrize(
    ("env_name", "candidates"),
    [
        ("MOONSHOT_API_KEY", {"kimi", "moonshotai-cn"}),  # kimi's global host and the China one
        ("XIAOMI_API_KEY", {"xiaomi", "xiaomi-token-plan-cn", "xiaomi-token-plan-sgp", "xiaomi-token-plan-ams"}),
    ],
)
def test_a_key_in_a_variable_several_providers_read_names_no_provider(
    tmp_path: Path, env_name: str, candidates: set[str]
) -> None:
    rt = runtime_from(tmp_path, env={env_name: "sk-test-000000000000000001"})
    with pytest.raises(UsageError) as caught:
        rt.choose(None, None)
    listed = {line.split()[1] for line in str(caught.value).splitlines() if line.strip().startswith("-p ")}
    assert listed == candidates


def test_choose_detects_custom_provider_from_its_key(tmp_path: Path) -> None:
    rt = runtime_from(
        tmp_path,
        {"providers": {"my-plan": {"base_url": CUSTOM_URL, "models": ["m1"]}}},
        env={"MY_PLAN_API_KEY": "sk-test-000000000000000001"},
    )
    assert rt.choose(None, None) == ("my-plan", "m1")


def test_choose_detects_provider_from_config_keys(tmp_path: Path) -> None:
    rt = runtime_from_toml(tmp_path, '[providers.groq]\napi_keys = ["gsk-test-0000000000000001"]\n')
    assert rt.choose(None, None) == ("groq", "llama-3.3-70b-versatile")


def test_configured_provider_beats_detection(tmp_path: Path) -> None:
    rt = runtime_from_toml(
        tmp_path, '[model]\nprovider = "deepseek"\n', env={"OPENAI_API_KEY": "sk-test-000000000000000001"}
    )
    assert rt.choose(None, None) == ("deepseek", "deepseek-chat")


def test_choose_without_any_provider_is_a_usage_error(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path, {"local": {"auto": False}}, env={"PATH": "/usr/bin", "SOMETHING_ELSE": "x"})
    with pytest.raises(UsageError) as info:
        rt.choose(None, None)
    assert "provider" in str(info.value).lower()
    with pytest.raises(UsageError):
        rt.choose(None, "gpt-4o")


def test_unset_base_url_env_does_not_count_as_a_key(tmp_path: Path) -> None:
    rt = runtime_from(tmp_path, {"local": {"auto": False}}, env={"DEEPSEEK_BASE_URL": ENV_URL})
    with pytest.raises(UsageError):
        rt.choose(None, None)
