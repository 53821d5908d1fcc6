"""Anthropic Messages API (`/v1/messages`) ⇄ one chat-completions request.

`translate_request` turns a Messages body into a chat-completions body;
`message_from_completion` turns the chat.completion reply into a Message;
`MessagesStream` turns the chunk stream into Anthropic's SSE events. Pure
functions and one small stream translator: no HTTP, no model.
"""

from __future__ import annotations

import json
from typing import Any

from localtools.adapters.translate import (
    ChunkTranslator,
    TranslationError,
    arguments_object,
    copy_in_range,
    copy_optional,
    expect,
    function_tools,
    new_id,
    objects,
    optional,
    positive_int,
    required,
    set_output,
    set_tools,
    strings,
    strip_for_calls,
)

MEDIA_BLOCKS = ("image", "document", "search_result", "container_upload")
TOOL_CHOICES = ("auto", "any", "tool", "none")
# Anthropic's server tools (web search, code execution, …) and its client tools with a fixed
# schema (bash, text editor, computer) are `type`d; only custom tools (no type) run here.
CUSTOM_TOOL_TYPES = (None, "custom")
# sampling fields: (chat name, JSON type, low, high)
_SAMPLING: dict[str, tuple[str, type, float | None, float | None]] = {
    "temperature": ("temperature", float, 0, 1),
    "top_p": ("top_p", float, 0, 1),
    "top_k": ("top_k", int, 0, None),
}


def _media_error(kind: str, param: str) -> TranslationError:
    return TranslationError(
        f"Content block type {kind!r} at '{param}' is not supported: this server runs text-only "
        "models; send text blocks only.",
        param=f"{param}.type",
        code="unsupported_content",
    )


def _text_blocks(content: Any, param: str) -> str:
    """A string, or text blocks joined (system prompts and tool results)."""
    if isinstance(content, str):
        return content
    texts = []
    for block, where in objects(content, param):
        kind = block.get("type")
        if kind in MEDIA_BLOCKS:
            raise _media_error(kind, where)
        if kind != "text":
            raise TranslationError(f"Invalid value for '{where}.type': {kind!r}; expected 'text'.",
                                   param=f"{where}.type")
        texts.append(required(block, "text", str, f"{where}.text"))
    return "\n".join(texts)


class _Conversation:
    """Builds chat messages from Messages turns: tool_use → tool_calls, tool_result → tool messages."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.call_ids: set[str] = set()

    def user(self, blocks: list[Any], param: str) -> None:
        texts = []
        for block, where in objects(blocks, param):
            kind = block.get("type")
            if kind == "text":
                texts.append(required(block, "text", str, f"{where}.text"))
            elif kind == "tool_result":
                self.tool_result(block, where)
            elif kind in MEDIA_BLOCKS:
                raise _media_error(kind, where)
            else:
                raise TranslationError(
                    f"Invalid value for '{where}.type': {kind!r} is not a user content block this server "
                    "takes (text, tool_result).",
                    param=f"{where}.type",
                )
        if texts:
            self.messages.append({"role": "user", "content": "\n".join(texts)})

    def tool_result(self, block: dict[str, Any], where: str) -> None:
        call_id = required(block, "tool_use_id", str, f"{where}.tool_use_id")
        if call_id not in self.call_ids:
            raise TranslationError(
                f"Invalid value for '{where}.tool_use_id': {call_id!r} answers no tool_use block of an "
                "earlier assistant message.",
                param=f"{where}.tool_use_id",
            )
        content = block.get("content")
        text = "" if content is None else _text_blocks(content, f"{where}.content")
        if optional(block, "is_error", bool, f"{where}.is_error"):
            text = f"Error: {text}" if text else "Error"
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": text})

    def assistant(self, blocks: list[Any], param: str) -> None:
        texts, reasoning, calls = [], [], []
        for block, where in objects(blocks, param):
            kind = block.get("type")
            if kind == "text":
                texts.append(required(block, "text", str, f"{where}.text"))
            elif kind == "thinking":
                reasoning.append(required(block, "thinking", str, f"{where}.thinking"))
            elif kind == "redacted_thinking":
                continue  # encrypted by another server: nothing a local model can read
            elif kind == "tool_use":
                call_id = required(block, "id", str, f"{where}.id")
                name = required(block, "name", str, f"{where}.name")
                args = block.get("input", {})
                expect(args, dict, f"{where}.input")
                calls.append({"id": call_id, "type": "function",
                              "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}})
                self.call_ids.add(call_id)
            else:
                raise TranslationError(
                    f"Invalid value for '{where}.type': {kind!r} is not an assistant content block this "
                    "server takes (text, thinking, tool_use).",
                    param=f"{where}.type",
                )
        msg: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) if texts or not calls else None}
        if reasoning:
            msg["reasoning_content"] = "\n".join(reasoning)
        if calls:
            msg["tool_calls"] = calls
        self.messages.append(msg)


def chat_messages(value: Any) -> list[dict[str, Any]]:
    expect(value, list, "messages")
    if not value:
        raise TranslationError("'messages' must contain at least one message.", param="messages")
    conv = _Conversation()
    for msg, param in objects(value, "messages"):
        role = required(msg, "role", str, f"{param}.role")
        if role not in ("user", "assistant"):
            raise TranslationError(
                f"Invalid value for '{param}.role': {role!r}; expected 'user' or 'assistant' "
                "(system prompts go in the top-level 'system').",
                param=f"{param}.role",
            )
        if msg.get("content") is None:
            raise TranslationError(f"Missing required parameter: '{param}.content'.", param=f"{param}.content")
        content = expect(msg["content"], (str, list), f"{param}.content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        (conv.user if role == "user" else conv.assistant)(blocks, f"{param}.content")
    if value[-1].get("role") == "assistant":
        raise TranslationError(
            "The last message is from the assistant: continuing a prefilled assistant turn is not "
            "supported by this server; end with a user message.",
            param=f"messages[{len(value) - 1}]",
        )
    return conv.messages


def chat_tools(value: Any) -> list[dict[str, Any]] | None:
    return function_tools(value, _function)


def _function(tool: dict[str, Any], param: str) -> dict[str, Any]:
    if tool.get("type") not in CUSTOM_TOOL_TYPES:
        raise TranslationError(
            f"Tool type {tool.get('type')!r} at '{param}' is not supported: Anthropic's server tools "
            "(web search, code execution, …) and fixed-schema tools (bash, text editor, computer) do "
            "not run on this local server; define custom tools with name, description and input_schema.",
            param=f"{param}.type",
        )
    fn: dict[str, Any] = {"name": required(tool, "name", str, f"{param}.name"),
                          "parameters": required(tool, "input_schema", dict, f"{param}.input_schema")}
    copy_optional(tool, fn, {"description": str, "strict": bool}, param)
    return fn


def chat_tool_choice(value: Any) -> tuple[Any, bool | None]:
    """(chat tool_choice, parallel_tool_calls) from Anthropic's tool_choice."""
    if value is None:
        return None, None
    expect(value, dict, "tool_choice")
    kind = required(value, "type", str, "tool_choice.type")
    if kind not in TOOL_CHOICES:
        raise TranslationError(f"Invalid value for 'tool_choice.type': {kind!r}; expected one of "
                               f"{', '.join(TOOL_CHOICES)}.", param="tool_choice.type")
    disable = optional(value, "disable_parallel_tool_use", bool, "tool_choice.disable_parallel_tool_use")
    parallel = None if disable is None else not disable
    if kind == "tool":
        name = required(value, "name", str, "tool_choice.name")
        return {"type": "function", "function": {"name": name}}, parallel
    return {"auto": "auto", "any": "required", "none": "none"}[kind], parallel


