"""MCP (Model Context Protocol) servers as tools.

Each `[mcp.servers.NAME]` of config.toml is a program speaking MCP over stdio. `McpServers.start`
wraps each tool a server offers as a `Tool` (source "mcp:NAME"), offered to the model next to the
built-in ones. A tool the server marks read-only runs like a built-in reader; any other needs the
user's yes (Effect.EXEC): hermes cannot know what it does.

Servers are lazy: the tool list of each is cached (agent/tools/mcp_cache.py), and a server with a
cached list is started only when the model calls one of its tools. One that fails to start is left
out with a message (`McpServers.failures`), unless `required = true` makes that fatal.

The `mcp` client is asyncio/anyio-based and hermes is synchronous, so one event loop runs in a daemon
thread and owns every session; calls cross over with `run_coroutine_threadsafe`. Each server lives in
one long-lived task that holds its `async with` contexts open until `close()`: anyio cancel scopes
must be entered and exited by the same task. A server that stops (it crashed, or was killed) is
started again by its next call, up to RESTARTS times a session; the call it stopped in is not
repeated, as the tool may have acted. `mcp` is imported only here, and only when a server is
started: it is slow to import, and optional (`pip install 'hermes[mcp]'`).

Only the wire format (`model_dump(by_alias=True)`) of mcp's models is read, so mcp 1.x and 2.x both work.
"""

from __future__ import annotations

import atexit
import base64
import concurrent.futures
import contextlib
import json
import logging
import math
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Self, TextIO, cast

from agent.tools.base import Arguments, Effect, Escape, ToolError, ToolResult, Workspace, truncate
from agent.tools.mcp_config import NAME_LIMIT, ServerConfig, clean_name
from providers.errors import ConfigError
from providers.secrets import Secrets

if TYPE_CHECKING:
    import asyncio

    from mcp import ClientSession

    from agent.tools.base import Tool

RESTARTS = 3  # a server that stopped is started again on its next call, this many times per session
_CONNECTION_CLOSED = -32000  # mcp.types.CONNECTION_CLOSED, in 1.x and 2.x alike
OUTPUT_LIMIT = 60_000  # characters of one result kept
_PREVIEW_WIDTH = 100  # arguments longer than this on one line are shown one per line
# stdio_client's shutdown is itself bounded (close stdin, 2 s, SIGTERM, 2 s, SIGKILL); this is a backstop.
_STOP_TIMEOUT = 10.0
_INSTALL_HINT = "pip install 'hermes[mcp]'"
# A server that writes something other than JSON-RPC on stdout gets this long to answer anyway (some
# print a banner first), rather than the whole start-up timeout, before it is reported as doing so.
_STRAY_GRACE = 3.0


