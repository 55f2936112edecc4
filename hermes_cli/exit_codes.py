"""The one place where errors become exit codes and one-line messages on stderr."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import TypeVar

from agent import errors

T = TypeVar("T")

OK = 0
INTERNAL = 1
USAGE = 2
AUTH = 3
RATE_LIMITED = 4
PROVIDER = 5
INTERRUPTED = 130

_CODES: tuple[tuple[type[errors.HermesError], int], ...] = (
    (errors.UsageError, USAGE),
    (errors.AuthenticationFailed, AUTH),
    (errors.RateLimited, RATE_LIMITED),
    (errors.ProviderError, PROVIDER),
)


def code_for(error: errors.HermesError) -> int:
    if isinstance(error, errors.FallbackExhausted) and error.causes:
        return code_for(error.causes[0][1])
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return INTERNAL


def debug_enabled() -> bool:
    return os.environ.get("HERMES_DEBUG", "") not in ("", "0", "false")


def report(error: BaseException) -> int:
    """Print what went wrong and return the exit code."""
    if isinstance(error, KeyboardInterrupt):
        print("\nhermes: interrupted.", file=sys.stderr)
        return INTERRUPTED
    if debug_enabled():
        traceback.print_exception(error, file=sys.stderr)
    if isinstance(error, errors.HermesError):
        print(f"hermes: error: {error}", file=sys.stderr)
        return code_for(error)
    print(
        f"hermes: internal error: {type(error).__name__}: {error}. This is a bug; "
        "run again with --debug for the traceback and report it.",
        file=sys.stderr,
    )
    return INTERNAL


def guarded(fn: Callable[[], T]) -> T:
    """Run a command body; on failure report and exit with the contract's code."""
    try:
        return fn()
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - this is the one place every error is reported
        if type(e).__name__ == "Exit" and hasattr(e, "exit_code"):
            raise
        raise SystemExit(report(e)) from None
