"""Typed settings: config.toml and hermes's own environment variables, read and checked once.

`load_settings` reads the file through `hermes_cli.config` (which checks every value against its
SCHEMA: type, range, finite) and returns one frozen `Settings`. A key the file leaves out takes the
SCHEMA's default: every default of hermes is written there and nowhere else. Nothing but this module
reads config.toml by key path (`hermes config` edits the file itself). Problems are values:
`Settings.warnings` holds what the CLI should tell the user; a bad value raises ConfigError (exit 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hermes_cli.config import SCHEMA, Config, duration_seconds, load_config
from providers.provider_config import ModelOverride, ProviderConfig
from providers.secrets import STATE_URL_ENV

if TYPE_CHECKING:
    from agent.recovery import RecoverySettings
    from agent.tools.mcp_config import ServerConfig
    from agent.transport import Timeouts


@dataclass(frozen=True)
class ModelChoice:
    """A default provider and model: `[model]` of config.toml, or HERMES_PROVIDER / HERMES_MODEL."""

    provider: str | None
    name: str | None
    base_url: str | None = None  # `[model] base_url`: the endpoint of `provider` only


@dataclass(frozen=True)
class CredentialSettings:
    strategy: str  # which available key serves the next request
    max_wait_seconds: float  # longest wait for a cooling key before exit 4
    cooldown_seconds: float  # a 429's cooldown when the provider names none
    state: str  # "file", or the redis:// URL a fleet shares (HERMES_STATE_URL wins)


@dataclass(frozen=True)
class AgentSettings:
    max_tool_iterations: int
    allow_dangerous: bool
    project_context: bool
    timeout: float
    connect_timeout: float
    max_retries: int
    max_answer_seconds: float
    compress_at: float
    max_attachment_bytes: int


@dataclass(frozen=True)
class ToolSettings:
    pass_env: tuple[str, ...]
    network: bool
    sandbox: bool


@dataclass(frozen=True)
class LocalSettings:
    model: str | None  # a GGUF file; None: the bundled model
    keep_alive: float  # seconds of idleness before the server stops
    auto: bool  # answer with the local model when no provider is configured


@dataclass(frozen=True)
class FallbackChoice:
    """One `[[fallback]]` entry; `name` None is the provider's default model."""

    provider: str
    name: str | None
    base_url: str | None


@dataclass(frozen=True)
class Settings:
    file: Path
    model: ModelChoice  # config.toml's [model]
    env_model: ModelChoice  # HERMES_PROVIDER / HERMES_MODEL: they win over [model]
    providers: Mapping[str, ProviderConfig]
    credentials: CredentialSettings
    fallback: tuple[FallbackChoice, ...]
    agent: AgentSettings
    tools: ToolSettings
    local: LocalSettings
    save_sessions: bool
    models: Mapping[str, ModelOverride]
    mcp_tables: Mapping[str, Mapping[str, Any]]  # checked by the schema; see mcp_servers()
    warnings: tuple[str, ...] = ()

    def provider(self, provider_id: str) -> ProviderConfig:
        return self.providers.get(provider_id) or _NO_PROVIDER_CONFIG

    def mcp_servers(
        self, tables: Mapping[str, Mapping[str, Any]] | None = None, *, disabled_too: bool = False
    ) -> list[ServerConfig]:
        """The enabled servers of `tables` (by default `[mcp.servers]`), checked further only when tools
        are wanted (a server without a command is an error for `hermes chat`, not for `ask --no-tools`)."""
        from agent.tools.mcp_config import parse_servers

        return parse_servers(
            self.mcp_tables if tables is None else tables,
            disabled_too=disabled_too,
            startup_timeout=float(_default("mcp", "servers", "*", "startup_timeout")),
            tool_timeout=float(_default("mcp", "servers", "*", "tool_timeout")),
        )

    def recovery(self) -> RecoverySettings:
        from agent.recovery import RecoverySettings

        return RecoverySettings(
            max_wait_seconds=self.credentials.max_wait_seconds,
            max_retries=self.agent.max_retries,
            default_cooldown=self.credentials.cooldown_seconds,
            max_answer_seconds=self.agent.max_answer_seconds,
        )

    def timeouts(self) -> Timeouts:
        from agent.transport import Timeouts

        return Timeouts(connect=self.agent.connect_timeout, read=self.agent.timeout)