class McpServers:
    """The configured MCP servers and their tools; close it (or use it as a context manager) to stop
    the servers that were started. `failures` are the servers that could not start, left out."""

    def __init__(self, log_dir: Path | None = None, cache_dir: Path | None = None) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[_Server] = []
        self._tools: list[McpTool] = []
        self._closed = False
        self._lock = threading.Lock()
        self.log_dir = log_dir
        self.cache_dir = cache_dir
        self.failures: list[ConfigError] = []

    @classmethod
    def start(
        cls,
        configs: Sequence[ServerConfig],
        *,
        reserved: Collection[str] = (),
        log_dir: Path | None = None,
        environment: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None,
        cache_dir: Path | None = None,
        fresh: bool = False,
    ) -> McpServers:
        """The tools of every enabled server: from its cached list, or by starting it (all in parallel).

        `configs` are the enabled servers (agent/tools/mcp_config.py). `reserved` are names already taken
        (the built-in tools): an MCP tool with one of them, or with the name of another server's tool, is
        called `<server>__<tool>`.
        With `cache_dir`, a server whose list is cached there is not started until one of its tools is
        called (a stale list is refreshed in the background); `fresh` starts every server regardless,
        as does `required`.
        Each server's stderr goes to `log_dir/mcp-NAME.log` (the previous start's kept as `mcp-NAME.log.1`),
        or to a temporary file; start-up errors quote what the current start wrote there, never an earlier one.
        `environment` turns a server's own `env` table into its whole environment (the secret registry's
        minimal child environment); by default a minimal one without credentials.
        A server that cannot be started is left out, its reason in `failures`; for one with
        `required = true`, ConfigError is raised instead, after stopping what had started.
        """
        from agent.tools import mcp_cache

        self = cls(log_dir, cache_dir)
        try:
            make_env = environment or _minimal_env
            waiting: list[_Server] = []
            for config in configs:
                env = dict(make_env(config.env))
                server = _Server(config, env, self, mcp_cache.cache_key(config.command, env, config.cwd))
                self._servers.append(server)
                # A required server is started every time: that is the only way to know it works.
                cached = (
                    None
                    if fresh or config.required or cache_dir is None
                    else mcp_cache.load(cache_dir, config.name, server.key)
                )
                if cached is None:
                    waiting.append(server)
                else:
                    server.specs = cached.tools
                    if cached.stale:
                        server.launch()  # refreshed in the background; its tools are offered meanwhile
            atexit.register(self.close)  # no orphaned servers even if the caller forgets to close
            for server in waiting:
                server.launch()
            failed: list[_Server] = []
            for server in waiting:
                try:
                    server.specs = server.ready.result(server.config.startup_timeout + _STOP_TIMEOUT)
                except Exception as e:
                    error = server.start_error(e)
                    if server.config.required:
                        raise error from None
                    self.failures.append(error)
                    failed.append(server)
            for server in failed:
                server.stop()
            self._tools = _make_tools([s for s in self._servers if s not in failed], reserved)
        except BaseException:  # a required server failed, a bad log directory, Ctrl-C: stop what had started
            self.close()
            raise
        return self

    @property
    def tools(self) -> list[Tool]:
        return list(self._tools)

    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop every session runs on, started with the first server."""
        with self._lock:
            if self._loop is None:
                import asyncio  # only once a server starts: a cached tool list needs no event loop

                # mcp logs a server's protocol slips; unless hermes configures logging, Python would
                # print them (with tracebacks) on the terminal, mixed with the answer.
                mcp_logger = logging.getLogger("mcp")
                if not mcp_logger.handlers:
                    mcp_logger.addHandler(logging.NullHandler())
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=_run_loop, args=(self._loop,), name="hermes-mcp", daemon=True)
                self._thread.start()
            return self._loop

    def listed(self, server: _Server, specs: list[dict[str, Any]]) -> None:
        """A server listed its tools (at start-up, on its first call, or refreshing): keep them for next time."""
        if self.cache_dir is not None:
            from agent.tools import mcp_cache

            mcp_cache.save(self.cache_dir, server.config.name, server.key, specs)

    def close(self) -> None:
        """Shut every session down and stop every server process; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            for server in self._servers:
                server.stop()
            for server in self._servers:
                server.wait(_STOP_TIMEOUT)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(_STOP_TIMEOUT)
        for server in self._servers:
            server.close_log()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _minimal_env(own: Mapping[str, str]) -> Mapping[str, str]:
    return Secrets().child_env(os.environ, extra=own, minimal=True)


