"""File tools: read, list, search, write and edit files in the workspace."""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from agent.tools.base import Arguments, BuiltinTool, Effect, ToolError, ToolResult, Workspace, object_schema, truncate
from providers.atomic import write_atomic

if TYPE_CHECKING:
    import pathspec

MAX_WHOLE_FILE_BYTES = 2 * 1024 * 1024
MAX_TEXT_CHARS = 50_000
MAX_DIFF_CHARS = 20_000
MAX_LIST_ENTRIES = 1000
MAX_MATCHES = 200
MAX_MATCH_LINE_CHARS = 300
MAX_SEARCH_FILE_BYTES = 10 * 1024 * 1024
NEW_FILE_MODE = 0o644


def display(path: Path, workspace: Workspace) -> str:
    """Paths inside the workspace relative to it (shorter for the model), others absolute."""
    root = workspace.root.resolve()
    return str(path.relative_to(root)) if workspace.contains(path) and path != root else str(path)


def read_text(path: Path, shown: str) -> str:
    """The whole file as UTF-8 text, or a ToolError the model can act on."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ToolError(f"{shown}: no such file.") from None
    except IsADirectoryError:
        raise ToolError(f"{shown} is a directory; use list_dir.") from None
    except OSError as e:
        raise ToolError(f"{shown}: cannot read ({e.strerror}).") from None
    return decode_text(data, shown)


def decode_text(data: bytes, shown: str) -> str:
    if b"\0" in data:
        raise ToolError(f"{shown} is not a text file (it contains NUL bytes).")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{shown} is not a text file (not valid UTF-8).") from None


def unified_diff(old: str, new: str, shown: str, *, new_file: bool = False) -> str:
    old_lines = _diff_lines(old)
    new_lines = _diff_lines(new)
    diff = difflib.unified_diff(old_lines, new_lines, "/dev/null" if new_file else f"a/{shown}", f"b/{shown}")
    return "".join(diff)


def _diff_lines(text: str) -> list[str]:
    # difflib would glue a last line without "\n" onto the next diff line; mark it as git does.
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


def count_lines(text: str) -> int:
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def write_text(path: Path, text: str, shown: str) -> None:
    """Atomically (temp file + rename), keeping an existing file's permissions."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    except OSError as e:
        raise ToolError(f"{shown}: cannot write ({e.strerror}).") from None
    try:
        write_atomic(path, text.encode("utf-8"), mode=mode)
    except OSError as e:
        raise ToolError(f"{shown}: cannot write ({e.strerror or e}).") from None


def _positive_int(args: Arguments, key: str) -> int | None:
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ToolError(f"{key} must be a whole number >= 1.")
    return value


class ReadFile(BuiltinTool):
    name = "read_file"
    description = (
        "Read a UTF-8 text file and return its raw text (lines are not numbered). Optionally only lines "
        "start_line..end_line (1-based, inclusive). Files over 2 MB can only be read with a line range; "
        "at most 50,000 characters are returned, so read long files in ranges. Binary files are refused."
    )
    parameters = object_schema(
        {
            "path": {"type": "string", "description": "File path, relative to the workspace or absolute."},
            "start_line": {"type": "integer", "minimum": 1, "description": "First line to return (1-based)."},
            "end_line": {"type": "integer", "minimum": 1, "description": "Last line to return (inclusive)."},
        },
        ["path"],
    )
    effect = Effect.READ

    def run(self, args: Arguments, workspace: Workspace) -> ToolResult:
        path = workspace.resolve(args["path"])
        shown = display(path, workspace)
        start = _positive_int(args, "start_line")
        end = _positive_int(args, "end_line")
        if start is not None and end is not None and end < start:
            raise ToolError(f"end_line ({end}) is before start_line ({start}).")
        ranged = start is not None or end is not None
        if path.is_dir():
            raise ToolError(f"{shown} is a directory; use list_dir.")
        if not ranged and path.is_file() and path.stat().st_size > MAX_WHOLE_FILE_BYTES:
            size = path.stat().st_size
            raise ToolError(f"{shown} is {size:,} bytes (over 2 MB); read it in parts with start_line/end_line.")
        first = start or 1
        parts, total, shown_last = self._select(path, shown, first, end)
        if total == 0:
            return ToolResult("(empty file)", "empty file")
        if first > total:
            raise ToolError(f"start_line {first} is past the end of {shown} ({total} lines).")
        # A single line longer than the cap (minified code) is all that is left to cut.
        text = truncate("".join(parts), MAX_TEXT_CHARS, "line")
        if shown_last < min(end or total, total):
            text += (
                f"\n[… stopped after line {shown_last} at the {MAX_TEXT_CHARS:,}-character cap; "
                f"continue with start_line={shown_last + 1}]"
            )
        elif not ranged:
            return ToolResult(text, f"{total} line{'' if total == 1 else 's'}")
        return ToolResult(text, f"lines {first}-{shown_last} of {total}")

    @staticmethod
    def _select(path: Path, shown: str, first: int, last: int | None) -> tuple[list[str], int, int]:
        """Lines first..last, whole lines up to the character cap (at least one); the file's line count; the
        number of the last line returned. Streamed: memory stays small however big the file."""
        parts: list[str] = []
        size = 0
        total = 0
        shown_last = first - 1
        for total, line in enumerate(_binary_lines(path, shown), start=1):
            if b"\0" in line:
                raise ToolError(f"{shown} is not a text file (it contains NUL bytes).")
            if total < first or (last is not None and total > last) or shown_last < total - 1:
                continue  # outside the range, or the cap was reached: only counting lines now
            piece = decode_text(line, shown)
            if parts and size + len(piece) > MAX_TEXT_CHARS:
                continue
            parts.append(piece)
            size += len(piece)
            shown_last = total
        return parts, total, shown_last


