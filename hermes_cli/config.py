"""config.toml: one schema (every key, its check, its default, its doc), loading and checking the file
against it, and editing it keeping comments. hermes_cli/settings.py turns a checked file into typed
settings; nothing else reads it.

Reading uses the stdlib's tomllib (fast, on every start); editing uses tomlkit (imported only by
`config set`) because it keeps the user's comments and key order.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from providers.errors import ConfigError, UsageError
from providers.secrets import credential_params, looks_secret, mask_key, mask_url

Path_ = tuple[str, ...]

STRATEGIES = ("fill_first", "round_robin", "least_used", "random")
DAY = 86_400


def _check_str(v: Any) -> str | None:
    return None if isinstance(v, str) else "a string"


def _check_url(v: Any) -> str | None:
    if not isinstance(v, str):
        return "a URL string"
    try:
        parts = urlsplit(v)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return "an http(s) URL"
    if parts.username is not None or parts.password is not None:
        # httpx would send it as Basic auth instead of the Bearer key, and every display would show it.
        return "a URL without user:password@ (put the key in api_keys or an env variable, not in the URL)"
    if credential_params(v):
        # A key in the URL escapes the pool (no rotation) and would be shown wherever the endpoint is.
        return "a URL without a key in its query (put the key in api_keys or an env variable, not in the URL)"
    return None if parts.scheme in ("http", "https") and parts.netloc else "an http(s) URL"


def _check_bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def _whole(maximum: int) -> Callable[[Any], str | None]:
    """A whole number from 0 to `maximum`: beyond it a setting stops making sense and starts breaking things."""

    def check(v: Any) -> str | None:
        ok = isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= maximum
        return None if ok else f"a whole number from 0 to {maximum}"

    return check


def _number(maximum: int) -> Callable[[Any], str | None]:
    """A finite number from 0 to `maximum` (TOML and `config set` can spell inf and nan; neither is a setting)."""

    def check(v: Any) -> str | None:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= maximum
        return None if ok else f"a number from 0 to {maximum}"

    return check


def _seconds_up_to(maximum: int) -> Callable[[Any], str | None]:
    """A timeout: a finite number of seconds above 0 (0 would fail every start or call)."""

    def check(v: Any) -> str | None:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 < v <= maximum
        return None if ok else f"a number of seconds above 0, at most {maximum}"

    return check


def _check_str_list(v: Any) -> str | None:
    ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
    return None if ok else "a list of strings"


def _check_command(v: Any) -> str | None:
    return None if isinstance(v, str) or _check_str_list(v) is None else "a string or a list of strings"


def _check_strategy(v: Any) -> str | None:
    return None if v in STRATEGIES else "one of " + ", ".join(STRATEGIES)


def _check_state(v: Any) -> str | None:
    ok = isinstance(v, str) and (v == "file" or v.startswith(("redis://", "rediss://", "unix://")))
    return None if ok else '"file" or a redis:// URL'


def duration_seconds(v: Any) -> float:
    """A checked duration ("30s", "10m", "1h", or whole seconds) in seconds."""
    match = re.fullmatch(r"(\d{1,9})([smh]?)", v) if isinstance(v, str) else None
    return float(int(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]] if match else v)


def _check_duration(v: Any) -> str | None:
    ok = (isinstance(v, str) and re.fullmatch(r"\d{1,9}[smh]?", v)) or _whole(366 * DAY)(v) is None
    ok = ok and duration_seconds(v) <= 366 * DAY
    return None if ok else 'a duration of at most a year, such as "10m", "30s" or "1h"'


def _check_env_table(v: Any) -> str | None:
    ok = isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
    return None if ok else "a table of strings"


def _check_env_names(v: Any) -> str | None:
    ok = isinstance(v, list) and all(isinstance(x, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", x) for x in v)
    return None if ok else 'a list of environment variable names, such as ["GITHUB_TOKEN"]'


def _mask_env_table(v: Any) -> Any:
    if not isinstance(v, Mapping):
        return v
    return {k: mask_key(x) if isinstance(x, str) and looks_secret(str(k), x) else x for k, x in v.items()}


def _mask_url(v: Any) -> Any:
    return mask_url(v) if isinstance(v, str) else v


def _check_extra_body(v: Any) -> str | None:
    from providers.models import RESERVED_BODY_KEYS

    if not isinstance(v, dict):
        return "a table of request fields, such as { ignore_eos = true }"
    taken = [k for k in v if k in RESERVED_BODY_KEYS]
    if taken:
        return f"a table without {', '.join(taken)} (hermes sets {'that' if len(taken) == 1 else 'those'} itself)"
    try:
        json.dumps(v, allow_nan=False)
    except (TypeError, ValueError):  # TOML dates, nan, inf: nothing a JSON request can carry
        return "a table of JSON values (strings, finite numbers, booleans, arrays, tables)"
    return None


@dataclass(frozen=True)
class Field:
    check: Callable[[Any], str | None]
    secret: bool = False  # the whole value is a secret: shown masked
    doc: str = ""
    redact: Callable[[Any], Any] = lambda v: v  # what of a value may be shown (a URL's password masked...)
    default: Any = None  # the value when the file has none: every default of hermes is here, and only here

    def shown(self, value: Any) -> Any:
        if self.secret:
            return [mask_key(str(x)) for x in value] if isinstance(value, list) else mask_key(str(value))
        return self.redact(value)


SCHEMA: dict[Path_, Field] = {
    ("model", "provider"): Field(_check_str, doc="default provider id"),
    ("model", "name"): Field(_check_str, doc="default model"),
    ("model", "base_url"): Field(_check_url, doc="endpoint override for [model].provider", redact=_mask_url),
    ("providers", "*", "name"): Field(_check_str),
    ("providers", "*", "base_url"): Field(_check_url, redact=_mask_url),
    ("providers", "*", "api_keys"): Field(_check_str_list, secret=True),
    ("providers", "*", "api_key_env"): Field(_check_str),
    ("providers", "*", "api_key_command"): Field(_check_command),
    ("providers", "*", "models"): Field(_check_str_list),
    ("providers", "*", "needs_key"): Field(_check_bool, default=True),
    ("credentials", "strategy"): Field(_check_strategy, default="fill_first"),
    ("credentials", "max_wait_seconds"): Field(_number(DAY), default=10),
    ("credentials", "cooldown_seconds"): Field(_number(DAY), default=60),
    ("credentials", "state"): Field(_check_state, redact=_mask_url, default="file"),
    ("fallback", "[]", "provider"): Field(_check_str),
    ("fallback", "[]", "name"): Field(_check_str),
    ("fallback", "[]", "base_url"): Field(_check_url, redact=_mask_url),
    ("agent", "max_tool_iterations"): Field(_whole(1000), default=10),
    ("agent", "allow_dangerous"): Field(_check_bool, default=False),
    ("agent", "project_context"): Field(
        _check_bool, doc="false: leave AGENTS.md out of the system prompt", default=True
    ),
    ("agent", "timeout"): Field(_number(DAY), doc="seconds to wait for data from the provider", default=120),
    ("agent", "connect_timeout"): Field(_number(3600), default=10),
    ("agent", "max_retries"): Field(_whole(100), doc="retries of 5xx and network errors per credential", default=2),
    ("agent", "max_answer_seconds"): Field(_number(DAY), doc="longest one answer may keep streaming", default=600),
    ("agent", "compress_at"): Field(
        _number(1), doc="share of the context window that starts a summary (0: never)", default=0.75
    ),
    ("local", "model"): Field(_check_str),
    ("local", "keep_alive"): Field(_check_duration, default="10m"),
    ("local", "auto"): Field(
        _check_bool, doc="answer with the local model when no provider is configured", default=True
    ),
    ("mcp", "servers", "*", "command"): Field(_check_str_list),
    ("mcp", "servers", "*", "env"): Field(_check_env_table, redact=_mask_env_table),
    ("mcp", "servers", "*", "enabled"): Field(_check_bool, doc="false: leave this server out", default=True),
    ("mcp", "servers", "*", "required"): Field(
        _check_bool, doc="true: hermes stops (exit 2) if it cannot start", default=False
    ),
    ("mcp", "servers", "*", "cwd"): Field(_check_str, doc="the server's working directory"),
    ("mcp", "servers", "*", "startup_timeout"): Field(
        _seconds_up_to(3600), doc="seconds it may take to start", default=20
    ),
    ("mcp", "servers", "*", "tool_timeout"): Field(
        _seconds_up_to(DAY), doc="seconds one tool call may take", default=60
    ),
    ("tools", "pass_env"): Field(_check_env_names, doc="variables commands and MCP servers may see", default=[]),
    ("tools", "network"): Field(_check_bool, doc="sandboxed commands may use the network", default=False),
    ("tools", "sandbox"): Field(_check_bool, doc="false: run commands without bubblewrap's sandbox", default=True),
    ("sessions", "save"): Field(_check_bool, default=True),
    ("models", "*", "context"): Field(_whole(100_000_000)),
    ("models", "*", "input_price"): Field(_number(1_000_000), doc="USD per million prompt tokens"),
    ("models", "*", "output_price"): Field(_number(1_000_000), doc="USD per million completion tokens"),
    ("models", "*", "vision"): Field(_check_bool, doc="the model takes image attachments"),
    ("models", "*", "extra_body"): Field(_check_extra_body, doc="fields added to each request for the model"),
    ("agent", "max_attachment_bytes"): Field(
        _whole(1_000_000_000), doc="largest file -a or @path attaches", default=10_000_000
    ),
}

# Leaf tables whose whole value is checked by one field (their keys are data, not schema).
_LEAF_TABLES = {("mcp", "servers", "*", "env"), ("models", "*", "extra_body")}


def _match(pattern: Path_, path: Path_) -> bool:
    return len(pattern) == len(path) and all(p in ("*", x) for p, x in zip(pattern, path, strict=False))


def field_for(path: Path_) -> Field | None:
    for pattern, f in SCHEMA.items():
        if _match(pattern, path):
            return f
    return None


def _table_kind(path: Path_) -> str | None:
    """ "table" or "array" when the schema has keys below `path` (so a scalar cannot stand there), else None."""
    for pattern in SCHEMA:
        if len(pattern) > len(path) and _match(pattern[: len(path)], path):
            return "array" if pattern[len(path)] == "[]" else "table"
    return None


def _walk(value: Any, path: Path_) -> Iterator[tuple[Path_, Any]]:
    # A value where the schema has a setting is checked whole, even a table (`[model.name]` is no name).
    if (path and field_for(path) is not None) or (isinstance(value, dict) and _table_kind(path) == "array"):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, (*path, k))
    elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        for item in value:
            yield from _walk(item, (*path, "[]"))
    else:
        yield path, value


def format_key(path: Path_) -> str:
    # json.dumps quotes like TOML does, and escapes control characters a key may hold; an array entry
    # reads as TOML's [[fallback]] does: fallback[].name.
    shown = ".".join(p if re.fullmatch(r"[A-Za-z0-9_\-\[\]]+", p) else json.dumps(p, ensure_ascii=False) for p in path)
    return shown.replace(".[]", "[]")


def parse_key(key: str) -> Path_:
    """Split a dotted key, honouring quoted parts: models."gpt-4.1".context."""
    parts = re.findall(r'"([^"]*)"|([^.]+)', key)
    path = tuple(q or b for q, b in parts)
    if not path or ".".join(path).replace('"', "") == "" or key.startswith(".") or key.endswith("."):
        raise UsageError(f"{key!r} is not a config key.", hint="Keys look like model.name or credentials.strategy.")
    return path


@dataclass(frozen=True)
class Config:
    """The file as written, every value checked (hermes_cli/settings.py reads it; `hermes config` shows it)."""

    path: Path
    data: Mapping[str, Any]
    warnings: tuple[str, ...] = ()

    def get(self, *path: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in path:
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node


def validate(data: Mapping[str, Any], file: Path) -> tuple[str, ...]:
    """Raise ConfigError for a value of the wrong type; return warnings for unknown keys."""
    warnings = []
    for path, value in _walk(dict(data), ()):
        f = field_for(path)
        if f is None:
            kind = _table_kind(path)
            if kind is not None and value != []:
                raise ConfigError(
                    f"{file}: {format_key(path)} must be a {'table' if kind == 'table' else 'list of tables'}, "
                    f"not {_shown(value)}.",
                    hint="Fix it with `hermes config edit`.",
                )
            warnings.append(f"{file}: unknown key {format_key(path)} is ignored.")
            continue
        problem = f.check(value)
        if problem:
            shown = "<secret>" if f.secret else _shown(f.redact(value))
            raise ConfigError(
                f"{file}: {format_key(path)} must be {problem}, not {shown}.",
                hint="Fix it with `hermes config edit` or `hermes config set`.",
            )
    return tuple(warnings)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def parse_toml(text: str, file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # tomllib says "... (at line L, column C)"; keep that, it is what the user needs.
        raise ConfigError(f"{file} is not valid TOML: {e}.", hint="The file was left as it is.") from None
    except RecursionError:
        raise ConfigError(
            f"{file} nests arrays or tables too deeply to read.", hint="The file was left as it is."
        ) from None


def load_config(file: Path) -> Config:
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        return Config(file, {})
    except OSError as e:
        raise ConfigError(f"Cannot read {file}: {e.strerror}.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{file} is not UTF-8 text.", hint="The file was left as it is.") from None
    data = parse_toml(text, file)
    return Config(file, data, validate(data, file))


def coerce_value(path: Path_, text: str) -> Any:
    """Turn the text of `config set KEY VALUE` into the value the schema expects."""
    f = field_for(path)
    if f is None:
        raise UsageError(
            f"{format_key(path)} is not a config key hermes knows.",
            hint="See the config.toml section of the README for the keys.",
        )
    candidates: list[Any] = [text]
    stripped = text.strip()
    if stripped.lower() in ("true", "false"):
        candidates.insert(0, stripped.lower() == "true")
    for num in (float, int):  # each goes in front: an integral text is tried as int first
        with contextlib.suppress(ValueError):
            candidates.insert(0, num(stripped))
    if stripped.startswith("["):
        # Text that looks like an array is that array or an error: never a one-element list of its text
        # (`api_keys "[1,2]"` must not become the key "[1,2]").
        try:
            array = tomllib.loads(f"v = {stripped}")["v"]
        except (tomllib.TOMLDecodeError, RecursionError):
            array = None
        candidates = [array] if isinstance(array, list) else candidates
    elif path[-1] == "command":
        # A command line, split as the shell would: "python -m srv" is three words, not one program name.
        with contextlib.suppress(ValueError):
            candidates.append(shlex.split(text))
    else:
        if "," in stripped:
            candidates.append([x.strip() for x in stripped.split(",") if x.strip()])
        candidates.append([text])
    problem = None
    for value in candidates:
        problem = f.check(value)
        if problem is None:
            return value
    shown = "<secret>" if f.secret else _shown(f.redact(text))
    raise UsageError(f"{format_key(path)} must be {problem}, not {shown}.")


def set_value(file: Path, path: Path_, value: Any) -> None:
    """Write one key, keeping comments and order; validate the whole result before the atomic write."""
    import tomlkit

    if "[]" in path:
        raise UsageError("Array entries such as [[fallback]] are edited with `hermes config edit`.")

    def change(doc: Any) -> None:
        node: Any = doc
        for part in path[:-1]:
            if part not in node:
                node[part] = tomlkit.table()
            node = node[part]
            if not isinstance(node, Mapping):
                raise UsageError(f"{format_key(path)} cannot be set: {part} is not a table in {file}.")
        node[path[-1]] = value

    edit_document(file, change)


def edit_document(file: Path, change: Callable[[Any], None]) -> None:
    """Apply `change` to the file's tomlkit document (comments and order kept); validate the whole
    result before the atomic write. A file that does not parse is reported, never overwritten."""
    import tomlkit

    from providers.atomic import write_atomic

    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    parse_toml(text, file)
    doc = tomlkit.parse(text)
    change(doc)
    new_text = tomlkit.dumps(doc).rstrip("\n") + "\n"  # a removed table leaves no blank lines behind
    validate(parse_toml(new_text, file), file)
    write_atomic(file, new_text.encode("utf-8"))


def masked(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the config with every secret masked, for `config show` and `config get`."""

    def walk(value: Any, path: Path_) -> Any:
        f = field_for(path)
        if f is not None:
            return f.shown(value)
        if isinstance(value, Mapping):
            return {k: walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list) and value and all(isinstance(x, Mapping) for x in value):
            return [walk(v, (*path, "[]")) for v in value]
        if isinstance(value, str) and path and looks_secret(path[-1], value):
            return mask_key(value)  # an unknown key (`api_key = "sk-…"`, a typo) is still masked
        return value

    shown: dict[str, Any] = walk(data, ())
    return shown