def thinking_kwargs(value: Any) -> dict[str, Any]:
    """`thinking` as the chat-template switch that thinking templates read."""
    if value is None:
        return {}
    expect(value, dict, "thinking")
    kind = required(value, "type", str, "thinking.type")
    if kind not in ("enabled", "disabled", "adaptive"):
        raise TranslationError(f"Invalid value for 'thinking.type': {kind!r}; expected 'enabled', 'adaptive' "
                               "or 'disabled'.", param="thinking.type")
    if kind == "enabled":
        positive_int(required(value, "budget_tokens", int, "thinking.budget_tokens"), "thinking.budget_tokens")
    return {"enable_thinking": kind != "disabled"}


def output_config(value: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """`output_config`: (chat response_format for `format`, template variables for `effort`)."""
    if value is None:
        return None, {}
    expect(value, dict, "output_config")
    fmt = optional(value, "format", dict, "output_config.format")
    response_format = None
    if fmt is not None:
        if fmt.get("type") != "json_schema":
            raise TranslationError("Invalid value for 'output_config.format.type': expected 'json_schema'.",
                                   param="output_config.format.type")
        schema = required(fmt, "schema", dict, "output_config.format.schema")
        response_format = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    effort = optional(value, "effort", str, "output_config.effort")
    return response_format, ({"reasoning_effort": effort} if effort else {})


def _sampling(body: dict[str, Any], chat: dict[str, Any]) -> None:
    copy_in_range(body, chat, _SAMPLING)
    stops = optional(body, "stop_sequences", list)
    if stops:
        chat["stop"] = strings(stops, "stop_sequences")


def translate_request(body: Any) -> dict[str, Any]:
    """A Messages body as a chat-completions body."""
    if not isinstance(body, dict):
        raise TranslationError("The request body must be a JSON object.")
    max_tokens = positive_int(required(body, "max_tokens", int), "max_tokens")
    model = optional(body, "model", str)
    messages = chat_messages(body.get("messages"))
    system = body.get("system")
    if system is not None:
        text = _text_blocks(expect(system, (str, list), "system"), "system")
        if text:
            messages.insert(0, {"role": "system", "content": text})
    if optional(body, "mcp_servers", list):
        raise TranslationError("'mcp_servers' is not supported: this server runs no MCP connector.",
                               param="mcp_servers")
    stream = bool(optional(body, "stream", bool))
    chat: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "stream": stream}
    if model is not None:
        chat["model"] = model
    choice, parallel = chat_tool_choice(body.get("tool_choice"))
    set_tools(chat, chat_tools(body.get("tools")), choice, parallel)
    response_format, effort = output_config(body.get("output_config"))
    set_output(chat, response_format, {**thinking_kwargs(body.get("thinking")), **effort})
    _sampling(body, chat)
    return chat


