"""Typed settings: config.toml and hermes's variables read once; every default comes from config's SCHEMA."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from hermes_cli.config import SCHEMA, Config
from hermes_cli.settings import Settings, load_settings, settings_from
from providers.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

# Where each top-level key of the schema lands in Settings.
ATTRIBUTES: dict[tuple[str, ...], str] = {
    ("model", "provider"): "model.provider",
    ("model", "name"): "model.name",
    ("model", "base_url"): "model.base_url",
    ("credentials", "strategy"): "credentials.strategy",
    ("credentials", "max_wait_seconds"): "credentials.max_wait_seconds",
    ("credentials", "cooldown_seconds"): "credentials.cooldown_seconds",
    ("credentials", "state"): "credentials.state",
    ("local", "model"): "local.model",
    ("local", "keep_alive"): "local.keep_alive",
    ("local", "auto"): "local.auto",
    ("tools", "pass_env"): "tools.pass_env",
    ("tools", "network"): "tools.network",
    ("tools", "sandbox"): "tools.sandbox",
    ("sessions", "save"): "save_sessions",
    **{("agent", key): f"agent.{key}" for path in SCHEMA if path[0] == "agent" for key in [path[1]]},
}


def attribute(settings: Settings, dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def test_every_top_level_key_of_the_schema_is_a_typed_setting() -> None:
    top_level = {p for p in SCHEMA if "*" not in p and "[]" not in p}
    assert top_level == set(ATTRIBUTES)


def test_an_empty_config_gives_the_schema_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "config.toml", {})
    for path, dotted in ATTRIBUTES.items():
        default = SCHEMA[path].default
        expected = {"10m": 600.0}.get(default, default) if isinstance(default, str) else default
        expected = tuple(expected) if isinstance(expected, list) else expected
        assert attribute(settings, dotted) == expected, path


def test_values_from_the_file_are_typed(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text(
        '[agent]\ntimeout = 30\nmax_retries = 0\ncompress_at = 0\n[local]\nkeep_alive = "2h"\n'
        '[tools]\npass_env = ["GITHUB_TOKEN"]\n[providers.myplan]\nbase_url = "http://127.0.0.1:1/v1"\n'
        'api_key_command = ["pass", "show", "x"]\nmodels = ["a", "b"]\nneeds_key = false\n'
        '[models."a"]\ncontext = 4096\nextra_body = { ignore_eos = true }\n'
        '[[fallback]]\nprovider = "openrouter"\n',
        encoding="utf-8",
    )
    settings = load_settings(file, {})
    assert settings.agent.timeout == 30.0 and isinstance(settings.agent.timeout, float)
    assert settings.agent.max_retries == 0 and settings.agent.compress_at == 0.0
    assert settings.local.keep_alive == 7200.0
    assert settings.tools.pass_env == ("GITHUB_TOKEN",)
    plan = settings.provider("myplan")
    assert plan.api_key_command == ("pass", "show", "x") and plan.models == ("a", "b") and not plan.needs_key
    assert settings.provider("no-such").needs_key is SCHEMA[("providers", "*", "needs_key")].default
    assert settings.models["a"].context == 4096 and settings.models["a"].extra_body == {"ignore_eos": True}
    assert [(f.provider, f.name) for f in settings.fallback] == [("openrouter", None)]
    assert settings.recovery().max_retries == 0 and settings.timeouts().read == 30.0


def test_hermes_variables_are_settings_too(tmp_path: Path) -> None:
    env = {"HERMES_STATE_URL": "redis://127.0.0.1:1/0", "HERMES_PROVIDER": "myplan", "HERMES_MODEL": "m"}
    settings = settings_from(Config(tmp_path / "config.toml", {"credentials": {"state": "file"}}), env)
    assert settings.credentials.state == "redis://127.0.0.1:1/0"  # the variable wins over the file
    assert (settings.env_model.provider, settings.env_model.name) == ("myplan", "m")


def test_a_bad_value_is_an_error_value_not_a_print(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "config.toml"
    file.write_text("[agent]\ntimeout = inf\nbogus = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"agent\.timeout must be a number"):
        load_settings(file, {})
    file.write_text("[agent]\nbogus = 1\n", encoding="utf-8")
    assert any("unknown key agent.bogus" in w for w in load_settings(file, {}).warnings)
    assert capsys.readouterr() == ("", "")


def test_only_the_settings_module_reads_the_checked_file() -> None:
    """Nothing but settings.py turns config.toml into values (`hermes config` shows and edits the file)."""
    allowed = {"hermes_cli/settings.py", "hermes_cli/wiring.py", "hermes_cli/config.py", "hermes_cli/config_cmd.py"}
    readers = set()
    for path in [*ROOT.glob("hermes_cli/**/*.py"), *ROOT.glob("agent/**/*.py"), *ROOT.glob("providers/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            imported = {a.name for a in node.names} if isinstance(node, ast.ImportFrom) else set()
            if (
                isinstance(node, ast.ImportFrom)
                and node.module == "hermes_cli.config"
                and imported & {"Config", "load_config"}
            ):
                readers.add(str(path.relative_to(ROOT)))
    assert readers <= allowed
    assert "hermes_cli/settings.py" in readers
