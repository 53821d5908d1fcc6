"""A real MCP server for the tests, written with the `mcp` SDK (MCPServer, FastMCP's v2 name).

    python tests/data/mcp_server.py NAME                 # stdio
    python tests/data/mcp_server.py NAME --http PORT     # streamable HTTP on 127.0.0.1:PORT/mcp

Environment: MCP_TEST_PIDFILE (the server writes its pid there on start),
MCP_TEST_RECORD (each `record` call appends its note there, one JSON line),
MCP_TEST_TOOLS (comma-separated: offer only these tools).
The tools cover each kind of result: text, structured, isError, image,
resources, a large output.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Annotated, TypedDict

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image
from mcp_types import EmbeddedResource, ResourceLink, TextContent, TextResourceContents
from pydantic import Field

NAME = sys.argv[1] if len(sys.argv) > 1 else "test"
server = MCPServer(NAME)

PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


class Weather(TypedDict):
    city: str
    temperature_c: int
    sky: str


@server.tool()
def echo(text: str) -> str:
    """Repeat the text back, prefixed with the server's name."""
    return f"{NAME} says: {text}"


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def weather(city: str) -> Weather:
    """The weather in a city, as structured data."""
    return {"city": city, "temperature_c": 21, "sky": "sunny"}


@server.tool()
def fail(reason: str) -> str:
    """Always fails, with the given reason."""
    raise ToolError(f"cannot do it: {reason}")


@server.tool(structured_output=False)
def picture() -> list[object]:
    """A tiny PNG and a caption."""
    return [Image(data=PNG_1x1, format="png"), "a 1x1 pixel"]


@server.tool(structured_output=False)
def documents() -> list[object]:
    """A linked resource and an embedded one."""
    link = ResourceLink(uri="file:///srv/report.pdf", name="report", mime_type="application/pdf", size=2048)
    embedded = EmbeddedResource(
        resource=TextResourceContents(uri="memo://today", mime_type="text/plain", text="buy milk")
    )
    return [link, embedded, TextContent(text="two documents")]


@server.tool()
def big(n: int) -> str:
    """Return n characters."""
    return "x" * n


@server.tool()
async def sleep(seconds: float) -> str:
    """Wait, then say so (for interrupting a call)."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@server.tool(name="get.time!")
def odd_name() -> str:
    """A tool whose name OpenAI would not accept as is."""
    return "noon"


@server.tool()
def record(note: Annotated[str, Field(max_length=40)]) -> str:
    """Record a short note (the test reads the record file to see that the call ran)."""
    path = os.environ.get("MCP_TEST_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"server": NAME, "note": note}) + "\n")
    return f"recorded by {NAME}: {note}"


def main() -> None:
    only = os.environ.get("MCP_TEST_TOOLS")
    if only:  # offer just these tools (the e2e chat: a tiny model picks among few)
        for tool in [t.name for t in asyncio.run(server.list_tools())]:
            if tool not in only.split(","):
                server.remove_tool(tool)
    pidfile = os.environ.get("MCP_TEST_PIDFILE")
    if pidfile:
        with open(pidfile, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
    if "--http" in sys.argv:
        port = int(sys.argv[sys.argv.index("--http") + 1])
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run()


if __name__ == "__main__":
    main()
