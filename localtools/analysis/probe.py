"""The one template probe: probe values, and what a chat template renders by itself.

The probe values are unique tokens that cannot collide with template text,
so each can be found again in a render; ids are 9 alphanumerics because
Mistral templates reject any other id. Two callers ask two questions of the
same renders:

- analysis (`probe_capabilities`): does the template write calls at all, in
  any message shape it accepts? It renders with instrumented dicts and lists
  that record which keys and items the template reads: a template that never
  reads `tool_calls[1]` cannot render parallel calls, whatever its text says.
- prompt building (`probe_template` -> `TemplateCaps`): given messages in the
  shape we send them (a tool-call turn's content is null), does everything a
  client sent reach the prompt (the argument *values*, each result)? What does
  not, the dialect supplies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from localtools.analysis.render import Renderer

FUN_FIRST = "FFF_FIRST_FUN_F"
FUN_SECOND = "SSS_SECOND_FUN_S"
ARG_FIRST = "AA_ARG_FST_AA"
ARG_SECOND = "BB_ARG_SND_BB"
VALUE_X = "XXXX"
VALUE_Y = "YYYY"
NUMBER = 31415  # a non-string value, for templates that type each argument
USER_MSG = "U_USER_MSG Hello END_U"
ASSISTANT_MSG = "A_ASST_MSG I can help END_A"
SYSTEM_MSG = "S_SYSTEM_MSG Be brief END_S"
THINKING = "REASON_PART I am thinking END_R"
TOOL_RESULT = "R_TOOL_RESULT sunny END_R"
ID_FIRST = "call00001"
ID_SECOND = "call00002"
ID_OTHER = "call99999"


def probe_tools(describe_parameters: bool = True) -> list[dict[str, Any]]:
    """Two tools, each with two optional string parameters.

    `describe_parameters=False`: no parameter descriptions, the least a client sends
    (some templates fail without them, and then cannot render a client's tools either)."""
    params = {
        "type": "object",
        "properties": {
            ARG_FIRST: {"type": "string", "description": "first"},
            ARG_SECOND: {"type": "string", "description": "second"},
        },
        "required": [],
    }
    if not describe_parameters:
        params["properties"] = {name: {"type": "string"} for name in params["properties"]}
    return [
        {"type": "function", "function": {"name": name, "description": "probe tool", "parameters": params}}
        for name in (FUN_FIRST, FUN_SECOND)
    ]


def user(text: str = USER_MSG) -> dict[str, Any]:
    return {"role": "user", "content": text}


def call(
    name: str = FUN_FIRST,
    args: dict[str, Any] | None = None,
    call_id: str = ID_FIRST,
    string_args: bool = False,
) -> dict[str, Any]:
    arguments: Any = {ARG_FIRST: VALUE_X} if args is None else args
    if string_args:
        arguments = json.dumps(arguments, ensure_ascii=False)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_result(call_id: str = ID_FIRST, name: str = FUN_FIRST, content: str = TOOL_RESULT) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}


def assistant(
    content: str | None = ASSISTANT_MSG,
    calls: list[dict[str, Any]] | None = None,
    reasoning: str | None = None,
) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        msg["tool_calls"] = calls
    if reasoning is not None:
        msg["reasoning_content"] = reasoning
    return msg


# ---------------------------------------------------------------------------
# instrumented values
# ---------------------------------------------------------------------------


class _Log:
    def __init__(self) -> None:
        self.paths: set[str] = set()

    def saw(self, fragment: str) -> bool:
        return any(fragment in p for p in self.paths)


def _wrap(value: Any, path: str, log: _Log) -> Any:
    if isinstance(value, dict) and not isinstance(value, TrackedDict):
        return TrackedDict(value, path, log)
    if isinstance(value, list) and not isinstance(value, TrackedList):
        return TrackedList(value, path, log)
    return value


