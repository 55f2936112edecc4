"""The Typer app: thin command definitions. Each body imports its implementation lazily, so that
`hermes --help` or `hermes config path` never pays for httpx, rich or prompt-toolkit."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from hermes_cli import __version__
from hermes_cli.exit_codes import guarded
from hermes_cli.options import ChatOptions

app = typer.Typer(
    name="hermes",
    help="A terminal chat agent for any OpenAI-compatible provider.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hermes {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    if debug:
        os.environ["HERMES_DEBUG"] = "1"


ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="[PROVIDER:]MODEL to use.")]
ProviderOpt = Annotated[str | None, typer.Option("--provider", "-p", help="Provider id (see `hermes providers`).")]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="Endpoint override for this run.")]
SystemOpt = Annotated[str | None, typer.Option("--system", "-s", help="System prompt.")]
ContinueOpt = Annotated[bool, typer.Option("--continue", "-c", help="Continue the latest session.")]
ResumeOpt = Annotated[str | None, typer.Option("--resume", "-r", help="Resume a session by id (or prefix) or title.")]
NoToolsOpt = Annotated[bool, typer.Option("--no-tools", help="Do not offer tools to the model.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Approve tool actions without asking.")]
NoSaveOpt = Annotated[bool, typer.Option("--no-save", help="Do not store this conversation.")]
NoFallbackOpt = Annotated[bool, typer.Option("--no-fallback", help="Do not use the [[fallback]] chain.")]
AttachOpt = Annotated[
    list[str] | None,
    typer.Option("--attach", "-a", metavar="FILE", help="Attach a file or image (repeatable; - reads stdin)."),
]
NoProjectContextOpt = Annotated[
    bool, typer.Option("--no-project-context", help="Leave AGENTS.md / .hermes.md out of the system prompt.")
]


@app.command()
def ask(
    prompt: Annotated[list[str] | None, typer.Argument(help="The question; stdin is prepended when piped.")] = None,
    model: ModelOpt = None,
    provider: ProviderOpt = None,
    base_url: BaseUrlOpt = None,
    system: SystemOpt = None,
    continue_: ContinueOpt = False,
    resume: ResumeOpt = None,
    no_tools: NoToolsOpt = False,
    yes: YesOpt = False,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object with the answer and metadata.")] = False,
    no_stream: Annotated[bool, typer.Option("--no-stream", help="Wait for the whole answer.")] = False,
    no_save: NoSaveOpt = False,
    no_fallback: NoFallbackOpt = False,
    attach: AttachOpt = None,
    no_project_context: NoProjectContextOpt = False,
    reasoning: Annotated[bool, typer.Option("--reasoning", help="Write the model's reasoning to stderr.")] = False,
) -> None:
    """One-shot answer for scripts: only the answer goes to stdout."""
    from hermes_cli.ask_cmd import run_ask

    options = ChatOptions(
        model=model,
        provider=provider,
        base_url=base_url,
        system=system,
        continue_latest=continue_,
        resume=resume,
        no_tools=no_tools,
        yes=yes,
        no_save=no_save,
        no_fallback=no_fallback,
        attach=tuple(attach or ()),
        no_project_context=no_project_context,
    )
    guarded(
        lambda: run_ask(options, " ".join(prompt or []), as_json=json_, stream=not no_stream, show_reasoning=reasoning)
    )


@app.command()
def chat(
    model: ModelOpt = None,
    provider: ProviderOpt = None,
    base_url: BaseUrlOpt = None,
    system: SystemOpt = None,
    continue_: ContinueOpt = False,
    resume: ResumeOpt = None,
    no_tools: NoToolsOpt = False,
    yes: YesOpt = False,
    no_save: NoSaveOpt = False,
    no_fallback: NoFallbackOpt = False,
    attach: AttachOpt = None,
    no_project_context: NoProjectContextOpt = False,
) -> None:
    """Interactive chat: streamed Markdown answers, /model to switch, /help for commands."""
    from hermes_cli.chat_cmd import run_chat

    options = ChatOptions(
        model=model,
        provider=provider,
        base_url=base_url,
        system=system,
        continue_latest=continue_,
        resume=resume,
        no_tools=no_tools,
        yes=yes,
        no_save=no_save,
        no_fallback=no_fallback,
        attach=tuple(attach or ()),
        no_project_context=no_project_context,
    )
    guarded(lambda: run_chat(options))


@app.command()
def providers(
    words: Annotated[str | None, typer.Argument(metavar="[FILTER]", help="Only ids or names containing it.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    base_url: BaseUrlOpt = None,
    provider: ProviderOpt = None,
) -> None:
    """The registry: each provider's resolved endpoint, where it came from, and its keys."""
    from hermes_cli.providers_cmd import run_providers

    guarded(lambda: run_providers(as_json=json_, flag_provider=provider, flag_base_url=base_url, words=words))


