"""config.toml: parse errors, type errors, `hermes config path|show|get|set`, and what is written to disk."""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from pathlib import Path

import pytest

from hermes_cli.config import coerce_value, load_config, masked, parse_key, set_value
from providers.errors import ConfigError, UsageError
from tests.conftest import Hermes

SECRET_A = "sk-or-v1-aaaaaaaaaaaaaaaaaaaaaaaaaaaa1111"
SECRET_B = "sk-or-v1-bbbbbbbbbbbbbbbbbbbbbbbbbbbb2222"

# The error is on line 4: a bare word is no TOML value.
MALFORMED = b'# my settings\n[model]\nprovider = "deepseek"\nname = deepseek-chat\n'

COMMENTED = """\
# hermes settings, written by hand
[model]
provider = "deepseek"   # the default provider
name = "deepseek-chat"

# retry budget
[credentials]
strategy = "round_robin"  # spread the load
max_wait_seconds = 10

[agent]
max_tool_iterations = 20  # keep it short
"""


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- unit: load_config -----------------------------------------------------------------------------


def test_missing_file_is_an_empty_config(tmp_path: Path) -> None:
    config = load_config(tmp_path / "nope.toml")
    assert config.data == {}
    assert config.get("model", "provider") is None


def test_malformed_toml_names_file_line_and_column(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_bytes(MALFORMED)
    with pytest.raises(ConfigError) as info:
        load_config(file)
    text = str(info.value)
    assert str(file) in text
    assert re.search(r"line 4\b", text), text
    assert re.search(r"column \d+", text), text
    assert file.read_bytes() == MALFORMED


def test_config_error_is_a_usage_error() -> None:
    assert issubclass(ConfigError, UsageError)


def test_non_utf8_config_is_a_config_error(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_bytes(b'[model]\nname = "\xff\xfe"\n')
    with pytest.raises(ConfigError) as info:
        load_config(file)
    assert str(file) in str(info.value)


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[credentials]\nmax_wait_seconds = "ten"\n', "credentials.max_wait_seconds"),
        ('[credentials]\nstrategy = "loudest"\n', "credentials.strategy"),
        ("[model]\nprovider = 3\n", "model.provider"),
        ('[model]\nbase_url = "notaurl"\n', "model.base_url"),
        ('[providers.openrouter]\napi_keys = "sk-one"\n', "providers.openrouter.api_keys"),
        ("[agent]\nmax_tool_iterations = -1\n", "agent.max_tool_iterations"),
    ],
)
def test_wrong_type_names_the_key(tmp_path: Path, toml: str, key: str) -> None:
    file = tmp_path / "config.toml"
    file.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(file)
    assert key in str(info.value)
    assert str(file) in str(info.value)


