"""Fuzz: whatever arguments the model sends a built-in tool, hermes answers with a tool result, never a crash.

In process, through ToolSet.prepare and ToolSet.run, as the conversation loop calls them. Nothing generated
is ever executed or fetched: run_command always runs the same harmless command (only the shapes and types
of its arguments are fuzzed), fetch_url only reaches a loopback fake server or gets an invalid URL, and
calls that would touch a path outside the scratch workspace are prepared but not run.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.tools.approval import ApprovalSettings
from agent.tools.base import Tool, ToolError, ToolResult, Workspace
from agent.tools.builtin import builtin_tools
from agent.tools.toolset import ToolSet
from tests.fakeserver import FakeServer

EXAMPLES = int(os.environ.get("HERMES_FUZZ_EXAMPLES", "150"))  # per tool and property: raise it for a long hunt
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HARMLESS_COMMAND = "echo fuzz"

# Any JSON value, and the awkward strings a model can produce: NUL, lone surrogates, huge, path-like.
awkward_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "a\u0000b",
            "\ud800",
            "x" * 5000,
            "d/" * 2100,
            "~no-such-user-xyz/x",
            "~",
            ".",
            "*",
            "[",
            "(?P<",
            "a" * 300,
            "..\u202e",
            "\n",
            "\t\r",
        ]
    ),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    awkward_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def tool_names() -> list[str]:
    return [t.name for t in builtin_tools()]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    with FakeServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("ws")
    (root / "notes.txt").write_text("hello\nworld\n")
    (root / "sub").mkdir()
    (root / "sub" / "a.py").write_text("print('a')\n")
    return Workspace(root)


@pytest.fixture(scope="module")
def toolset(workspace: Workspace) -> ToolSet:
    return ToolSet(builtin_tools(), workspace, ApprovalSettings(yes=True), max_iterations=10)


PLAUSIBLE = {
    "path": ["notes.txt", "sub", "sub/a.py", ".", "new.txt", "sub/new/deep.txt"],
    "old_string": ["hello", "world\n", "o"],
    "pattern": ["o", "^h", "print", "(", "\\"],
    "glob": ["*.py", "sub/*", "[", "**"],
    "timezone": ["UTC", "Europe/Paris", "Mars/Olympus", "../etc"],
    "cwd": ["sub", ".", "nope"],
}


def typed(spec: dict[str, Any], name: str) -> st.SearchStrategy[Any]:
    """Values of the schema's own type (where the tools' own checks live), plausible ones first."""
    kinds = {
        "string": awkward_text,
        "integer": st.integers(min_value=-(10**30), max_value=10**30),
        "number": st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True)),
        "boolean": st.booleans(),
    }
    base = kinds.get(spec.get("type", ""), json_values)
    plausible = PLAUSIBLE.get(name)
    return st.one_of(st.sampled_from(plausible), base) if plausible else base


def arguments(tool: Tool, fake: FakeServer) -> st.SearchStrategy[dict[str, Any]]:
    """Objects over the tool's own argument names (each maybe missing, of its type or any other), and
    now and then an unknown name."""
    properties: dict[str, Any] = tool.parameters.get("properties", {})
    values: dict[str, st.SearchStrategy[Any]] = {
        name: st.one_of(typed(spec, name), typed(spec, name), json_values) for name, spec in properties.items()
    }
    if tool.name == "run_command":  # a command is only ever the harmless one; its type is fuzzed
        values["command"] = st.one_of(st.just(HARMLESS_COMMAND), json_values.filter(lambda v: not isinstance(v, str)))
    if tool.name == "fetch_url":
        safe = string.ascii_letters + string.digits + "-._~/?=&%#@!$'()*+,;"
        values["url"] = st.one_of(
            st.text(safe, max_size=30).map(lambda path: f"{fake.url}/{path}"),
            st.text(string.ascii_letters + string.digits + " .-_", max_size=30),  # no scheme: refused
            json_values.filter(lambda v: not isinstance(v, str)),
        )
    known = st.fixed_dictionaries({}, optional=values)
    unknown = st.one_of(
        st.just({}),
        st.just({}),
        st.just({}),
        st.dictionaries(
            st.text(max_size=10).filter(lambda k: k not in properties), json_values, min_size=1, max_size=2
        ),
    )
    return st.tuples(known, unknown).map(lambda pair: {**pair[1], **pair[0]})


def safe_to_run(tool: Tool, args: dict[str, Any], workspace: Workspace) -> bool:
    """Only calls that stay in the scratch workspace (and, for the two risky tools, the fixed inputs)."""
    try:
        inside = all(workspace.contains(workspace.resolve(p)) for p in tool.paths(args))
    except ToolError:
        return True  # the tool must refuse the path itself
    if tool.name == "run_command" and args.get("command") not in (None, HARMLESS_COMMAND):
        return not isinstance(args.get("command"), str)
    return inside


def call_and_check(toolset: ToolSet, workspace: Workspace, name: str, raw: str | dict[str, Any]) -> None:
    call = {"id": "call_0", "type": "function", "function": {"name": name, "arguments": raw}}
    prepared = toolset.prepare(call)
    if prepared.error is not None:
        assert isinstance(prepared.error, str) and prepared.error
        return
    assert prepared.tool is not None
    if not safe_to_run(prepared.tool, prepared.arguments, workspace):
        return
    result, seconds = toolset.run(prepared)
    assert isinstance(result, ToolResult) and isinstance(result.content, str) and seconds >= 0
    json.dumps({"content": result.content}).encode("utf-8")  # it can go back to the model as is


@pytest.mark.parametrize("name", tool_names())
def test_any_arguments_give_a_tool_result_never_a_crash(
    name: str, toolset: ToolSet, workspace: Workspace, fake: FakeServer
) -> None:
    tool = next(t for t in toolset.tools if t.name == name)

    @FUZZ
    @given(args=arguments(tool, fake), as_text=st.booleans())
    def check(args: dict[str, Any], as_text: bool) -> None:
        try:
            raw: str | dict[str, Any] = json.dumps(args) if as_text else args
        except (UnicodeEncodeError, ValueError):
            raw = args
        call_and_check(toolset, workspace, name, raw)

    check()


raw_arguments = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "",
            "{",
            "[" * 5000,
            '{"path": NaN}',
            '{"path": "notes.txt", "start_line": Infinity}',
            '{"timeout_seconds": -Infinity, "command": "echo fuzz"}',
            '{"a": ' + "9" * 5000 + "}",
            "null",
            "[]",
            '"x"',
            "1e999",
            '{"path": "\\ud800"}',
            '{"path": "notes.txt"} trailing',
        ]
    ),
)


@pytest.mark.parametrize("name", tool_names())
def test_any_argument_text_gives_a_tool_result_never_a_crash(name: str, toolset: ToolSet, workspace: Workspace) -> None:
    @FUZZ
    @given(raw=raw_arguments)
    def check(raw: str) -> None:
        # A generated command text never reaches run_command: only these fixed ones can.
        if name == "run_command" and "command" in raw and HARMLESS_COMMAND not in raw:
            return
        call_and_check(toolset, workspace, name, raw)

    check()


def test_a_tool_that_raises_anything_fails_the_call_not_the_session(workspace: Workspace) -> None:
    class Broken:
        name = "broken"
        description = "always breaks"
        parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}
        source = "mcp:test"

        from agent.tools.base import Effect

        effect = Effect.READ

        def paths(self, args: Any) -> list[str]:
            return []

        def preview(self, args: Any, workspace: Workspace) -> str:
            return ""

        confinement = ""

        def danger(self, args: Any, workspace: Workspace) -> str | None:
            return None

        def escapes(self, args: Any, workspace: Workspace) -> None:
            return None

        def run(self, args: Any, workspace: Workspace) -> ToolResult:
            raise OSError(36, "File name too long")

    toolset = ToolSet([Broken()], workspace, ApprovalSettings(), max_iterations=10)
    prepared = toolset.prepare({"id": "1", "function": {"name": "broken", "arguments": "{}"}})
    result, _ = toolset.run(prepared)
    assert not result.ok and result.content == "Error: broken failed: File name too long."
