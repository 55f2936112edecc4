"""The Typer app: thin command definitions. Each body imports its implementation lazily, so that
`hermes --help` or `hermes config path` never pays for httpx, rich or prompt-toolkit."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hermes_cli import __version__

if TYPE_CHECKING:
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


ProviderOpt = Annotated[str | None, typer.Option("--provider", "-p", help="Provider id (see `hermes providers`).")]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="Endpoint override for this run.")]


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


# The options `chat` and `ask` share, in --help order, each named as its ChatOptions field.
CHAT_OPTIONS = (
    _option("model", Annotated[str | None, typer.Option("--model", "-m", help="[PROVIDER:]MODEL to use.")], None),
    _option("provider", ProviderOpt, None),
    _option("base_url", BaseUrlOpt, None),
    _option("system", Annotated[str | None, typer.Option("--system", "-s", help="System prompt.")], None),
    _option(
        "continue_latest", Annotated[bool, typer.Option("--continue", "-c", help="Continue the latest session.")], False
    ),
    _option(
        "resume",
        Annotated[str | None, typer.Option("--resume", "-r", help="Resume a session by id (or prefix) or title.")],
        None,
    ),
    _option("no_tools", Annotated[bool, typer.Option("--no-tools", help="Do not offer tools to the model.")], False),
    _option("yes", Annotated[bool, typer.Option("--yes", "-y", help="Approve tool actions without asking.")], False),
    _option("no_save", Annotated[bool, typer.Option("--no-save", help="Do not store this conversation.")], False),
    _option(
        "no_fallback", Annotated[bool, typer.Option("--no-fallback", help="Do not use the [[fallback]] chain.")], False
    ),
    _option(
        "attach",
        Annotated[
            list[str] | None,
            typer.Option("--attach", "-a", metavar="FILE", help="Attach a file or image (repeatable; - reads stdin)."),
        ],
        None,
    ),
    _option(
        "no_project_context",
        Annotated[
            bool, typer.Option("--no-project-context", help="Leave AGENTS.md / .hermes.md out of the system prompt.")
        ],
        False,
    ),
)


def chat_options(**after: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command CHAT_OPTIONS: it declares `options: ChatOptions` (keyword-only) and receives them in it.
    Its parameters before `options` come before them in --help, those after it after them, except those
    `after` places behind the shared option it names (`json_="yes"`)."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        # `options` itself gives way to CHAT_OPTIONS, so its annotation need not be the class: importing that
        # here would define it for every command, --help included.
        own = list(inspect.signature(command, eval_str=True, locals={"ChatOptions": None}).parameters.values())
        at = [p.name for p in own].index("options")
        params = [p for p in own[:at] if p.name not in after]
        for shared in CHAT_OPTIONS:
            params.append(shared)
            params += [p for p in own if after.get(p.name) == shared.name]
        params += [p for p in own[at + 1 :] if p.name not in after]

        @functools.wraps(command, assigned=("__module__", "__name__", "__qualname__", "__doc__"))
        def with_options(**values: Any) -> None:
            from hermes_cli.options import ChatOptions

            shared = {p.name: values.pop(p.name) for p in CHAT_OPTIONS}
            command(**values, options=ChatOptions(**shared | {"attach": tuple(shared["attach"] or ())}))

        with_options.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]  # what typer reads
        return with_options

    return decorate


@app.command()
@chat_options(json_="yes", no_stream="yes")
def ask(
    prompt: Annotated[list[str] | None, typer.Argument(help="The question; stdin is prepended when piped.")] = None,
    *,
    options: ChatOptions,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object with the answer and metadata.")] = False,
    no_stream: Annotated[bool, typer.Option("--no-stream", help="Wait for the whole answer.")] = False,
    reasoning: Annotated[bool, typer.Option("--reasoning", help="Write the model's reasoning to stderr.")] = False,
) -> None:
    """One-shot answer for scripts: only the answer goes to stdout."""
    from hermes_cli.ask_cmd import run_ask

    run_ask(options, " ".join(prompt or []), as_json=json_, stream=not no_stream, show_reasoning=reasoning)


@app.command()
@chat_options()
def chat(*, options: ChatOptions) -> None:
    """Interactive chat: streamed Markdown answers, /model to switch, /help for commands."""
    from hermes_cli.chat_cmd import run_chat

    run_chat(options)


@app.command()
def providers(
    words: Annotated[str | None, typer.Argument(metavar="[FILTER]", help="Only ids or names containing it.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    base_url: BaseUrlOpt = None,
    provider: ProviderOpt = None,
) -> None:
    """The registry: each provider's resolved endpoint, where it came from, and its keys."""
    from hermes_cli.providers_cmd import run_providers

    run_providers(as_json=json_, flag_provider=provider, flag_base_url=base_url, words=words)


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

    run_models(provider, base_url, as_json=json_, catalogue_only=catalogue)


