"""File checkpoints: what write_file and edit_file changed, per turn, so that `/rollback` can undo it.

Before a built-in tool writes a file, the file's content (or its absence) is recorded; after, what the
tool left there. All of it lives in the state dir, never in the user's repository or git index:

    checkpoints/objects/<sha256>            file contents (mode 0600: they may be private)
    checkpoints/<session>/<turn>.json       {"files": {path: {"before": ..., "after": ...}}, "commands": bool}

A turn (one user message and everything the model did for it) gets a record on its first write.
Rolling back the last N recorded turns restores each file to what it was before the earliest of them;
a file whose content is no longer what hermes left (someone changed it since) is refused, not
overwritten. What run_command changed is not captured: a turn that ran commands says so.
Records older than MAX_AGE, and the oldest beyond MAX_BYTES of contents, are pruned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from providers.atomic import write_atomic
from providers.errors import UsageError

MAX_AGE = 30 * 86400.0  # seconds a turn's record is kept
MAX_BYTES = 200_000_000  # contents kept in all; the oldest turns go first
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class FileState:
    """A file's content as a digest (None: it did not exist) and its permission bits."""

    digest: str | None
    mode: int = 0o644

    def as_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "mode": self.mode}

    @classmethod
    def from_json(cls, data: Any) -> FileState:
        if not isinstance(data, dict):
            return cls(None)
        digest, mode = data.get("digest"), data.get("mode")
        return cls(digest if isinstance(digest, str) else None, mode if isinstance(mode, int) else 0o644)


@dataclass(frozen=True)
class Turn:
    session: str
    id: str  # sortable: nanoseconds since the epoch when its first write happened
    files: dict[str, tuple[FileState, FileState]]  # path -> (before, after)
    commands: bool  # the turn also ran commands, whose changes are not recorded
    path: Path


@dataclass(frozen=True)
class FileRestore:
    path: str
    restore: FileState  # what it goes back to
    expected: FileState  # what hermes left there
    current: FileState  # what is there now

    @property
    def changed_since(self) -> bool:
        return self.current.digest != self.expected.digest


@dataclass(frozen=True)
class Plan:
    turns: tuple[Turn, ...]
    files: tuple[FileRestore, ...]  # those with something to restore

    @property
    def ran_commands(self) -> bool:
        return any(t.commands for t in self.turns)

    @property
    def refused(self) -> tuple[FileRestore, ...]:
        return tuple(f for f in self.files if f.changed_since)


class Checkpoints:
    """The checkpoint store under `root` (the state dir's checkpoints/), for one session at a time."""

    def __init__(self, root: Path, session_id: Callable[[], str | None] = lambda: None) -> None:
        self.root = root
        self._session_id = session_id
        self._unsaved = f"unsaved-{os.getpid()}-{time.time_ns()}"  # --no-save: this process's own
        self._turn: Turn | None = None
        self._pruned = False

    # -- recording ---------------------------------------------------------------------------------

    def begin_turn(self) -> None:
        """A new user message: the next write opens a new record."""
        self._turn = None

    def before_write(self, path: Path) -> None:
        """Record the file's content before a tool changes it (once per turn: the first is what counts)."""
        turn = self._current()
        key = str(path)
        if key not in turn.files:
            state = self._store(path)
            turn.files[key] = (state, state)
            self._save(turn)

    def after_write(self, path: Path) -> None:
        turn = self._current()
        key = str(path)
        if key in turn.files:
            turn.files[key] = (turn.files[key][0], self._store(path))
            self._save(turn)

    def ran_command(self) -> None:
        turn = self._current()
        if not turn.commands:
            self._turn = turn = Turn(turn.session, turn.id, turn.files, True, turn.path)
            self._save(turn)

    def _current(self) -> Turn:
        if self._turn is None:
            if not self._pruned:
                self._pruned = True
                prune(self.root)
            session = _safe(self._session_id() or self._unsaved)
            turn_id = f"{time.time_ns():020d}"
            self._turn = Turn(session, turn_id, {}, False, self.root / session / f"{turn_id}.json")
        return self._turn

    def _store(self, path: Path) -> FileState:
        try:
            data = path.read_bytes()
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            return FileState(None)
        digest = hashlib.sha256(data).hexdigest()
        target = self.root / "objects" / digest
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, data, fsync=False)
        return FileState(digest, mode)

    def _save(self, turn: Turn) -> None:
        turn.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "files": {p: {"before": b.as_json(), "after": a.as_json()} for p, (b, a) in turn.files.items()},
            "commands": turn.commands,
        }
        write_atomic(turn.path, json.dumps(data, indent=1).encode("utf-8"), fsync=False)

    # -- rolling back ------------------------------------------------------------------------------

    def plan(self, count: int, session: str | None = None) -> Plan:
        """What rolling back the last `count` recorded turns of `session` (default: this one) would do."""
        name = _safe(session or self._session_id() or self._unsaved)
        turns = load_turns(self.root / name)[-count:] if count > 0 else []
        first: dict[str, FileState] = {}
        last: dict[str, FileState] = {}
        for turn in turns:
            for path, (before, after) in turn.files.items():
                first.setdefault(path, before)
                last[path] = after
        files = []
        for path, restore in first.items():
            current = _state(Path(path))
            if current.digest != restore.digest:
                files.append(FileRestore(path, restore, last[path], current))
        return Plan(tuple(turns), tuple(files))

    def diff(self, plan: Plan) -> str:
        """A unified diff from what is there now to what would be restored."""
        import difflib

        parts = []
        for f in plan.files:
            if f.changed_since:
                continue
            now = self._text(f.current)
            then = self._text(f.restore)
            if now is None or then is None:
                label = "(binary file)"
                parts.append(f"--- {f.path}\n+++ {f.path}\n{label}\n")
                continue
            parts.append(
                "".join(
                    difflib.unified_diff(
                        now.splitlines(keepends=True),
                        then.splitlines(keepends=True),
                        fromfile=f.path if f.current.digest else "/dev/null",
                        tofile=f.path if f.restore.digest else "/dev/null",
                    )
                )
            )
        return "".join(p if p.endswith("\n") else p + "\n" for p in parts)

    def apply(self, plan: Plan) -> list[str]:
        """Restore the files of `plan` but those changed since; the turns are then forgotten. Returns
        the restored paths."""
        restored = []
        for f in plan.files:
            if f.changed_since:
                continue
            path = Path(f.path)
            if f.restore.digest is None:
                path.unlink(missing_ok=True)
            else:
                data = (self.root / "objects" / f.restore.digest).read_bytes()
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, data, mode=f.restore.mode)
            restored.append(f.path)
        for turn in plan.turns:
            turn.path.unlink(missing_ok=True)
        if self._turn is not None and any(t.path == self._turn.path for t in plan.turns):
            self._turn = None
        return restored

    def _text(self, state: FileState) -> str | None:
        if state.digest is None:
            return ""
        try:
            return (self.root / "objects" / state.digest).read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            return None
        except FileNotFoundError:  # what is there now and was never recorded
            return None


