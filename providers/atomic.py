"""Atomic file writes (a temp file in the same directory, fsync, then rename over the target), and a lock
for a read-modify-write of one."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600, fsync: bool = True) -> None:
    """`fsync=False` for state that may be rebuilt: the rename still keeps readers from a torn file.

    A symlink is written through (dotfiles repos link config.toml): the temp file goes beside the link's
    target and is renamed onto it, so the link stays and the target changes atomically. An OSError names
    `path`, not the temp file, and leaves the target as it was.
    """
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the directory of `path` meanwhile, so that two processes changing the
    file one after the other each keep the other's change. The directory, not a lock file: a change that
    fails (a full disk) leaves the directory as it was. The kernel releases the lock when the process
    ends, however it ends. An OSError names `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
