"""OpenAI messages + tools -> the prompt text the model was trained on.

The model's own template renders what it can; what it cannot (tools, past
tool calls, tool results — found by probing the template once), the dialect
supplies: a tool system prompt, calls written in the dialect's syntax, tool
results as a user turn. Nothing a client sent is dropped on the way.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from localtools.dialects.base import Dialect

_PROBE_TOOL = "zzprobetoolzz"
_PROBE_CALL = "zzprobecallzz"
_PROBE_RESULT = "zzproberesultzz"
_PROBE_SYSTEM = "zzprobesystemzz"
_PROBE_ID = "abcdefghi"  # 9 alphanumerics: Mistral templates reject other ids


@dataclass(frozen=True)
class TemplateCaps:
    """What a chat template renders by itself (learned by rendering probes)."""

    renders_tools: bool
    renders_tool_calls: bool
    renders_tool_results: bool
    supports_system: bool


_CAPS_CACHE: dict[tuple[str, str], TemplateCaps] = {}


def _probe_tools() -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": _PROBE_TOOL,
                "description": "probe",
                "parameters": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            },
        }
    ]


def _renders(template: Any, needle: str, **kwargs: Any) -> bool:
    try:
        return needle in template.render(**kwargs)
    except Exception:  # a probe the template rejects means "cannot"
        return False


def probe_template(template: Any) -> TemplateCaps:
    """Probe once per template source what it renders."""
    key = (getattr(template, "name", ""), getattr(template, "source", str(id(template))))
    cached = _CAPS_CACHE.get(key)
    if cached is not None:
        return cached
    user = {"role": "user", "content": "hi"}
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": _PROBE_ID, "type": "function", "function": {"name": _PROBE_CALL, "arguments": {"a": "b"}}}
        ],
    }
    result = {"role": "tool", "tool_call_id": _PROBE_ID, "name": _PROBE_CALL, "content": _PROBE_RESULT}
    tools = _probe_tools() + [
        {"type": "function", "function": {"name": _PROBE_CALL, "description": "probe", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}}
    ]
    caps = TemplateCaps(
        renders_tools=_renders(template, _PROBE_TOOL, messages=[user], tools=tools, add_generation_prompt=True),
        renders_tool_calls=_renders(
            template, _PROBE_CALL, messages=[user, call, result], tools=tools, add_generation_prompt=True
        )
        or _renders(template, _PROBE_CALL, messages=[user, call], tools=tools, add_generation_prompt=False),
        renders_tool_results=_renders(
            template, _PROBE_RESULT, messages=[user, call, result], tools=tools, add_generation_prompt=True
        ),
        supports_system=_renders(
            template,
            _PROBE_SYSTEM,
            messages=[{"role": "system", "content": _PROBE_SYSTEM}, user],
            add_generation_prompt=True,
        ),
    )
    _CAPS_CACHE[key] = caps
    return caps


# ---------------------------------------------------------------------------
# message normalisation
# ---------------------------------------------------------------------------


def content_text(content: Any) -> str | None:
    """String content, or the text parts of a list content joined."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") in ("text", "input_text"):
                parts.append(str(part.get("text", "")))
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return str(content)


def _arguments_mapping(arguments: Any) -> Any:
    """Clients send arguments as a JSON string; templates expect a mapping."""
    if isinstance(arguments, str):
        try:
            value = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return arguments
        return value
    return arguments if arguments is not None else {}


