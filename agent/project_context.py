"""Project context: AGENTS.md (and .hermes.md) of the working directory and its parents up to the
repository root, added to the system prompt so the model knows the project's conventions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

NAMES = ("AGENTS.md", ".hermes.md")
MAX_BYTES = 32_768  # all files together: project notes, not a second conversation


@dataclass(frozen=True)
class ProjectContext:
    files: tuple[Path, ...]
    text: str  # what goes into the system prompt
    cut: bool = False  # the files were longer than MAX_BYTES

    def names(self, cwd: Path) -> str:
        return ", ".join(_shown(f, cwd) for f in self.files)


def _shown(path: Path, cwd: Path) -> str:
    try:
        return "./" + str(path.relative_to(cwd))
    except ValueError:
        import os

        return os.path.relpath(path, cwd)


def _search_dirs(cwd: Path) -> list[Path]:
    """The repository root down to `cwd` (outermost first: the nearest file has the last word);
    outside a repository, `cwd` alone."""
    chain = [cwd, *cwd.parents]
    for i, d in enumerate(chain):
        if (d / ".git").exists():
            return list(reversed(chain[: i + 1]))
    return [cwd]


def find_project_context(cwd: Path, *, max_bytes: int = MAX_BYTES) -> ProjectContext | None:
    files: list[Path] = []
    parts: list[str] = []
    left, cut = max_bytes, False
    for directory in _search_dirs(cwd.resolve()):
        for name in NAMES:
            path = directory / name
            if not path.is_file():
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if len(data) > left:
                data, cut = data[:left], True
            left -= len(data)
            files.append(path)
            parts.append(f"## {_shown(path, cwd.resolve())}\n\n{data.decode('utf-8', 'replace').strip()}")
            if left <= 0:
                break
    if not files:
        return None
    text = (
        "The project's own instructions for agents working in it (from its AGENTS.md files):\n\n"
        + "\n\n".join(parts)
        + ("\n\n[… cut: the files are longer than hermes sends]" if cut else "")
    )
    return ProjectContext(tuple(files), text, cut)
