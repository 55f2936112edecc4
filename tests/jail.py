"""Real file-system failures for tests: a command run by bwrap in a mount namespace where the whole file
system is as it is, except for directories mounted read-only or a small disk that fills up. Root ignores
permission bits, so a read-only mount is the one way to refuse a write to every user, CI's root included."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pytest


@cache
def bwrap_missing() -> str:
    """Why bwrap cannot make a mount namespace here, or "" when it can."""
    if shutil.which("bwrap") is None:
        return "needs bwrap (bubblewrap) for a real read-only or full file system"
    tried = subprocess.run(["bwrap", "--bind", "/", "/", "true"], capture_output=True, text=True, check=False)
    return "" if tried.returncode == 0 else f"bwrap cannot make a mount namespace here: {tried.stderr.strip()[:200]}"


needs_bwrap = pytest.mark.skipif(bool(bwrap_missing()), reason=bwrap_missing() or "bwrap works")


def jailed(
    argv: Sequence[str],
    *,
    read_only: Sequence[Path] = (),
    small_disk: tuple[Path, int] | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """`argv` with each of `read_only` mounted read-only and, if given, `small_disk` = (directory, bytes)
    an empty tmpfs of that size."""
    mounts = ["--bind", "/", "/", "--dev", "/dev"]
    for directory in read_only:
        mounts += ["--ro-bind", str(directory), str(directory)]
    if small_disk is not None:
        mounts += ["--size", str(small_disk[1]), "--tmpfs", str(small_disk[0])]
    return subprocess.run(
        ["bwrap", *mounts, *argv], capture_output=True, text=True, env=env, input=input, timeout=timeout, check=False
    )
