"""Ollama API (`/api/chat`, `/api/generate`, `/api/tags`, `/api/show`) ⇄ one chat-completions request.

Ollama sends tool-call arguments as objects and answers calls by tool name (no
ids): ids are made up here so the pipeline can pair each result with its call.
Ollama has no `tool_choice`; this server accepts one as an extension (top level
or in `options`, OpenAI's values), so a client can force a grammar-true call.
Pure functions and one small stream translator: no HTTP, no model.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from typing import Any

from localtools.adapters.translate import (
    ChunkTranslator,
    TranslationError,
    arguments_object,
    copy_in_range,
    copy_optional,
    expect,
    function_tools,
    objects,
    optional,
    required,
    set_output,
    set_tools,
    strings,
    strip_for_calls,
)

OLLAMA_API_VERSION = "0.12.0"  # the Ollama API version whose fields this server speaks
MESSAGE_ROLES = ("system", "user", "assistant", "tool")
THINK_LEVELS = ("low", "medium", "high")
# options → chat fields: (chat name, JSON type, low, high)
_OPTIONS: dict[str, tuple[str, type, float | None, float | None]] = {
    "temperature": ("temperature", float, 0, 2),
    "top_p": ("top_p", float, 0, 1),
    "top_k": ("top_k", int, 0, None),
    "min_p": ("min_p", float, 0, 1),
    "repeat_penalty": ("repeat_penalty", float, 0, None),
    "presence_penalty": ("presence_penalty", float, -2, 2),
    "frequency_penalty": ("frequency_penalty", float, -2, 2),
    "seed": ("seed", int, None, None),
}


def now_iso() -> str:
    """`created_at` as Ollama writes it (UTC, RFC 3339 with fraction)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat().replace("+00:00", "Z")