class McpTool:
    """One tool of an MCP server, as hermes's `Tool`."""

    def __init__(self, name: str, server: _Server, spec: dict[str, Any]) -> None:
        self.name = name
        self.mcp_name: str = spec["name"]
        self.description: str = spec.get("description") or spec.get("title") or ""
        self.parameters: dict[str, Any] = spec.get("inputSchema") or {"type": "object", "properties": {}}
        annotations = spec.get("annotations") or {}
        read_only = annotations.get("readOnlyHint") is True
        self.effect = Effect.READ if read_only else Effect.EXEC
        self.source = f"mcp:{server.name}"
        self.server = server.name
        # The server's own hints (MCP says: untrusted, for display only). Unset destructiveHint and
        # openWorldHint default to true in the spec; hermes names only what the server says.
        self.hints: tuple[str, ...] = tuple(
            word
            for key, word in (
                ("readOnlyHint", "read-only"),
                ("destructiveHint", "destructive"),
                ("idempotentHint", "idempotent"),
                ("openWorldHint", "open-world"),
            )
            if annotations.get(key) is True
        )
        self.call_timeout = server.config.tool_timeout
        self._server = server

    @property
    def confinement(self) -> str:
        if self.effect is Effect.READ:
            return ""
        said = [h for h in self.hints if h in ("destructive", "open-world")]
        return "not sandboxed: runs in its MCP server" + (f"; the server says: {', '.join(said)}" if said else "")

    def paths(self, args: Arguments) -> list[str]:
        return []

    def preview(self, args: Arguments, workspace: Workspace) -> str:
        """`server.tool({...})`; long arguments one per line, so the approval shows each of them."""
        shown = json.dumps(dict(args), ensure_ascii=False)
        if len(shown) > _PREVIEW_WIDTH:
            shown = json.dumps(dict(args), ensure_ascii=False, indent=2)
        return f"{self._server.name}.{self.mcp_name}({shown})"

    def danger(self, args: Arguments, workspace: Workspace) -> str | None:
        return None

    def escapes(self, args: Arguments, workspace: Workspace) -> Escape | None:
        return None

    def run(self, args: Arguments, workspace: Workspace) -> ToolResult:
        result = self._server.call(self.mcp_name, dict(args), self.call_timeout)
        text = _result_text(result)
        if result.get("isError"):
            raise ToolError(truncate(text, OUTPUT_LIMIT) if text else f"{self.mcp_name} failed (no message).")
        lines = len(text.splitlines())
        return ToolResult(truncate(text or "(no output)", OUTPUT_LIMIT), f"{lines} line{'' if lines == 1 else 's'}")


