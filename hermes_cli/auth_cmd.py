"""`hermes auth list|add|remove|reset`: the credential pool, always masked."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from hermes_cli.output import info, print_json, print_table
from hermes_cli.wiring import Wiring
from providers.credentials import ANONYMOUS, Credential, check_key
from providers.endpoint import normalize_base_url
from providers.errors import UsageError
from providers.state import COOLING, EXHAUSTED, FRESH, CredentialState

auth_app = typer.Typer(no_args_is_help=True)


def _state_text(state: CredentialState, now: float) -> str:
    status = state.status(now)
    if status == EXHAUSTED:
        return f"exhausted: {state.exhausted}"
    if status == COOLING:
        until = time.strftime("%H:%M:%S", time.localtime(state.cooldown_until))
        return f"cooling down until {until} ({state.cooldown_until - now:.0f}s left)"
    return "ok"


def _row(cred: Credential, state: CredentialState, now: float) -> dict[str, Any]:
    return {
        "provider": cred.provider,
        "id": cred.id,
        "label": cred.label,
        "source": cred.source,
        "key": cred.masked,
        "pinned_base_url": cred.pinned_base_url,
        "state": state.status(now),
        "state_text": _state_text(state, now),
        "cooldown_until": state.cooldown_until if state.status(now) == COOLING else None,
        "exhausted": state.exhausted or None,
        "requests": state.requests,
        "errors": state.errors,
        "last_error": state.last_error or None,
    }


@auth_app.command("list")
def list_cmd(
    provider: Annotated[str | None, typer.Argument(help="Only this provider.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each credential: id, label, source, masked key, pinned endpoint, state, last error."""
    wiring = Wiring()
    specs = [wiring.spec(provider)] if provider else list(wiring.registry)
    store = wiring.state_store()
    now = time.time()
    rows = []
    for spec in specs:
        creds = wiring.credentials(spec, run_command=provider is not None)
        states = store.read(spec.id)
        rows += [_row(c, states.get(c.id, FRESH), now) for c in creds if c.id != ANONYMOUS]
    if json_:
        print_json({"state_store": store.describe(), "credentials": rows})
        return
    if not rows:
        info("no keys found" + (f" for {provider}" if provider else "") + "; add one with `hermes auth add PROVIDER`.")
        return
    print_table(
        ["provider", "id", "label", "source", "key", "endpoint", "state", "used", "last error"],
        [
            [
                r["provider"],
                r["id"],
                r["label"],
                r["source"],
                r["key"],
                r["pinned_base_url"] or "(session's)",
                r["state_text"],
                f"{r['requests']} / {r['errors']} err",
                r["last_error"] or "",
            ]
            for r in rows
        ],
    )
    info(f"state store: {store.describe()}")


def _read_key(provider: str) -> str:
    """From a hidden prompt on a terminal, or the first line of piped stdin: never from argv."""
    if sys.stdin.isatty():
        import getpass

        key = getpass.getpass(f"API key for {provider} (input hidden): ")
    else:
        data = sys.stdin.buffer.read()
        try:
            key = data.decode("utf-8").strip().splitlines()[0] if data.strip() else ""
        except UnicodeDecodeError:
            raise UsageError("The key on stdin is not UTF-8 text.") from None
    key = key.strip()
    if not key:
        raise UsageError("No key given.", hint=f"Pipe it in (`pass show x | hermes auth add {provider}`) or type it.")
    check_key(key, provider, "the input")
    return key


@auth_app.command("add")
def add_cmd(
    provider: str,
    label: Annotated[str | None, typer.Option("--label", "-l", help="A name to tell keys apart.")] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Pin this key to its own endpoint (e.g. a regional one).")
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="Pin this key to a registry region.")] = None,
) -> None:
    """Add a key (read hidden from the terminal, or from stdin) to PROVIDER's pool."""
    wiring = Wiring()
    spec = wiring.spec(provider)
    pinned = None
    if base_url and region:
        raise UsageError("Give --base-url or --region, not both.")
    if base_url:
        pinned = normalize_base_url(base_url, what="--base-url")
    elif region:
        if region not in spec.regions:
            known = ", ".join(spec.regions) or "none"
            raise UsageError(f"{provider} has no region {region!r}.", hint=f"Its regions: {known}.")
        pinned = spec.regions[region]
    key = _read_key(provider)
    count = len(wiring.auth_store.keys(provider).ids)
    cred_id = wiring.auth_store.add(spec.id, key, label=label or f"key{count + 1}", base_url=pinned)
    info(f"added key {cred_id} to {spec.id}" + (f", pinned to {pinned}" if pinned else "") + ".")


@auth_app.command("remove")
def remove_cmd(provider: str, cred_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Remove a key added with `hermes auth add`."""
    wiring = Wiring()
    spec = wiring.spec(provider)
    if wiring.auth_store.remove(spec.id, cred_id):
        info(f"removed key {cred_id} from {spec.id}.")
        return
    creds = wiring.credentials(spec, run_command=False)
    for c in creds:
        if c.id == cred_id:
            raise UsageError(f"Key {cred_id} comes from {c.source}; remove it there.")
    raise UsageError(f"{spec.id} has no key {cred_id!r}.", hint=f"`hermes auth list {spec.id}` shows the ids.")


@auth_app.command("reset")
def reset_cmd(
    provider: Annotated[str | None, typer.Argument(help="Only this provider.")] = None,
    cred_id: Annotated[str | None, typer.Argument(metavar="[ID]", help="Only this key.")] = None,
) -> None:
    """Clear cooldowns and exhaustion, so every key is tried again."""
    wiring = Wiring()
    if provider:
        wiring.spec(provider)
    count = wiring.state_store().reset(provider, cred_id)
    info(f"reset {count} key{'s' if count != 1 else ''}" + (f" of {provider}" if provider else "") + ".")
