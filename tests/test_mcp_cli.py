"""MCP servers from the installed command: lazy start-up from the cached tool list, broken servers that
never block an answer, `hermes mcp list|add|remove|test` and `hermes tools`. Real servers
(tests/mcp_server.py, written with the SDK) against the loopback fake provider."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import Hermes
from tests.fakeserver import FakeServer, Reply, ToolCalls

SERVER = Path(__file__).with_name("mcp_server.py")


def starts(file: Path) -> int:
    return len(file.read_text().splitlines()) if file.exists() else 0


def with_server(h: Hermes, name: str, command: list[str], extra: str = "") -> None:
    base = (h.home / "config.toml").read_text()
    h.write_config(base + f"\n[mcp.servers.{name}]\ncommand = {json.dumps(command)}\n{extra}")


def test_a_cached_server_is_started_only_when_its_tool_is_called(
    myplan: Hermes, fake: FakeServer, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    with_server(
        myplan, "slow", [sys.executable, str(SERVER), "--slow-start"], f'env = {{ STARTED_FILE = "{started}" }}\n'
    )
    fake.script(Reply("one"), Reply("two"), ToolCalls([("add", {"a": 2, "b": 3})]), Reply("It is 5."))
    first = myplan.run("ask", "hi", cwd=tmp_path)  # nothing cached yet: started to list its tools
    assert (first.returncode, first.stdout.strip()) == (0, "one"), first.stderr
    assert starts(started) == 1
    second = myplan.run("ask", "hi", cwd=tmp_path)
    assert (second.returncode, second.stdout.strip()) == (0, "two"), second.stderr
    assert starts(started) == 1  # the cached list was offered; no process
    offered = [t["function"]["name"] for t in fake.requests()[1].body["tools"]]  # type: ignore[index]  # a JSON body
    assert "add" in offered and "wipe" in offered
    third = myplan.run("ask", "2+3?", cwd=tmp_path)
    assert (third.returncode, third.stdout.strip()) == (0, "It is 5."), third.stderr
    assert starts(started) == 2  # the call started it
    assert json.loads(fake.requests()[3].body["messages"][-1]["content"] or "null") == 5  # type: ignore[index]  # a JSON body
    # A changed command is another server: listed afresh.
    with_server(myplan, "other", [sys.executable, str(SERVER)], f'env = {{ STARTED_FILE = "{started}" }}\n')
    fake.script(Reply("four"))
    assert myplan.run("ask", "hi", cwd=tmp_path).returncode == 0
    assert starts(started) == 3


@pytest.mark.parametrize(
    "command",
    [
        ["/nonexistent/mcp-server"],
        [sys.executable, str(SERVER), "--complain"],
        [sys.executable, str(SERVER), "--chatty"],
        [sys.executable, "-c", "import time; time.sleep(60)"],
    ],
    ids=["missing", "crashes", "garbage", "hangs"],
)
def test_a_broken_server_is_reported_once_and_the_answer_comes(
    myplan: Hermes, fake: FakeServer, tmp_path: Path, command: list[str]
) -> None:
    with_server(myplan, "good", [sys.executable, str(SERVER)])
    with_server(myplan, "broken", command, "startup_timeout = 3\n")
    fake.script(Reply("Hello."))
    done = myplan.run("ask", "hi", cwd=tmp_path)
    assert (done.returncode, done.stdout.strip()) == (0, "Hello."), done.stderr
    assert done.stderr.count("MCP server 'broken' could not be started") == 1, done.stderr
    assert "Going on without its tools" in done.stderr and "Traceback" not in done.stderr
    offered = {t["function"]["name"] for t in fake.requests()[0].body["tools"]}  # type: ignore[index]  # a JSON body
    assert "add" in offered and "read_file" in offered  # the good server's and the built-in tools
    if "--chatty" in command:
        assert "not MCP on its stdout" in done.stderr


def test_a_required_server_that_fails_is_exit_2(myplan: Hermes, fake: FakeServer, tmp_path: Path) -> None:
    with_server(myplan, "must", [sys.executable, str(SERVER), "--complain"], "required = true\n")
    done = myplan.run("ask", "hi", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "MCP server 'must' could not be started" in done.stderr and "missing API token" in done.stderr
    assert fake.requests() == []


def test_a_disabled_server_is_left_alone_and_no_key_is_warned(myplan: Hermes, fake: FakeServer, tmp_path: Path) -> None:
    started = tmp_path / "started"
    with_server(
        myplan,
        "off",
        [sys.executable, str(SERVER)],
        f'env = {{ STARTED_FILE = "{started}" }}\nenabled = false\ncwd = "{tmp_path}"\n'
        "startup_timeout = 5\ntool_timeout = 30\nrequired = true\n",
    )
    fake.script(Reply("Hello."))
    done = myplan.run("ask", "hi", cwd=tmp_path)
    assert done.returncode == 0 and "unknown key" not in done.stderr, done.stderr
    assert starts(started) == 0


def test_mcp_add_keeps_comments_and_list_test_remove(hermes: Hermes, tmp_path: Path) -> None:
    config = hermes.write_config('# my settings\n[model]\nprovider = "myplan"  # the usual one\n')
    added = hermes.run("mcp", "add", "calc", "--env", "LOG_LEVEL=warn", "--", sys.executable, str(SERVER), "--banner")
    assert added.returncode == 0, added.stderr
    text = config.read_text()
    assert "# my settings" in text and "# the usual one" in text
    assert "[mcp.servers.calc]" in text and '"--banner"' in text and 'LOG_LEVEL = "warn"' in text
    again = hermes.run("mcp", "add", "calc", "--", "x")
    assert again.returncode == 2 and "already an MCP server named 'calc'" in again.stderr
    listed = hermes.run("mcp", "list", "--json")
    (entry,) = json.loads(listed.stdout)
    assert entry["name"] == "calc" and entry["enabled"] and entry["cached_tools"] is None
    tested = hermes.run("mcp", "test", "calc", "--json")
    assert tested.returncode == 0, tested.stderr
    report = json.loads(tested.stdout)
    tools = {t["name"]: t for t in report["tools"]}
    assert tools["add"]["asks"] is False and tools["wipe"]["hints"] == ["destructive", "open-world"]
    assert report["seconds"] > 0
    assert json.loads(hermes.run("mcp", "list", "--json").stdout)[0]["cached_tools"] == len(tools)
    removed = hermes.run("mcp", "remove", "calc")
    assert removed.returncode == 0, removed.stderr
    assert config.read_text() == '# my settings\n[model]\nprovider = "myplan"  # the usual one\n'
    gone = hermes.run("mcp", "remove", "calc")
    assert gone.returncode == 2 and "no MCP server named 'calc'" in gone.stderr


def test_mcp_test_of_a_broken_server_says_why(hermes: Hermes) -> None:
    hermes.write_config(f'[mcp.servers.grumpy]\ncommand = ["{sys.executable}", "{SERVER}", "--complain"]\n')
    done = hermes.run("mcp", "test", "grumpy")
    assert done.returncode == 2 and "missing API token" in done.stderr and "Traceback" not in done.stderr


def test_tools_json_lists_builtin_and_mcp_tools(hermes: Hermes) -> None:
    hermes.write_config(
        f'[mcp.servers.calc]\ncommand = ["{sys.executable}", "{SERVER}"]\n'
        f'[mcp.servers.broken]\ncommand = ["/nonexistent/mcp-server"]\n'
    )
    done = hermes.run("tools", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    tools = {t["name"]: t for t in data["tools"]}
    assert tools["read_file"]["source"] == "built-in" and tools["read_file"]["asks"] is False
    assert tools["run_command"]["asks"] is True and tools["run_command"]["sandboxed"] in (True, False)
    assert tools["add"]["source"] == "mcp:calc" and tools["add"]["asks"] is False
    assert tools["shout"]["asks"] is True and tools["shout"]["sandboxed"] is False
    (problem,) = data["problems"]
    assert "'broken' could not be started" in problem
    plain = hermes.run("tools")
    header = plain.stdout.splitlines()[0].split()
    assert header == ["TOOL", "SOURCE", "ASKS", "SANDBOXED", "DESCRIPTION"]


def test_an_unapproved_mcp_call_names_its_server_and_hints(myplan: Hermes, fake: FakeServer, tmp_path: Path) -> None:
    with_server(myplan, "calc", [sys.executable, str(SERVER)])
    fake.script(ToolCalls([("wipe", {"target": "/data"})]), Reply("Could not."))
    done = myplan.run("ask", "Wipe it.", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "is a tool of MCP server 'calc'" in done.stderr and "destructive, open-world" in done.stderr
    assert "runs a program" not in done.stderr
    tool = fake.requests()[1].body["messages"][-1]  # type: ignore[index]  # a JSON body
    assert "is a tool of MCP server 'calc'" in tool["content"] and "pass -y" in tool["content"]


def test_the_tools_table_keeps_its_columns_with_long_names_and_sources() -> None:
    from hermes_cli.tool_list import ToolRow, table

    found = [
        ToolRow("read_file", "built-in", "no", "", "Read a file.", ""),
        ToolRow(
            "directory_tree_of_everything",
            "mcp:filesystem-server",
            "yes",
            "no",
            "x" * 200,
            "not sandboxed: runs in its MCP server",
        ),
    ]
    lines = table(found, 80)
    starts_at = lines[0].index("SOURCE")
    assert lines[1][starts_at:].startswith("built-in") and lines[2][starts_at:].startswith("mcp:filesystem-server")
    assert all(len(line) <= 80 for line in lines)
    assert lines[3].strip() == "not sandboxed: runs in its MCP server"


def test_mcp_list_shows_disabled_servers_and_names_a_malformed_one(hermes: Hermes) -> None:
    hermes.write_config(f'[mcp.servers.off]\ncommand = ["{sys.executable}", "{SERVER}"]\nenabled = false\ncwd = "~"\n')
    listed = hermes.run("mcp", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert (entry["name"], entry["enabled"], entry["cwd"]) == ("off", False, str(Path.home()))
    hermes.write_config('[mcp.servers.broken]\ncwd = "/tmp"\n')
    broken = hermes.run("mcp", "list")
    assert broken.returncode == 2 and "[mcp.servers.broken] needs `command`" in broken.stderr
