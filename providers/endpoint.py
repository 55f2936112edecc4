"""Endpoint resolution: which base URL a session talks to, and why. Pure: inputs in, frozen value out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from providers.errors import UsageError
from providers.registry import ProviderSpec
from providers.secrets import credential_params, mask_url

FLAG = "flag --base-url"
ENV = "env"
MODEL_SECTION = "[model].base_url"
PROVIDER_SECTION = "[providers.{id}].base_url"
REGISTRY = "registry default"
CUSTOM = "[providers.{id}] (custom)"
MANAGED = "hermes local server"
FALLBACK = "[[fallback]].base_url"


@dataclass(frozen=True)
class Endpoint:
    url: str
    source: str

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


def normalize_base_url(url: str, *, what: str) -> str:
    """Validate an http(s) URL and drop a trailing slash, so joining paths is unambiguous.

    A URL with user:password@ is refused: httpx would send it as Basic auth in place of the key, and
    every display of the endpoint would show the password."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise UsageError(
            f"{what} {mask_url(url)!r} is not a valid URL.", hint="Use a full URL such as https://host/v1."
        ) from None
    if parts.username is not None or parts.password is not None:
        raise UsageError(
            f"{what} {mask_url(url)!r} holds a user name or password.",
            hint="Put the key in api_keys, <ID>_API_KEY or `hermes auth add`, not in the URL.",
        )
    keys = credential_params(url)
    if keys:
        # A key in the URL would escape the pool (no rotation) and be shown wherever the endpoint is.
        raise UsageError(
            f"{what} {mask_url(url)!r} holds a key in its query ({', '.join(keys)}).",
            hint="Put the key in api_keys, <ID>_API_KEY or `hermes auth add`, not in the URL.",
        )
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"{what} {mask_url(url)!r} is not an http(s) URL.", hint="Use a full URL such as https://host/v1."
        )
    return url.strip().rstrip("/")


def resolve_endpoint(
    spec: ProviderSpec,
    *,
    env: Mapping[str, str],
    flag_base_url: str | None = None,
    model_base_url: str | None = None,
    provider_base_url: str | None = None,
) -> Endpoint:
    """Highest first: --base-url, <ID>_BASE_URL, [model].base_url, [providers.<id>].base_url, the registry.

    `model_base_url` must only be passed when `[model].provider` names this provider.
    """
    env_name = spec.base_url_env
    candidates = (
        (flag_base_url, FLAG),
        (env.get(env_name) or None, f"{ENV} {env_name}"),
        (model_base_url, MODEL_SECTION),
        (provider_base_url, PROVIDER_SECTION.format(id=spec.id)),
    )
    for url, source in candidates:
        if url:
            return Endpoint(normalize_base_url(url, what=source), source)
    if not spec.base_url and spec.other_api:
        raise UsageError(
            f"{spec.name} ({spec.id}) needs its own API ({spec.other_api}), not the OpenAI-compatible one "
            "hermes speaks.",
            hint=f"If it offers an OpenAI-compatible endpoint, set {env_name} or [providers.{spec.id}] base_url to it.",
        )
    if not spec.base_url:
        raise UsageError(
            f"Provider {spec.id!r} has no endpoint.",
            hint=f"Set base_url in [providers.{spec.id}] or {env_name}.",
        )
    source = CUSTOM.format(id=spec.id) if spec.custom else REGISTRY
    return Endpoint(normalize_base_url(spec.base_url, what=source), source)