def _default(*path: str) -> Any:
    return SCHEMA[path].default


def load_settings(file: Path, env: Mapping[str, str]) -> Settings:
    return settings_from(load_config(file), env)


def settings_from(config: Config, env: Mapping[str, str]) -> Settings:
    """The typed view of a checked config (tests build one from a dict with `Config(path, data)`)."""

    def value(*path: str) -> Any:
        found = config.get(*path)
        return _default(*path) if found is None else found

    def table(*path: str) -> Mapping[str, Any]:
        found = config.get(*path)
        return found if isinstance(found, Mapping) else {}

    return Settings(
        file=config.path,
        model=ModelChoice(value("model", "provider"), value("model", "name"), value("model", "base_url")),
        env_model=ModelChoice(env.get("HERMES_PROVIDER") or None, env.get("HERMES_MODEL") or None),
        providers={
            pid: _provider(t)
            for pid, t in table("providers").items()
            if isinstance(pid, str) and isinstance(t, Mapping)
        },
        credentials=CredentialSettings(
            strategy=str(value("credentials", "strategy")),
            max_wait_seconds=float(value("credentials", "max_wait_seconds")),
            cooldown_seconds=float(value("credentials", "cooldown_seconds")),
            state=env.get(STATE_URL_ENV) or str(value("credentials", "state")),
        ),
        fallback=tuple(
            FallbackChoice(str(e["provider"]), e.get("name"), e.get("base_url"))
            for e in (config.get("fallback") or [])
            if isinstance(e, Mapping) and e.get("provider")
        ),
        agent=AgentSettings(
            max_tool_iterations=int(value("agent", "max_tool_iterations")),
            allow_dangerous=bool(value("agent", "allow_dangerous")),
            project_context=bool(value("agent", "project_context")),
            timeout=float(value("agent", "timeout")),
            connect_timeout=float(value("agent", "connect_timeout")),
            max_retries=int(value("agent", "max_retries")),
            max_answer_seconds=float(value("agent", "max_answer_seconds")),
            compress_at=float(value("agent", "compress_at")),
            max_attachment_bytes=int(value("agent", "max_attachment_bytes")),
        ),
        tools=ToolSettings(
            pass_env=tuple(value("tools", "pass_env")),
            network=bool(value("tools", "network")),
            sandbox=bool(value("tools", "sandbox")),
        ),
        local=LocalSettings(
            model=value("local", "model"),
            keep_alive=duration_seconds(value("local", "keep_alive")),
            auto=bool(value("local", "auto")),
        ),
        save_sessions=bool(value("sessions", "save")),
        models={name: _model(t) for name, t in table("models").items() if isinstance(t, Mapping)},
        mcp_tables={name: t for name, t in table("mcp", "servers").items() if isinstance(t, Mapping)},
        warnings=config.warnings,
    )


def _provider(t: Mapping[str, Any]) -> ProviderConfig:
    command = t.get("api_key_command")
    return ProviderConfig(
        name=t.get("name"),
        base_url=t.get("base_url"),
        api_keys=tuple(t.get("api_keys") or ()),
        api_key_env=t.get("api_key_env"),
        api_key_command=tuple(command) if isinstance(command, list) else command,
        models=tuple(t.get("models") or ()),
        needs_key=bool(t.get("needs_key", _default("providers", "*", "needs_key"))),
    )


def _model(t: Mapping[str, Any]) -> ModelOverride:
    return ModelOverride(
        context=t.get("context"),
        input_price=t.get("input_price"),
        output_price=t.get("output_price"),
        vision=t.get("vision"),
        extra_body=dict(t.get("extra_body") or {}),
    )


_NO_PROVIDER_CONFIG = _provider({})  # a provider config.toml says nothing of
