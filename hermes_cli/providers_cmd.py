"""`hermes providers` and `hermes models`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from hermes_cli.output import print_json, print_table
from hermes_cli.wiring import Wiring
from providers.credentials import ANONYMOUS, Credential
from providers.errors import HermesError, UsageError
from providers.models import ModelInfo
from providers.registry import ProviderSpec
from providers.state import COOLING, EXHAUSTED, FRESH, OK, CredentialState


def _health(creds: Sequence[Credential], states: dict[str, CredentialState], now: float) -> str:
    counts = {OK: 0, COOLING: 0, EXHAUSTED: 0}
    for c in creds:
        counts[states.get(c.id, FRESH).status(now)] += 1
    parts = [f"{n} {name}" for name, n in counts.items() if n]
    return ", ".join(parts) if parts else "-"


def _matches(spec: ProviderSpec, words: str | None) -> bool:
    return not words or words.lower() in f"{spec.id} {spec.name}".lower()


def provider_rows(
    wiring: Wiring, flag_provider: str | None, flag_base_url: str | None, words: str | None = None
) -> list[dict[str, Any]]:
    if flag_base_url:
        wiring.attach_base_url(flag_provider or wiring.default_provider(), flag_base_url)
    store = wiring.state_store()
    now = time.time()
    rows = []
    for spec in wiring.registry:
        if not _matches(spec, words):
            continue
        has_command = bool(wiring.settings.provider(spec.id).api_key_command)
        try:
            if spec.managed:  # never start the local server just to list it
                url, source = "(started on first use)", "hermes local"
            else:
                endpoint = wiring.endpoint(spec.id)
                url, source = endpoint.url, endpoint.source
        except HermesError as e:
            url, source = ("(needs another API)", spec.other_api) if spec.other_api else ("(invalid)", e.message)
        creds: Sequence[Credential]
        try:
            creds = wiring.credentials(spec, run_command=False)
            problem = None
        except HermesError as e:  # a malformed key: listed as such, never shown
            creds, problem = (), e.message
        keys = [c for c in creds if c.id != ANONYMOUS]
        rows.append(
            {
                "id": spec.id,
                "name": spec.name,
                "base_url": url,
                "base_url_source": source,
                "custom": spec.custom,
                "openai_compatible": not (spec.other_api and url == "(needs another API)"),
                "key_variables": list(spec.key_names) if spec.needs_key and not spec.managed else [],
                "shares_key_with": list(spec.shares_key_with),
                "needs_key": spec.needs_key,
                "keys": len(keys) + (1 if has_command else 0),
                "key_command": has_command,
                "health": problem or (_health(tuple(keys), store.read(spec.id), now) if keys else "-"),
            }
        )
    return rows


def run_providers(
    *, as_json: bool, flag_provider: str | None, flag_base_url: str | None, words: str | None = None
) -> None:
    wiring = Wiring()
    rows = provider_rows(wiring, flag_provider, flag_base_url, words)
    if as_json:
        print_json(rows)
        return
    if not rows:
        raise UsageError(f"No provider matches {words!r}.", hint="`hermes providers` lists them all.")
    print_table(
        ["id", "base url", "from", "keys", "health"],
        [
            [
                r["id"],
                r["base_url"],
                r["base_url_source"],
                "no key needed"
                if not r["needs_key"] and not r["keys"]
                else str(r["keys"]) + (" (+cmd)" if r["key_command"] else ""),
                r["health"],
            ]
            for r in rows
        ],
        no_wrap={"id", "base url"},
    )


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def model_row(model_id: str, info: ModelInfo | None) -> dict[str, Any]:
    if info is None:
        return {"id": model_id, "in_catalogue": False}
    return {
        "id": model_id,
        "in_catalogue": True,
        "context": info.context,
        "output_limit": info.output_limit,
        "input_price": info.input_price,
        "output_price": info.output_price,
        "cache_read_price": info.cache_read_price,
        "tools": info.tool_call,
        "reasoning": info.reasoning,
        "vision": info.image_input,
    }


def run_models(provider: str | None, base_url: str | None, *, as_json: bool, catalogue_only: bool = False) -> None:
    """The provider's live list, each model with what the catalogue knows of it; or (`catalogue_only`)
    the catalogue's models of the provider, with no request sent."""
    wiring = Wiring()
    provider_id = wiring.spec(provider).id if provider else wiring.default_provider()
    spec = wiring.spec(provider_id)
    known = wiring.catalogue.models(spec.catalogue_id) if spec.catalogue_id else {}
    if catalogue_only:
        if not known:
            raise UsageError(
                f"The models.dev catalogue has no models for {provider_id}.",
                hint=f"`hermes models -p {provider_id}` asks the provider itself.",
            )
        ids = sorted(known)
    else:
        if base_url:
            wiring.attach_base_url(provider_id, base_url)
        route = wiring.route(provider_id, "")
        ids = sorted({str(m.get("id", "")) for m in wiring.client(route).models()})
    rows = [model_row(i, wiring.model_info(i, provider_id) if i in known else None) for i in ids]
    if as_json:
        print_json(rows)
        return
    if not any(r["in_catalogue"] for r in rows):
        for r in rows:  # nothing more is known: one id a line, as scripts expect
            print(r["id"])
        return
    print_table(
        ["model", "context", "$/M in", "$/M out", "tools", "reasoning", "vision"],
        [
            [
                r["id"],
                f"{r['context']:,}",
                _price(r["input_price"]),
                _price(r["output_price"]),
                "yes" if r["tools"] else "no",
                "yes" if r["reasoning"] else "no",
                "yes" if r["vision"] else "no",
            ]
            if r["in_catalogue"]
            else [r["id"], "", "", "", "", "", ""]
            for r in rows
        ],
        no_wrap={"model"},
    )
