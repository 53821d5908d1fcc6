"""`McpTools`: MCP servers' tools behind a synchronous facade.

    with McpTools("mcp.json") as mcp:            # or a {"name": {...}} mapping, or ServerConfigs
        for line in mcp.problems: print(line)    # servers that did not start, tools left out
        tools = mcp.schemas()                    # OpenAI tool dicts, names `server__tool`
        text = mcp.call("files__read_file", {"path": "notes.txt"})

Every server is connected at once, each by its own task on one private event
loop thread (loop_thread.LoopThread); a server that fails is one line in
`problems` and the others go on. `call` blocks the caller and is interrupted
by Ctrl-C (KeyboardInterrupt propagates, the call is cancelled). `close`
(also at exit) stops every server — stdio ones are waited for and, if they
linger, killed with their process group by the SDK — and stops the thread.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localtools.mcp_tools.config import ServerConfig, load_config, parse_config
from localtools.mcp_tools.connection import Connection, describe_error
from localtools.mcp_tools.loop_thread import LoopThread
from localtools.mcp_tools.names import namespaced
from localtools.mcp_tools.results import ERROR_PREFIX, result_text
from localtools.tools import DEFAULT_MAX_OUTPUT_CHARS, cap_output

__all__ = ["McpTool", "McpTools", "DEFAULT_MAX_OUTPUT_CHARS", "default_log_dir"]

_CLOSE_TIMEOUT = 15.0


@dataclass(frozen=True)
class McpTool:
    """One tool as offered to the model."""

    name: str  # exposed: server__tool
    server: str
    tool: str  # the server's own name for it
    description: str
    schema: dict[str, Any]  # OpenAI tool dict


def default_log_dir() -> Path:
    """Where stdio servers' stderr goes: `$XDG_STATE_HOME/localtools/mcp/NAME.log`."""
    state = os.environ.get("XDG_STATE_HOME")
    return (Path(state) if state else Path.home() / ".local" / "state") / "localtools" / "mcp"


def _configs(servers: Sequence[ServerConfig] | Mapping[str, Any] | str | Path) -> list[ServerConfig]:
    if isinstance(servers, (str, Path)):
        return load_config(servers)
    if isinstance(servers, Mapping):
        data = servers if "mcpServers" in servers else {"mcpServers": dict(servers)}
        return parse_config(data, "<mcpServers>")
    return list(servers)


def openai_tool(name: str, description: str, input_schema: Any) -> dict[str, Any]:
    """An MCP tool's input schema as an OpenAI function tool (ValueError if it cannot be one)."""
    from localtools.tools import as_tool

    schema = dict(input_schema) if isinstance(input_schema, Mapping) else None
    if schema is None or schema.get("type", "object") != "object":
        raise ValueError("its input schema is not a JSON object schema")
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    tool = {"type": "function", "function": {"name": name, "description": description, "parameters": schema}}
    return as_tool(tool)


