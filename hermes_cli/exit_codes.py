"""The one place where errors become exit codes and one-line messages on stderr."""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

from providers import errors

if TYPE_CHECKING:
    from providers.secrets import Secrets

OK = 0
INTERNAL = 1
USAGE = 2
AUTH = 3
RATE_LIMITED = 4
PROVIDER = 5
INTERRUPTED = 130
PIPE_CLOSED = 141  # 128 + SIGPIPE, what `git log | head` returns: the reader stopped reading

_CODES: tuple[tuple[type[errors.HermesError], int], ...] = (
    (errors.UsageError, USAGE),
    (errors.AuthenticationFailed, AUTH),
    (errors.RateLimited, RATE_LIMITED),
    (errors.ProviderError, PROVIDER),
)

# OSErrors that say something about the machine (disk, permissions, paths), not about hermes: each gets
# a plain sentence and exit 2 rather than "a bug".
_ENVIRONMENT_ERRNOS: dict[int, str] = {
    errno.ENOSPC: "Free some disk space and try again.",
    errno.EDQUOT: "Free some space within your disk quota and try again.",
    errno.EACCES: "Check the permissions of the file and its directory.",
    errno.EPERM: "Check the permissions of the file and its directory.",
    errno.EROFS: "Point HERMES_HOME at a writable directory.",
    errno.ENAMETOOLONG: "Use a shorter path.",
    errno.EISDIR: "Move the directory aside.",
    errno.ENOTDIR: "A part of the path is a file, not a directory; move it aside.",
    errno.ELOOP: "The path is a loop of symbolic links; fix or remove the link.",
    errno.EMFILE: "Too many files are open; close some programs and try again.",
    errno.EIO: "The disk reported an input/output error; check it.",
}


def code_for(error: errors.HermesError) -> int:
    if isinstance(error, errors.FallbackExhausted) and error.causes:
        return code_for(error.causes[0][1])
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return INTERNAL


def debug_enabled() -> bool:
    return os.environ.get("HERMES_DEBUG", "") not in ("", "0", "false")


# Where this process's secrets can be learnt (the wiring's registry, once one exists): every message
# printed here is scrubbed, whatever raised it.
_secret_sources: list[Callable[[], Secrets]] = []


def watch_secrets(source: Callable[[], Secrets]) -> None:
    _secret_sources.append(source)


def redact(text: str) -> str:
    """`text` without any secret this process knows: its wiring's, or at least those in the environment."""
    from providers.registry import BUILTIN  # only once there is something to report
    from providers.secrets import collect_secrets

    known = [collect_secrets(BUILTIN, env=os.environ, providers=(), auth_keys=(), state_url=None, mcp_envs=())]
    for source in _secret_sources:
        try:
            known.append(source())
        except Exception:
            continue
    for secrets in known:
        text = secrets.scrub(text)
    return text


def environment_message(error: OSError) -> str | None:
    """One line for an OSError the machine caused (disk full, permission, read-only...), else None."""
    hint = _ENVIRONMENT_ERRNOS.get(error.errno or 0)
    if hint is None:
        return None
    where = f" {error.filename}" if error.filename else ""
    return f"Cannot use{where}: {error.strerror or os.strerror(error.errno or 0)}. {hint}"


def silence_stdout() -> None:
    """The reader of stdout went away: send what is still buffered nowhere, so exit stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def report(error: BaseException) -> int:
    """Print what went wrong and return the exit code."""
    if isinstance(error, KeyboardInterrupt):
        print("\nhermes: interrupted.", file=sys.stderr)
        return INTERRUPTED
    if isinstance(error, BrokenPipeError):
        silence_stdout()
        return PIPE_CLOSED
    if debug_enabled():
        print(redact("".join(traceback.format_exception(error))), file=sys.stderr, end="")
    if isinstance(error, errors.HermesError):
        print(redact(f"hermes: error: {error}"), file=sys.stderr)
        return code_for(error)
    if isinstance(error, OSError) and (message := environment_message(error)) is not None:
        print(redact(f"hermes: error: {message}"), file=sys.stderr)
        return USAGE
    print(
        redact(
            f"hermes: internal error: {type(error).__name__}: {error}. This is a bug; "
            "run again with --debug for the traceback and report it."
        ),
        file=sys.stderr,
    )
    return INTERNAL