@app.command()
def tools(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    no_mcp: Annotated[bool, typer.Option("--no-mcp", help="Only the built-in tools.")] = False,
) -> None:
    """Built-in and MCP tools: source, whether each asks before it runs, whether it runs sandboxed."""
    from hermes_cli.mcp_cmd import run_tools

    run_tools(as_json=json_, no_mcp=no_mcp)


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

    run_rollback(session, turns, yes=yes)


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


def _keep_only(group: typer.Typer, name: str | None) -> bool:
    """Leave `group` its command `name` alone, if it has one: typer builds every registered command's
    parameters before it parses (10 ms for all of hermes's), and argv runs one."""
    chosen = [c for c in group.registered_commands if (c.name or (c.callback and c.callback.__name__)) == name]
    if chosen:
        group.registered_commands = chosen
    return bool(chosen)


def _nothing() -> None:
    """A listed command's stand-in: `hermes --help` shows it, and runs none."""


def _register(argv: list[str]) -> None:
    """Give the app what this argv runs: `hermes ask` gets `ask` alone, `hermes sessions list` the
    sessions group with `list` alone; --help and completion get every command."""
    import importlib
    import os

    words = [a for a in argv[1:] if not a.startswith("-")]  # the top-level and group options take no value
    first, second = [*words, None, None][:2]
    completing = any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ)  # needs the whole tree
    if first is not None and not completing:
        if _keep_only(app, first):
            return
        if first in GROUPS:
            app.registered_commands = []
    # `hermes --help` lists each command and group by its help alone: stand-ins without parameters spare
    # building ask's and chat's options (typer evaluates each one's annotation) and importing every group.
    listing = first is None and not completing
    if listing:
        for info in app.registered_commands:
            if info.callback is not None:
                info.name = info.name or info.callback.__name__
                info.help, info.callback = inspect.getdoc(info.callback), _nothing
    for name, (module, attr, help_text) in GROUPS.items():
        if first in GROUPS and name != first:
            continue
        group = typer.Typer() if listing else getattr(importlib.import_module(module), attr)
        if name == first and not completing:
            _keep_only(group, second)
        app.add_typer(group, name=name, help=help_text)


def _guarded(command: Callable[..., Any]) -> Callable[..., Any]:
    """`command`, whose failures become the contract's exit codes and one-line messages (exit_codes.report).
    Its deliberate exits (typer.Exit, SystemExit) pass as they are."""

    @functools.wraps(command)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (SystemExit, typer.Exit):
            raise
        except BaseException as e:
            from hermes_cli.exit_codes import report

            raise SystemExit(report(e)) from None

    return guarded


def _guard(group: typer.Typer) -> None:
    """Every command body of `group` and its subgroups runs guarded. Only the bodies: typer's own parsing
    errors are its to report, and it would turn Ctrl-C and a closed pipe into exits without our messages."""
    for info in group.registered_commands:
        if info.callback is not None:
            info.callback = _guarded(info.callback)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _guard(sub.typer_instance)


def run() -> None:
    import sys

    _register(sys.argv)
    _guard(app)
    app()
