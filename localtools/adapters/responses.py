"""OpenAI Responses API (`/v1/responses`) ⇄ one chat-completions request.

`translate_request` turns a Responses body (plus the stored conversation of its
`previous_response_id`) into a chat-completions body; `response_from_completion`
turns the chat.completion reply into a Response object. Streaming lives in
`responses_stream`. Pure functions: no HTTP, no model.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from localtools.adapters.translate import (
    TranslationError,
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
    strip_for_calls,
)

MESSAGE_ROLES = ("user", "system", "developer", "assistant")
TEXT_PARTS = ("input_text", "output_text", "text")
MEDIA_PARTS = ("input_image", "input_file", "input_audio", "image", "file")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
# Fields that ask for things only OpenAI's servers do (run later, server-side conversations,
# stored prompts): refused rather than ignored, so a client never waits for what cannot come.
UNSUPPORTED_FIELDS = {
    "background": "background responses are not supported: send the request without 'background'.",
    "conversation": "server-side conversations are not supported: use 'previous_response_id' or send the items.",
    "prompt": "stored prompt templates are not supported: send 'instructions' and 'input' instead.",
}


@dataclass
class ResponsesRequest:
    """A translated Responses request."""

    chat: dict[str, Any]  # the chat-completions body
    history: list[dict[str, Any]]  # chat messages of the conversation (no instructions): what the store keeps
    echo: dict[str, Any]  # request fields a Response object repeats
    store: bool = True
    stream: bool = False
    known_call_ids: set[str] = field(default_factory=set)


# ---------------------------------------------------------------- input items → chat messages


def _text_of_parts(parts: Any, param: str, allowed: tuple[str, ...] = TEXT_PARTS) -> str:
    """The text of a content value: a string, or a list of text parts (media refused)."""
    if isinstance(parts, str):
        return parts
    texts = []
    for part, where in objects(parts, param):
        kind = part.get("type")
        if kind in MEDIA_PARTS:
            raise TranslationError(
                f"Content part type {kind!r} at '{where}' is not supported: this server runs text-only "
                "models; send text parts (input_text) only.",
                param=f"{where}.type",
                code="unsupported_content",
            )
        if kind == "refusal":
            texts.append(expect(part.get("refusal", ""), str, f"{where}.refusal"))
            continue
        if kind not in allowed:
            raise TranslationError(
                f"Invalid value for '{where}.type': {kind!r}; expected one of {', '.join(allowed)}.",
                param=f"{where}.type",
            )
        texts.append(required(part, "text", str, f"{where}.text"))
    return "".join(texts)


class _Conversation:
    """Builds chat messages from Responses input items, merging calls into assistant turns."""

    def __init__(self, known_call_ids: set[str]) -> None:
        self.messages: list[dict[str, Any]] = []
        self.known = known_call_ids
        self._reasoning: list[str] = []

    def _assistant(self, content: str | None) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": content}
        if self._reasoning:
            msg["reasoning_content"] = "".join(self._reasoning)
            self._reasoning = []
        self.messages.append(msg)
        return msg

    def message(self, item: dict[str, Any], param: str) -> None:
        role = required(item, "role", str, f"{param}.role")
        if role not in MESSAGE_ROLES:
            raise TranslationError(
                f"Invalid value for '{param}.role': {role!r}; expected one of {', '.join(MESSAGE_ROLES)}.",
                param=f"{param}.role",
            )
        if item.get("content") is None:
            raise TranslationError(f"Missing required parameter: '{param}.content'.", param=f"{param}.content")
        text = _text_of_parts(item["content"], f"{param}.content")
        if role == "assistant":
            self._assistant(text)
        else:
            self.messages.append({"role": role, "content": text})

    def function_call(self, item: dict[str, Any], param: str) -> None:
        call_id = required(item, "call_id", str, f"{param}.call_id")
        name = required(item, "name", str, f"{param}.name")
        arguments = required(item, "arguments", str, f"{param}.arguments")
        try:
            json.loads(arguments or "{}")
        except ValueError:
            raise TranslationError(
                f"Invalid value for '{param}.arguments': it must be a JSON string, got {arguments[:60]!r}.",
                param=f"{param}.arguments",
            ) from None
        last = self.messages[-1] if self.messages else None
        if last is None or last["role"] != "assistant" or self._reasoning:
            last = self._assistant(None)
        last.setdefault("tool_calls", []).append(
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        )
        self.known.add(call_id)

    def function_call_output(self, item: dict[str, Any], param: str) -> None:
        call_id = required(item, "call_id", str, f"{param}.call_id")
        if call_id not in self.known:
            raise TranslationError(
                f"Invalid value for '{param}.call_id': {call_id!r} answers no function_call of this "
                "conversation (send the function_call item before its output, or continue with "
                "previous_response_id).",
                param=f"{param}.call_id",
                code="unknown_call_id",
            )
        if item.get("output") is None:
            raise TranslationError(f"Missing required parameter: '{param}.output'.", param=f"{param}.output")
        output = _text_of_parts(item["output"], f"{param}.output")
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": output})

    def reasoning(self, item: dict[str, Any], param: str) -> None:
        """A reasoning item sent back: its text goes with the assistant turn that follows."""
        for key in ("content", "summary"):
            parts = optional(item, key, list, f"{param}.{key}") or []
            for j, part in enumerate(parts):
                expect(part, dict, f"{param}.{key}[{j}]")
                text = part.get("text")
                if isinstance(text, str):
                    self._reasoning.append(text)
            if self._reasoning:
                return


def input_messages(value: Any, known_call_ids: set[str]) -> list[dict[str, Any]]:
    """`input` (a string or a list of items) as chat messages; call ids are checked and collected."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    expect(value, (str, list), "input")
    conv = _Conversation(known_call_ids)
    for item, param in objects(value, "input"):
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = "message"
        if kind == "message":
            conv.message(item, param)
        elif kind == "function_call":
            conv.function_call(item, param)
        elif kind == "function_call_output":
            conv.function_call_output(item, param)
        elif kind == "reasoning":
            conv.reasoning(item, param)
        elif kind == "item_reference":
            raise TranslationError(
                f"Input item type 'item_reference' at '{param}' is not supported: send the item itself, "
                "or continue a conversation with 'previous_response_id'.",
                param=f"{param}.type",
                code="unsupported_item_type",
            )
        else:
            raise TranslationError(
                f"Invalid value for '{param}.type': {kind!r} is not an input item type this server takes "
                "(message, function_call, function_call_output, reasoning).",
                param=f"{param}.type",
                code="unsupported_item_type",
            )
    return conv.messages


