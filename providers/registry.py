"""The provider registry: one table of data, plus the custom providers a config defines."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from providers.catalogue import CatalogueProvider
    from providers.provider_config import ProviderConfig


@dataclass(frozen=True)
class ProviderSpec:
    id: str
    name: str
    base_url: str
    needs_key: bool = True
    default_model: str = ""
    models: tuple[str, ...] = ()
    key_env_aliases: tuple[str, ...] = ()
    regions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    custom: bool = False
    # Local servers name models like "llama3:8b", so a ":" in -m is not a provider prefix there.
    tagged_models: bool = False
    # hermes runs this provider's server itself (`hermes local`): endpoint and key come from it.
    managed: bool = False
    # The models.dev entry whose models (limits, prices, capabilities) this provider serves.
    catalogue_id: str | None = None
    # Other providers reading the same key variable: a plan host and its pay-per-use twin (xiaomi and
    # xiaomi-token-plan-cn...). A key found there cannot tell hermes which host it belongs to.
    shares_key_with: tuple[str, ...] = ()
    # For a catalogue provider that needs another API (Bedrock, Vertex...): the SDK the catalogue names.
    # Usable only once the user gives it an OpenAI-compatible base_url.
    other_api: str | None = None

    @property
    def env_prefix(self) -> str:
        return env_prefix(self.id)

    @property
    def key_env(self) -> str:
        return f"{self.env_prefix}_API_KEY"

    @property
    def keys_env(self) -> str:
        return f"{self.env_prefix}_API_KEYS"

    @property
    def base_url_env(self) -> str:
        return f"{self.env_prefix}_BASE_URL"

    @property
    def key_names(self) -> tuple[str, ...]:
        """Every variable this provider reads keys from."""
        return (self.key_env, self.keys_env, *self.key_env_aliases)


def env_prefix(provider_id: str) -> str:
    """`myplan` -> `MYPLAN`, `xiaomi-token-plan-cn` -> `XIAOMI_TOKEN_PLAN_CN`, `wafer.ai` -> `WAFER_AI`."""
    return re.sub(r"[^A-Za-z0-9]", "_", provider_id).upper()


BUILTIN: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        "openrouter",
        "OpenRouter",
        "https://openrouter.ai/api/v1",
        default_model="anthropic/claude-sonnet-4",
        models=("anthropic/claude-sonnet-4", "openai/gpt-4o", "deepseek/deepseek-chat", "google/gemini-2.5-pro"),
    ),
    ProviderSpec(
        "openai",
        "OpenAI",
        "https://api.openai.com/v1",
        default_model="gpt-4o-mini",
        models=("gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3-mini"),
    ),
    ProviderSpec(
        "anthropic",
        "Anthropic (OpenAI-compatible)",
        "https://api.anthropic.com/v1",
        default_model="claude-sonnet-4-20250514",
        models=("claude-sonnet-4-20250514", "claude-opus-4-20250514"),
    ),
    ProviderSpec(
        "deepseek",
        "DeepSeek",
        "https://api.deepseek.com/v1",
        default_model="deepseek-chat",
        models=("deepseek-chat", "deepseek-reasoner"),
    ),
    ProviderSpec(
        "xiaomi",
        "Xiaomi MiMo",
        "https://api.xiaomimimo.com/v1",
        default_model="mimo-v2-flash",
        models=("mimo-v2-flash",),
        key_env_aliases=("MIMO_API_KEY",),
    ),
    ProviderSpec(
        "kimi",
        "Kimi (Moonshot)",
        "https://api.moonshot.ai/v1",
        default_model="kimi-k2-0905-preview",
        models=("kimi-k2-0905-preview", "kimi-k2-turbo-preview"),
        key_env_aliases=("MOONSHOT_API_KEY",),
        regions=MappingProxyType({"global": "https://api.moonshot.ai/v1", "cn": "https://api.moonshot.cn/v1"}),
    ),
    ProviderSpec(
        "zai",
        "Z.ai (GLM)",
        "https://api.z.ai/api/paas/v4",
        default_model="glm-4.6",
        models=("glm-4.6", "glm-4.5-air"),
        key_env_aliases=("GLM_API_KEY",),
        regions=MappingProxyType(
            {"global": "https://api.z.ai/api/paas/v4", "cn": "https://open.bigmodel.cn/api/paas/v4"}
        ),
    ),
    ProviderSpec(
        "nous",
        "Nous Research",
        "https://inference-api.nousresearch.com/v1",
        default_model="Hermes-4-70B",
        models=("Hermes-4-70B", "Hermes-4-405B"),
    ),
    ProviderSpec(
        "groq",
        "Groq",
        "https://api.groq.com/openai/v1",
        default_model="llama-3.3-70b-versatile",
        models=("llama-3.3-70b-versatile", "llama-3.1-8b-instant"),
    ),
    ProviderSpec(
        "mistral",
        "Mistral",
        "https://api.mistral.ai/v1",
        default_model="mistral-large-latest",
        models=("mistral-large-latest", "mistral-small-latest"),
    ),
    ProviderSpec(
        "together",
        "Together AI",
        "https://api.together.xyz/v1",
        default_model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
        models=("meta-llama/Llama-3.3-70B-Instruct-Turbo", "deepseek-ai/DeepSeek-V3"),
    ),
    ProviderSpec(
        "gemini",
        "Google Gemini (OpenAI-compatible)",
        "https://generativelanguage.googleapis.com/v1beta/openai",
        default_model="gemini-2.5-flash",
        models=("gemini-2.5-flash", "gemini-2.5-pro"),
        key_env_aliases=("GOOGLE_API_KEY",),
    ),
    ProviderSpec(
        "ollama",
        "Ollama (local)",
        "http://127.0.0.1:11434/v1",
        needs_key=False,
        default_model="llama3.2",
        tagged_models=True,
    ),
    ProviderSpec(
        "lmstudio",
        "LM Studio (local)",
        "http://127.0.0.1:1234/v1",
        needs_key=False,
        tagged_models=True,
    ),
    ProviderSpec(
        "llamacpp",
        "llama.cpp server (local)",
        "http://127.0.0.1:8080/v1",
        needs_key=False,
        tagged_models=True,
    ),
    ProviderSpec(
        "local",
        "Bundled llama.cpp server (hermes local)",
        "",
        default_model="local",
        models=("local",),
        tagged_models=True,
        managed=True,
    ),
)


# hermes's own entries that are the same service as a catalogue entry under another id.
CATALOGUE_TWINS = {"kimi": "moonshotai", "gemini": "google", "together": "togetherai"}


class Registry:
    """hermes's own providers, the catalogue's, and the custom ones from `[providers.<id>]` tables."""

    def __init__(self, specs: tuple[ProviderSpec, ...], aliases: Mapping[str, str] | None = None) -> None:
        self._specs = {s.id: s for s in specs}
        self._aliases = dict(aliases or {})  # another id of the same provider (a catalogue twin's)

    def __contains__(self, provider_id: object) -> bool:
        return provider_id in self._specs or provider_id in self._aliases

    def __iter__(self) -> Iterator[ProviderSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, provider_id: str) -> ProviderSpec | None:
        return self._specs.get(provider_id) or self._specs.get(self._aliases.get(provider_id, ""))

    def ids(self) -> list[str]:
        return list(self._specs)

    def closest(self, provider_id: str) -> str | None:
        matches = difflib.get_close_matches(provider_id.lower(), self.ids(), n=1, cutoff=0.5)
        return matches[0] if matches else None

    def sharing(self, env_name: str) -> list[ProviderSpec]:
        """Every provider that reads its key from `env_name`."""
        return [s for s in self._specs.values() if env_name in s.key_names]


def _from_catalogue(entry: CatalogueProvider) -> ProviderSpec:
    aliases = tuple(e for e in entry.env if e != f"{env_prefix(entry.id)}_API_KEY")
    return ProviderSpec(
        entry.id,
        entry.name,
        (entry.api or "").rstrip("/"),
        key_env_aliases=aliases,
        catalogue_id=entry.id,
        other_api=None if entry.api else (entry.sdk or "an API of its own"),
    )


def build_registry(
    configured: Mapping[str, ProviderConfig], catalogue: Mapping[str, CatalogueProvider] | None = None
) -> Registry:
    """`configured` is config's `[providers.<id>]` tables: those of ids neither built in nor in the
    catalogue define custom providers. `catalogue` is the models.dev index (providers.catalogue)."""
    from dataclasses import replace

    catalogue = catalogue or {}
    twins = {CATALOGUE_TWINS.get(s.id, s.id): s.id for s in BUILTIN}
    specs: list[ProviderSpec] = []
    for spec in BUILTIN:
        entry = catalogue.get(CATALOGUE_TWINS.get(spec.id, spec.id))
        if entry is None:
            specs.append(spec)
            continue
        extra = tuple(e for e in entry.env if e not in spec.key_names)
        specs.append(replace(spec, catalogue_id=entry.id, key_env_aliases=spec.key_env_aliases + extra))
    specs += [_from_catalogue(e) for pid, e in sorted(catalogue.items()) if pid not in twins]
    known = {s.id for s in specs} | set(twins)
    for provider_id, config in configured.items():
        if provider_id in known:
            continue
        models = config.models
        specs.append(
            ProviderSpec(
                provider_id,
                config.name or provider_id,
                config.base_url or "",
                needs_key=config.needs_key,
                default_model=models[0] if models else "",
                models=models,
                key_env_aliases=(config.api_key_env,) if config.api_key_env else (),
                custom=True,
                tagged_models=True,
            )
        )
    readers: dict[str, list[str]] = {}
    for spec in specs:
        if spec.needs_key:
            for name in spec.key_names:
                readers.setdefault(name, []).append(spec.id)
    specs = [
        replace(
            s,
            shares_key_with=tuple(
                dict.fromkeys(other for name in s.key_names for other in readers.get(name, ()) if other != s.id)
            ),
        )
        if s.needs_key
        else s
        for s in specs
    ]
    return Registry(tuple(specs), {twin: own for twin, own in twins.items() if twin != own})