def _binary_lines(path: Path, shown: str) -> Iterator[bytes]:
    try:
        with path.open("rb") as f:
            yield from f
    except FileNotFoundError:
        raise ToolError(f"{shown}: no such file.") from None
    except OSError as e:
        raise ToolError(f"{shown}: cannot read ({e.strerror}).") from None


class ListDir(BuiltinTool):
    name = "list_dir"
    description = (
        "List a directory's entries, sorted by name: directories end with '/', files show their size in "
        "bytes. At most 1000 entries. Not recursive: use search_files to find files by content."
    )
    parameters = object_schema(
        {"path": {"type": "string", "description": "Directory, relative to the workspace or absolute. Default '.'."}},
        [],
    )
    effect = Effect.READ

    def paths(self, args: Arguments) -> list[str]:
        return [args.get("path", ".")]

    def run(self, args: Arguments, workspace: Workspace) -> ToolResult:
        path = workspace.resolve(args.get("path", "."))
        shown = display(path, workspace)
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except FileNotFoundError:
            raise ToolError(f"{shown}: no such directory.") from None
        except NotADirectoryError:
            raise ToolError(f"{shown} is a file, not a directory; use read_file.") from None
        except OSError as e:
            raise ToolError(f"{shown}: cannot list ({e.strerror}).") from None
        if not entries:
            return ToolResult("(empty directory)", "empty")
        lines = [_describe(entry) for entry in entries[:MAX_LIST_ENTRIES]]
        if len(entries) > MAX_LIST_ENTRIES:
            lines.append(f"[… {len(entries) - MAX_LIST_ENTRIES:,} more entries not shown]")
        return ToolResult("\n".join(lines), f"{len(entries)} entries")


def _describe(entry: os.DirEntry[str]) -> str:
    try:
        if entry.is_dir():
            return entry.name + "/"
        if entry.is_file():
            return f"{entry.name}  ({entry.stat().st_size:,} bytes)"
    except OSError:
        pass
    return entry.name  # broken symlink, socket, fifo...


class _GitIgnore:
    """The .gitignore files that apply while walking down a tree, deepest last (later rules win, as in git)."""

    def __init__(self) -> None:
        self._specs: list[tuple[Path, pathspec.GitIgnoreSpec]] = []

    def load(self, directory: Path) -> None:
        import pathspec  # ~40 ms: paid on the first search, not at every start

        try:
            lines = (directory / ".gitignore").read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return
        self._specs.append((directory, pathspec.GitIgnoreSpec.from_lines(lines)))

    def ignored(self, path: Path, is_dir: bool) -> bool:
        result = False
        for base, spec in self._specs:
            if base not in path.parents:
                continue
            check = spec.check_file(path.relative_to(base).as_posix() + ("/" if is_dir else ""))
            if check.include is not None:
                result = check.include
        return result

    @classmethod
    def above(cls, top: Path) -> _GitIgnore:
        """Rules from the enclosing repository's top down to `top`. Outside a repository, or when `top` is
        itself ignored (the model asked for it by name), only the .gitignore files inside `top` apply."""
        chain = [top, *top.parents]
        for i, directory in enumerate(chain):
            if (directory / ".git").exists():
                chain = chain[: i + 1]
                break
        else:
            chain = [top]
        ignore = cls()
        for directory in reversed(chain):
            ignore.load(directory)
        if ignore.ignored(top, is_dir=True):
            ignore = cls()
            ignore.load(top)
        return ignore