class _Server:
    """One configured server. Its process and session live in `_serve`, a task on the shared loop;
    `ready` resolves to its tool list (wire-format dicts) once initialized, or to why it failed.
    A server whose tool list was cached is launched by its first call."""

    def __init__(self, config: ServerConfig, env: dict[str, str], owner: McpServers, key: str) -> None:
        self.config = config
        self.name = config.name
        self.command = list(config.command)
        self.env = env
        self.key = key
        self.ready: concurrent.futures.Future[list[dict[str, Any]]] = concurrent.futures.Future()
        self.specs: list[dict[str, Any]] = []
        self._owner = owner
        self._log: IO[str] | None = None
        self._session: ClientSession | None = None
        self._stop: asyncio.Event | None = None  # ends the current session; each launch has its own
        self._stopping = False
        self._lost = False  # a call found the connection closed: the process is gone
        self._task: concurrent.futures.Future[None] | None = None
        self._ended: str | None = None  # why the session ended before close() was asked
        self._first_failure: str | None = None  # why its start on the first call failed: not tried again
        self._restarts = 0
        self._log_from = 0  # where this start's stderr begins in the log
        self._stray: str | None = None  # the first line on stdout that was not MCP, if any
        self._lock = threading.Lock()  # one call at a time starts the server

    @property
    def log(self) -> IO[str]:
        """Opened (and the last start's log set aside) only when the server is started."""
        if self._log is None:
            self._log = _open_log(self.name, self._owner.log_dir)
        return self._log

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()

    def launch(self) -> None:
        if self._stopping:
            raise RuntimeError("hermes is stopping its MCP servers")
        import asyncio

        loop = self._owner.loop()
        self._stop = asyncio.Event()
        self._lost = False
        self.log.flush()
        self._log_from = os.fstat(self.log.fileno()).st_size
        self._stray = None
        self._task = asyncio.run_coroutine_threadsafe(self._serve(self._stop), loop)

    async def _serve(self, stop: asyncio.Event) -> None:
        try:
            import anyio
            from mcp import ClientSession, StdioServerParameters
            from mcp.client.stdio import stdio_client
        except ImportError as e:
            if not self.ready.done():
                self.ready.set_exception(e)
            return

        params = StdioServerParameters(
            command=self.command[0], args=self.command[1:], env=self.env, cwd=self.config.cwd
        )
        try:
            if self.config.cwd is not None and not os.path.isdir(self.config.cwd):
                raise NotADirectoryError(f"its cwd {self.config.cwd} is not a directory")
            timeout = self.config.startup_timeout
            with anyio.CancelScope(deadline=anyio.current_time() + timeout) as startup:

                async def on_message(message: Any) -> None:
                    # mcp hands over each stdout line it could not parse as an exception, and goes on.
                    if isinstance(message, Exception) and self._stray is None:
                        self._stray = _stray_text(message)
                        if not self.ready.done():
                            startup.deadline = min(startup.deadline, anyio.current_time() + _STRAY_GRACE)

                async with (
                    stdio_client(params, errlog=cast("TextIO", self.log)) as (read, write),
                    ClientSession(read, write, message_handler=on_message) as session,
                ):
                    await session.initialize()
                    specs = await _list_tools(session)
                    startup.deadline = math.inf
                    self._session = session
                    self._owner.listed(self, specs)
                    self.ready.set_result(specs)
                    await stop.wait()
            if startup.cancelled_caught:
                self.ready.set_exception(TimeoutError())
        except Exception as e:
            if not self.ready.done():
                self.ready.set_exception(e)
            self._ended = _describe(e)
        finally:
            self._session = None
            if not self.ready.done():
                self.ready.set_exception(RuntimeError("the session ended during start-up"))

    def call(self, tool: str, arguments: dict[str, Any], timeout: float) -> dict[str, Any]:
        with self._lock:
            session = self._session_for_call()
        assert self._task is not None
        import asyncio

        future = asyncio.run_coroutine_threadsafe(_call(session, tool, arguments, timeout), self._owner.loop())
        try:
            return future.result(timeout + _STOP_TIMEOUT)  # the coroutine times itself out first
        except ToolError:
            raise
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ToolError(f"{tool} on MCP server {self.name!r} did not answer within {timeout:g} s.") from None
        except Exception as e:
            if self._task.done() or _connection_lost(e):
                self._lost, self._ended = True, self._ended or _describe(e)
                then = "the next call starts it again" if self._restarts < RESTARTS else "it stays stopped"
                raise ToolError(
                    f"MCP server {self.name!r} stopped while running {tool} ({_describe(e)}); {then}."
                ) from None
            raise ToolError(f"MCP server {self.name!r} failed while running {tool}: {_describe(e)}") from None
        except BaseException:  # Ctrl-C: stop the call, not just the wait
            future.cancel()
            raise

    def _session_for_call(self) -> ClientSession:
        if self._first_failure is not None:
            raise ToolError(self._first_failure)
        # Listed from the cache (not started yet), or refreshing it in the background: start it now.
        unstarted = (
            self._task is None or not self.ready.done() or (self._restarts == 0 and self.ready.exception() is not None)
        )
        if unstarted:
            if self._task is None:
                self.launch()
            try:
                self.ready.result(self.config.startup_timeout + _STOP_TIMEOUT)
            except Exception as e:
                self._first_failure = self.start_error(e).message
                raise ToolError(self._first_failure) from None
        session = self._session
        if session is None or self._task is None or self._task.done() or self._lost:
            session = self._restart()
        return session

    def _restart(self) -> ClientSession:
        """Start a server that stopped (it crashed, or its process was killed) once more. Not the
        call it stopped in: a tool may have acted before the crash, so only the model may retry it."""
        self._signal_stop()
        self.wait(_STOP_TIMEOUT)  # the old session's clean-up first: it clears what the new one sets
        why = f" ({self._ended})" if self._ended else ""
        if self._stopping or self._restarts >= RESTARTS:
            raise ToolError(
                f"MCP server {self.name!r} is not running{why}"
                + (f"; it was restarted {RESTARTS} times already." if not self._stopping else ".")
            )
        self._restarts += 1
        self.ready = concurrent.futures.Future()
        self._ended = None
        self.launch()
        try:
            self.ready.result(self.config.startup_timeout + _STOP_TIMEOUT)
        except Exception as e:
            cause = self._stray_cause() or (
                "it did not start in time"
                if isinstance(e, (concurrent.futures.TimeoutError, TimeoutError))
                else _describe(e)
            )
            last_words = _tail(self.log, self._log_from)
            raise ToolError(
                f"MCP server {self.name!r} had stopped{why} and could not be restarted: {cause}."
                + (f' Its stderr ends with "{last_words}".' if last_words else "")
            ) from None
        assert self._session is not None
        return self._session

    def _signal_stop(self) -> None:
        stop, loop = self._stop, self._owner._loop
        if stop is not None and loop is not None:
            loop.call_soon_threadsafe(stop.set)

    def stop(self) -> None:
        self._stopping = True
        self._signal_stop()

    def wait(self, timeout: float) -> None:
        if self._task is not None:
            try:
                self._task.result(timeout)
            except concurrent.futures.TimeoutError:
                self._task.cancel()
            except concurrent.futures.CancelledError:
                pass  # cancelled by an earlier wait that timed out

    def start_error(self, error: BaseException) -> ConfigError:
        stray = self._stray_cause()
        hint = (
            f"Check `command` of [mcp.servers.{self.name}] in config.toml (a list: a program that speaks "
            "MCP over stdio, then its arguments), or set enabled = false there."
        )
        if isinstance(error, ImportError):
            return ConfigError(
                f"MCP server {self.name!r} could not be started: the `mcp` package is not installed.",
                hint=_INSTALL_HINT,
            )
        if isinstance(error, NotADirectoryError):
            cause = str(error)
        elif isinstance(error, OSError) and not isinstance(error, TimeoutError):  # could not even spawn it
            cause = f"cannot run {self.command[0]!r} ({error.strerror or error})"
        elif stray:
            cause = stray
        elif isinstance(error, (TimeoutError, concurrent.futures.TimeoutError)):
            cause = f"it did not finish initializing within {self.config.startup_timeout:g} s"
            hint = (
                f"Raise startup_timeout of [mcp.servers.{self.name}] in config.toml if it is just slow, "
                "or set enabled = false there."
            )
        else:
            cause = f"it stopped during initialization ({_describe(error)})"
        last_words = _tail(self.log, self._log_from) if self._log is not None else ""
        message = f"MCP server {self.name!r} could not be started: {cause}."
        if last_words:
            message += f' Its stderr ends with "{last_words}".'
        return ConfigError(message, hint=hint)

    def _stray_cause(self) -> str | None:
        if self._stray is None:
            return None
        return (
            f'it wrote text that is not MCP on its stdout ("{self._stray}"); a stdio MCP server must '
            "write only JSON-RPC messages there, and its logs on stderr"
        )