def test_wrong_type_of_a_secret_does_not_show_it(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text(f'[providers.openrouter]\napi_keys = "{SECRET_A}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(file)
    assert SECRET_A not in str(info.value)


def test_unknown_key_is_a_warning(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text('[model]\nprovider = "deepseek"\ncolour = "red"\n\n[telemetry]\non = true\n', encoding="utf-8")
    config = load_config(file)
    assert config.get("model", "provider") == "deepseek"
    joined = "\n".join(config.warnings)
    assert "model.colour" in joined
    assert "telemetry.on" in joined


def test_full_contract_example_is_valid(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text(
        """
[model]
provider = "openrouter"
name = "anthropic/claude-sonnet-4"
base_url = "https://openrouter.example/api/v1"

[providers.openrouter]
base_url = "https://openrouter.example/api/v1"
api_keys = ["sk-aaaaaaaaaaaaaaaa", "sk-bbbbbbbbbbbbbbbb"]

[providers.myplan]
base_url = "http://127.0.0.1:8080/v1"
api_key_env = "MYPLAN_API_KEY"
models = ["model-a", "model-b"]

[credentials]
strategy = "fill_first"
max_wait_seconds = 10
state = "file"

[[fallback]]
provider = "deepseek"
name = "deepseek-chat"

[agent]
max_tool_iterations = 20

[local]
model = "path/to/model.gguf"
keep_alive = "10m"

[mcp.servers.files]
command = ["python", "-m", "some_mcp_server"]
""",
        encoding="utf-8",
    )
    config = load_config(file)
    assert config.warnings == ()
    assert config.get("credentials", "max_wait_seconds") == 10


# -- unit: set_value / coerce_value / masked -------------------------------------------------------


def test_set_value_keeps_comments_and_order(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text(COMMENTED, encoding="utf-8")
    set_value(file, ("credentials", "max_wait_seconds"), 5)
    assert file.read_text(encoding="utf-8") == COMMENTED.replace("max_wait_seconds = 10", "max_wait_seconds = 5")


def test_set_value_refuses_a_broken_file(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_bytes(MALFORMED)
    with pytest.raises(ConfigError):
        set_value(file, ("model", "name"), "x")
    assert file.read_bytes() == MALFORMED


def test_set_value_refuses_a_result_that_fails_validation(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text(COMMENTED, encoding="utf-8")
    with pytest.raises(UsageError):
        set_value(file, ("credentials", "strategy"), "loudest")
    assert file.read_text(encoding="utf-8") == COMMENTED


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [
        ("credentials.max_wait_seconds", "5", 5),
        ("credentials.max_wait_seconds", "2.5", 2.5),
        ("agent.max_tool_iterations", "7", 7),
        ("agent.allow_dangerous", "true", True),
        ("model.name", "42", "42"),
        ("model.name", "anthropic/claude-sonnet-4", "anthropic/claude-sonnet-4"),
        ("providers.myplan.models", "a,b", ["a", "b"]),
        ("providers.myplan.models", '["a", "b"]', ["a", "b"]),
        ("providers.myplan.models", "solo", ["solo"]),
    ],
)
def test_coerce_value(key: str, text: str, value: object) -> None:
    got = coerce_value(parse_key(key), text)
    assert got == value
    assert type(got) is type(value)


def test_coerce_unknown_key() -> None:
    with pytest.raises(UsageError):
        coerce_value(parse_key("model.colour"), "red")


@pytest.mark.parametrize("key", ["", ".", "model.", ".model"])
def test_parse_bad_key(key: str) -> None:
    with pytest.raises(UsageError):
        parse_key(key)


def test_parse_quoted_key() -> None:
    assert parse_key('models."gpt-4.1".context') == ("models", "gpt-4.1", "context")


def test_masked_hides_every_api_key() -> None:
    data = {"providers": {"openrouter": {"api_keys": [SECRET_A, SECRET_B], "base_url": "https://x.test/v1"}}}
    shown = json.dumps(masked(data))
    assert SECRET_A not in shown and SECRET_B not in shown
    assert "https://x.test/v1" in shown


# -- subprocess: errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["config", "show"], ["config", "get", "model.name"], ["providers"], ["ask", "hi"]],
    ids=["show", "get", "providers", "ask"],
)
def test_cli_malformed_toml_exit_2(hermes: Hermes, args: list[str]) -> None:
    file = hermes.home / "config.toml"
    file.write_bytes(MALFORMED)
    before = file.stat()
    result = hermes.run(*args, env={"DEEPSEEK_API_KEY": "sk-test-0000000000000001"})
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert str(file) in result.stderr
    assert re.search(r"line 4\b", result.stderr), result.stderr
    assert re.search(r"column \d+", result.stderr), result.stderr
    no_traceback(result.stderr)
    assert len(result.stderr.strip().splitlines()) <= 2
    assert file.read_bytes() == MALFORMED
    assert file.stat().st_mtime_ns == before.st_mtime_ns


def test_cli_config_set_never_overwrites_a_broken_file(hermes: Hermes) -> None:
    file = hermes.home / "config.toml"
    file.write_bytes(MALFORMED)
    result = hermes.run("config", "set", "model.name", "deepseek-reasoner")
    assert result.returncode == 2
    assert str(file) in result.stderr
    assert re.search(r"line 4\b", result.stderr), result.stderr
    no_traceback(result.stderr)
    assert file.read_bytes() == MALFORMED
    assert sorted(p.name for p in hermes.home.iterdir()) == ["config.toml"]


def test_cli_wrong_type_exit_2_naming_the_key(hermes: Hermes) -> None:
    hermes.write_config('[credentials]\nmax_wait_seconds = "ten"\n')
    for args in (["config", "show"], ["ask", "-p", "deepseek", "hi"]):
        result = hermes.run(*args, env={"DEEPSEEK_API_KEY": "sk-test-0000000000000001"})
        assert result.returncode == 2, result.stderr
        assert "credentials.max_wait_seconds" in result.stderr
        assert "config.toml" in result.stderr
        assert result.stdout == ""
        no_traceback(result.stderr)


# -- subprocess: config set ------------------------------------------------------------------------


def test_cli_config_set_keeps_comments_and_order(hermes: Hermes) -> None:
    file = hermes.write_config(COMMENTED)
    result = hermes.run("config", "set", "credentials.max_wait_seconds", "5")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert file.read_text(encoding="utf-8") == COMMENTED.replace("max_wait_seconds = 10", "max_wait_seconds = 5")

    result = hermes.run("config", "set", "model.name", "deepseek-reasoner")
    assert result.returncode == 0, result.stderr
    text = file.read_text(encoding="utf-8")
    assert text == COMMENTED.replace("max_wait_seconds = 10", "max_wait_seconds = 5").replace(
        'name = "deepseek-chat"', 'name = "deepseek-reasoner"'
    )


def test_cli_config_set_new_table_appends(hermes: Hermes) -> None:
    file = hermes.write_config(COMMENTED)
    result = hermes.run("config", "set", "providers.myplan.base_url", "http://127.0.0.1:8080/v1")
    assert result.returncode == 0, result.stderr
    text = file.read_text(encoding="utf-8")
    assert text.startswith(COMMENTED)
    assert tomllib.loads(text)["providers"]["myplan"]["base_url"] == "http://127.0.0.1:8080/v1"


def test_cli_config_set_stores_an_integer(hermes: Hermes) -> None:
    file = hermes.home / "config.toml"
    result = hermes.run("config", "set", "credentials.max_wait_seconds", "5")
    assert result.returncode == 0, result.stderr
    data = tomllib.loads(file.read_text(encoding="utf-8"))
    assert data["credentials"]["max_wait_seconds"] == 5
    assert type(data["credentials"]["max_wait_seconds"]) is int
    assert re.search(r"^max_wait_seconds = 5$", file.read_text(encoding="utf-8"), re.M)
    got = hermes.run("config", "get", "credentials.max_wait_seconds")
    assert (got.returncode, got.stdout) == (0, "5\n")


def test_cli_config_set_creates_file_with_mode_0600(hermes: Hermes) -> None:
    file = hermes.home / "config.toml"
    assert not file.exists()
    result = hermes.run("config", "set", "model.provider", "deepseek")
    assert result.returncode == 0, result.stderr
    assert mode_of(file) == 0o600
    assert tomllib.loads(file.read_text(encoding="utf-8")) == {"model": {"provider": "deepseek"}}


def test_cli_config_set_writes_0600_atomically(hermes: Hermes) -> None:
    file = hermes.write_config(COMMENTED)
    os.chmod(file, 0o644)
    # A second name for the old file: an atomic replace leaves it untouched, an in-place write would not.
    old = hermes.home / "old.toml"
    os.link(file, old)
    inode = file.stat().st_ino
    result = hermes.run("config", "set", "agent.max_tool_iterations", "30")
    assert result.returncode == 0, result.stderr
    assert mode_of(file) == 0o600
    assert file.stat().st_ino != inode
    assert old.read_text(encoding="utf-8") == COMMENTED
    assert "max_tool_iterations = 30" in file.read_text(encoding="utf-8")
    # No temp file is left behind.
    assert sorted(p.name for p in hermes.home.iterdir()) == ["config.toml", "old.toml"]


def test_cli_config_set_api_keys_file_is_private(hermes: Hermes) -> None:
    file = hermes.home / "config.toml"
    result = hermes.run("config", "set", "providers.openrouter.api_keys", f"{SECRET_A},{SECRET_B}")
    assert result.returncode == 0, result.stderr
    assert mode_of(file) == 0o600
    data = tomllib.loads(file.read_text(encoding="utf-8"))
    assert data["providers"]["openrouter"]["api_keys"] == [SECRET_A, SECRET_B]
    for secret in (SECRET_A, SECRET_B):
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("model.colour", "red"),
        ("nonsense", "1"),
        ("credentials.max_wait_seconds", "ten"),
        ("credentials.strategy", "loudest"),
        ("model.base_url", "notaurl"),
    ],
)
def test_cli_config_set_bad_key_or_value_exit_2(hermes: Hermes, key: str, value: str) -> None:
    file = hermes.write_config(COMMENTED)
    result = hermes.run("config", "set", key, value)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert key.split(".")[-1] in result.stderr
    no_traceback(result.stderr)
    assert file.read_text(encoding="utf-8") == COMMENTED


# -- subprocess: get / show / path -----------------------------------------------------------------


def test_cli_config_get(hermes: Hermes) -> None:
    hermes.write_config(COMMENTED)
    result = hermes.run("config", "get", "model.provider")
    assert (result.returncode, result.stdout) == (0, "deepseek\n")
    result = hermes.run("config", "get", "credentials.max_wait_seconds")
    assert (result.returncode, result.stdout) == (0, "10\n")


def test_cli_config_get_unset_key_fails_quietly(hermes: Hermes) -> None:
    hermes.write_config(COMMENTED)
    result = hermes.run("config", "get", "local.model")
    assert result.returncode != 0
    assert result.stdout == ""
    assert "local.model" in result.stderr
    no_traceback(result.stderr)


def test_cli_config_show_masks_api_keys(hermes: Hermes) -> None:
    hermes.write_config(
        f'[model]\nprovider = "openrouter"\n\n[providers.openrouter]\napi_keys = ["{SECRET_A}", "{SECRET_B}"]\n'
    )
    outputs = []
    for args in (
        ["config", "show"],
        ["config", "show", "--json"],
        ["config", "get", "providers.openrouter.api_keys"],
        ["config", "get", "providers.openrouter"],
    ):
        result = hermes.run(*args)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    for out in outputs:
        for secret in (SECRET_A, SECRET_B):
            assert secret not in out
            # Not even the part after the prefix: nothing usable is shown.
            assert secret[3:-4] not in out
    shown = json.loads(hermes.run("config", "show", "--json").stdout)
    assert shown["model"] == {"provider": "openrouter"}
    keys = shown["providers"]["openrouter"]["api_keys"]
    assert len(keys) == 2 and keys[0] != keys[1]
    assert tomllib.loads(hermes.run("config", "show").stdout)["model"]["provider"] == "openrouter"


def test_cli_config_path_honours_hermes_home(hermes: Hermes, tmp_path: Path) -> None:
    result = hermes.run("config", "path")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{hermes.home / 'config.toml'}\n"
    other = tmp_path / "elsewhere"
    result = hermes.run("config", "path", env={"HERMES_HOME": str(other)})
    assert result.stdout == f"{other / 'config.toml'}\n"
    assert not other.exists() or not (other / "config.toml").exists()


def test_cli_config_path_works_with_a_broken_file(hermes: Hermes) -> None:
    hermes.home.joinpath("config.toml").write_bytes(MALFORMED)
    result = hermes.run("config", "path")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{hermes.home / 'config.toml'}\n"


def test_cli_unknown_key_warns_but_works(hermes: Hermes) -> None:
    hermes.write_config('[model]\nprovider = "deepseek"\ncolour = "red"\n')
    result = hermes.run("config", "get", "model.provider")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "deepseek\n"
    assert "model.colour" in result.stderr
    assert "warning" in result.stderr.lower()
    result = hermes.run("providers", "--json")
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)
    assert "model.colour" in result.stderr


def test_cli_config_edit_checks_the_file(hermes: Hermes) -> None:
    file = hermes.home / "config.toml"
    script = hermes.home / "ed.sh"
    script.write_text('#!/bin/sh\nprintf \'[model]\\nprovider = "deepseek"\\n\' > "$1"\n', encoding="utf-8")
    script.chmod(0o700)
    result = hermes.run("config", "edit", env={"EDITOR": str(script), "VISUAL": ""})
    assert result.returncode == 0, result.stderr
    assert tomllib.loads(file.read_text(encoding="utf-8")) == {"model": {"provider": "deepseek"}}

    script.write_text("#!/bin/sh\nprintf '[model\\n' > \"$1\"\n", encoding="utf-8")
    result = hermes.run("config", "edit", env={"EDITOR": str(script), "VISUAL": ""})
    assert result.returncode == 2
    assert str(file) in result.stderr
    no_traceback(result.stderr)