class SearchFiles(BuiltinTool):
    name = "search_files"
    description = (
        "Search file contents for a regular expression (Python syntax), line by line, under a directory "
        "(recursively) or in one file. Returns 'path:line: text' lines, at most 200 matches. Skips .git, "
        "files ignored by .gitignore, binary files and files over 10 MB. `glob` filters file names "
        "(e.g. '*.py'); a glob containing '/' matches the path relative to `path`. Naming an ignored "
        "directory as `path` searches it."
    )
    parameters = object_schema(
        {
            "pattern": {"type": "string", "description": "Regular expression to look for in each line."},
            "path": {"type": "string", "description": "Directory or file to search. Default '.'."},
            "glob": {"type": "string", "description": "Only files whose name matches, e.g. '*.py'."},
        },
        ["pattern"],
    )
    effect = Effect.READ

    def paths(self, args: Arguments) -> list[str]:
        return [args.get("path", ".")]

    def run(self, args: Arguments, workspace: Workspace) -> ToolResult:
        if not args["pattern"]:
            raise ToolError("pattern must not be empty.")
        try:
            regex = re.compile(args["pattern"])
        except re.error as e:
            raise ToolError(f"invalid regular expression {args['pattern']!r}: {e}.") from None
        glob = args.get("glob") or None
        top = workspace.resolve(args.get("path", "."))
        if not top.exists():
            raise ToolError(f"{display(top, workspace)}: no such file or directory.")
        matches: list[str] = []
        files_with_matches = 0
        capped = False
        for file in self._files(top, glob):
            # One match beyond the cap tells "there is more" from "exactly 200".
            found = _search_file(file, regex, display(file, workspace), MAX_MATCHES + 1 - len(matches))
            if len(matches) + len(found) > MAX_MATCHES:
                found = found[: MAX_MATCHES - len(matches)]
                capped = True
            files_with_matches += bool(found)
            matches.extend(found)
            if capped:
                break
        if not matches:
            return ToolResult("no matches", "no matches")
        summary = f"{len(matches)} match{'es' if len(matches) != 1 else ''} in {files_with_matches} file"
        summary += "s" if files_with_matches != 1 else ""
        if capped:
            matches.append(f"[stopped after {MAX_MATCHES} matches; narrow the pattern, path or glob]")
            summary += " (capped)"
        return ToolResult("\n".join(matches), summary)

    @staticmethod
    def _files(top: Path, glob: str | None) -> Iterator[Path]:
        if top.is_file():
            yield top
            return
        ignore = _GitIgnore.above(top)
        for dirpath, dirnames, filenames in os.walk(top):
            here = Path(dirpath)
            if here != top:
                ignore.load(here)
            dirnames[:] = sorted(d for d in dirnames if d != ".git" and not ignore.ignored(here / d, is_dir=True))
            for name in sorted(filenames):
                path = here / name
                if ignore.ignored(path, is_dir=False):
                    continue
                target = path.relative_to(top).as_posix() if glob and "/" in glob else name
                if glob is None or fnmatch.fnmatch(target, glob):
                    yield path


def _search_file(path: Path, regex: re.Pattern[str], shown: str, limit: int) -> list[str]:
    """Matching lines of one file; nothing for files that are not text (binary, unreadable, too big)."""
    try:
        if path.stat().st_size > MAX_SEARCH_FILE_BYTES:
            return []
        text = decode_text(path.read_bytes(), shown)
    except (OSError, ToolError):
        return []
    found: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if regex.search(line):
            if len(line) > MAX_MATCH_LINE_CHARS:
                line = line[:MAX_MATCH_LINE_CHARS] + " […]"
            found.append(f"{shown}:{number}: {line}")
            if len(found) >= limit:
                break
    return found