def call_ids_of(messages: list[dict[str, Any]]) -> set[str]:
    return {c["id"] for m in messages for c in (m.get("tool_calls") or []) if isinstance(c, dict) and "id" in c}


# ---------------------------------------------------------------- tools, tool_choice, text format


def _builtin_tool_error(kind: Any, param: str) -> TranslationError:
    return TranslationError(
        f"Tool type {kind!r} at '{param}' is not supported: built-in tools (web_search, file_search, "
        "computer_use, code_interpreter, image_generation, mcp, …) run on OpenAI's servers, and this "
        "local server runs only tools of type 'function' (your code runs them).",
        param=f"{param}.type",
        code="unsupported_tool_type",
    )


def chat_tools(value: Any) -> list[dict[str, Any]] | None:
    """Responses function tools (flat name/parameters) as chat-completions tools."""
    return function_tools(value, _function)


def _function(tool: dict[str, Any], param: str) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise _builtin_tool_error(tool.get("type"), param)
    fn: dict[str, Any] = {"name": required(tool, "name", str, f"{param}.name")}
    copy_optional(tool, fn, {"description": str, "parameters": dict, "strict": bool}, param)
    return fn


def chat_tool_choice(value: Any, tools: list[dict[str, Any]] | None) -> tuple[Any, list[dict[str, Any]] | None]:
    """(chat tool_choice, tools): `allowed_tools` narrows the tools offered."""
    if value is None or isinstance(value, str):
        if value is not None and value not in ("none", "auto", "required"):
            raise TranslationError(
                f"Invalid value for 'tool_choice': {value!r}; expected 'none', 'auto', 'required' or "
                '{"type": "function", "name": ...}.',
                param="tool_choice",
            )
        return value, tools
    expect(value, (str, dict), "tool_choice")
    kind = value.get("type")
    if kind == "function":
        return {"type": "function", "function": {"name": required(value, "name", str, "tool_choice.name")}}, tools
    if kind == "allowed_tools":
        mode = value.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise TranslationError("Invalid value for 'tool_choice.mode': expected 'auto' or 'required'.",
                                   param="tool_choice.mode")
        allowed = required(value, "tools", list, "tool_choice.tools")
        names = set()
        for entry, where in objects(allowed, "tool_choice.tools"):
            if entry.get("type") != "function":
                raise _builtin_tool_error(entry.get("type"), where)
            names.add(required(entry, "name", str, f"{where}.name"))
        narrowed = [t for t in tools or [] if t["function"]["name"] in names]
        return mode, narrowed
    raise _builtin_tool_error(kind, "tool_choice")


