"""Entry point of the `hermes` command and `python -m hermes_cli`."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

# Variables hermes reads as text (paths such as HERMES_HOME may be any bytes: they stay os.fsencode-able).
_TEXT_VARIABLES = ("HERMES_MODEL", "HERMES_PROVIDER", "HERMES_STATE_URL")
_TEXT_SUFFIXES = ("_API_KEY", "_API_KEYS", "_BASE_URL")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse(what: str) -> NoReturn:
    from hermes_cli.exit_codes import USAGE

    print(f"hermes: error: {what} is not UTF-8 text. Convert it first, e.g. with `iconv -t utf-8`.", file=sys.stderr)
    raise SystemExit(USAGE)


def _check_text_input() -> None:
    """Python hands undecodable bytes of argv and the environment on as lone surrogates, which crash the first
    encode that meets them: refuse them here, by name, before any of it is used."""
    for position, arg in enumerate(sys.argv[1:], 1):
        if not _is_utf8(arg):
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            _refuse(f"argument {position} ('{shown}')")
    for name, value in os.environ.items():
        if (name in _TEXT_VARIABLES or name.endswith(_TEXT_SUFFIXES)) and not _is_utf8(value):
            _refuse(f"the environment variable {name}")  # its value may be a key: not shown


def _main() -> None:
    _check_text_input()
    if sys.argv[1:] in (["--version"], ["-V"]):
        # The common liveness check of scripts: answer before importing anything.
        from hermes_cli import __version__

        print(f"hermes {__version__}")
        return
    from hermes_cli.app import run

    run()


def main() -> None:
    # `import httpx` also imports httpx's own command-line client, with click, rich.progress, rich.syntax and
    # pygments' lexers, whenever those are installed (and hermes installs rich): ~50 ms of every start for a
    # tool hermes never runs. A None entry makes that optional import fail, as httpx expects it may.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # None is how sys.modules blocks an import
    # Started with stdout or stderr closed (`>&-`), Python has None there: what would go to it goes nowhere.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    # A reader that stops early (`hermes sessions list | head -1`) is no error: leave quietly, like git.
    try:
        try:
            _main()
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        from hermes_cli.exit_codes import PIPE_CLOSED, silence_stdout

        silence_stdout()
        raise SystemExit(PIPE_CLOSED) from None


if __name__ == "__main__":
    main()
