"""MCP servers as tools: McpServers against a real stdio MCP server (tests/mcp_server.py) in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from agent.tools.base import Effect, Tool, ToolError, Workspace
from agent.tools.mcp import RESTARTS, McpServers, McpTool, _make_tools, _result_text, _Server
from agent.tools.mcp_config import ServerConfig, parse_servers
from providers.errors import ConfigError, UsageError

SERVER = str(Path(__file__).resolve().with_name("mcp_server.py"))
COMMAND = [sys.executable, SERVER]
ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="child processes are read from /proc")


def children() -> set[int]:
    """Our child processes, zombies included."""
    kids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                kids.add(int(entry))
    return kids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_servers(
    table: dict[str, Any], *, timeout: float = 20, call_timeout: float = 60, **options: Any
) -> McpServers:
    """The servers of an `[mcp.servers]` table; the timeouts are those of a server that sets none
    (config's defaults unless given)."""
    return McpServers.start(parse_servers(table, startup_timeout=timeout, tool_timeout=call_timeout), **options)


def by_name(servers: McpServers) -> dict[str, McpTool]:
    return {tool.name: cast(McpTool, tool) for tool in servers.tools}  # McpServers makes only McpTools


@pytest.fixture(scope="module")
def shared() -> Iterator[McpServers]:
    """One server for the tests that only call it; "shout" is taken, as if by a built-in tool."""
    with start_servers({"test": {"command": COMMAND}}, reserved={"shout"}) as servers:
        yield servers


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


def test_tools_are_listed_with_schema_source_and_effect(shared: McpServers) -> None:
    tools = by_name(shared)
    assert {"add", "test__shout", "fail", "env_value", "slow", "pid", "crash"} <= set(tools)
    add = tools["add"]
    assert isinstance(add, Tool)
    assert add.description == "Add two integers."
    assert add.parameters["type"] == "object"
    assert add.parameters["properties"]["a"]["type"] == "integer"
    assert sorted(add.parameters["required"]) == ["a", "b"]
    assert add.source == "mcp:test"
    assert add.effect is Effect.READ  # readOnlyHint: true
    assert tools["test__shout"].effect is Effect.EXEC  # no hint: the user approves it
    assert tools["fail"].effect is Effect.EXEC
    assert add.paths({"a": 1, "b": 2}) == [] and add.danger({"a": 1, "b": 2}, Workspace(Path.cwd())) is None


def test_call_returns_the_text(shared: McpServers, ws: Workspace) -> None:
    tools = by_name(shared)
    result = tools["add"].run({"a": 2, "b": 3}, ws)
    assert (result.content, result.ok) == ("5", True)
    assert tools["test__shout"].run({"text": "héllo"}, ws).content == "HÉLLO"
    assert tools["test__shout"].preview({"text": "hi"}, ws) == 'test.shout({"text": "hi"})'


def test_an_error_result_raises_tool_error(shared: McpServers, ws: Workspace) -> None:
    with pytest.raises(ToolError, match="boom"):
        by_name(shared)["fail"].run({"message": "boom"}, ws)
    assert by_name(shared)["add"].run({"a": 1, "b": 1}, ws).content == "2"  # the server is still fine


def test_a_server_gets_a_minimal_environment_and_its_own_env(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERMES_MCP_INHERITED", "from-us")
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-must-not-leak-0001")
    with start_servers({"e": {"command": COMMAND, "env": {"HERMES_MCP_EXTRA": "from-config"}}}) as servers:
        env_value = by_name(servers)["env_value"]
        assert env_value.run({"name": "HERMES_MCP_EXTRA"}, ws).content == "from-config"
        assert env_value.run({"name": "PATH"}, ws).content == os.environ["PATH"]
        assert env_value.run({"name": "HERMES_MCP_INHERITED"}, ws).content == "<unset>"
        assert env_value.run({"name": "OPENROUTER_API_KEY"}, ws).content == "<unset>"


def test_clashing_names_get_the_server_prefix(ws: Workspace) -> None:
    before = children()
    with start_servers({"one": {"command": COMMAND}, "two": {"command": COMMAND}}) as servers:
        tools = by_name(servers)
        assert {"one__add", "two__add", "one__pid", "two__pid"} <= set(tools)
        assert "add" not in tools
        assert tools["two__add"].source == "mcp:two"
        assert tools["one__add"].run({"a": 1, "b": 2}, ws).content == "3"
        assert tools["one__pid"].run({}, ws).content != tools["two__pid"].run({}, ws).content
    assert children() == before


def test_names_are_cleaned_and_unique() -> None:
    config = ServerConfig("my server", ("x",), {}, None, 1.0, 1.0, False, True)
    server = _Server(config, {}, McpServers(), "key")
    server.specs = [{"name": "get.weather"}, {"name": "a" * 80}, {"name": "read_file"}]
    names = [t.name for t in _make_tools([server], {"read_file"})]
    assert names == ["get_weather", "a" * 64, "my_server__read_file"]


def test_close_leaves_no_process(ws: Workspace) -> None:
    before = children()
    servers = start_servers({"p": {"command": COMMAND}})
    pid = int(by_name(servers)["pid"].run({}, ws).content)
    assert pid in children()
    servers.close()
    servers.close()  # twice is fine
    assert not alive(pid)  # neither running nor a zombie
    assert children() == before


def test_a_call_times_out(ws: Workspace) -> None:
    with start_servers({"s": {"command": COMMAND, "tool_timeout": 0.5}}) as servers:
        tools = by_name(servers)
        started = time.monotonic()
        with pytest.raises(ToolError, match=r"did not answer within 0\.5 s"):
            tools["slow"].run({"seconds": 6}, ws)
        assert time.monotonic() - started < 3  # not the 6 s the tool takes
        tools["add"].call_timeout = 15  # mcp 1.x servers run a sync tool on their event loop: add waits for slow
        assert tools["add"].run({"a": 1, "b": 2}, ws).content == "3"


def test_a_crashed_server_is_restarted_on_the_next_call_but_not_forever(ws: Workspace) -> None:
    before = children()
    with start_servers({"c": {"command": COMMAND}}) as servers:
        tools = by_name(servers)
        first = tools["pid"].run({}, ws).content
        with pytest.raises(ToolError, match=r"MCP server 'c' stopped while running crash .*the next call starts it"):
            tools["crash"].run({}, ws)  # not called again: it may have acted before it crashed
        assert tools["add"].run({"a": 1, "b": 2}, ws).content == "3"
        assert tools["pid"].run({}, ws).content != first
        for _ in range(RESTARTS - 1):
            with pytest.raises(ToolError):
                tools["crash"].run({}, ws)
            assert tools["add"].run({"a": 2, "b": 2}, ws).content == "4"
        with pytest.raises(ToolError, match="it stays stopped"):
            tools["crash"].run({}, ws)
        started = time.monotonic()
        with pytest.raises(ToolError, match=f"MCP server 'c' is not running .*restarted {RESTARTS} times already"):
            tools["add"].run({"a": 1, "b": 2}, ws)
        assert time.monotonic() - started < 2
    assert children() == before


def test_a_server_that_cannot_restart_says_why(ws: Workspace, tmp_path: Path) -> None:
    refuse = tmp_path / "refuse"
    before = children()
    with start_servers({"c": {"command": COMMAND, "env": {"REFUSE_IF_EXISTS": str(refuse)}}}) as servers:
        tools = by_name(servers)
        refuse.touch()
        with pytest.raises(ToolError):
            tools["crash"].run({}, ws)
        with pytest.raises(
            ToolError, match=r"MCP server 'c' had stopped .* and could not be restarted: .*missing API token"
        ) as caught:
            tools["add"].run({"a": 1, "b": 2}, ws)
        assert "crashing on request" not in caught.value.message.split("stderr ends with")[1]  # an earlier start's
    assert children() == before


def test_command_not_found_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        start_servers({"ghost": {"command": ["hermes-no-such-program", "--stdio"], "required": True}})
    assert isinstance(caught.value, UsageError)
    assert "'ghost'" in caught.value.message and "hermes-no-such-program" in caught.value.message
    assert caught.value.hint and "[mcp.servers.ghost]" in caught.value.hint


def test_a_server_that_exits_is_a_config_error_not_a_hang() -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError, match="'quits'"):
        start_servers({"quits": {"command": [sys.executable, "-c", "pass"], "required": True}}, timeout=60)
    assert time.monotonic() - started < 30  # told by its exit, not by the 60 s start-up timeout


def test_start_up_errors_quote_the_servers_stderr() -> None:
    with pytest.raises(ConfigError, match='stderr ends with "missing API token"'):
        start_servers({"grumpy": {"command": [*COMMAND, "--complain"], "required": True}})


def test_initialize_timeout_stops_everything_started() -> None:
    before = children()
    silent = [sys.executable, "-c", "import time; time.sleep(60)"]
    started = time.monotonic()
    with pytest.raises(ConfigError, match="'silent' could not be started: it did not finish initializing within 4 s"):
        start_servers({"good": {"command": COMMAND}, "silent": {"command": silent, "required": True}}, timeout=4)
    assert time.monotonic() - started < 30  # 4 s, then stdio_client's shutdown (stdin closed, 2 s, SIGTERM), not 60 s
    assert children() == before


@pytest.mark.parametrize(
    "spec", [{}, {"command": []}, {"command": "python server.py"}, {"command": ["x"], "env": {"N": 1}}]
)
def test_a_malformed_server_table_is_a_config_error(spec: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"\[mcp.servers.bad\]"):
        start_servers({"bad": spec})


def test_without_the_mcp_package_the_hint_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mcp", None)  # makes `import mcp` raise ImportError
    with pytest.raises(ConfigError) as caught:
        start_servers({"any": {"command": COMMAND, "required": True}})
    assert caught.value.hint == "pip install 'hermes[mcp]'"


def test_stderr_goes_to_the_log_dir(tmp_path: Path) -> None:
    with start_servers({"grumpy": {"command": [*COMMAND, "--complain"]}}, log_dir=tmp_path) as servers:
        assert len(servers.failures) == 1 and servers.tools == []
    assert "missing API token" in (tmp_path / "mcp-grumpy.log").read_text()


def test_start_up_errors_quote_only_this_runs_stderr_and_the_log_is_fresh_per_run(tmp_path: Path) -> None:
    for complaint in ("first run: token expired", "second run: missing API token"):
        with start_servers(
            {"grumpy": {"command": [*COMMAND, "--complain"], "env": {"COMPLAINT": complaint}}}, log_dir=tmp_path
        ) as servers:
            (failure,) = servers.failures
    assert 'stderr ends with "second run: missing API token"' in failure.message
    assert "first run" not in failure.message
    assert (tmp_path / "mcp-grumpy.log").read_text() == "second run: missing API token\n"
    assert (tmp_path / "mcp-grumpy.log.1").read_text() == "first run: token expired\n"  # the run before, kept


def test_a_server_writing_text_on_stdout_is_reported_as_such_not_as_a_timeout() -> None:
    with start_servers({"chatty": {"command": [*COMMAND, "--chatty"]}}, timeout=20) as servers:
        (failure,) = servers.failures
    assert "not MCP on its stdout" in failure.message
    assert "Starting hermes-test server v1.0 on stdio..." in failure.message
    assert "within 20 s" not in failure.message


def test_a_banner_on_stdout_before_mcp_still_works(ws: Workspace) -> None:
    with start_servers({"banner": {"command": [*COMMAND, "--banner"]}}) as servers:
        assert by_name(servers)["add"].run({"a": 2, "b": 3}, ws).content == "5"


def test_non_text_content_becomes_a_placeholder() -> None:
    result = {
        "content": [
            {"type": "text", "text": "see:"},
            {"type": "image", "data": "AAAA", "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "file:///a.txt", "text": "hello"}},
            {"type": "resource", "resource": {"uri": "file:///b.bin", "blob": "AAAAAA==", "mimeType": "x/y"}},
            {"type": "resource_link", "uri": "file:///c", "name": "c"},
        ]
    }
    assert _result_text(result).splitlines() == [
        "see:",
        "[image: image/png, 3 bytes]",
        "[resource: file:///a.txt]",
        "hello",
        "[resource: file:///b.bin, x/y, 4 bytes]",
        "[resource link: file:///c]",
    ]
    assert _result_text({"content": [], "structuredContent": {"n": 1}}) == '{"n": 1}'


@pytest.mark.parametrize("close", [True, False], ids=["closed", "left-to-atexit"])
def test_nothing_is_printed_at_exit_and_no_process_is_left(close: bool) -> None:
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from agent.tools.base import ToolError, Workspace
        from agent.tools.mcp import McpServers
        from agent.tools.mcp_config import parse_servers
        configs = parse_servers({{"t": {{"command": {COMMAND!r}}}}}, startup_timeout=20, tool_timeout=0.3)
        servers = McpServers.start(configs)
        tools = {{t.name: t for t in servers.tools}}
        print(tools["pid"].run({{}}, Workspace(Path("."))).content)
        try:
            tools["slow"].run({{"seconds": 10}}, Workspace(Path(".")))  # still running in the server at exit
        except ToolError:
            pass
        if {close}:
            servers.close()
    """)
    proc = subprocess.run(
        [sys.executable, "-W", "default", "-c", script],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert not alive(int(proc.stdout))


# -- resilience and lazy servers ---------------------------------------------------------------------------


def starts(file: Path) -> int:
    return len(file.read_text().splitlines()) if file.exists() else 0


@pytest.mark.parametrize(
    "command",
    [
        ["hermes-no-such-program"],
        [*COMMAND, "--complain"],
        [*COMMAND, "--chatty"],
        [sys.executable, "-c", "import time; time.sleep(30)"],
    ],
    ids=["missing", "crashes", "garbage", "hangs"],
)
def test_a_broken_server_is_left_out_and_the_others_work(command: list[str], ws: Workspace) -> None:
    before = children()
    with start_servers({"good": {"command": COMMAND}, "bad": {"command": command, "startup_timeout": 3}}) as servers:
        (failure,) = servers.failures
        assert "MCP server 'bad' could not be started" in failure.message
        assert {t.source for t in servers.tools} == {"mcp:good"}
        assert by_name(servers)["add"].run({"a": 1, "b": 2}, ws).content == "3"
    assert children() == before


def test_a_disabled_server_is_not_started(tmp_path: Path) -> None:
    started = tmp_path / "started"
    with start_servers(
        {"off": {"command": COMMAND, "enabled": False, "env": {"STARTED_FILE": str(started)}}}
    ) as servers:
        assert servers.tools == [] and servers.failures == []
    assert starts(started) == 0


def test_cwd_is_the_servers_working_directory(tmp_path: Path, ws: Workspace) -> None:
    with start_servers({"c": {"command": COMMAND, "cwd": str(tmp_path)}}) as servers:
        assert by_name(servers)["env_value"].run({"name": "PWD"}, ws).content in (str(tmp_path), "<unset>")
        pid = by_name(servers)["pid"].run({}, ws).content
        assert Path(f"/proc/{pid}/cwd").resolve() == tmp_path.resolve()
    with start_servers({"c": {"command": COMMAND, "cwd": str(tmp_path / "nowhere")}}) as servers:
        (failure,) = servers.failures
        assert "nowhere is not a directory" in failure.message


def test_a_cached_server_starts_only_when_a_tool_is_called(tmp_path: Path, ws: Workspace) -> None:
    started = tmp_path / "started"
    table = {"slow": {"command": [*COMMAND, "--slow-start"], "env": {"STARTED_FILE": str(started)}}}
    with start_servers(table, cache_dir=tmp_path) as servers:  # nothing cached: started to list its tools
        assert "add" in by_name(servers)
    assert starts(started) == 1
    before = children()
    with start_servers(table, cache_dir=tmp_path) as servers:
        tools = by_name(servers)
        assert tools["add"].effect is Effect.READ and tools["add"].source == "mcp:slow"
        assert children() == before and starts(started) == 1  # listed from the cache: no process
        assert tools["add"].run({"a": 2, "b": 3}, ws).content == "5"  # the call starts it
        assert starts(started) == 2
        assert tools["pid"].run({}, ws).content == tools["pid"].run({}, ws).content  # and it stays up
    assert children() == before
    changed = {"slow": {**table["slow"], "command": [*COMMAND, "--slow-start", "--banner"]}}
    with start_servers(changed, cache_dir=tmp_path):  # another command: listed afresh
        assert starts(started) == 3


def test_a_cached_server_that_fails_to_start_tells_the_model_once(tmp_path: Path, ws: Workspace) -> None:
    refuse = tmp_path / "refuse"
    table = {"r": {"command": COMMAND, "env": {"REFUSE_IF_EXISTS": str(refuse)}}}
    start_servers(table, cache_dir=tmp_path).close()
    refuse.touch()
    with start_servers(table, cache_dir=tmp_path) as servers:
        assert servers.failures == []
        add = by_name(servers)["add"]
        with pytest.raises(ToolError, match=r"'r' could not be started.*missing API token"):
            add.run({"a": 1, "b": 1}, ws)
        started = time.monotonic()
        with pytest.raises(ToolError, match="'r' could not be started"):
            add.run({"a": 1, "b": 1}, ws)
        assert time.monotonic() - started < 1  # not started again


def test_a_required_server_that_fails_stops_everything(tmp_path: Path) -> None:
    before = children()
    with pytest.raises(ConfigError, match="'must' could not be started"):
        start_servers({"good": {"command": COMMAND}, "must": {"command": [*COMMAND, "--complain"], "required": True}})
    assert children() == before


def test_hints_and_the_line_count(shared: McpServers, ws: Workspace) -> None:
    tools = by_name(shared)
    assert tools["add"].hints == ("read-only",) and tools["add"].confinement == ""
    assert tools["test__shout"].confinement == "not sandboxed: runs in its MCP server"
    assert tools["get_env"].run({}, ws).summary.endswith("lines")
    assert tools["add"].run({"a": 1, "b": 1}, ws).summary == "1 line"


def test_the_approval_names_the_server_its_hints_and_the_arguments(shared: McpServers, ws: Workspace) -> None:
    from agent.tools.approval import ASK, ApprovalSettings, decide

    wipe = by_name(shared)["wipe"]
    verdict = decide(wipe, {"target": "/data"}, ws, ApprovalSettings())
    assert verdict.action == ASK
    assert verdict.reason == (
        "is a tool of MCP server 'test' (not sandboxed: runs in its MCP server; "
        "the server says: destructive, open-world)"
    )
    assert wipe.preview({"target": "/data"}, ws) == 'test.wipe({"target": "/data"})'
    long = wipe.preview({"target": "x" * 100}, ws).splitlines()
    assert long == ["test.wipe({", f'  "target": "{"x" * 100}"', "})"]


def test_a_stale_cached_list_is_used_and_refreshed_in_the_background(tmp_path: Path, ws: Workspace) -> None:
    import json as json_

    from agent.tools.mcp_cache import cache_path

    started = tmp_path / "started"
    table = {"s": {"command": COMMAND, "env": {"STARTED_FILE": str(started)}}}
    start_servers(table, cache_dir=tmp_path).close()
    path = cache_path(tmp_path, "s")
    data = json_.loads(path.read_text())
    data["listed_at"] = 0
    data["tools"] = [t for t in data["tools"] if t["name"] == "add"]  # as if the server had one tool then
    path.write_text(json_.dumps(data))
    with start_servers(table, cache_dir=tmp_path) as servers:
        assert set(by_name(servers)) == {"add"}  # the stale list, offered at once
        for _ in range(200):
            if json_.loads(path.read_text())["listed_at"] > 0:
                break
            time.sleep(0.05)
        assert starts(started) == 2
        assert by_name(servers)["add"].run({"a": 1, "b": 2}, ws).content == "3"  # the refreshing server answers
        assert starts(started) == 2
    assert "pid" in {t["name"] for t in json_.loads(path.read_text())["tools"]}


def test_a_required_server_is_started_even_with_a_cached_list(tmp_path: Path) -> None:
    started = tmp_path / "started"
    table = {"must": {"command": COMMAND, "env": {"STARTED_FILE": str(started)}, "required": True}}
    start_servers(table, cache_dir=tmp_path).close()
    start_servers(table, cache_dir=tmp_path).close()
    assert starts(started) == 2