class WriteFile(BuiltinTool):
    name = "write_file"
    description = (
        "Create or overwrite a text file with `content` (UTF-8, written exactly as given), creating parent "
        "directories. Replaces the whole file: for small changes to an existing file prefer edit_file."
    )
    parameters = object_schema(
        {
            "path": {"type": "string", "description": "File path, relative to the workspace or absolute."},
            "content": {"type": "string", "description": "The complete new content of the file."},
        },
        ["path", "content"],
    )
    effect = Effect.WRITE

    def preview(self, args: Arguments, workspace: Workspace) -> str:
        path = workspace.resolve(args["path"])
        return self._diff(path, display(path, workspace), args["content"])

    def run(self, args: Arguments, workspace: Workspace) -> ToolResult:
        path = workspace.resolve(args["path"])
        shown = display(path, workspace)
        content: str = args["content"]
        diff = self._diff(path, shown, content)
        write_text(path, content, shown)
        lines = count_lines(content)
        body = truncate(diff, MAX_DIFF_CHARS, "diff") if diff else "(content unchanged)"
        message = f"Wrote {lines} lines ({len(content):,} characters) to {shown}.\n{body}"
        return ToolResult(message, f"wrote {lines} line{'' if lines == 1 else 's'}")

    @staticmethod
    def _diff(path: Path, shown: str, content: str) -> str:
        if path.is_dir():
            raise ToolError(f"{shown} is a directory.")
        if not path.exists():
            return f"new file {shown}\n" + unified_diff("", content, shown, new_file=True)
        try:
            old = read_text(path, shown)
        except ToolError:
            return f"replaces {shown}, which is not a text file ({path.stat().st_size:,} bytes)\n" + unified_diff(
                "", content, shown
            )
        return unified_diff(old, content, shown)


class EditFile(BuiltinTool):
    name = "edit_file"
    description = (
        "Edit a text file by exact string replacement: `old_string` must occur exactly once (include enough "
        "surrounding lines to make it unique), or set replace_all to replace every occurrence. Whitespace "
        "and indentation must match exactly. Returns the diff."
    )
    parameters = object_schema(
        {
            "path": {"type": "string", "description": "File path, relative to the workspace or absolute."},
            "old_string": {"type": "string", "description": "The exact text to replace."},
            "new_string": {"type": "string", "description": "The text to put in its place."},
            "replace_all": {"type": "boolean", "description": "Replace every occurrence. Default false."},
        },
        ["path", "old_string", "new_string"],
    )
    effect = Effect.WRITE

    def preview(self, args: Arguments, workspace: Workspace) -> str:
        _, old, new, shown, _ = self._edit(args, workspace)
        return unified_diff(old, new, shown)

    def run(self, args: Arguments, workspace: Workspace) -> ToolResult:
        path, old, new, shown, count = self._edit(args, workspace)
        write_text(path, new, shown)
        occurrences = f"{count} occurrence{'s' if count != 1 else ''}"
        diff = truncate(unified_diff(old, new, shown), MAX_DIFF_CHARS, "diff")
        return ToolResult(f"Replaced {occurrences} in {shown}.\n{diff}", f"replaced {occurrences}")

    @staticmethod
    def _edit(args: Arguments, workspace: Workspace) -> tuple[Path, str, str, str, int]:
        """The path, old and new text, display name and number of replacements; nothing written."""
        old_string: str = args["old_string"]
        new_string: str = args["new_string"]
        if not old_string:
            raise ToolError("old_string must not be empty; to create a file use write_file.")
        if old_string == new_string:
            raise ToolError("old_string and new_string are the same; nothing to change.")
        path = workspace.resolve(args["path"])
        shown = display(path, workspace)
        text = read_text(path, shown)
        count = text.count(old_string)
        if count == 0:
            raise ToolError(f"old_string does not occur in {shown} (it must match exactly, whitespace included).")
        if count > 1 and not args.get("replace_all", False):
            raise ToolError(
                f"old_string occurs {count} times in {shown}; include more surrounding text to make it unique, "
                "or set replace_all to replace all of them."
            )
        return path, text, text.replace(old_string, new_string), shown, count