class TrackedDict(dict):
    """A dict that records every key read (`path.key`) and every iteration."""

    def __init__(self, data: dict[str, Any], path: str, log: _Log) -> None:
        super().__init__(data)
        self._lt_path = path
        self._lt_log = log

    def __getitem__(self, key: Any) -> Any:
        self._lt_log.paths.add(f"{self._lt_path}.{key}")
        return _wrap(super().__getitem__(key), f"{self._lt_path}.{key}", self._lt_log)

    def get(self, key: Any, default: Any = None) -> Any:
        self._lt_log.paths.add(f"{self._lt_path}.{key}")
        if key in self.keys():
            return _wrap(super().__getitem__(key), f"{self._lt_path}.{key}", self._lt_log)
        return default

    def items(self) -> Any:
        self._lt_log.paths.add(f"{self._lt_path}.items()")
        return [(k, _wrap(v, f"{self._lt_path}.{k}", self._lt_log)) for k, v in super().items()]

    def values(self) -> Any:
        self._lt_log.paths.add(f"{self._lt_path}.items()")
        return [_wrap(v, f"{self._lt_path}.{k}", self._lt_log) for k, v in super().items()]

    def __iter__(self) -> Iterator[Any]:
        self._lt_log.paths.add(f"{self._lt_path}.items()")
        return super().__iter__()


class TrackedList(list):
    """A list that records which items are read (`path[i]`), slices included."""

    def __init__(self, data: list[Any], path: str, log: _Log, indices: list[int] | None = None) -> None:
        super().__init__(data)
        self._lt_path = path
        self._lt_log = log
        self._lt_indices = indices if indices is not None else list(range(len(data)))

    def _lt_item(self, i: int, value: Any) -> Any:
        path = f"{self._lt_path}[{self._lt_indices[i]}]"
        self._lt_log.paths.add(path)
        return _wrap(value, path, self._lt_log)

    def __getitem__(self, index: Any) -> Any:
        value = super().__getitem__(index)
        if isinstance(index, slice):
            picked = range(len(self))[index]
            return TrackedList(value, self._lt_path, self._lt_log, [self._lt_indices[i] for i in picked])
        if isinstance(index, int):
            return self._lt_item(index if index >= 0 else len(self) + index, value)
        return value

    def __iter__(self) -> Iterator[Any]:
        for i, value in enumerate(super().__iter__()):
            yield self._lt_item(i, value)

    def __reversed__(self) -> Iterator[Any]:
        for i in range(len(self) - 1, -1, -1):
            yield self._lt_item(i, super().__getitem__(i))


def _traced_render(
    render: Renderer, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, **kwargs: Any
) -> tuple[str | None, _Log]:
    log = _Log()
    msgs = TrackedList(messages, "messages", log)
    tracked_tools = TrackedList(tools, "tools", log) if tools is not None else None
    return render(msgs, tracked_tools, **kwargs), log


def probe_capabilities(render: Renderer) -> dict[str, bool]:
    """What the template does with tools, calls, system prompts and reasoning."""
    tools = probe_tools()
    caps: dict[str, bool] = {}

    out, log = _traced_render(render, [user()], tools, add_generation_prompt=True)
    caps["reads_tools"] = out is not None and out != "" and (FUN_FIRST in out or log.saw("tools[0].function.name"))

    one_text: str | None = None
    log1, string_args = _Log(), False
    used_tools: list[dict[str, Any]] | None = tools
    for string_args, used_tools in ((False, None), (False, tools), (True, None), (True, tools)):
        one_text, log1 = _traced_render(render, [user(), assistant("", [call(string_args=string_args)])], used_tools)
        if one_text is None:
            one_text, log1 = _traced_render(
                render, [user(), assistant(None, [call(string_args=string_args)])], used_tools
            )
        if one_text and _names_in(render, one_text, used_tools) and f"'{ARG_FIRST}'" not in one_text:
            break
    caps["renders_tool_calls"] = bool(one_text) and _names_in(render, one_text or "", used_tools)
    two = [call(FUN_FIRST, string_args=string_args), call(FUN_SECOND, {ARG_FIRST: VALUE_Y}, ID_SECOND, string_args)]
    two_text, _ = _traced_render(render, [user(), assistant("", two)], used_tools)
    caps["parallel_calls"] = (
        caps["renders_tool_calls"]
        and two_text is not None
        and FUN_SECOND in two_text.replace(_tools_text(render, used_tools), "")
    )
    caps["object_arguments"] = caps["renders_tool_calls"] and not string_args and (
        log1.saw("function.arguments.items()")
        or log1.saw(f"function.arguments.{ARG_FIRST}")
        or f'"{ARG_FIRST}"' in (one_text or "")
    )
    sys_text = render([{"role": "system", "content": SYSTEM_MSG}, user()], None, add_generation_prompt=True)
    caps["system_role"] = sys_text is not None and SYSTEM_MSG in sys_text
    caps["reasoning"] = _renders_reasoning(render)
    return caps


