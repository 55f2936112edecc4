"""What config.toml says of one provider (`[providers.<id>]`) and of one model (`[models."name"]`), typed.

hermes_cli/settings.py builds these once from the checked file; the registry, the credential loader,
endpoint resolution and the secret registry read them, never the TOML tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProviderConfig:
    name: str | None
    base_url: str | None
    api_keys: tuple[str, ...]
    api_key_env: str | None
    api_key_command: str | tuple[str, ...] | None  # a shell line, or argv
    models: tuple[str, ...]
    needs_key: bool  # a custom provider's; false for a keyless local server

    @property
    def has_own_key(self) -> bool:
        """A key given to this provider by name in config (not one from the environment)."""
        return bool(self.api_keys or self.api_key_command)


@dataclass(frozen=True)
class ModelOverride:
    """`[models."name"]`: each field set replaces the catalogue's figure."""

    context: int | None
    input_price: float | None
    output_price: float | None
    vision: bool | None
    extra_body: Mapping[str, Any]
