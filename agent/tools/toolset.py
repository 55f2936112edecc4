"""The tools offered to the model in one session, and the checks a call passes before it runs.

A call from the model is parsed and checked against its tool's schema (`prepare`); a call that fails
is answered with the reason, so the model can correct it. Which calls need the user's yes is decided
by `approval.decide`; "always" answers are remembered here for the session.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.tools.approval import ASK, ApprovalSettings, Verdict, decide
from agent.tools.base import Effect, Tool, ToolError, ToolResult, Workspace, truncate

if TYPE_CHECKING:
    from agent.checkpoints import Checkpoints

RESULT_LIMIT = 60_000  # characters of one tool result sent to the model
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


@dataclass(frozen=True)
class PreparedCall:
    id: str
    name: str
    arguments: dict[str, Any]
    tool: Tool | None = None
    verdict: Verdict | None = None
    preview: str = ""
    error: str | None = None  # why it cannot run: answered to the model as is

    @property
    def needs_approval(self) -> bool:
        return self.verdict is not None and self.verdict.action == ASK


@dataclass
class ToolSet:
    tools: Sequence[Tool]
    workspace: Workspace
    settings: ApprovalSettings
    max_iterations: int  # rounds of tool calls in one answer: `[agent] max_tool_iterations`
    always: set[str] = field(default_factory=set)  # tool names the user approved for the session
    checkpoint_dir: Path | None = None  # where what built-in tools write is recorded, for /rollback
    session_id: Callable[[], str | None] = lambda: None  # the session the turns are recorded under

    _checkpoints: Checkpoints | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {t.name: t for t in self.tools}

    def api_tools(self) -> list[dict[str, Any]]:
        return [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in self.tools
        ]

    def prepare(self, call: dict[str, Any]) -> PreparedCall:
        call_id = str(call.get("id") or "")
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        tool = self._by_name.get(name)
        if tool is None:
            known = ", ".join(sorted(self._by_name)) or "none"
            return PreparedCall(call_id, name, {}, error=f"There is no tool named {name!r}. Tools: {known}.")
        raw = function.get("arguments") or "{}"
        try:
            args = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError as e:
            return PreparedCall(
                call_id, name, {}, tool, error=f"The arguments are not valid JSON ({e.msg} at position {e.pos})."
            )
        except RecursionError:
            return PreparedCall(call_id, name, {}, tool, error="The arguments are nested too deeply.")
        except ValueError as e:  # a number with thousands of digits: Python refuses to convert it
            return PreparedCall(call_id, name, {}, tool, error=f"The arguments cannot be read ({e}).")
        if not isinstance(args, dict):
            return PreparedCall(call_id, name, {}, tool, error="The arguments must be a JSON object.")
        problem = check_arguments(tool.parameters, args) or _unencodable(args)
        if problem:
            return PreparedCall(call_id, name, args, tool, error=f"Invalid arguments for {name}: {problem}")
        try:
            verdict = decide(tool, args, self.workspace, self.settings, self.always)
            # What a call will change is shown to the user whether or not they are asked (--yes).
            shown = verdict.action == ASK or tool.effect is not Effect.READ
            preview = tool.preview(args, self.workspace) if shown else ""
        except ToolError as e:
            return PreparedCall(call_id, name, args, tool, error=e.message)
        except Exception as e:  # a tool's bug must not end the session: the model hears of it instead
            return PreparedCall(call_id, name, args, tool, error=f"{name} could not check this call: {_failure(e)}")
        return PreparedCall(call_id, name, args, tool, verdict, preview)

    def run(self, call: PreparedCall) -> tuple[ToolResult, float]:
        """Run a prepared call; a ToolError becomes a failed result. Returns the result and its seconds."""
        assert call.tool is not None and call.error is None
        start = time.monotonic()
        try:
            written = self._checkpoint_before(call)
        except OSError as e:  # no undo to be had: the file is left alone rather than changed for good
            message = f"{call.name} not run: hermes could not record a checkpoint for /rollback ({_failure(e)})"
            return ToolResult(f"Error: {message}", message, ok=False), time.monotonic() - start
        try:
            result = call.tool.run(call.arguments, self.workspace)
        except ToolError as e:
            result = ToolResult(f"Error: {e.message}", e.message, ok=False)
        except Exception as e:  # a tool's bug (built-in or MCP) fails this call, not the whole answer
            message = f"{call.name} failed: {_failure(e)}"
            result = ToolResult(f"Error: {message}", message, ok=False)
        finally:
            if written:
                checkpoints = self.checkpoints()
                assert checkpoints is not None
                for path in written:
                    # On failure the state before is recorded; /rollback then refuses this file as changed.
                    with contextlib.suppress(OSError):
                        checkpoints.after_write(path)
        return ToolResult(
            truncate(result.content, RESULT_LIMIT, "result"), result.summary, result.ok
        ), time.monotonic() - start

    def checkpoints(self) -> Checkpoints | None:
        """The checkpoint store, loaded on first use (an answer that writes nothing never imports it)."""
        if self._checkpoints is None and self.checkpoint_dir is not None:
            from agent.checkpoints import Checkpoints

            self._checkpoints = Checkpoints(self.checkpoint_dir, self.session_id)
        return self._checkpoints

    def begin_turn(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.begin_turn()

    def _checkpoint_before(self, call: PreparedCall) -> list[Path]:
        """The files a built-in writer is about to change, their content recorded first. A command's
        changes cannot be known beforehand: the turn is only marked as having run one."""
        tool = call.tool
        if tool is None or tool.source != "built-in" or tool.effect not in (Effect.EXEC, Effect.WRITE):
            return []
        checkpoints = self.checkpoints()
        if checkpoints is None:
            return []
        if tool.effect is Effect.EXEC:
            checkpoints.ran_command()
            return []
        paths = [
            path for path in (self.workspace.resolve(p) for p in tool.paths(call.arguments)) if not path.is_dir()
        ]  # the tool refuses to write a directory
        for path in paths:
            checkpoints.before_write(path)
        return paths


def _failure(e: Exception) -> str:
    """An unexpected exception in words the model (and the user) can read: the OS's reason when it has one."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}."
    text = str(e).strip()
    return f"{type(e).__name__}: {text[:500]}" if text else type(e).__name__