def normalize_messages(messages: list[dict[str, Any]], dialect: Dialect) -> list[dict[str, Any]]:
    """OpenAI messages in the shape Hugging Face templates expect."""
    out: list[dict[str, Any]] = []
    names_by_id: dict[str, str] = {}
    for original in messages:
        msg = copy.deepcopy(original)
        role = msg.get("role")
        if role == "developer":
            msg["role"] = "system"
        if role == "function":  # legacy function result
            msg["role"] = "tool"
            msg.setdefault("tool_call_id", msg.get("name", ""))
        msg["content"] = content_text(msg.get("content"))
        if msg.get("tool_calls"):
            calls = []
            for call in msg["tool_calls"]:
                call = dict(call)
                fn = dict(call.get("function") or {})
                fn["arguments"] = _arguments_mapping(fn.get("arguments"))
                call["function"] = fn
                call.setdefault("type", "function")
                if call.get("id"):
                    names_by_id[call["id"]] = fn.get("name", "")
                    call["id"] = dialect.map_call_id(call["id"])
                calls.append(call)
            msg["tool_calls"] = calls
        elif "tool_calls" in msg:
            del msg["tool_calls"]
        if msg.get("function_call") and not msg.get("tool_calls"):  # legacy
            fc = msg.pop("function_call")
            msg["tool_calls"] = [
                {"id": "call_legacy", "type": "function",
                 "function": {"name": fc.get("name", ""), "arguments": _arguments_mapping(fc.get("arguments"))}}
            ]
        if msg["role"] == "tool":
            call_id = msg.get("tool_call_id") or ""
            if call_id and "name" not in msg and call_id in names_by_id:
                msg["name"] = names_by_id[call_id]
            if call_id:
                msg["tool_call_id"] = dialect.map_call_id(call_id)
        out.append(msg)
    return out


# ---------------------------------------------------------------------------
# what the template cannot do, the dialect does
# ---------------------------------------------------------------------------


def _inject_system(messages: list[dict[str, Any]], text: str, supports_system: bool) -> list[dict[str, Any]]:
    if supports_system:
        if messages and messages[0].get("role") == "system":
            first = dict(messages[0])
            first["content"] = f"{text}\n\n{first.get('content') or ''}".rstrip()
            return [first] + messages[1:]
        return [{"role": "system", "content": text}] + messages
    # no system role: put it at the top of the first user turn
    out = list(messages)
    for i, msg in enumerate(out):
        if msg.get("role") == "user":
            out[i] = dict(msg, content=f"{text}\n\n{msg.get('content') or ''}")
            return out
    return [{"role": "user", "content": text}] + out


def _calls_as_text(messages: list[dict[str, Any]], dialect: Dialect) -> list[dict[str, Any]]:
    out = []
    for msg in messages:
        if msg.get("role") == "assistant" and msg.get("tool_calls"):
            text = dialect.format_calls(msg["tool_calls"])
            content = msg.get("content") or ""
            msg = {k: v for k, v in msg.items() if k != "tool_calls"}
            msg["content"] = f"{content}\n{text}" if content else text
        out.append(msg)
    return out


def _results_as_text(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool results as a user turn (consecutive results merged), Hermes-style."""
    out: list[dict[str, Any]] = []
    for msg in messages:
        if msg.get("role") != "tool":
            out.append(msg)
            continue
        body = json.dumps({"name": msg.get("name", ""), "content": msg.get("content") or ""}, ensure_ascii=False)
        block = f"<tool_response>\n{body}\n</tool_response>"
        if out and out[-1].get("role") == "user" and out[-1].get("_tool_results"):
            out[-1] = dict(out[-1], content=out[-1]["content"] + "\n" + block)
        else:
            out.append({"role": "user", "content": block, "_tool_results": True})
    for msg in out:
        msg.pop("_tool_results", None)
    return out


def build_prompt(
    template: Any,  # localtools.templating.ChatTemplate
    dialect: Dialect,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    tool_choice: str | dict[str, Any] | None = None,
    template_kwargs: dict[str, Any] | None = None,
    tool_prompt: Any = None,  # a ChatTemplate-like object rendering `tools` (--tool-prompt)
) -> str:
    """Render the conversation and the generation prompt for the model."""
    caps = probe_template(template)
    msgs = normalize_messages(messages, dialect)
    tools = tools or None
    if tools and tool_choice != "none" and (not caps.renders_tools or tool_prompt is not None):
        if tool_prompt is not None:
            text = tool_prompt.render(messages=[], tools=tools, add_generation_prompt=False).strip()
        else:
            text = dialect.tool_system_prompt(tools) or ""
        if text:
            msgs = _inject_system(msgs, text, caps.supports_system)
    if not caps.renders_tool_calls and any(m.get("tool_calls") for m in msgs):
        msgs = _calls_as_text(msgs, dialect)
    if not caps.renders_tool_results and any(m.get("role") == "tool" for m in msgs):
        msgs = _results_as_text(msgs)
    pass_tools = tools if (tools and caps.renders_tools and tool_prompt is None) else None
    return template.render(
        messages=msgs,
        tools=pass_tools,
        add_generation_prompt=True,
        **(template_kwargs or {}),
    )