def _stray_text(error: Exception) -> str:
    """The line a server wrote on stdout that was not JSON-RPC, short, from mcp's parse error."""
    details = getattr(error, "errors", None)
    text: Any = None
    if callable(details):
        try:
            text = next((d.get("input") for d in details() if isinstance(d.get("input"), str)), None)
        except Exception:
            text = None
    found = text if isinstance(text, str) else _describe(error)
    text = " ".join(found.split())
    return str(text) if len(text) <= 120 else text[:117] + "..."


async def _list_tools(session: ClientSession) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        if cursor is None:
            page = await session.list_tools()
        else:
            from mcp.types import PaginatedRequestParams

            page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
        data = page.model_dump(by_alias=True, mode="json", exclude_none=True)
        specs.extend(data.get("tools", []))
        cursor = data.get("nextCursor")
        if not cursor:
            return specs


async def _call(session: ClientSession, tool: str, arguments: dict[str, Any], timeout: float) -> dict[str, Any]:
    import anyio

    with anyio.move_on_after(timeout):
        result = await session.call_tool(tool, arguments)
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)
    raise ToolError(f"{tool} did not answer within {timeout:g} s.")


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    import asyncio

    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
        # Only a task that outlived its stop timeout is left; end it here rather than let the loop's
        # garbage collection print "Task was destroyed but it is pending".
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


