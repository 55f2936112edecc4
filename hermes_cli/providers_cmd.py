"""`hermes providers` and `hermes models`."""

from __future__ import annotations

import time
from typing import Any

from agent.errors import HermesError
from hermes_cli.context import Context
from hermes_cli.output import print_json, print_table
from providers.credentials import ANONYMOUS, load_credentials
from providers.state import COOLING, EXHAUSTED, FRESH, OK, CredentialState


def _health(creds: tuple, states: dict[str, CredentialState], now: float) -> str:  # type: ignore[type-arg]
    counts = {OK: 0, COOLING: 0, EXHAUSTED: 0}
    for c in creds:
        counts[states.get(c.id, FRESH).status(now)] += 1
    parts = [f"{n} {name}" for name, n in counts.items() if n]
    return ", ".join(parts) if parts else "-"


def provider_rows(ctx: Context, flag_provider: str | None, flag_base_url: str | None) -> list[dict[str, Any]]:
    runtime = ctx.runtime()
    if flag_base_url:
        runtime.attach_base_url(flag_provider or runtime.default_provider(), flag_base_url)
    store = runtime.state_store()
    now = time.time()
    rows = []
    for spec in runtime.registry:
        table = ctx.config.table("providers", spec.id)
        try:
            if spec.managed:  # never start the local server just to list it
                url, source = "(started on first use)", "hermes local"
            else:
                endpoint = runtime.endpoint(spec.id)
                url, source = endpoint.url, endpoint.source
        except HermesError as e:
            url, source = "(invalid)", e.message
        try:
            creds = load_credentials(spec, env=ctx.env, provider_table=table, auth_store=runtime.auth_store,
                                     run_command=False)
            problem = None
        except HermesError as e:  # a malformed key: listed as such, never shown
            creds, problem = (), e.message
        keys = [c for c in creds if c.id != ANONYMOUS]
        rows.append({
            "id": spec.id,
            "name": spec.name,
            "base_url": url,
            "base_url_source": source,
            "custom": spec.custom,
            "needs_key": spec.needs_key,
            "keys": len(keys) + (1 if table.get("api_key_command") else 0),
            "key_command": bool(table.get("api_key_command")),
            "health": problem or (_health(tuple(keys), store.read(spec.id), now) if keys else "-"),
        })
    return rows


def run_providers(*, as_json: bool, flag_provider: str | None, flag_base_url: str | None) -> None:
    ctx = Context()
    rows = provider_rows(ctx, flag_provider, flag_base_url)
    if as_json:
        print_json(rows)
        return
    print_table(
        ["id", "base url", "from", "keys", "health"],
        [[r["id"], r["base_url"], r["base_url_source"],
          "no key needed" if not r["needs_key"] and not r["keys"] else str(r["keys"]) + (" (+cmd)" if r["key_command"] else ""),
          r["health"]] for r in rows],
    )


def run_models(provider: str | None, base_url: str | None, *, as_json: bool) -> None:
    ctx = Context()
    runtime = ctx.runtime()
    provider_id = runtime.spec(provider).id if provider else runtime.default_provider()
    if base_url:
        runtime.attach_base_url(provider_id, base_url)
    route = runtime.route(provider_id, "")
    models = runtime.client(route).models()
    if as_json:
        print_json(models)
        return
    for m in sorted(models, key=lambda m: str(m.get("id", ""))):
        print(m.get("id", ""))
