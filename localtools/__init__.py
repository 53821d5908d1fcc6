"""localtools: a local runtime for GGUF models with OpenAI-style function calling."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localtools.dialects.base import ParsedMessage

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
) -> ParsedMessage:
    """Parse what a model generated (after the generation prompt) into content,
    tool calls and reasoning. Only calls to offered `tools` become calls; when
    `tools` is None every name is accepted. A call that is broken stays content.
    `prompt_tail` is how the prompt ended; left empty, a dialect whose templates all
    end the same way assumes that ending (Functionary v2's "<|recipient|>")."""
    from localtools.dialects import get_dialect, parse_all

    if tools is None:
        tools = _any_tool_names(text)
    return parse_all(get_dialect(dialect).parser(tools, prompt_tail, stream=False), text)


def _any_tool_names(text: str) -> list[dict[str, Any]]:
    """With no tool list, offer every name the text could be calling, so each dialect's
    parser reads calls in its own syntax: every word, and every run of a dotted word's
    parts, since dialects glue names to dotted punctuation (Kimi K2 "functions.NAME:0",
    gpt-oss "to=functions.NAME", Llama 3.1 "brave_search.call(…)"); and `python`, the
    tool that raw code after a python tag is for (Llama 3.1's code interpreter)."""
    import re

    names = {"python"}
    for word in re.findall(r"[A-Za-z0-9_\-.]+", text):
        parts = word.split(".")
        for i in range(len(parts)):
            # a name has at most _MAX_DOTTED dotted parts (bounds the work on "a.a.a…")
            for j in range(i + 1, min(len(parts), i + _MAX_DOTTED) + 1):
                name = ".".join(parts[i:j])
                if name and len(name) <= 128:
                    names.add(name)
    return [{"type": "function", "function": {"name": n}} for n in sorted(names)]


_MAX_DOTTED = 4


def __getattr__(name: str) -> Any:
    if name == "LocalModel":
        from localtools.local_model import LocalModel

        return LocalModel
    raise AttributeError(name)
