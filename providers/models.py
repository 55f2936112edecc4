"""What hermes knows about models: context window and price, from a small table plus `[models."name"]`.

Prices are USD per million tokens and change often: the table is a starting point, config wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CONTEXT = 128_000
# Request body fields hermes sets itself: a model's `extra_body` may not replace them.
RESERVED_BODY_KEYS = ("model", "messages", "stream", "stream_options", "tools")


@dataclass(frozen=True)
class ModelInfo:
    context: int = DEFAULT_CONTEXT
    input_price: float | None = None
    output_price: float | None = None
    # `[models."NAME"] extra_body`: fields added to every request for the model (e.g. a server's own
    # sampling options such as llama.cpp's ignore_eos); never one of RESERVED_BODY_KEYS.
    extra_body: Mapping[str, Any] = field(default_factory=dict)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        if self.input_price is None or self.output_price is None:
            return None
        return (prompt_tokens * self.input_price + completion_tokens * self.output_price) / 1_000_000


# Keyed by the model's name without any "vendor/" prefix, so OpenRouter ids share the entry.
KNOWN: Mapping[str, ModelInfo] = {
    "gpt-4o": ModelInfo(128_000, 2.5, 10.0),
    "gpt-4o-mini": ModelInfo(128_000, 0.15, 0.6),
    "gpt-4.1": ModelInfo(1_047_576, 2.0, 8.0),
    "o3-mini": ModelInfo(200_000, 1.1, 4.4),
    "claude-sonnet-4": ModelInfo(200_000, 3.0, 15.0),
    "claude-sonnet-4-20250514": ModelInfo(200_000, 3.0, 15.0),
    "claude-opus-4-20250514": ModelInfo(200_000, 15.0, 75.0),
    "deepseek-chat": ModelInfo(64_000, 0.27, 1.1),
    "deepseek-reasoner": ModelInfo(64_000, 0.55, 2.19),
    "gemini-2.5-flash": ModelInfo(1_048_576, 0.3, 2.5),
    "gemini-2.5-pro": ModelInfo(1_048_576, 1.25, 10.0),
    "mistral-large-latest": ModelInfo(128_000, 2.0, 6.0),
    "llama-3.3-70b-versatile": ModelInfo(128_000, 0.59, 0.79),
    "local": ModelInfo(4_096, 0.0, 0.0),
}


def model_info(model: str, overrides: Mapping[str, Any]) -> ModelInfo:
    """`overrides` is the `[models]` table of config.toml; a model's own entry wins field by field."""
    base = KNOWN.get(model) or KNOWN.get(model.rsplit("/", 1)[-1]) or ModelInfo()
    own = overrides.get(model)
    if not isinstance(own, Mapping):
        return base
    extra = own.get("extra_body")
    return ModelInfo(
        int(own.get("context", base.context)),
        own.get("input_price", base.input_price),
        own.get("output_price", base.output_price),
        {k: v for k, v in extra.items() if k not in RESERVED_BODY_KEYS} if isinstance(extra, Mapping) else {},
    )