def _names_in(render: Renderer, text: str, tools: list[dict[str, Any]] | None) -> bool:
    """The call's name is in the render beyond what the tool list put there."""
    return FUN_FIRST in text.replace(_tools_text(render, tools), "")


def _tools_text(render: Renderer, tools: list[dict[str, Any]] | None) -> str:
    """The part of a render that only the tool list produces (to discount it)."""
    if not tools:
        return "\0"
    with_tools = render([user()], tools, add_generation_prompt=False) or ""
    without = render([user()], None, add_generation_prompt=False) or ""
    from localtools.analysis.diff import diff_split

    return diff_split(without, with_tools).right or "\0"


def _renders_reasoning(render: Renderer) -> bool:
    text = render([user(), assistant(ASSISTANT_MSG, reasoning=THINKING)], None)
    if text and THINKING in text:
        return True
    on = render([user()], None, add_generation_prompt=True, enable_thinking=True)
    off = render([user()], None, add_generation_prompt=True, enable_thinking=False)
    return on is not None and off is not None and on != off


# ---------------------------------------------------------------------------
# what prompt building needs: TemplateCaps
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateCaps:
    """What a chat template renders by itself, for messages in the shape prompting sends."""

    renders_tools: bool
    renders_tool_calls: bool  # the call's argument values reach the prompt
    renders_tool_results: bool
    supports_system: bool
    renders_parallel_calls: bool = True
    string_arguments: bool = False  # prints call arguments as given: a mapping would come out as a Python repr


_CAPS_CACHE: dict[tuple[Any, ...], TemplateCaps] = {}


def template_renderer(template: Any, extra: dict[str, Any] | None = None) -> Renderer:
    """A Renderer (None on failure) over a ChatTemplate-like object, with `extra` render kwargs."""
    fixed = dict(extra or {})

    def render(
        messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = False, **kwargs: Any,
    ) -> str | None:
        try:
            return template.render(messages=messages, tools=tools, add_generation_prompt=add_generation_prompt,
                                   **kwargs, **fixed)
        except Exception:  # a probe the template rejects means "cannot"
            return None

    return render


def _shows(text: str | None, needle: str) -> bool:
    return text is not None and needle in text


def probe_template(template: Any, extra: dict[str, Any] | None = None) -> TemplateCaps:
    """Probe once per template source what it renders (`extra`: the dialect's render kwargs)."""
    extra = extra or {}
    key = (getattr(template, "name", ""), getattr(template, "source", str(id(template))), tuple(sorted(extra)))
    cached = _CAPS_CACHE.get(key)
    if cached is not None:
        return cached
    render = template_renderer(template, extra)
    tools = probe_tools(describe_parameters=False)
    one = assistant(None, [call()])  # content null: the shape prompting sends
    two = assistant(None, [call(), call(FUN_SECOND, {ARG_FIRST: VALUE_Y}, ID_SECOND)])
    two_results = [tool_result(), tool_result(ID_SECOND, FUN_SECOND, "x")]
    caps = TemplateCaps(
        renders_tools=_shows(render([user()], tools, add_generation_prompt=True), FUN_FIRST),
        renders_tool_calls=_shows(render([user(), one, tool_result()], tools, add_generation_prompt=True), VALUE_X)
        or _shows(render([user(), one], tools), VALUE_X),
        renders_tool_results=_shows(render([user(), one, tool_result()], tools, add_generation_prompt=True), TOOL_RESULT),
        supports_system=_shows(
            render([{"role": "system", "content": SYSTEM_MSG}, user()], add_generation_prompt=True), SYSTEM_MSG
        ),
        renders_parallel_calls=_shows(render([user(), two, *two_results], tools, add_generation_prompt=True), VALUE_Y),
    )
    if caps.renders_tool_calls:
        caps = replace(caps, string_arguments=_wants_string_arguments(render, one, tools))
    _CAPS_CACHE[key] = caps
    return caps


def _wants_string_arguments(render: Renderer, one: dict[str, Any], tools: list[dict[str, Any]]) -> bool:
    """A template that writes `{{ arguments }}` shows a mapping as `{'a': 'x'}`
    (vLLM's Phi-4-mini and InternLM2 examples): it wants the JSON string."""
    as_text = assistant(None, [call(string_args=True)])
    return _shows(render([user(), one], tools), f"'{ARG_FIRST}': '{VALUE_X}'") and _shows(
        render([user(), as_text], tools), f'"{ARG_FIRST}": "{VALUE_X}"'
    )