@app.command()
def models(
    provider: ProviderOpt = None,
    base_url: BaseUrlOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    catalogue: Annotated[
        bool, typer.Option("--catalog", "--catalogue", help="The models.dev catalogue's models; no request is sent.")
    ] = False,
) -> None:
    """The models the provider reports (GET {base_url}/models), with context, prices and capabilities."""
    from hermes_cli.providers_cmd import run_models

    guarded(lambda: run_models(provider, base_url, as_json=json_, catalogue_only=catalogue))


@app.command()
def tools(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    no_mcp: Annotated[bool, typer.Option("--no-mcp", help="Only the built-in tools.")] = False,
) -> None:
    """Built-in and MCP tools: source, whether each asks before it runs, whether it runs sandboxed."""
    from hermes_cli.mcp_cmd import run_tools

    guarded(lambda: run_tools(as_json=json_, no_mcp=no_mcp))


@app.command()
def rollback(
    turns: Annotated[int, typer.Argument(min=1, metavar="[N]", help="How many of the last turns to undo.")] = 1,
    session: Annotated[
        str | None,
        typer.Option(
            "--session", "-s", help="Session id (or prefix) or title; default: the one with the latest file change."
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Restore without asking.")] = False,
) -> None:
    """Restore the files write_file and edit_file changed in the last N turns (the diff is shown first)."""
    from hermes_cli.rollback_cmd import run_rollback

    guarded(lambda: run_rollback(session, turns, yes=yes))


# Command groups: (module, Typer attribute, help). Only the group being run is imported, so that
# `hermes ask` in a loop never pays for the others; --help and completion import them all.
GROUPS: dict[str, tuple[str, str, str]] = {
    "config": ("hermes_cli.config_cmd", "config_app", "Show and edit config.toml."),
    "auth": ("hermes_cli.auth_cmd", "auth_app", "The credential pool: list, add, remove and reset keys."),
    "sessions": (
        "hermes_cli.sessions_cmd",
        "sessions_app",
        "Stored conversations: list, show, search, export, delete.",
    ),
    "local": ("hermes_cli.local_cmd", "local_app", "The bundled llama.cpp server: setup, start, stop, status, logs."),
    "mcp": ("hermes_cli.mcp_cmd", "mcp_app", "MCP servers: list, add, remove, test."),
}


def _register_groups(argv: list[str]) -> None:
    import importlib
    import os

    words = [a for a in argv[1:] if not a.startswith("-")]  # the top-level options take no value
    first = words[0] if words else None
    if first in {c.name or c.callback.__name__ for c in app.registered_commands if c.callback}:
        return
    # `hermes --help` lists each group by its help alone: an empty stand-in spares importing them all.
    # Completion needs the whole tree.
    listing = first is None and not any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ)
    for name, (module, attr, help_text) in GROUPS.items():
        if first in GROUPS and name != first:
            continue
        group = typer.Typer() if listing else getattr(importlib.import_module(module), attr)
        app.add_typer(group, name=name, help=help_text)


def run() -> None:
    import sys

    _register_groups(sys.argv)
    app()
