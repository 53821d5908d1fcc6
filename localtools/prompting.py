"""OpenAI messages + tools -> the prompt text the model was trained on.

The model's own template renders what it can; what it cannot (tools, past
tool calls, tool results — found by probing the template once), the dialect
supplies: a tool system prompt, calls written in the dialect's syntax, tool
results as a user turn. Nothing a client sent is dropped on the way.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from localtools.analysis.probe import TemplateCaps, probe_template
from localtools.dialects.base import Dialect

__all__ = ["TemplateCaps", "build_prompt", "complete_tools", "content_text", "normalize_messages", "probe_template"]

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


def _one_call_per_turn(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For templates that render only one call per assistant turn: parallel
    calls become consecutive call/result pairs, so no call or result is lost."""
    out: list[dict[str, Any]] = []
    i = 0
    while i < len(messages):
        msg = messages[i]
        calls = msg.get("tool_calls") or []
        if msg.get("role") != "assistant" or len(calls) < 2:
            out.append(msg)
            i += 1
            continue
        j = i + 1
        results: list[dict[str, Any]] = []
        while j < len(messages) and messages[j].get("role") == "tool":
            results.append(messages[j])
            j += 1
        by_id = {r.get("tool_call_id"): r for r in results}
        used: set[int] = set()
        for k, call in enumerate(calls):
            out.append(dict(msg, content=msg.get("content") if k == 0 else None, tool_calls=[call]))
            result = by_id.get(call.get("id"))
            if result is None and k < len(results) and id(results[k]) not in used:
                result = results[k]
            if result is not None:
                used.add(id(result))
                out.append(result)
        out.extend(r for r in results if id(r) not in used)
        i = j
    return out


def _fold_system(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For templates without a system role: system text opens the next user turn."""
    out: list[dict[str, Any]] = []
    pending: list[str] = []
    for msg in messages:
        if msg.get("role") == "system":
            if msg.get("content"):
                pending.append(msg["content"])
            continue
        if pending and msg.get("role") == "user":
            msg = dict(msg, content="\n\n".join(pending + [msg.get("content") or ""]))
            pending = []
        out.append(msg)
    if pending:
        out.insert(0, {"role": "user", "content": "\n\n".join(pending)})
    return out


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


def complete_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tools with OpenAI's optional fields filled in (`description` "", `parameters` an
    empty object schema): many templates read `tool.description` or iterate
    `parameters.properties` and fail on a tool that sends only its name."""
    out = []
    for tool in tools:
        fn = tool.get("function")
        if isinstance(fn, dict) and (fn.get("description") is None or fn.get("parameters") is None):
            fn = {**fn, "description": fn.get("description") or "",
                  "parameters": fn.get("parameters") or {"type": "object", "properties": {}}}
            tool = {**tool, "function": fn}
        out.append(tool)
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
    extra = dialect.render_kwargs(tools or [])
    caps = probe_template(template, extra)
    msgs = normalize_messages(messages, dialect)
    tools = complete_tools(tools) if tools else None
    injected = False
    if tools and tool_choice != "none" and (not caps.renders_tools or tool_prompt is not None):
        injected = True
        if tool_prompt is not None:
            text = tool_prompt.render(messages=[], tools=tools, add_generation_prompt=False).strip()
        else:
            text = dialect.tool_system_prompt(tools) or ""
        if text:
            msgs = _inject_system(msgs, text, caps.supports_system)
    if not caps.renders_tool_calls and any(m.get("tool_calls") for m in msgs):
        msgs = _calls_as_text(msgs, dialect)
    elif caps.string_arguments:
        msgs = _arguments_as_json_text(msgs)
    elif not caps.renders_parallel_calls and any(len(m.get("tool_calls") or []) > 1 for m in msgs):
        msgs = _one_call_per_turn(msgs)
    if not caps.renders_tool_results and any(m.get("role") == "tool" for m in msgs):
        msgs = _results_as_text(msgs)
    if not caps.supports_system and any(m.get("role") == "system" for m in msgs):
        msgs = _fold_system(msgs)
    pass_tools = tools if (tools and tool_prompt is None and (caps.renders_tools or not injected)) else None
    kwargs = {**extra, **(template_kwargs or {})}
    return _render_leniently(template, msgs, pass_tools, kwargs)


def _arguments_as_json_text(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for msg in messages:
        if msg.get("tool_calls"):
            calls = []
            for call in msg["tool_calls"]:
                fn = dict(call.get("function") or {})
                if not isinstance(fn.get("arguments"), str):
                    fn["arguments"] = json.dumps(fn.get("arguments"), ensure_ascii=False)
                calls.append(dict(call, function=fn))
            msg = dict(msg, tool_calls=calls)
        out.append(msg)
    return out


def _render_leniently(
    template: Any, msgs: list[dict[str, Any]], tools: list[dict[str, Any]] | None, kwargs: dict[str, Any]
) -> str:
    """Render; on failure retry the two variants real templates trip over:
    a tool-call turn whose content is null (many expect a string) and a
    missing tool list (some iterate `tools` unconditionally)."""
    attempts = [(msgs, tools)]
    if any(m.get("role") == "assistant" and m.get("content") is None for m in msgs):
        blank = [dict(m, content="") if m.get("role") == "assistant" and m.get("content") is None else m for m in msgs]
        attempts.append((blank, tools))
    if tools is None:
        attempts += [(m, []) for m, _ in list(attempts)]
    first_error: Exception | None = None
    for candidate, candidate_tools in attempts:
        try:
            return template.render(messages=candidate, tools=candidate_tools, add_generation_prompt=True, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the first error is the one reported
            first_error = first_error or exc
    assert first_error is not None
    raise first_error
