"""The client side of a stream: OpenAI `chat.completion.chunk` dicts → the final message.

Whoever reads a chat stream (the terminal chat, from this process or from any
OpenAI-compatible server; the benchmark) folds it here, so deltas, tool-call
fragments, the finish reason and usage are read one way.

    acc = ChunkAccumulator()
    for chunk in chunks:
        news = acc.add(chunk)        # what this chunk added: show news.content as it comes
    acc.message()                    # {"role": "assistant", "content": ..., "tool_calls": [...]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ChunkNews:
    """What one chunk added."""

    content: str = ""
    reasoning: str = ""
    tool_call_delta: bool = False  # it carried (part of) a tool call


@dataclass
class StreamedCall:
    id: str | None = None
    name: str = ""
    arguments: str = ""


@dataclass
class ChunkAccumulator:
    """Folds chunks (as dicts) into content, reasoning, tool calls, finish reason and usage."""

    content_parts: list[str] = field(default_factory=list)
    reasoning_parts: list[str] = field(default_factory=list)
    calls_by_index: dict[int, StreamedCall] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> ChunkNews:
        news = ChunkNews()
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                news.reasoning += delta["reasoning_content"]
                self.reasoning_parts.append(delta["reasoning_content"])
            if delta.get("content"):
                news.content += delta["content"]
                self.content_parts.append(delta["content"])
            for tc in delta.get("tool_calls") or []:
                news.tool_call_delta = True
                call = self.calls_by_index.setdefault(tc["index"], StreamedCall())
                fn = tc.get("function") or {}
                call.id = tc.get("id") or call.id
                call.name = fn.get("name") or call.name  # sent whole, in the call's first delta
                call.arguments += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return news

    @property
    def content(self) -> str:
        return "".join(self.content_parts)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    @property
    def calls(self) -> list[StreamedCall]:
        return [self.calls_by_index[i] for i in sorted(self.calls_by_index)]

    def message(self) -> dict[str, Any]:
        """The assistant message to put in the conversation (reasoning is not part of it;
        a call the stream gave no id gets `call_<index>`, empty arguments `{}`)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.calls_by_index:
            message["tool_calls"] = [
                {"id": call.id or f"call_{i}", "type": "function",
                 "function": {"name": call.name, "arguments": call.arguments or "{}"}}
                for i, call in sorted(self.calls_by_index.items())
            ]
        return message