class _Conversation:
    """Ollama messages as chat messages; calls get ids, tool results find their call."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._unanswered: list[tuple[str, str]] = []  # (call id, tool name), oldest first
        self._count = 0

    def assistant(self, msg: dict[str, Any], param: str) -> None:
        content = optional(msg, "content", str, f"{param}.content") or ""
        out: dict[str, Any] = {"role": "assistant", "content": content}
        thinking = optional(msg, "thinking", str, f"{param}.thinking")
        if thinking:
            out["reasoning_content"] = thinking
        calls = optional(msg, "tool_calls", list, f"{param}.tool_calls") or []
        for call, where in objects(calls, f"{param}.tool_calls"):
            fn = required(call, "function", dict, f"{where}.function")
            name = required(fn, "name", str, f"{where}.function.name")
            args = fn.get("arguments", {})
            if isinstance(args, str):  # some clients send the JSON text
                args = arguments_object(args)
            expect(args, dict, f"{where}.function.arguments")
            given_id = call.get("id")
            call_id = given_id if isinstance(given_id, str) else f"call_{self._count}"
            self._count += 1
            out.setdefault("tool_calls", []).append(
                {"id": call_id, "type": "function",
                 "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}})
            self._unanswered.append((call_id, name))
        if calls and not content:
            out["content"] = None
        self.messages.append(out)

    def tool(self, msg: dict[str, Any], param: str) -> None:
        content = optional(msg, "content", str, f"{param}.content") or ""
        name = optional(msg, "tool_name", str, f"{param}.tool_name") or optional(msg, "name", str, f"{param}.name")
        wanted = optional(msg, "tool_call_id", str, f"{param}.tool_call_id")
        match = next((c for c in self._unanswered if (wanted and c[0] == wanted)
                      or (not wanted and (name is None or c[1] == name))), None)
        if match is None:
            what = f"tool {name!r}" if name else "any tool"
            raise TranslationError(
                f"Invalid '{param}': this tool result answers no earlier assistant tool call to {what} "
                "(send the assistant message with its tool_calls first).",
                param=param,
            )
        self._unanswered.remove(match)
        self.messages.append({"role": "tool", "tool_call_id": match[0], "content": content})


def chat_messages(value: Any) -> list[dict[str, Any]]:
    conv = _Conversation()
    for msg, param in objects(value, "messages"):
        role = required(msg, "role", str, f"{param}.role")
        if role not in MESSAGE_ROLES:
            raise TranslationError(f"Invalid value for '{param}.role': {role!r}; expected one of "
                                   f"{', '.join(MESSAGE_ROLES)}.", param=f"{param}.role")
        if msg.get("images"):
            raise TranslationError(f"'{param}.images' is not supported: this server runs text-only models.",
                                   param=f"{param}.images")
        if role == "assistant":
            conv.assistant(msg, param)
        elif role == "tool":
            conv.tool(msg, param)
        else:
            conv.messages.append({"role": role, "content": optional(msg, "content", str, f"{param}.content") or ""})
    if not conv.messages:
        raise TranslationError("'messages' must contain at least one message.", param="messages")
    return conv.messages


def chat_tools(value: Any) -> list[dict[str, Any]] | None:
    return function_tools(value, _function)


def _function(tool: dict[str, Any], param: str) -> dict[str, Any]:
    if tool.get("type", "function") != "function":
        raise TranslationError(f"Invalid value for '{param}.type': {tool.get('type')!r}; only 'function' "
                               "tools are supported.", param=f"{param}.type")
    fn = required(tool, "function", dict, f"{param}.function")
    out: dict[str, Any] = {"name": required(fn, "name", str, f"{param}.function.name")}
    copy_optional(fn, out, {"description": str, "parameters": dict}, f"{param}.function")
    return out


def chat_response_format(value: Any) -> dict[str, Any] | None:
    """`format`: "json" → any JSON object; a JSON Schema → that schema (a grammar downstream)."""
    if value is None or value == "":
        return None
    if value == "json":
        return {"type": "json_object"}
    if isinstance(value, dict):
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": value}}
    raise TranslationError("Invalid value for 'format': expected \"json\" or a JSON Schema object.", param="format")


def think_kwargs(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"enable_thinking": value}
    if isinstance(value, str) and value in THINK_LEVELS:
        return {"enable_thinking": True, "reasoning_effort": value}
    raise TranslationError("Invalid value for 'think': expected true, false, or one of low, medium, high.",
                           param="think")


def _options(body: dict[str, Any], chat: dict[str, Any]) -> None:
    options = optional(body, "options", dict) or {}
    copy_in_range(options, chat, _OPTIONS, "options.")
    predict = optional(options, "num_predict", int, "options.num_predict")
    if predict is not None and predict > 0:  # -1 (no limit) and -2 (fill the context) leave it unset
        chat["max_tokens"] = predict
    stop = options.get("stop")
    if stop is not None:
        chat["stop"] = [stop] if isinstance(stop, str) else strings(stop, "options.stop")


def _tool_choice(body: dict[str, Any]) -> Any:
    """The `tool_choice` extension: OpenAI's values, top level or in `options`."""
    given = body.get("options")
    options: dict[str, Any] = given if isinstance(given, dict) else {}
    choice = body.get("tool_choice", options.get("tool_choice"))
    if choice is None or choice in ("none", "auto", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(
        (choice.get("function") or {}).get("name"), str
    ):
        return {"type": "function", "function": {"name": choice["function"]["name"]}}
    raise TranslationError(
        "Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or "
        '{"type": "function", "function": {"name": ...}}.',
        param="tool_choice",
    )


def _common(body: dict[str, Any], chat: dict[str, Any]) -> None:
    """Fields /api/chat and /api/generate share: format, think, options, stream."""
    if optional(body, "logprobs", bool):
        raise TranslationError("logprobs are not supported by this server.", param="logprobs")
    set_output(chat, chat_response_format(body.get("format")), think_kwargs(body.get("think")))
    _options(body, chat)


def _start(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise TranslationError("The request body must be a JSON object.")
    model = optional(body, "model", str)
    stream = optional(body, "stream", bool)
    chat: dict[str, Any] = {"stream": True if stream is None else stream}  # Ollama streams by default
    if model:
        chat["model"] = model
    return chat


def translate_chat(body: Any) -> dict[str, Any]:
    """An /api/chat body as a chat-completions body."""
    chat = _start(body)
    chat["messages"] = chat_messages(body.get("messages") or [])
    set_tools(chat, chat_tools(body.get("tools")), _tool_choice(body))
    _common(body, chat)
    return chat


def translate_generate(body: Any) -> dict[str, Any] | None:
    """An /api/generate body as a chat-completions body; None for an empty prompt (Ollama's 'load')."""
    chat = _start(body)
    for key, why in (("images", "this server runs text-only models"),
                     ("suffix", "fill-in-the-middle is not supported"),
                     ("raw", "raw prompts are not supported: use /v1/completions"),
                     ("template", "per-request templates are not supported: start the server with --chat-template"),
                     ("context", "the 'context' of an earlier reply is not supported: send the conversation to "
                                 "/api/chat")):
        if body.get(key) not in (None, False, "", []):
            raise TranslationError(f"'{key}' is not supported: {why}.", param=key)
    prompt = optional(body, "prompt", str) or ""
    if not prompt:
        return None
    system = optional(body, "system", str)
    chat["messages"] = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    _common(body, chat)
    return chat


# ---------------------------------------------------------------- chat reply → Ollama replies


def done_reason(finish_reason: str | None) -> str:
    return "length" if finish_reason == "length" else "stop"


def ollama_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": c["id"], "function": {"index": i, "name": c["function"]["name"],
                                         "arguments": arguments_object(c["function"]["arguments"])}}
            for i, c in enumerate(calls)]


def final_fields(finish_reason: str | None, usage: dict[str, Any] | None, elapsed_ns: int) -> dict[str, Any]:
    """The `done` fields: reason, token counts, durations (nanoseconds)."""
    usage = usage or {}
    return {
        "done": True,
        "done_reason": done_reason(finish_reason),
        "total_duration": elapsed_ns,
        "load_duration": 0,
        "prompt_eval_count": int(usage.get("prompt_tokens", 0)),
        "prompt_eval_duration": 0,
        "eval_count": int(usage.get("completion_tokens", 0)),
        "eval_duration": elapsed_ns,
    }


