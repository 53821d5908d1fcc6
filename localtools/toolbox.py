"""The tools of one conversation: Python functions and MCP servers' tools in one namespace.

The chat and `LocalModel.run_tools` offer `schemas()` to the model and run each
call with `run(name, arguments)`, whatever is behind the name. Every result is
capped at `max_output_chars` (tool output is untrusted input to the model, and
a context window is small), with a note saying it was cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localtools.tools import DEFAULT_MAX_OUTPUT_CHARS, ToolSchemaError, call_tool, cap_output, function_to_tool

if TYPE_CHECKING:
    from localtools.mcp_tools import McpTools

__all__ = ["Toolbox", "ToolInfo", "DEFAULT_MAX_OUTPUT_CHARS", "cap_output"]


@dataclass(frozen=True)
class ToolInfo:
    name: str
    origin: str  # "python", or "mcp:SERVER"
    description: str
    schema: dict[str, Any]


class Toolbox:
    """Functions and MCP tools by name; see the module docstring."""

    def __init__(
        self,
        functions: Iterable[Callable[..., Any]] = (),
        mcp: McpTools | Sequence[McpTools] | None = None,
        max_output_chars: int | None = DEFAULT_MAX_OUTPUT_CHARS,
    ) -> None:
        self.max_output_chars = max_output_chars
        self.problems: list[str] = []  # MCP tools left out for a clash with another tool's name
        self._info: dict[str, ToolInfo] = {}
        self._functions: dict[str, Callable[..., Any]] = {}
        self._mcp: dict[str, McpTools] = {}
        for fn in functions:
            schema = function_to_tool(fn)
            name = schema["function"]["name"]
            if name in self._info:
                raise ToolSchemaError(f"two tools are named {name!r}")
            self._functions[name] = fn
            self._info[name] = ToolInfo(name, "python", schema["function"].get("description", ""), schema)
        for box in [mcp] if mcp is not None and not isinstance(mcp, Sequence) else list(mcp or []):
            self._add_mcp(box)

    def _add_mcp(self, box: McpTools) -> None:
        for tool in box.tools:
            if tool.name in self._info:
                self.problems.append(f"mcp tool {tool.name!r} left out: another tool has that name")
                continue
            self._mcp[tool.name] = box
            self._info[tool.name] = ToolInfo(tool.name, f"mcp:{tool.server}", tool.description, tool.schema)

    @classmethod
    def of(cls, tools: Iterable[Any], max_output_chars: int | None = DEFAULT_MAX_OUTPUT_CHARS) -> Toolbox:
        """From a mixed list: functions and McpTools (a Toolbox passes through)."""
        items = list(tools)
        if len(items) == 1 and isinstance(items[0], Toolbox):
            return items[0]
        functions, boxes = [], []
        for item in items:
            if hasattr(item, "call_uncapped") and hasattr(item, "tools"):
                boxes.append(item)
            elif callable(item):
                functions.append(item)
            else:
                raise ToolSchemaError(f"a tool is a function or McpTools, not {type(item).__name__}")
        return cls(functions, boxes, max_output_chars)

    # ------------------------------------------------------------------------
    def __bool__(self) -> bool:
        return bool(self._info)

    def __len__(self) -> int:
        return len(self._info)

    def __contains__(self, name: object) -> bool:
        return name in self._info

    @property
    def names(self) -> list[str]:
        return list(self._info)

    def info(self) -> list[ToolInfo]:
        return list(self._info.values())

    def schemas(self) -> list[dict[str, Any]]:
        return [info.schema for info in self._info.values()]

    def run(self, name: str, arguments: Any) -> str:
        """Run one call (arguments: the model's JSON string or a mapping). Failures are
        `error: …` text for the model; KeyboardInterrupt propagates (the caller decides)."""
        if name in self._functions:
            text = call_tool(self._functions[name], arguments)
        elif name in self._mcp:
            text = self._mcp[name].call_uncapped(name, arguments)
        else:
            return f"error: no tool named {name}"
        return cap_output(text, self.max_output_chars)