def chat_response_format(text: Any) -> dict[str, Any] | None:
    """`text.format` as a chat `response_format` (json_schema becomes a grammar downstream)."""
    if text is None:
        return None
    expect(text, dict, "text")
    fmt = optional(text, "format", dict, "text.format")
    if fmt is None:
        return None
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind != "json_schema":
        raise TranslationError(
            f"Invalid value for 'text.format.type': {kind!r}; expected 'text', 'json_object' or 'json_schema'.",
            param="text.format.type",
        )
    schema = required(fmt, "schema", dict, "text.format.schema")
    spec: dict[str, Any] = {"name": optional(fmt, "name", str, "text.format.name") or "response", "schema": schema}
    copy_optional(fmt, spec, {"strict": bool, "description": str}, "text.format")
    return {"type": "json_schema", "json_schema": spec}


def reasoning_kwargs(reasoning: Any) -> dict[str, Any]:
    """`reasoning.effort` as chat-template variables: templates that think read one of these
    (`enable_thinking` for Qwen-style switches, `reasoning_effort` for effort levels);
    templates that do not think ignore both."""
    if reasoning is None:
        return {}
    expect(reasoning, dict, "reasoning")
    effort = optional(reasoning, "effort", str, "reasoning.effort")
    if effort is None:
        return {}
    if effort not in REASONING_EFFORTS:
        raise TranslationError(
            f"Invalid value for 'reasoning.effort': {effort!r}; expected one of {', '.join(REASONING_EFFORTS)}.",
            param="reasoning.effort",
        )
    return {"enable_thinking": effort != "none", "reasoning_effort": effort}


# ---------------------------------------------------------------- the whole request


def _check_unsupported(body: dict[str, Any]) -> None:
    for key, why in UNSUPPORTED_FIELDS.items():
        if body.get(key) not in (None, False):
            raise TranslationError(f"'{key}': {why}", param=key, code="unsupported_parameter")
    logprobs = optional(body, "top_logprobs", int)
    if logprobs:
        raise TranslationError("top_logprobs are not supported by this server.", param="top_logprobs",
                               code="unsupported_parameter")


def _echo(body: dict[str, Any], tools: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The request fields a Response repeats back, with OpenAI's defaults."""
    echoed_tools = [
        {"type": "function", "name": t["function"]["name"], "description": t["function"].get("description"),
         "parameters": t["function"].get("parameters"), "strict": t["function"].get("strict")}
        for t in tools or []
    ]
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True) is not False,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
        "store": body.get("store") is not False,
        "temperature": body.get("temperature", 1.0),
        "text": {"format": (body.get("text") or {}).get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": echoed_tools,
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "user": body.get("user"),
    }


def _sampling(body: dict[str, Any], chat: dict[str, Any]) -> None:
    copy_in_range(body, chat, {"temperature": ("temperature", float, 0, 2), "top_p": ("top_p", float, 0, 1)})
    max_tokens = positive_int(body.get("max_output_tokens"), "max_output_tokens")
    if max_tokens is not None:
        chat["max_completion_tokens"] = max_tokens


