"""`hermes config path|show|get|set|edit`."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from typing import Annotated, Any

import typer

from hermes_cli.config import coerce_value, field_for, format_key, load_config, masked, parse_key, set_value
from hermes_cli.output import info
from hermes_cli.wiring import Wiring
from providers.errors import UsageError

config_app = typer.Typer(no_args_is_help=True)


def _show_value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@config_app.command("path")
def path_cmd() -> None:
    """Print where config.toml is (or would be)."""
    print(Wiring().paths.config_file)


@config_app.command("show")
def show_cmd(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Print the config with secrets masked."""
    config = Wiring().document()
    if not config.data:
        info(f"no settings in {config.path} (defaults apply).")
        return
    data = masked(config.data)
    if json_:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        import tomli_w

        sys.stdout.write(tomli_w.dumps(data))


@config_app.command("get")
def get_cmd(key: str) -> None:
    """Print one value (secrets masked); exit 1 if the key is not set."""
    config = Wiring().document()
    path = parse_key(key)
    value = masked(config.data)
    for part in path:
        if not isinstance(value, dict) or part not in value:
            info(f"{format_key(path)} is not set in {config.path}.")
            raise typer.Exit(1)
        value = value[part]
    print(_show_value(value))


@config_app.command("set")
def set_cmd(key: str, value: str) -> None:
    """Set one value, keeping the file's comments and order; the file is checked before it is written."""
    wiring = Wiring()
    path = parse_key(key)
    parsed = coerce_value(path, value)
    set_value(wiring.paths.config_file, path, parsed)
    f = field_for(path)
    shown = _show_value(f.shown(parsed)) if f is not None else _show_value(parsed)
    info(f"{format_key(path)} = {shown} in {wiring.paths.config_file}")


@config_app.command("edit")
def edit_cmd() -> None:
    """Open config.toml in $VISUAL or $EDITOR, then check it."""
    file = Wiring().paths.config_file
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"# hermes configuration: see the README for the keys.\n")
        os.close(fd)
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        subprocess.run([*shlex.split(editor), str(file)], check=False)
    except OSError as e:
        raise UsageError(f"Cannot start the editor {editor!r}: {e.strerror}.", hint="Set $EDITOR.") from None
    load_config(file)
    info(f"{file} is valid.")