def _unencodable(args: dict[str, Any]) -> str | None:
    """Why no file, process or server could take these arguments, or None: what json.loads accepts may
    still hold an unpaired surrogate ("\\ud800") or NaN and Infinity, which strict JSON has no words for."""
    try:
        json.dumps(args, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        return "a string in the arguments is not valid Unicode (it holds an unpaired surrogate)."
    except ValueError:
        return "the arguments hold NaN or Infinity; use finite numbers."
    except RecursionError:
        return "the arguments are nested too deeply."
    return None


def check_arguments(schema: dict[str, Any], args: dict[str, Any]) -> str | None:
    """The first way `args` breaks the top level of `schema` (required keys, JSON types), or None."""
    properties: dict[str, Any] = schema.get("properties") or {}
    missing = [k for k in schema.get("required") or [] if k not in args]
    if missing:
        return f"missing required argument {missing[0]!r}."
    for key, value in args.items():
        spec = properties.get(key)
        if spec is None:
            if schema.get("additionalProperties") is False:
                return f"unknown argument {key!r} (expected: {', '.join(properties) or 'none'})."
            continue
        types = spec.get("type")
        names = [types] if isinstance(types, str) else list(types or [])
        if names and not any(_is(value, t) for t in names):
            return f"{key!r} must be {' or '.join(names)}, not {_json_type(value)}."
        if "enum" in spec and value not in spec["enum"]:
            return f"{key!r} must be one of {spec['enum']}."
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            problem = _out_of_range(key, value, spec)
            if problem:
                return problem
    return None


def _out_of_range(key: str, value: float, spec: dict[str, Any]) -> str | None:
    """NaN and infinities (json.loads accepts them) and numbers outside the schema's bounds."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{key!r} must be a finite number, not {value}."
    low, high = spec.get("minimum"), spec.get("maximum")
    if isinstance(low, (int, float)) and value < low:
        return f"{key!r} must be at least {low}, not {value}."
    if isinstance(high, (int, float)) and value > high:
        return f"{key!r} must be at most {high}, not {value}."
    return None


def _is(value: Any, type_name: str) -> bool:
    if isinstance(value, bool) and type_name in ("integer", "number"):
        return False
    if type_name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _JSON_TYPES.get(type_name, (object,)))


def _json_type(value: Any) -> str:
    for name, _types in _JSON_TYPES.items():
        if _is(value, name):
            return name
    return type(value).__name__