class McpTools:
    """Connected MCP servers and their tools (see the module docstring)."""

    def __init__(
        self,
        servers: Sequence[ServerConfig] | Mapping[str, Any] | str | Path,
        *,
        connect_timeout: float = 60.0,
        call_timeout: float = 300.0,
        max_output_chars: int | None = DEFAULT_MAX_OUTPUT_CHARS,
        log_dir: Path | None = None,
        reserved_names: Sequence[str] = (),
    ) -> None:
        self.call_timeout = call_timeout
        self.max_output_chars = max_output_chars
        self.problems: list[str] = []
        self.tools: list[McpTool] = []
        self.servers: list[str] = []  # the servers that started
        self._by_name: dict[str, McpTool] = {}
        self._connections: dict[str, Connection] = {}
        self._closed = False
        self._thread = LoopThread()
        atexit.register(self.close)
        configs = _configs(servers)
        for config in configs:
            if config.problem:
                self.problems.append(f"mcp server {config.name!r}: {config.problem}")
        usable = [c for c in configs if not c.problem]
        logs = log_dir if log_dir is not None else default_log_dir()
        self._connections = {c.name: Connection(c, logs) for c in usable}
        try:
            listed = self._thread.run(self._connect_all(connect_timeout))
        except BaseException:
            self.close()
            raise
        self._offer(listed, set(reserved_names))

    # ---- start-up ----------------------------------------------------------------
    async def _connect_all(self, timeout: float) -> dict[str, list[Any] | str]:
        """Server name → its tools, or why it did not start."""
        loop = asyncio.get_running_loop()
        readies: dict[str, asyncio.Future[list[Any]]] = {}
        for name, conn in self._connections.items():
            readies[name] = loop.create_future()
            conn.task = asyncio.create_task(conn.run(readies[name]), name=f"mcp-{name}")
        if readies:
            await asyncio.wait(list(readies.values()), timeout=timeout)
        out: dict[str, list[Any] | str] = {}
        late = []
        for name, ready in readies.items():
            conn = self._connections[name]
            if not ready.done():
                late.append(conn.task)
                if conn.task is not None:
                    conn.task.cancel()
                out[name] = f"did not start within {timeout:g}s"
            elif ready.cancelled():
                out[name] = "start-up was cancelled"
            elif ready.exception() is not None:
                out[name] = conn.error or describe_error(ready.exception(), conn.config)  # type: ignore[arg-type]
            else:
                out[name] = ready.result()
        if late:
            await asyncio.wait([t for t in late if t is not None], timeout=_CLOSE_TIMEOUT)
        return out

    def _offer(self, listed: dict[str, list[Any] | str], taken: set[str]) -> None:
        for server, tools in listed.items():
            if isinstance(tools, str):
                where = self._connections[server].config.where
                self.problems.append(f"mcp server {server!r} ({where}) failed to start: {tools}")
                continue
            self.servers.append(server)
            for tool in tools:
                name = namespaced(server, tool.name, taken)
                description = tool.description or getattr(tool, "title", None) or ""
                try:
                    schema = openai_tool(name, description, tool.input_schema)
                except ValueError as exc:
                    self.problems.append(f"mcp server {server!r}: tool {tool.name!r} left out: {exc}")
                    continue
                taken.add(name)
                entry = McpTool(name, server, tool.name, description, schema)
                self.tools.append(entry)
                self._by_name[name] = entry

    # ---- use ---------------------------------------------------------------------------

    def schemas(self) -> list[dict[str, Any]]:
        return [json.loads(json.dumps(t.schema)) for t in self.tools]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def tool(self, name: str) -> McpTool | None:
        return self._by_name.get(name)

    def call(self, name: str, arguments: Mapping[str, Any] | str | None) -> str:
        """Run a tool: the text the model reads (at most `max_output_chars`, saying so
        when cut), `error: …` for every failure. Ctrl-C cancels the call and propagates."""
        return cap_output(self.call_uncapped(name, arguments), self.max_output_chars)

    def call_uncapped(self, name: str, arguments: Mapping[str, Any] | str | None) -> str:
        """`call` without the size cap, for a caller that applies its own."""
        entry = self._by_name.get(name)
        if entry is None:
            return f"{ERROR_PREFIX}no tool named {name}"
        try:
            args = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else arguments or {}
        except ValueError as exc:
            return f"{ERROR_PREFIX}arguments are not valid JSON ({exc})"
        if not isinstance(args, Mapping):
            return f"{ERROR_PREFIX}arguments must be a JSON object, got {type(args).__name__}"
        if self._closed:
            return f"{ERROR_PREFIX}the MCP servers have been shut down"
        return self._thread.run(self._call(entry, dict(args)), timeout=self.call_timeout + 30)

    async def _call(self, entry: McpTool, args: dict[str, Any]) -> str:
        conn = self._connections[entry.server]
        client = conn.client
        if client is None:
            return f"{ERROR_PREFIX}mcp server {entry.server!r} is not running ({conn.error or 'stopped'})"
        try:
            result = await client.call_tool(entry.tool, args, read_timeout_seconds=self.call_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the model reads what went wrong
            return f"{ERROR_PREFIX}mcp server {entry.server!r}: {conn.failure_text(exc)}"
        return result_text(result)

    # ---- shutdown -------------------------------------------------------------------
    async def _stop_all(self) -> None:
        tasks = [c.task for c in self._connections.values() if c.task is not None and not c.task.done()]
        for conn in self._connections.values():
            conn.stop()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=_CLOSE_TIMEOUT)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5.0)

    def close(self) -> None:
        """Stop every server and the loop thread; safe to call twice, and through Ctrl-C."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        if self._thread.running:
            future = self._thread.submit(self._stop_all())
            self._thread.wait_quietly(future, _CLOSE_TIMEOUT + 10)
        self._thread.stop()
        for conn in self._connections.values():
            conn.close_log()

    def __enter__(self) -> McpTools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
