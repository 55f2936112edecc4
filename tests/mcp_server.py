"""A tiny stdio MCP server for tests/test_mcp.py: `python tests/mcp_server.py`.

Works with mcp 1.x (`FastMCP`) and 2.x (where it is called `MCPServer`).
"""

from __future__ import annotations

import os
import sys
import time

from mcp.types import ToolAnnotations

try:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP as MCPServer  # type: ignore[attr-defined, no-redef]  # mcp 1.x only
    from mcp.server.fastmcp.exceptions import ToolError  # type: ignore[import-not-found, no-redef]  # mcp 1.x only

server = MCPServer("hermes-test")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))  # type: ignore[call-arg]  # mcp 1.x takes only the camelCase names
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()


@server.tool()
def fail(message: str) -> str:
    """Always fails with the message."""
    raise ToolError(message)  # an anticipated failure: its message reaches the client


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))  # type: ignore[call-arg]  # mcp 1.x takes only the camelCase names
def env_value(name: str) -> str:
    """The value of an environment variable of the server, or "<unset>"."""
    return os.environ.get(name, "<unset>")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))  # type: ignore[call-arg]  # mcp 1.x takes only the camelCase names
def get_env() -> str:
    """The server's whole environment, one NAME=value a line (as server-everything's get-env does)."""
    return "\n".join(f"{k}={v}" for k, v in sorted(os.environ.items()))


@server.tool(annotations=ToolAnnotations(destructiveHint=True, openWorldHint=True))  # type: ignore[call-arg]  # mcp 1.x takes only the camelCase names
def wipe(target: str) -> str:
    """Pretends to delete the target."""
    return f"wiped {target}"


@server.tool()
def slow(seconds: float) -> str:
    """Sleep, then answer."""
    time.sleep(seconds)
    return "done"


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
def crash() -> str:
    """Exit the server process without answering."""
    sys.stderr.write("crashing on request\n")
    os._exit(3)


if __name__ == "__main__":
    started = os.environ.get("STARTED_FILE")  # each start appends a line: tests count the starts
    if started:
        with open(started, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
    if "--slow-start" in sys.argv:  # a server that takes its time, as npx-launched ones do
        time.sleep(2)
    refuse = os.environ.get("REFUSE_IF_EXISTS")  # a restart that fails: the test creates this file
    if "--complain" in sys.argv or (refuse and os.path.exists(refuse)):  # say why on stderr, then exit
        sys.stderr.write(os.environ.get("COMPLAINT", "missing API token") + "\n")
        sys.exit(1)
    if "--banner" in sys.argv or "--chatty" in sys.argv:  # text on stdout, where only MCP belongs
        print("Starting hermes-test server v1.0 on stdio...", flush=True)
    if "--chatty" in sys.argv:  # and then nothing that is MCP
        time.sleep(60)
    server.run()
