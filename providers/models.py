"""What hermes knows about a model: context window, output limit, prices and capabilities.

From the models.dev catalogue (providers.catalogue), entry by entry overridden by config.toml's
`[models."name"]`. Prices are USD per million tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for annotations only: the catalogue's import is for the commands that price
    from providers.catalogue import CatalogueModel
    from providers.provider_config import ModelOverride

DEFAULT_CONTEXT = 128_000
# Request body fields hermes sets itself: a model's `extra_body` may not replace them.
RESERVED_BODY_KEYS = ("model", "messages", "stream", "stream_options", "tools")


@dataclass(frozen=True)
class ModelInfo:
    context: int = DEFAULT_CONTEXT
    input_price: float | None = None
    output_price: float | None = None
    cache_read_price: float | None = None
    output_limit: int | None = None
    tool_call: bool = True  # False: the model cannot call tools, so none are offered
    reasoning: bool = False
    image_input: bool = False
    source: str = "default"  # "catalogue", "config" or "default": where the figures come from
    # `[models."NAME"] extra_body`: fields added to every request for the model (e.g. a server's own
    # sampling options such as llama.cpp's ignore_eos); never one of RESERVED_BODY_KEYS.
    extra_body: Mapping[str, Any] = field(default_factory=dict)

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float | None:
        """USD for one answer; cached prompt tokens at the cache price where the model has one."""
        if self.input_price is None or self.output_price is None:
            return None
        cached = min(cached_tokens, prompt_tokens) if self.cache_read_price is not None else 0
        return (
            (prompt_tokens - cached) * self.input_price
            + cached * (self.cache_read_price or 0.0)
            + completion_tokens * self.output_price
        ) / 1_000_000


# The bundled local model: not in any catalogue, and free.
LOCAL = ModelInfo(4_096, 0.0, 0.0, 0.0, 1_024, tool_call=True, source="hermes")


def from_catalogue(entry: CatalogueModel) -> ModelInfo:
    return ModelInfo(
        entry.context or DEFAULT_CONTEXT,
        entry.input_price,
        entry.output_price,
        entry.cache_read_price,
        entry.output,
        entry.tool_call,
        entry.reasoning,
        entry.image_input,
        source="catalogue",
    )


def model_info(model: str, overrides: Mapping[str, ModelOverride], entry: CatalogueModel | None = None) -> ModelInfo:
    """`overrides` are config.toml's `[models."name"]`; a model's own entry wins field by field."""
    base = from_catalogue(entry) if entry is not None else LOCAL if model == "local" else ModelInfo()
    own = overrides.get(model)
    if own is None:
        return base
    return replace(
        base,
        context=base.context if own.context is None else own.context,
        input_price=base.input_price if own.input_price is None else own.input_price,
        output_price=base.output_price if own.output_price is None else own.output_price,
        image_input=base.image_input if own.vision is None else own.vision,
        extra_body={k: v for k, v in own.extra_body.items() if k not in RESERVED_BODY_KEYS},
        source="config",
    )
