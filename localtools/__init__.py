"""localtools: a local runtime for GGUF models with OpenAI-style function calling."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "detect_dialect", "parse_tool_calls", "LocalModel"]


def detect_dialect(template: str) -> str:
    """The tool-call dialect a chat template speaks (`chatml-function`/`generic` if none)."""
    from localtools.dialects import detect

    return detect(template).dialect


def parse_tool_calls(
    text: str,
    dialect: str,
    tools: list[dict[str, Any]] | None = None,
    prompt_tail: str = "",
) -> "ParsedMessage":  # noqa: F821
    """Parse what a model generated (after the generation prompt) into content,
    tool calls and reasoning. Only calls to offered `tools` become calls; when
    `tools` is None every name is accepted. A call that is broken stays content."""
    from localtools.dialects import get_dialect, parse_all

    if tools is None:
        tools = _any_tool_names(text)
    return parse_all(get_dialect(dialect).parser(tools, prompt_tail, stream=False), text)


def _any_tool_names(text: str) -> list[dict[str, Any]]:
    """With no tool list, accept every name that appears as a word in the text."""
    import re

    names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_.\-]*", text))
    return [{"type": "function", "function": {"name": n}} for n in names]


def __getattr__(name: str) -> Any:
    if name == "LocalModel":
        from localtools.local_model import LocalModel

        return LocalModel
    raise AttributeError(name)
