"""`hermes mcp list|add|remove|test` (the configured MCP servers) and `hermes tools` (every tool)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hermes_cli.output import info, print_json, print_table
from hermes_cli.wiring import Wiring
from providers.errors import UsageError

if TYPE_CHECKING:
    from agent.tools.base import Tool
    from agent.tools.mcp import McpServers

mcp_app = typer.Typer(no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The server's name: its [mcp.servers.NAME] table.")]


def _servers(wiring: Wiring) -> dict[str, Any]:
    return dict(wiring.settings.mcp_tables)


def _start(
    wiring: Wiring, table: dict[str, Any], *, fresh: bool = False, reserved: set[str] | None = None
) -> McpServers:
    from agent.tools.mcp import McpServers

    mcp_dir = wiring.paths.state_dir / "mcp"
    return McpServers.start(
        wiring.settings.mcp_servers(table),
        log_dir=mcp_dir,
        cache_dir=mcp_dir,
        fresh=fresh,
        reserved=reserved or set(),
        environment=lambda own: wiring.child_env(extra=own, minimal=True),
    )


@mcp_app.command("list")
def list_cmd(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The configured servers: command, whether enabled and required, and their cached tools."""
    from agent.tools import mcp_cache

    wiring = Wiring()
    cache_dir = wiring.paths.state_dir / "mcp"
    found: list[dict[str, Any]] = []
    for server in wiring.settings.mcp_servers(disabled_too=True):
        env = wiring.child_env(extra=server.env, minimal=True)
        cached = mcp_cache.load(cache_dir, server.name, mcp_cache.cache_key(server.command, env, server.cwd))
        found.append(
            {
                "name": server.name,
                "command": list(server.command),
                "enabled": server.enabled,
                "required": server.required,
                "cwd": server.cwd,
                "cached_tools": None if cached is None else len(cached.tools),
            }
        )
    if json_:
        print_json(found)
        return
    if not found:
        info(f"no MCP servers in {wiring.paths.config_file}; add one with `hermes mcp add NAME -- COMMAND ARGS...`.")
        return
    import shlex

    print_table(
        ["NAME", "STATUS", "TOOLS", "COMMAND"],
        [
            [
                s["name"],
                ("enabled" if s["enabled"] else "disabled") + (", required" if s["required"] else ""),
                "not listed yet" if s["cached_tools"] is None else f"{s['cached_tools']} (cached)",
                shlex.join(s["command"]),
            ]
            for s in found
        ],
    )


@mcp_app.command("add")
def add_cmd(
    name: NameArg,
    command: Annotated[list[str], typer.Argument(help="After --: the program and its arguments.")],
    env: Annotated[
        list[str] | None,
        typer.Option("--env", "-e", metavar="KEY=VALUE", help="A variable the server gets (repeatable)."),
    ] = None,
    cwd: Annotated[str | None, typer.Option("--cwd", help="The server's working directory.")] = None,
    required: Annotated[bool, typer.Option("--required", help="hermes stops (exit 2) if it cannot start.")] = False,
) -> None:
    """Add a server to config.toml (its comments kept): hermes mcp add files -- npx -y @mcp/server-files ."""
    import tomlkit

    from hermes_cli.config import edit_document

    wiring = Wiring()
    _check_name(name)
    if name in _servers(wiring):
        raise UsageError(
            f"There is already an MCP server named {name!r} in {wiring.paths.config_file}.",
            hint=f"Remove it first with `hermes mcp remove {name}`, or choose another name.",
        )
    variables = {}
    for item in env or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--env {item!r} is not KEY=VALUE.")
        variables[key] = value
    table = tomlkit.table()
    table["command"] = list(command)
    if variables:
        inline = tomlkit.inline_table()
        inline.update(variables)
        table["env"] = inline
    if cwd:
        table["cwd"] = cwd
    if required:
        table["required"] = True
    table.add(tomlkit.nl())  # a blank line before whatever table follows

    def change(doc: Any) -> None:
        if "mcp" not in doc:
            doc["mcp"] = tomlkit.table(is_super_table=True)
        if "servers" not in doc["mcp"]:
            doc["mcp"]["servers"] = tomlkit.table(is_super_table=True)
        doc["mcp"]["servers"][name] = table

    edit_document(wiring.paths.config_file, change)
    info(
        f"added MCP server {name!r} to {wiring.paths.config_file}; "
        f"`hermes mcp test {name}` starts it and lists its tools."
    )


@mcp_app.command("remove")
def remove_cmd(name: NameArg) -> None:
    """Remove a server from config.toml (its comments kept)."""
    from hermes_cli.config import edit_document

    wiring = Wiring()
    if name not in _servers(wiring):
        raise UsageError(
            f"There is no MCP server named {name!r} in {wiring.paths.config_file}.",
            hint="`hermes mcp list` shows the configured ones.",
        )

    def change(doc: Any) -> None:
        servers = doc["mcp"]["servers"]
        del servers[name]
        if not servers:
            del doc["mcp"]["servers"]
        if not doc["mcp"]:
            del doc["mcp"]

    edit_document(wiring.paths.config_file, change)
    info(f"removed MCP server {name!r} from {wiring.paths.config_file}.")


@mcp_app.command("test")
def test_cmd(name: NameArg, json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Start the server (even if disabled), list its tools and say how long that took."""
    wiring = Wiring()
    servers = _servers(wiring)
    if name not in servers:
        raise UsageError(
            f"There is no MCP server named {name!r} in {wiring.paths.config_file}.",
            hint="`hermes mcp list` shows the configured ones.",
        )
    spec = {**servers[name], "enabled": True, "required": True}  # a failure is this command's answer
    started = time.monotonic()
    with _start(wiring, {name: spec}, fresh=True) as mcp:
        seconds = time.monotonic() - started
        from hermes_cli.tool_list import rows

        found = rows(mcp.tools)
    if json_:
        print_json({"name": name, "seconds": round(seconds, 3), "tools": [r.as_json() for r in found]})
        return
    info(
        f"MCP server {name!r} started and listed {len(found)} tool{'' if len(found) == 1 else 's'} in {seconds:.2f} s."
    )
    print_table(
        ["TOOL", "ASKS", "HINTS", "DESCRIPTION"], [[r.name, r.asks, ", ".join(r.hints), r.summary] for r in found]
    )


def _check_name(name: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise UsageError(f"{name!r} is not a server name: use letters, digits, - and _.")


def run_tools(*, as_json: bool, no_mcp: bool = False) -> None:
    """`hermes tools`: every tool a chat here would offer, with its source, whether it asks, whether sandboxed."""
    wiring = Wiring()
    tools = _builtin(wiring)
    problems: list[str] = []
    servers = {} if no_mcp else _servers(wiring)
    mcp = _start(wiring, servers, reserved={t.name for t in tools}) if servers else None
    try:
        if mcp is not None:
            tools = [*tools, *mcp.tools]
            problems = [f.message for f in mcp.failures]
        from hermes_cli.tool_list import rows, table

        found = rows(tools)
        if as_json:
            print_json({"tools": [r.as_json() for r in found], "problems": problems})
            return
        import shutil

        for problem in problems:
            info(f"{problem} Its tools are not listed.")
        print("\n".join(line[2:] for line in table(found, shutil.get_terminal_size((100, 24)).columns)))
    finally:
        if mcp is not None:
            mcp.close()


def _builtin(wiring: Wiring) -> list[Tool]:
    from agent.tools.builtin import builtin_tools

    tools = wiring.settings.tools
    return builtin_tools(command_env=wiring.child_env, network=tools.network, sandbox=tools.sandbox)
