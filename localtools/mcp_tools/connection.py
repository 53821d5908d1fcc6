"""One MCP server's connection, alive for as long as one task on the event loop.

The SDK's client is an async context manager built on anyio task groups,
which must be entered and left by the same task. So each server gets an
owner task (`Connection.run`): it connects, lists the tools, reports ready,
then waits for `stop`; leaving the context is what closes stdin, waits for the
process and kills its process group (the SDK does that, shielded from
cancellation). Calls are made from other tasks on the same loop.

A stdio server's stderr goes to a log file (its lines would otherwise tear
through the chat's prompt); its last line is quoted when the server fails.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TextIO

from localtools.mcp_tools.config import ServerConfig

__all__ = ["Connection", "describe_error"]

_LIST_PAGES = 100
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    inner = getattr(exc, "exceptions", None)  # BaseExceptionGroup (the backport's too, on 3.10)
    while isinstance(inner, (list, tuple)) and inner and isinstance(inner[0], BaseException):
        exc = inner[0]
        inner = getattr(exc, "exceptions", None)
    return exc


def describe_error(exc: BaseException, config: ServerConfig) -> str:
    """One line a user can act on, no traceback."""
    exc = _leaf(exc)
    name = type(exc).__name__
    if isinstance(exc, OSError) and config.command and exc.filename is None and exc.errno is not None:
        return f"cannot run {config.command!r}: {exc.strerror}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"cannot run {exc.filename!r}: {exc.strerror}"
    if name == "ConnectError":
        return f"cannot connect to {config.url}: {exc}"
    if name == "HTTPStatusError":
        response = getattr(exc, "response", None)
        return f"{config.url} answered HTTP {getattr(response, 'status_code', '?')}"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "no answer in time"
    if name == "MCPError" and "closed" in str(exc).lower():
        return "the server closed the connection (did it exit?)"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{name}: {text}" if text else name


class Connection:
    """A server's client session on the loop thread; `client` is None unless connected."""

    def __init__(self, config: ServerConfig, log_dir: Path | None) -> None:
        self.config = config
        self.client: Any = None
        self.error: str | None = None  # why it is not (or no longer) connected
        self.task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._log: TextIO | None = None
        self._log_dir = log_dir
        self.log_path: Path | None = None

    # ---- stderr log ----------------------------------------------------------
    def _open_log(self) -> TextIO:
        if self._log_dir is not None:
            try:
                self._log_dir.mkdir(parents=True, exist_ok=True)
                safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.config.name)
                self.log_path = self._log_dir / f"{safe}.log"
                self._log = open(self.log_path, "w", encoding="utf-8", errors="replace")
                return self._log
            except OSError:
                self.log_path = None
        self._log = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
        return self._log

    def stderr_tail(self) -> str:
        """The last non-empty line the server wrote to stderr ('' if none)."""
        if self._log is None:
            return ""
        try:
            self._log.flush()
            if self.log_path is not None:
                text = self.log_path.read_text(encoding="utf-8", errors="replace")
            else:
                self._log.seek(0)
                text = self._log.read()
        except (OSError, ValueError):
            return ""
        lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
        lines = [line for line in lines if line]
        return lines[-1][:200] if lines else ""

    def close_log(self) -> None:
        if self._log is not None:
            try:
                self._log.close()
            except OSError:
                pass

    # ---- transports ------------------------------------------------------------
    async def _connect(self, stack: AsyncExitStack) -> Any:
        from mcp import Client
        from mcp_types import Implementation

        from localtools import __version__

        config = self.config
        if config.url:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            http = await stack.enter_async_context(
                httpx2.AsyncClient(headers=config.headers, timeout=httpx2.Timeout(30.0, read=300.0))
            )
            transport: Any = streamable_http_client(config.url, http_client=http)
        else:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            params = StdioServerParameters(
                command=config.command or "", args=config.args, env=config.env or None, cwd=config.cwd
            )
            transport = stdio_client(params, errlog=self._open_log())
        client = Client(transport, client_info=Implementation(name="localtools", version=__version__), cache=None)
        return await stack.enter_async_context(client)

    async def _list_tools(self, client: Any) -> list[Any]:
        tools: list[Any] = []
        cursor = None
        for _ in range(_LIST_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools += page.tools
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    # ---- the owner task -------------------------------------------------------------
    async def run(self, ready: asyncio.Future[list[Any]]) -> None:
        """Connect, resolve `ready` with the server's tools, hold the session until stop()."""
        self._stop = asyncio.Event()
        try:
            async with AsyncExitStack() as stack:
                client = await self._connect(stack)
                tools = await self._list_tools(client)
                self.client = client
                if not ready.done():
                    ready.set_result(tools)
                await self._stop.wait()
                self.client = None
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        except BaseException as exc:  # noqa: BLE001 - any failure is this server's, reported as a line
            self.error = self.failure_text(exc)
            if not ready.done():
                ready.set_exception(exc)
        finally:
            self.client = None

    def failure_text(self, exc: BaseException) -> str:
        text = describe_error(exc, self.config)
        tail = self.stderr_tail()
        return f"{text} (stderr: {tail})" if tail else text

    def stop(self) -> None:
        """Ask the owner task to leave the session (call on the loop)."""
        if self._stop is not None:
            self._stop.set()
