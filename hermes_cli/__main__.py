"""Entry point of the `hermes` command and `python -m hermes_cli`."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        # The common liveness check of scripts: answer before importing anything.
        from hermes_cli import __version__

        print(f"hermes {__version__}")
        return
    from hermes_cli.app import run

    run()


if __name__ == "__main__":
    main()
