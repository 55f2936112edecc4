"""The one place where errors become exit codes and one-line messages on stderr."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import TypeVar

from agent import errors
from providers.registry import BUILTIN
from providers.secrets import Secrets, collect_secrets

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


# Where this process's secrets can be learnt (the runtime's registry, once one exists): every message
# printed here is scrubbed, whatever raised it.
_secret_sources: list[Callable[[], Secrets]] = []


def watch_secrets(source: Callable[[], Secrets]) -> None:
    _secret_sources.append(source)


def redact(text: str) -> str:
    """`text` without any secret this process knows: its runtime's, or at least those in the environment."""
    known = [collect_secrets(BUILTIN, env=os.environ, provider_tables={}, auth_keys=(), state_url=None,
                             mcp_servers={})]
    for source in _secret_sources:
        try:
            known.append(source())
        except Exception:  # noqa: BLE001 - a source that cannot load now must not hide the error reported
            continue
    for secrets in known:
        text = secrets.scrub(text)
    return text


def report(error: BaseException) -> int:
    """Print what went wrong and return the exit code."""
    if isinstance(error, KeyboardInterrupt):
        print("\nhermes: interrupted.", file=sys.stderr)
        return INTERRUPTED
    if debug_enabled():
        print(redact("".join(traceback.format_exception(error))), file=sys.stderr, end="")
    if isinstance(error, errors.HermesError):
        print(redact(f"hermes: error: {error}"), file=sys.stderr)
        return code_for(error)
    print(
        redact(f"hermes: internal error: {type(error).__name__}: {error}. This is a bug; "
               "run again with --debug for the traceback and report it."),
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
