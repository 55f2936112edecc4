"""Entry point of the `hermes` command and `python -m hermes_cli`."""

from __future__ import annotations

import sys


def _check_argv() -> None:
    """Python hands undecodable bytes of argv on as lone surrogates, which crash the first encode that meets
    them: refuse them here, naming the argument, before any of it is used."""
    for position, arg in enumerate(sys.argv[1:], 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            print(
                f"hermes: error: argument {position} ('{shown}') is not UTF-8 text. "
                "Convert it first, e.g. with `iconv -t utf-8`.",
                file=sys.stderr,
            )
            from hermes_cli.exit_codes import USAGE

            raise SystemExit(USAGE)


def _main() -> None:
    _check_argv()
    if sys.argv[1:] in (["--version"], ["-V"]):
        # The common liveness check of scripts: answer before importing anything.
        from hermes_cli import __version__

        print(f"hermes {__version__}")
        return
    from hermes_cli.app import run

    run()


def main() -> None:
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
