"""MCP tool servers as tools for a local model.

config      the `mcpServers` JSON (stdio `command` / streamable-HTTP `url` entries), default path
names       `server__tool` names within OpenAI's rules
results     a CallToolResult as tool-message text
loop_thread the private event loop the async SDK runs on
connection  one server's session, owned by one task
manager     McpTools: connect all, list, call, close — synchronous

The `mcp` SDK is imported only when a server is connected.
"""

from localtools.mcp_tools.config import McpConfigError, ServerConfig, default_config_path, load_config, load_configs
from localtools.mcp_tools.manager import DEFAULT_MAX_OUTPUT_CHARS, McpTool, McpTools
from localtools.mcp_tools.names import namespaced
from localtools.mcp_tools.results import result_text

__all__ = [
    "DEFAULT_MAX_OUTPUT_CHARS",
    "McpConfigError",
    "McpTool",
    "McpTools",
    "ServerConfig",
    "default_config_path",
    "load_config",
    "load_configs",
    "namespaced",
    "result_text",
]
