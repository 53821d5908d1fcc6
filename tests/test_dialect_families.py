"""The model families beyond the first nine dialects: real-format outputs parse
right, whole and in any chunking, streaming and held; and what each dialect
writes for history (`format_calls`) parses back to the same calls — two
parallel calls, a parameterless one, awkward strings and nesting included.

Texts come from the research tables (llama.cpp tests/test-chat.cpp, §1.2) or
are cut from the corpus template's own rendering of an assistant turn.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from localtools.dialects import get_dialect
from tests.parser_cases import all_tools
from tests.test_parsers import _parse, _random_split, _split

NEW_DIALECTS = [
    "pythonic", "glm", "deepseek-r1", "deepseek-v3", "deepseek-v3.2", "kimi-k2", "minimax", "command-r7b",
    "granite", "nemotron", "apertus", "lfm2", "gpt-oss", "gemma4", "functiongemma", "minimax-m1", "apriel",
    "hunyuan", "seed-oss", "command-r", "phi4-mini", "xlam", "granite-20b-fc", "internlm", "qwen2.5-coder",
    "gigachat", "gigachat-3.1", "minicpm5", "yandexgpt", "hy3", "gigachat-3.5", "minicpm3", "hyperclovax",
    "solar", "minimax-m3", "kimi-k3",
]

W = "get_weather"
D = "get_current_date"

# (dialect, id, prompt_tail, text, tools, expected calls, expected content, expected reasoning)
CASES: list[tuple[str, str, str, str, list[str], list[tuple[str, dict]], str | None, str | None]] = [
    ("gemma4", "gemma4-llamacpp", "<|turn>model\n",
     '<|tool_call>call:get_time{city:<|"|>London<|"|>}<tool_call|>',
     ["get_time"], [("get_time", {"city": "London"})], None, None),
    ("gemma4", "gemma4-rendered-parallel", "<|turn>model\n",
     '<|tool_call>call:get_weather{city:<|"|>Paris, {FR}<|"|>,unit:<|"|>celsius<|"|>}<tool_call|>'
     "<|tool_call>call:get_current_date{}<tool_call|>",
     [W, D], [(W, {"city": "Paris, {FR}", "unit": "celsius"}), (D, {})], None, None),
    ("gemma4", "gemma4-thought-content-nested", "<|turn>model\n",
     "<|channel>thought\nPlan it.<channel|>Booking.<|tool_call>call:create_event{title:<|\"|>Sync<|\"|>,"
     'when:{date:<|"|>2026-11-23<|"|>},attendees:[<|"|>a@b.c<|"|>],options:{private:false,reminder_minutes:10}}<tool_call|>',
     ["create_event"], [("create_event", {"title": "Sync", "when": {"date": "2026-11-23"}, "attendees": ["a@b.c"],
                                          "options": {"private": False, "reminder_minutes": 10}})], "Booking.", "Plan it."),
    ("minimax-m1", "m1-rendered", "<beginning_of_sentence>ai name=assistant\n",
     '<tool_calls>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n{"name": "get_current_date", "arguments": {}}\n</tool_calls>',
     [W, D], [(W, {"city": "Paris"}), (D, {})], None, None),
    ("apriel", "apriel16-reasoning-forced-open", "\n<|begin_assistant|>\nHere are my reasoning steps:\n",
     "Look it up.\n[BEGIN FINAL RESPONSE]\n<tool_calls>[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, "
     '"id": "abcDEF123"}]</tool_calls>',
     [W], [(W, {"city": "Paris"})], None, "Look it up."),
    ("apriel", "apriel16-answer", "\n<|begin_assistant|>\nHere are my reasoning steps:\n",
     "Easy.\n[BEGIN FINAL RESPONSE]\nParis.\n[END FINAL RESPONSE]",
     [W], [], "Paris.", "Easy."),
    ("seed-oss", "seed-rendered", "<seed:bos>assistant\n",
     "<seed:think>Weather.</seed:think><seed:tool_call>\n<function=get_weather>\n<parameter=city>Paris</parameter>\n"
     "</function>\n</seed:tool_call>",
     [W], [(W, {"city": "Paris"})], None, "Weather."),
    ("command-r", "command-r-plus-llamacpp", "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>",
     'Action:\n```json\n[{"tool_name": "special_function", "parameters": {"arg1": 1}}]\n```',
     ["special_function"], [("special_function", {"arg1": 1})], None, None),
    ("command-r", "command-r-action-word-is-text", "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>",
     "Action: none needed.", [W], [], "Action: none needed.", None),
    ("phi4-mini", "phi4-llamacpp-rendered", "<|assistant|>",
     '<|tool_call|>{"name": "get_weather", "arguments": {"city": "Paris"}}<|/tool_call|>'
     '<|tool_call|>{"name": "get_current_date", "arguments": {}}<|/tool_call|>',
     [W, D], [(W, {"city": "Paris"}), (D, {})], None, None),
    ("phi4-mini", "phi4-vllm-functools", "<|assistant|>",
     'functools[{"name": "get_weather", "arguments": {"city": "Paris"}}]',
     [W], [(W, {"city": "Paris"})], None, None),
    ("xlam", "xlam-rendered", "<|im_start|>assistant\n",
     '[{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_current_date", "arguments": {}}]',
     [W, D], [(W, {"city": "Paris"}), (D, {})], None, None),
    ("xlam", "xlam-list-in-text-is-content", "<|im_start|>assistant\n",
     "[1, 2, 3] are numbers.", [W], [], "[1, 2, 3] are numbers.", None),
    ("internlm", "internlm-rendered", "<|im_start|>assistant\n",
     'Checking.<|action_start|><|plugin|>\n{"name": "get_weather", "arguments": {"city": "Paris"}}<|action_end|>',
     [W], [(W, {"city": "Paris"})], "Checking.", None),
    ("minicpm5", "minicpm5-rendered", "<|im_start|>assistant\n",
     '<function name="get_weather"><param name="city">Paris</param></function>\n<function name="get_current_date"></function>',
     [W, D], [(W, {"city": "Paris"}), (D, {})], None, None),
    ("functiongemma", "functiongemma-rendered", "<start_of_turn>model\n",
     "<start_function_call>call:get_weather{city:<escape>Paris<escape>}<end_function_call>",
     [W], [(W, {"city": "Paris"})], None, None),
    ("gigachat", "gigachat3-content-then-call", "assistant<|role_sep|>\n",
     'Let me check.<|message_sep|>\n\nfunction call<|role_sep|>\n{"name": "get_weather", "arguments": {"city": "Paris"}}',
     [W], [(W, {"city": "Paris"})], "Let me check.", None),
    ("yandexgpt", "yandex-call", "",
     '[TOOL_CALL_START]get_weather\n{"city": "Paris"}',
     [W], [(W, {"city": "Paris"})], None, None),
    ("hy3", "hy3-rendered", "<｜hy_Assistant:opensource｜><think:opensource></think:opensource>",
     "<tool_calls:opensource>\n<tool_call:opensource>get_weather<tool_sep:opensource>\n<arg_key:opensource>city"
     "</arg_key:opensource>\n<arg_value:opensource>Paris</arg_value:opensource>\n</tool_call:opensource>\n"
     "<tool_call:opensource>get_current_date<tool_sep:opensource>\n</tool_call:opensource>\n</tool_calls:opensource>",
     [W, D], [(W, {"city": "Paris"}), (D, {})], None, None),
    ("gigachat-3.5", "gcml-rendered", "assistant<|role_sep|>\n",
     '<｜GCML｜tool_calls>\n<｜GCML｜invoke name="special_function">\n'
     '<｜GCML｜parameter name="arg1" string="false">1</｜GCML｜parameter>\n</｜GCML｜invoke>\n</｜GCML｜tool_calls>',
     ["special_function"], [("special_function", {"arg1": 1})], None, None),
    ("minicpm3", "minicpm3-rendered", "<|im_start|>assistant\n",
     '<|tool_call_start|>\n```python\nget_weather(city="Paris")\nget_current_date()\n```\n<|tool_call_end|>',
     [W, D], [(W, {"city": "Paris"}), (D, {})], None, None),
    ("hyperclovax", "hyperclovax-rendered", "<|im_start|>assistant",
     ' -> tool/function_call\n[{"name": "get_weather", "arguments": {"city": "Paris"}}]',
     [W], [(W, {"city": "Paris"})], None, None),
    ("solar", "solar-rendered", "<|begin|>assistant",
     '<|tool_calls|><|tool_call:begin|>abcDEF123<|tool_call:name|>get_weather<|tool_call:args|>{"city": "Paris"}'
     "<|tool_call:end|><|tool_call:begin|>xyzXYZ987<|tool_call:name|>get_current_date<|tool_call:args|>{}"
     "<|tool_call:end|><|calls|>",
     [W, D], [(W, {"city": "Paris"}), (D, {})], None, None),
    ("minimax-m3", "m3-rendered", "]~b]ai\n<mm:think>",
     '</mm:think>]<]minimax[>[<tool_call>\n]<]minimax[>[<invoke name="get_weather">]<]minimax[>[<city>Paris'
     ']<]minimax[>[</city>]<]minimax[>[</invoke>\n]<]minimax[>[<invoke name="get_current_date">]<]minimax[>[</invoke>'
     "\n]<]minimax[>[</tool_call>",
     [W, D], [(W, {"city": "Paris"}), (D, {})], None, None),
    ("minimax-m3", "m3-typed-and-multiline", "]~b]ai\n<mm:think>",
     'Two.</mm:think>]<]minimax[>[<tool_call>\n]<]minimax[>[<invoke name="create_event">]<]minimax[>[<title>A\nB'
     ']<]minimax[>[</title>]<]minimax[>[<when>{"date": "2026-01-02"}]<]minimax[>[</when>]<]minimax[>[</invoke>'
     "\n]<]minimax[>[</tool_call>",
     ["create_event"], [("create_event", {"title": "A\nB", "when": {"date": "2026-01-02"}})], None, "Two."),
    ("kimi-k3", "k3-rendered", '<|open|>message role="assistant"<|sep|><|open|>think<|sep|>',
     "Check.<|close|>think<|sep|><|open|>response<|sep|>On it.<|close|>response<|sep|><|open|>tools<|sep|>"
     '<|open|>call tool="get_weather" index="1"<|sep|><|open|>argument key="city" type="string"<|sep|>1984'
     '<|close|>argument<|sep|><|close|>call<|sep|><|open|>call tool="special_function" index="2"<|sep|>'
     '<|open|>argument key="arg1" type="number"<|sep|>3<|close|>argument<|sep|><|close|>call<|sep|><|close|>tools<|sep|>',
     [W, "special_function"], [(W, {"city": "1984"}), ("special_function", {"arg1": 3})], "On it.", "Check."),
    ("deepseek-v3.2", "dsml-rendered-v32", "<｜Assistant｜></think>",
     '<｜DSML｜function_calls>\n<｜DSML｜invoke name="get_weather">\n'
     '<｜DSML｜parameter name="city" string="true">Paris</｜DSML｜parameter>\n'
     '</｜DSML｜invoke>\n<｜DSML｜invoke name="get_current_date">\n</｜DSML｜invoke>\n</｜DSML｜function_calls>',
     [W, D], [(W, {"city": "Paris"}), (D, {})], None, None),
    ("deepseek-v3.2", "dsml-v4-flags", "<｜Assistant｜><think>",
     'Need it.</think>Checking.\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="special_function">\n'
     '<｜DSML｜parameter name="arg1" string="false">1</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>',
     ["special_function"], [("special_function", {"arg1": 1})], "Checking.", "Need it."),
    ("deepseek-v3.2", "dsml-string-flag-wins-over-digits", "",
     '<｜DSML｜function_calls>\n<｜DSML｜invoke name="get_weather">\n'
     '<｜DSML｜parameter name="city" string="true">1984</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>',
     [W], [(W, {"city": "1984"})], None, None),
    ("nemotron", "nemotron-rendered", "<SPECIAL_11>Assistant\n",
     '<TOOLCALL>[{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_current_date", "arguments": {}}]</TOOLCALL>',
     [W, D], [(W, {"city": "Paris"}), (D, {})], None, None),
    ("nemotron", "nemotron-think", "<SPECIAL_11>Assistant\n<think>\n",
     'Weather.\n</think>\n<TOOLCALL>[{"name": "get_weather", "arguments": {"city": "Oslo"}}]</TOOLCALL>',
     [W], [(W, {"city": "Oslo"})], None, "Weather."),
    ("apertus", "apertus-llamacpp", "<|assistant_start|>",
     '<|tools_prefix|>[{"special_function": {"arg1": 1}}]<|tools_suffix|>',
     ["special_function"], [("special_function", {"arg1": 1})], None, None),
    ("apertus", "apertus-content-parallel", "<|assistant_start|>",
     'On it.<|tools_prefix|>[{"get_weather": {"city": "Paris"}}, {"get_current_date": {}}]<|tools_suffix|>',
     [W, D], [(W, {"city": "Paris"}), (D, {})], "On it.", None),
    ("lfm2", "lfm2-json-rendered", "<|im_start|>assistant\n",
     '<|tool_call_start|>[{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "abcDEF123"}, '
     '{"name": "get_current_date", "arguments": {}, "id": "xyzXYZ987"}]<|tool_call_end|>',
     [W, D], [(W, {"city": "Paris"}), (D, {})], None, None),
    ("pythonic", "olmo3-rendered-single-quotes", "<|im_start|>assistant\n",
     "<function_calls>\nget_weather(city='Paris', unit='celsius')\n</function_calls>",
     [W], [(W, {"city": "Paris", "unit": "celsius"})], None, None),
    ("pythonic", "json-literals-accepted", "",
     "[toggle(enabled=true), get_current_date()]",
     ["toggle", D], [("toggle", {"enabled": True}), (D, {})], None, None),
    ("pythonic", "unknown-tool-stays-content", "",
     "[delete_everything(now=True)]",
     [W], [], "[delete_everything(now=True)]", None),
    ("pythonic", "code-is-not-a-call", "",
     "[print(x) for x in range(3)]",
     [W], [], "[print(x) for x in range(3)]", None),
    ("gpt-oss", "gptoss-rendered-history", "<|start|>assistant",
     '<|channel|>analysis<|message|>Look it up.<|end|><|start|>assistant to=functions.get_weather'
     '<|channel|>commentary json<|message|>{"city": "Paris"}<|call|>',
     [W], [(W, {"city": "Paris"})], None, "Look it up."),
    ("gpt-oss", "gptoss-unknown-recipient-is-text", "<|start|>assistant",
     "<|channel|>final<|message|>Use to=functions.nope in harmony.",
     [W], [], "Use to=functions.nope in harmony.", None),
    ("command-r7b", "cohere2moe-text-wrapper", "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|><|START_THINKING|>",
     "Just answer.<|END_THINKING|><|START_TEXT|>Paris.<|END_TEXT|>",
     [W], [], "Paris.", "Just answer."),
    ("kimi-k2", "kimi-ids-from-header", "<|im_assistant|>assistant<|im_middle|>",
     "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:3<|tool_call_argument_begin|>"
     '{"city": "Rome"}<|tool_call_end|><|tool_calls_section_end|>',
     [W], [(W, {"city": "Rome"})], None, None),
    ("glm", "ling-think-then-call", "<role>ASSISTANT</role><think>",
     "Lookup.</think>\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n</tool_call>",
     [W], [(W, {"city": "Paris"})], None, "Lookup."),
    ("minimax", "m2-unknown-invoke-is-content", "]~b]ai\n",
     '<minimax:tool_call>\n<invoke name="rm_rf">\n<parameter name="path">/</parameter>\n</invoke>\n</minimax:tool_call>',
     [W], [], '<minimax:tool_call>\n<invoke name="rm_rf">\n<parameter name="path">/</parameter>\n</invoke>\n</minimax:tool_call>', None),
]


def _case(case: tuple) -> dict[str, Any]:
    dialect, cid, tail, text, tools, *_ = case
    return {"id": cid, "prompt_tail": tail, "text": text, "tools": tools}


def _calls(msg) -> list[tuple[str, dict]]:
    return [(c.name, json.loads(c.arguments_json)) for c in msg.tool_calls]


def _norm(text: str | None) -> str | None:
    return text.strip() or None if text else None


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_real_format_output_parses_right(case: tuple) -> None:
    dialect, _, _, text, _, calls, content, reasoning = case
    for stream in (False, True):
        msg = _parse(dialect, _case(case), [text], stream=stream)
        assert _calls(msg) == calls
        assert _norm(msg.content) == content
        assert _norm(msg.reasoning) == reasoning


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_real_format_output_is_chunking_invariant(case: tuple) -> None:
    dialect, _, _, text, *_ = case
    for stream in (False, True):
        whole = _parse(dialect, _case(case), [text], stream=stream)
        for chunks in [_split(text, n) for n in (1, 2, 3, 7)] + [_random_split(text, s) for s in range(3)]:
            msg = _parse(dialect, _case(case), chunks, stream=stream)
            assert (msg.content, msg.reasoning) == (whole.content, whole.reasoning)
            assert [(c.name, c.arguments_json, c.id) for c in msg.tool_calls] == [
                (c.name, c.arguments_json, c.id) for c in whole.tool_calls
            ]


def test_gemma4_broken_arguments_follow_the_streaming_policy() -> None:
    """Held: a call whose arguments are not Gemma syntax is content, whole.
    Streamed: the call was announced by name, so it is closed validly."""
    text = "<|tool_call>call:get_weather{city:Paris}<tool_call|>"
    case = {"id": "broken", "prompt_tail": "", "text": text, "tools": [W]}
    held = _parse("gemma4", case, _split(text, 3), stream=False)
    assert held.tool_calls == [] and held.content == text
    streamed = _parse("gemma4", case, _split(text, 3), stream=True)
    assert _calls(streamed) == [(W, {})]


def test_solar_reports_the_id_written_before_the_name() -> None:
    case = next(c for c in CASES if c[1] == "solar-rendered")
    for chunks in ([case[3]], _split(case[3], 1)):
        msg = _parse("solar", _case(case), chunks, stream=True)
        assert [c.id for c in msg.tool_calls] == ["abcDEF123", "xyzXYZ987"]


def test_kimi_reports_the_models_own_call_ids() -> None:
    case = next(c for c in CASES if c[1] == "kimi-ids-from-header")
    msg = _parse("kimi-k2", _case(case), [case[3]], stream=True)
    assert [c.id for c in msg.tool_calls] == ["functions.get_weather:3"]


# ---- round trip: what we write for history parses back to the same calls ----------

ROUND_TRIP_CALLS = [
    {"id": "call_1", "type": "function", "function": {"name": W, "arguments": {"city": "Paris", "unit": "celsius"}}},
    {"id": "call_2", "type": "function", "function": {"name": D, "arguments": "{}"}},
    {"id": "call_3", "type": "function", "function": {"name": "send_message", "arguments": {
        "to": "José Núñez", "text": 'He said "hi" \\ then left.\nLine two: café ☕, 東京 [x] (y) <z>'}}},
    {"id": "call_4", "type": "function", "function": {"name": "create_event", "arguments": {
        "title": "Team sync", "when": {"date": "2026-11-23", "time": "09:30"},
        "attendees": ["ana@example.com"], "options": {"reminder_minutes": 10, "private": False, "tags": []}}}},
    {"id": "call_5", "type": "function", "function": {"name": "toggle", "arguments": {"enabled": True}}},
]

# variants chosen by template: (dialect, marker put in a fake template, label)
VARIANTS = [(name, "", "default") for name in NEW_DIALECTS] + [
    ("pythonic", "[func_name1(", "bare"),
    ("pythonic", "<function_calls>", "olmo3"),
    ("deepseek-v3.2", "<｜DSML｜tool_calls>", "v4"),
]


def _expected_calls(calls: list[dict]) -> list[tuple[str, dict]]:
    out = []
    for call in calls:
        args = call["function"]["arguments"]
        out.append((call["function"]["name"], json.loads(args) if isinstance(args, str) else args))
    return out


@pytest.mark.parametrize("name,template,label", VARIANTS, ids=[f"{v[0]}:{v[2]}" for v in VARIANTS])
@pytest.mark.parametrize("n_calls", [1, 2, 5])
def test_format_calls_parses_back(name: str, template: str, label: str, n_calls: int) -> None:
    dialect = get_dialect(name).for_template(template) if template else get_dialect(name)
    calls = ROUND_TRIP_CALLS[:n_calls]
    text = dialect.format_calls(calls)
    tools = [all_tools()[c["function"]["name"]] for c in ROUND_TRIP_CALLS]
    for stream in (False, True):
        for chunks in ([text], _split(text, 1), _split(text, 5), _random_split(text, 7)):
            parser = dialect.parser(tools, "", stream=stream)
            from localtools.dialects import MessageBuilder

            builder = MessageBuilder()
            for chunk in chunks:
                builder.add(parser.feed(chunk))
            builder.add(parser.finish())
            msg = builder.build()
            assert _calls(msg) == _expected_calls(calls), text
            assert msg.content is None or not msg.content.strip(), (text, msg.content)


@pytest.mark.parametrize("name", NEW_DIALECTS)
def test_tool_prompt_shows_the_dialects_own_call_text(name: str) -> None:
    dialect = get_dialect(name)
    tools = [all_tools()[W]]
    example = dialect.format_calls([{"function": {"name": W, "arguments": {"argument": "value"}}}])
    prompt = dialect.tool_system_prompt(tools)
    assert prompt is not None and example in prompt


# ---- end to end: the real engine, constrained by the dialect's grammar -------------

E2E_DIALECTS = ["pythonic", "gemma4", "kimi-k3", "minimax-m3"]


@pytest.fixture(scope="module")
def engine(model_path):
    from localtools.engine import Engine, EngineConfig

    eng = Engine(EngineConfig(model_path=str(model_path), n_ctx=2048))
    yield eng
    eng.close()


@pytest.mark.parametrize("name", E2E_DIALECTS)
def test_grammar_constrained_output_parses_as_calls(engine, name: str) -> None:
    """tool_choice=required: whatever the tiny model writes under the dialect's
    grammar must parse back into calls to offered tools (grammar and parser agree)."""
    from tests.e2e_dialects import constrained_text

    tools = [all_tools()[W], all_tools()[D]]
    text = constrained_text(engine, get_dialect(name), tools, "What is the weather in Paris?", True, 80, 3)
    msg = _parse(name, {"prompt_tail": "", "tools": [W, D]}, [text], stream=False)
    assert msg.tool_calls, text
    for call in msg.tool_calls:
        assert call.name in (W, D)
        assert isinstance(json.loads(call.arguments_json), dict)