def chat_reply(completion: dict[str, Any], model: str, elapsed_ns: int) -> dict[str, Any]:
    """The /api/chat reply for a non-streamed chat.completion."""
    choice = completion["choices"][0]
    message = choice["message"]
    calls = message.get("tool_calls") or []
    out: dict[str, Any] = {"role": "assistant", "content": strip_for_calls(message.get("content"), bool(calls))}
    if message.get("reasoning_content"):
        out["thinking"] = message["reasoning_content"]
    if calls:
        out["tool_calls"] = ollama_calls(calls)
    return {"model": model, "created_at": now_iso(), "message": out,
            **final_fields(choice.get("finish_reason"), completion.get("usage"), elapsed_ns)}


def generate_reply(completion: dict[str, Any], model: str, elapsed_ns: int) -> dict[str, Any]:
    """The /api/generate reply for a non-streamed chat.completion."""
    choice = completion["choices"][0]
    message = choice["message"]
    out: dict[str, Any] = {"model": model, "created_at": now_iso(), "response": message.get("content") or ""}
    if message.get("reasoning_content"):
        out["thinking"] = message["reasoning_content"]
    return {**out, **final_fields(choice.get("finish_reason"), completion.get("usage"), elapsed_ns)}


def load_reply(model: str) -> dict[str, Any]:
    """/api/generate with an empty prompt: Ollama loads the model and says so."""
    return {"model": model, "created_at": now_iso(), "response": "", "done": True, "done_reason": "load"}


class OllamaStream(ChunkTranslator):
    """Translates one chat chunk stream into Ollama's NDJSON objects (chat or generate)."""

    def __init__(self, model: str, generate: bool = False) -> None:
        super().__init__()
        self.model = model
        self.generate = generate
        self._collected: list[dict[str, Any]] = []  # OpenAI calls being collected (Ollama sends each whole)
        self._sent_calls = 0
        self._started_ns = time.monotonic_ns()  # Ollama reports the durations in nanoseconds

    def _piece(self, content: str = "", thinking: str = "", calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        base = {"model": self.model, "created_at": now_iso()}
        if self.generate:
            out = {**base, "response": content, "done": False}
            if thinking:
                out["thinking"] = thinking
            return out
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if thinking:
            message["thinking"] = thinking
        if calls:
            message["tool_calls"] = calls
        return {**base, "message": message, "done": False}

    def _flush_calls(self) -> list[dict[str, Any]]:
        """One piece carrying the calls collected since the last one (each is complete by now)."""
        ready = self._collected[self._sent_calls:]
        if not ready:
            return []
        shaped = ollama_calls(self._collected)[self._sent_calls:]
        self._sent_calls = len(self._collected)
        return [self._piece(calls=shaped)]

    def _reasoning(self, text: str) -> list[dict[str, Any]]:
        return [self._piece(thinking=text)]

    def _content(self, text: str) -> list[dict[str, Any]]:
        return [self._piece(content=text)]

    def _call_start(self, call_id: str, name: str) -> list[dict[str, Any]]:
        out = self._flush_calls()  # the previous call is complete
        self._collected.append({"id": call_id, "function": {"name": name, "arguments": ""}})
        return out

    def _arguments(self, fragment: str) -> list[dict[str, Any]]:
        if self._collected:
            self._collected[-1]["function"]["arguments"] += fragment
        return []

    def start(self) -> list[dict[str, Any]]:
        return []  # Ollama's stream has no opening object

    def finish(self, elapsed_ns: int | None = None) -> list[dict[str, Any]]:
        """The held text, the last calls and the `done` object; `elapsed_ns` defaults to
        the time since this stream was made."""
        if elapsed_ns is None:
            elapsed_ns = time.monotonic_ns() - self._started_ns
        out = []
        rest = self._held_text()
        if rest:
            out.append(self._piece(content=rest))
        out += self._flush_calls()
        last = self._piece()
        last.update(final_fields(self._finish, self._usage, elapsed_ns))
        return out + [last]


# ---------------------------------------------------------------- model listing


def model_details(family: str, quantization: str, parameter_size: str) -> dict[str, Any]:
    return {"parent_model": "", "format": "gguf", "family": family, "families": [family] if family else None,
            "parameter_size": parameter_size, "quantization_level": quantization}


def tags_reply(name: str, size: int, modified: float, digest: str, details: dict[str, Any]) -> dict[str, Any]:
    when = _dt.datetime.fromtimestamp(modified, _dt.timezone.utc).isoformat().replace("+00:00", "Z")
    return {"models": [{"name": name, "model": name, "modified_at": when, "size": size, "digest": digest,
                        "details": details}]}


def show_reply(template: str, details: dict[str, Any], model_info: dict[str, Any], capabilities: list[str],
               modified: float) -> dict[str, Any]:
    when = _dt.datetime.fromtimestamp(modified, _dt.timezone.utc).isoformat().replace("+00:00", "Z")
    return {"modelfile": "", "parameters": "", "template": template, "details": details,
            "model_info": model_info, "capabilities": capabilities, "modified_at": when}