def _open_log(name: str, log_dir: Path | None) -> IO[str]:
    """A fresh log per hermes run; the last run's is kept as `.1`. Renaming (not truncating) leaves a
    hermes still running with the old file writing to it undisturbed."""
    if log_dir is None:
        return tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"mcp-{clean_name(name)}.log"
    with contextlib.suppress(FileNotFoundError):
        os.replace(path, path.with_name(path.name + ".1"))
    return open(path, "a+", encoding="utf-8", errors="replace")


def _tail(log: IO[str], since: int = 0, limit: int = 400) -> str:
    """The last lines the server wrote on stderr after offset `since` (this start), on one line.
    pread: the server shares the file offset."""
    fd = log.fileno()
    size = os.fstat(fd).st_size
    start = max(since, size - limit)
    text = os.pread(fd, max(0, size - start), start).decode("utf-8", "replace")
    return " / ".join(line.strip() for line in text.splitlines()[-3:] if line.strip())


def _make_tools(servers: list[_Server], reserved: Collection[str]) -> list[McpTool]:
    """Wrap every listed tool; names clean and unique, prefixed by the server only where they clash."""
    entries = [(server, spec) for server in servers for spec in server.specs if isinstance(spec.get("name"), str)]
    plain = Counter(clean_name(spec["name"]) for _, spec in entries)
    taken = set(reserved)
    tools: list[McpTool] = []
    for server, spec in entries:
        name = clean_name(spec["name"])
        if plain[name] > 1 or name in reserved:
            name = clean_name(f"{server.name}__{spec['name']}")
        base, n = name, 2
        while name in taken:  # only after truncation to 64, or a tool literally named "<server>__<tool>"
            suffix = f"_{n}"
            name, n = base[: NAME_LIMIT - len(suffix)] + suffix, n + 1
        taken.add(name)
        tools.append(McpTool(name, server, spec))
    return tools


def _result_text(result: dict[str, Any]) -> str:
    parts = [_block_text(block) for block in result.get("content") or []]
    if not parts and result.get("structuredContent") is not None:
        parts.append(json.dumps(result["structuredContent"], ensure_ascii=False))
    return "\n".join(parts)


def _block_text(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind in ("image", "audio"):
        return f"[{kind}: {block.get('mimeType', 'unknown type')}, {_decoded_size(block.get('data', ''))} bytes]"
    if kind == "resource":
        resource = block.get("resource") or {}
        uri = resource.get("uri", "")
        if "text" in resource:
            return f"[resource: {uri}]\n{resource['text']}"
        return (
            f"[resource: {uri}, {resource.get('mimeType', 'unknown type')}, "
            f"{_decoded_size(resource.get('blob', ''))} bytes]"
        )
    if kind == "resource_link":
        return f"[resource link: {block.get('uri', '')}]"
    return f"[{kind} content]"


def _decoded_size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except ValueError:
        return len(data) * 3 // 4


def _connection_lost(error: BaseException) -> bool:
    """True when a call failed because the server's end of the pipe is gone (mcp 1.x and 2.x)."""
    import anyio

    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if isinstance(error, anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream):
        return True
    return getattr(getattr(error, "error", None), "code", None) == _CONNECTION_CLOSED


def _describe(error: BaseException) -> str:
    """One line for an error, digging through anyio's exception groups and mcp's error objects."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    message = getattr(getattr(error, "error", None), "message", None) or str(error)
    return message or type(error).__name__
