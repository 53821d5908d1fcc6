"""Every real template in ../shared/templates renders a full tool round trip
(user -> two parallel calls -> two results -> answer -> user) with the detected
dialect: the tools, both calls and both results reach the prompt — or the
template fails with a clear, named TemplateError. Counts are reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localtools.dialects import detect, get_dialect
from localtools.prompting import build_prompt, probe_template
from localtools.templating import ChatTemplate, TemplateError
from tests.conftest import SHARED_TEMPLATES, corpus_templates

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Local time in a timezone",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
        },
    },
]

CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Weather in Paris and the time in Tokyo?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_w1", "type": "function",
             "function": {"name": "get_weather", "arguments": json.dumps({"city": "ARGCITY_LYON_7"})}},
            {"id": "call_t2", "type": "function",
             "function": {"name": "get_time", "arguments": json.dumps({"tz": "ARGZONE_TOKYO_9"})}},
        ],
    },
    {"role": "tool", "tool_call_id": "call_w1", "content": "RESULT_WEATHER_18C"},
    {"role": "tool", "tool_call_id": "call_t2", "content": "RESULT_TIME_0930"},
    {"role": "assistant", "content": "It is 18C in Paris and 09:30 in Tokyo."},
    {"role": "user", "content": "Thanks!"},
]

TEMPLATES = corpus_templates()
_RESULTS: dict[str, str] = {}


def _rel(path: Path) -> str:
    return str(path.relative_to(SHARED_TEMPLATES))


@pytest.mark.parametrize("path", TEMPLATES, ids=[_rel(p) for p in TEMPLATES])
def test_round_trip_renders_or_fails_clearly(path: Path) -> None:
    source = path.read_text()
    name = _rel(path)
    dialect = get_dialect(detect(source).dialect).for_template(source)
    try:
        template = ChatTemplate(source, name=name, bos_token="<s>", eos_token="</s>")
        prompt = build_prompt(template, dialect, CONVERSATION, TOOLS, "auto")
    except TemplateError as exc:
        assert name in str(exc)
        _RESULTS[name] = "error"
        return
    caps = probe_template(template)
    if "Weather in Paris and the time in Tokyo?" not in prompt:
        # not a chat template: a system-prompt fragment that renders no messages
        _RESULTS[name] = "not-a-chat-template"
        return
    if "It is 18C in Paris" not in prompt:
        # the template drops assistant turns altogether (a template defect: vLLM's granite example)
        _RESULTS[name] = "drops-assistant-turns"
        return
    # the call arguments are values that appear nowhere else, so a dropped call is seen
    for needle in ("get_weather", "get_time", "ARGCITY_LYON_7", "ARGZONE_TOKYO_9", "RESULT_WEATHER_18C", "RESULT_TIME_0930"):
        assert needle in prompt, f"{needle!r} missing from the prompt of {name} ({dialect.name}, {caps})"
    # OpenAI makes `description` and `parameters` optional: a tool sent by name alone
    # must render too (many templates read tool.description / parameters.properties)
    bare = [{"type": "function", "function": {"name": "bare_named_tool"}}]
    prompt = build_prompt(template, dialect, CONVERSATION[:2], bare, "auto")
    assert "bare_named_tool" in prompt, f"a name-only tool is missing from the prompt of {name}"
    _RESULTS[name] = "ok"


def test_zz_report_counts() -> None:
    if not _RESULTS:
        pytest.skip("round-trip tests did not run")
    ok = sum(1 for v in _RESULTS.values() if v == "ok")
    errors = sorted(k for k, v in _RESULTS.items() if v == "error")
    fragments = sorted(k for k, v in _RESULTS.items() if v == "not-a-chat-template")
    dropping = sorted(k for k, v in _RESULTS.items() if v == "drops-assistant-turns")
    print(f"\n{ok}/{len(_RESULTS)} corpus templates render the tool round trip; "
          f"{len(errors)} fail with a named TemplateError: {errors}; "
          f"{len(fragments)} render no messages at all (not chat templates): {fragments}; "
          f"{len(dropping)} drop every assistant turn: {dropping}")
    assert ok >= 158, "fewer corpus templates render the round trip than before"


STRING_ARGUMENT_TEMPLATES = [
    "functionary-repo/qwen2.5.jinja",
    "vllm-examples/tool_chat_template_internlm2_tool.jinja",
    "vllm-examples/tool_chat_template_phi4_mini.jinja",
]


@pytest.mark.parametrize("name", STRING_ARGUMENT_TEMPLATES)
def test_template_printing_arguments_as_given_gets_json_text(name: str) -> None:
    """`{{ call.arguments }}` shows a mapping as a Python repr; the model must see
    the JSON its own calls are written in."""
    source = (SHARED_TEMPLATES / name).read_text()
    template = ChatTemplate(source, name=name)
    assert probe_template(template).string_arguments
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call00001", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "c"}'}}]},
        {"role": "tool", "tool_call_id": "call00001", "content": "18C"},
    ]
    prompt = build_prompt(template, get_dialect(detect(source).dialect), messages, TOOLS)
    assert '"city": "Paris", "unit": "c"' in prompt
    assert "'city': 'Paris'" not in prompt


def test_templates_that_read_a_mapping_keep_getting_one() -> None:
    counted = [p for p in corpus_templates() if _string_arguments(p)]
    assert sorted(str(p.relative_to(SHARED_TEMPLATES)) for p in counted) == STRING_ARGUMENT_TEMPLATES


def _string_arguments(path: Path) -> bool:
    try:
        return probe_template(ChatTemplate(path.read_text(), name=path.name)).string_arguments
    except TemplateError:
        return False