# ---------------------------------------------------------------- chat reply → Message


def stop_reason(finish_reason: str | None, matched_stop: Any, stops: list[str]) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence). A stop string is named when the reply says which one matched
    (`choices[0].stop_reason`, vLLM's field); otherwise a normal end is `end_turn`."""
    if finish_reason == "tool_calls":
        return "tool_use", None
    if finish_reason == "length":
        return "max_tokens", None
    if isinstance(matched_stop, str) and matched_stop in stops:
        return "stop_sequence", matched_stop
    return "end_turn", None


def usage_of(usage: dict[str, Any] | None) -> dict[str, Any]:
    usage = usage or {}
    return {"input_tokens": int(usage.get("prompt_tokens", 0)), "output_tokens": int(usage.get("completion_tokens", 0))}


def content_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    calls = message.get("tool_calls") or []
    if message.get("reasoning_content"):
        blocks.append({"type": "thinking", "thinking": message["reasoning_content"], "signature": ""})
    text = strip_for_calls(message.get("content"), bool(calls))
    if text or not calls:
        blocks.append({"type": "text", "text": text})
    for call in calls:
        fn = call["function"]
        blocks.append({"type": "tool_use", "id": call["id"], "name": fn["name"],
                       "input": arguments_object(fn["arguments"])})
    return blocks


def message_from_completion(completion: dict[str, Any], stops: list[str] | None = None) -> dict[str, Any]:
    """The Message for a non-streamed chat.completion."""
    choice = completion["choices"][0]
    reason, sequence = stop_reason(choice.get("finish_reason"), choice.get("stop_reason"), stops or [])
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model", ""),
        "content": content_blocks(choice["message"]),
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": usage_of(completion.get("usage")),
    }


def error_body(kind: str, message: str) -> dict[str, Any]:
    """Anthropic's error shape."""
    return {"type": "error", "error": {"type": kind, "message": message}}


def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status."""
    return {
        400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
        404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
        503: "overloaded_error", 529: "overloaded_error",
    }.get(status, "api_error" if status >= 500 else "invalid_request_error")


# ---------------------------------------------------------------- chunk stream → SSE events


class MessagesStream(ChunkTranslator):
    """Translates one chat chunk stream into Anthropic stream events (type, data) pairs."""

    def __init__(self, model: str, stops: list[str] | None = None) -> None:
        super().__init__()
        self.id = new_id("msg_")
        self.model = model
        self.stops = stops or []
        self._index = -1
        self._open: str | None = None  # "text" | "thinking" | "tool_use"
        self._text_count = 0

    def start(self) -> list[dict[str, Any]]:
        message: dict[str, Any] = {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [{"type": "message_start", "message": message}, {"type": "ping"}]

    def _open_block(self, kind: str, block: dict[str, Any]) -> list[dict[str, Any]]:
        events = self._close()
        self._index += 1
        self._text_count += kind == "text"
        self._open = kind
        return events + [{"type": "content_block_start", "index": self._index, "content_block": block}]

    def _close(self) -> list[dict[str, Any]]:
        if self._open is None:
            return []
        self._open = None
        return [{"type": "content_block_stop", "index": self._index}]

    def _text(self, kind: str, text: str) -> list[dict[str, Any]]:
        if not text:
            return []
        events = []
        if self._open != kind:
            block = {"type": "text", "text": ""} if kind == "text" else {"type": "thinking", "thinking": "", "signature": ""}
            events += self._open_block(kind, block)
        delta = {"type": "text_delta", "text": text} if kind == "text" else {"type": "thinking_delta", "thinking": text}
        events.append({"type": "content_block_delta", "index": self._index, "delta": delta})
        return events

    def _reasoning(self, text: str) -> list[dict[str, Any]]:
        return self._text("thinking", text)

    def _content(self, text: str) -> list[dict[str, Any]]:
        return self._text("text", text)

    def _call_start(self, call_id: str, name: str) -> list[dict[str, Any]]:
        return self._open_block("tool_use", {"type": "tool_use", "id": call_id, "name": name, "input": {}})

    def _arguments(self, fragment: str) -> list[dict[str, Any]]:
        if self._open != "tool_use":
            return []
        return [{"type": "content_block_delta", "index": self._index,
                 "delta": {"type": "input_json_delta", "partial_json": fragment}}]

    def finish(self) -> list[dict[str, Any]]:
        events = self._text("text", self._held_text())
        if self._calls == 0 and self._text_count == 0:
            events += self._open_block("text", {"type": "text", "text": ""})  # an empty reply: one empty text block
        events += self._close()
        reason, sequence = stop_reason(self._finish, self._matched, self.stops)
        usage = usage_of(self._usage)
        events.append({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": sequence},
                       "usage": {"input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"]}})
        events.append({"type": "message_stop"})
        return events