def latest_session(root: Path) -> str | None:
    """The session whose latest turn is the most recent, or None when nothing is recorded."""
    best: tuple[str, str] | None = None
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return None
    for entry in entries:
        if entry.name == "objects" or not entry.is_dir():
            continue
        turns = sorted(p.stem for p in entry.glob("*.json"))
        if turns and (best is None or turns[-1] > best[0]):
            best = (turns[-1], entry.name)
    return best[1] if best else None


def load_turns(directory: Path) -> list[Turn]:
    turns = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            continue
        files = {
            str(p): (FileState.from_json(v.get("before")), FileState.from_json(v.get("after")))
            for p, v in data["files"].items()
            if isinstance(v, dict)
        }
        turns.append(Turn(directory.name, path.stem, files, data.get("commands") is True, path))
    return turns


def prune(root: Path, *, max_age: float = MAX_AGE, max_bytes: int = MAX_BYTES) -> None:
    """Drop turns older than `max_age`, then the oldest until the contents they keep fit `max_bytes`;
    then every content no turn refers to."""
    try:
        sessions = [d for d in root.iterdir() if d.is_dir() and d.name != "objects"]
    except FileNotFoundError:
        return
    cutoff = time.time_ns() - int(max_age * 1e9)
    turns = sorted((t for d in sessions for t in load_turns(d)), key=lambda t: t.id)
    kept = []
    for turn in turns:
        if turn.id.isdigit() and int(turn.id) < cutoff:
            turn.path.unlink(missing_ok=True)
        else:
            kept.append(turn)
    sizes: dict[str, int] = {}
    objects = root / "objects"
    for obj in objects.glob("*") if objects.is_dir() else []:
        sizes[obj.name] = obj.stat().st_size

    def used(ts: list[Turn]) -> set[str]:
        return {s.digest for t in ts for pair in t.files.values() for s in pair if s.digest}

    while kept and sum(sizes.get(d, 0) for d in used(kept)) > max_bytes:
        kept.pop(0).path.unlink(missing_ok=True)
    keep = used(kept)
    settled = time.time() - 3600  # another hermes may have stored a content its turn does not name yet
    for name in sizes:
        obj = objects / name
        if name not in keep and obj.stat().st_mtime < settled:
            obj.unlink(missing_ok=True)
    for d in sessions:
        with contextlib.suppress(OSError):
            d.rmdir()  # only when empty


def parse_count(text: str) -> int:
    """N of `/rollback N` and `hermes rollback N`: a whole number of turns, at least 1."""
    if not text.strip():
        return 1
    if not text.strip().isdigit() or int(text) < 1:
        raise UsageError(f"{text.strip()!r} is not a number of turns.", hint="For example: /rollback 2")
    return int(text)


def _state(path: Path) -> FileState:
    try:
        data = path.read_bytes()
        return FileState(hashlib.sha256(data).hexdigest(), path.stat().st_mode & 0o7777)
    except (FileNotFoundError, NotADirectoryError):
        return FileState(None)
    except IsADirectoryError:
        return FileState("directory")


def _safe(name: str) -> str:
    return _SAFE.sub("_", name)[:120] or "session"
