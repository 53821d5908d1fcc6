"""Starting the chat's MCP servers (the `--mcp FILE`s plus the default config file,
read by `mcp_tools.load_configs` before the model loads, so a config that cannot
be read stops the chat at once with a clear message).

A server that fails to start is one warning line and the chat goes on without
it. While servers run, SIGTERM and SIGHUP (a closed terminal) exit through the
caller's `finally`, so the servers are stopped and no child process is orphaned.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from typing import Any

from localtools.mcp_tools import McpTools, ServerConfig

__all__ = ["start_mcp_servers"]


def _exit_on_hangup() -> None:
    def leave(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, leave)


def start_mcp_servers(
    configs: Sequence[ServerConfig],
    reserved_names: Sequence[str],
    report: Callable[[str], None],
) -> McpTools | None:
    """Connect every configured server (None when none is configured).

    `reserved_names` are the Python tools' names, which MCP tools must not take;
    `report` shows progress and problems (stderr in the CLI). The result is
    uncapped: the chat's Toolbox caps every tool's output the same way.
    """
    if not configs:
        return None
    report(f"starting {len(configs)} MCP server{'s' if len(configs) != 1 else ''}…")
    servers = McpTools(configs, max_output_chars=None, reserved_names=reserved_names)
    for line in servers.problems:
        report(f"warning: {line}")
    _exit_on_hangup()
    return servers