def translate_request(body: Any, previous: list[dict[str, Any]] | None = None) -> ResponsesRequest:
    """A Responses body (and the stored messages of `previous_response_id`) as a chat body."""
    if not isinstance(body, dict):
        raise TranslationError("The request body must be a JSON object.")
    _check_unsupported(body)
    model = optional(body, "model", str)
    instructions = optional(body, "instructions", str)
    stream = bool(optional(body, "stream", bool))
    store = optional(body, "store", bool) is not False
    optional(body, "previous_response_id", str)
    optional(body, "metadata", dict)
    parallel = optional(body, "parallel_tool_calls", bool)
    if body.get("input") is None:
        raise TranslationError("Missing required parameter: 'input'.", param="input")
    history = list(previous or [])
    known = call_ids_of(history)
    new_messages = input_messages(body["input"], known)
    history += new_messages
    if not history:
        raise TranslationError("'input' must contain at least one item.", param="input")

    tools = chat_tools(body.get("tools"))
    choice, tools = chat_tool_choice(body.get("tool_choice"), tools)
    messages = ([{"role": "system", "content": instructions}] if instructions else []) + history
    chat: dict[str, Any] = {"messages": messages, "stream": stream}
    if model is not None:
        chat["model"] = model
    set_tools(chat, tools, choice, parallel)
    set_output(chat, chat_response_format(body.get("text")), reasoning_kwargs(body.get("reasoning")))
    _sampling(body, chat)
    return ResponsesRequest(chat, history, _echo(body, tools), store=store, stream=stream, known_call_ids=known)


# ---------------------------------------------------------------- chat reply → Response


def responses_usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    usage = usage or {}
    prompt = int(usage.get("prompt_tokens", 0))
    completion = int(usage.get("completion_tokens", 0))
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0))
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }


def reasoning_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "reasoning", "id": item_id, "summary": [],
            "content": [{"type": "reasoning_text", "text": text}], "status": status}


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


def output_items(message: dict[str, Any], finish_reason: str) -> list[dict[str, Any]]:
    """A chat reply message as Response output items: reasoning, message, function calls."""
    items = []
    calls = message.get("tool_calls") or []
    if message.get("reasoning_content"):
        items.append(reasoning_item(new_id("rs_"), message["reasoning_content"]))
    text = strip_for_calls(message.get("content"), bool(calls))
    if text or not calls:
        status = "incomplete" if finish_reason == "length" else "completed"
        items.append(message_item(new_id("msg_"), text, status))
    for call in calls:
        fn = call["function"]
        items.append(call_item(new_id("fc_"), call["id"], fn["name"], fn["arguments"]))
    return items


def response_object(
    rid: str,
    model: str,
    echo: dict[str, Any],
    output: list[dict[str, Any]],
    finish_reason: str | None,
    usage: dict[str, Any] | None,
    created_at: int | None = None,
) -> dict[str, Any]:
    """A Response; `finish_reason` None means still in progress (streaming's first events)."""
    if finish_reason is None:
        status, incomplete = "in_progress", None
    elif finish_reason == "length":
        status, incomplete = "incomplete", {"reason": "max_output_tokens"}
    else:
        status, incomplete = "completed", None
    return {
        "id": rid,
        "object": "response",
        "created_at": created_at if created_at is not None else int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "model": model,
        "output": output,
        "usage": responses_usage(usage) if finish_reason is not None else None,
        **echo,
    }


def response_from_completion(completion: dict[str, Any], echo: dict[str, Any], rid: str | None = None) -> dict[str, Any]:
    """The Response for a non-streamed chat.completion."""
    choice = completion["choices"][0]
    finish = choice.get("finish_reason") or "stop"
    output = output_items(choice["message"], finish)
    return response_object(rid or new_id("resp_"), completion.get("model", ""), echo, output, finish,
                           completion.get("usage"), completion.get("created"))


def assistant_message(output: list[dict[str, Any]]) -> dict[str, Any]:
    """Response output items as the chat assistant message the conversation continues from."""
    msg: dict[str, Any] = {"role": "assistant", "content": None}
    texts, reasoning, calls = [], [], []
    for item in output:
        if item["type"] == "message":
            texts += [p.get("text", "") for p in item["content"] if p.get("type") == "output_text"]
        elif item["type"] == "reasoning":
            reasoning += [p.get("text", "") for p in item.get("content") or []]
        elif item["type"] == "function_call":
            calls.append({"id": item["call_id"], "type": "function",
                          "function": {"name": item["name"], "arguments": item["arguments"]}})
    text = "".join(texts)
    if text or not calls:
        msg["content"] = text
    if reasoning:
        msg["reasoning_content"] = "".join(reasoning)
    if calls:
        msg["tool_calls"] = calls
    return msg
