"""Template analysis: a DialectSpec inferred from a chat template alone must
parse what that template renders as an assistant's tool calls (round trip),
parse the recorded outputs of the dialects hand-written modules cover, and
handle a template whose syntax no module knows."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from localtools.analysis import TemplateAnalysis, analyze_template
from localtools.analysis.analyze import assistant_turn_text
from localtools.analysis.diff import diff_split, segmentize_markers
from localtools.analysis.render import make_renderer
from localtools.dialects import detect, parse_all
from localtools.dialects.specdialect import SpecDialect
from tests.conftest import DATA, SHARED_TEMPLATES, corpus_templates

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "create_event",
            "description": "Create a calendar event",
            "parameters": {
                "type": "object",
                "properties": {
                    "title": {"type": "string", "description": "title"},
                    "seats": {"type": "integer", "description": "number of seats"},
                    "when": {
                        "type": "object",
                        "description": "date and time",
                        "properties": {"date": {"type": "string"}, "time": {"type": "string"}},
                    },
                },
                "required": ["title"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "city"},
                    "days": {"type": "number", "description": "how many days"},
                },
                "required": ["city"],
            },
        },
    },
]

# Command R+'s template types an object parameter through its additionalProperties
# and fails without it; the call syntax is what is under test, so it gets these.
TOOLS_MAPS_TYPED = json.loads(
    json.dumps(TOOLS).replace('"type": "object", "description": "date and time"',
                              '"type": "object", "additionalProperties": {"type": "string"}, "description": "date and time"')
)
assert TOOLS_MAPS_TYPED != TOOLS

CALLS = [
    ("create_event", {"title": "Team lunch, Friday", "seats": 12, "when": {"date": "2025-03-07", "time": "12:30"}}),
    ("get_weather", {"city": "São Paulo", "days": 2.5}),
]
USER = "Plan lunch and check the weather."


def _calls(n: int, string_args: bool) -> list[dict[str, Any]]:
    out = []
    for i, (name, args) in enumerate(CALLS[:n]):
        arguments: Any = json.dumps(args, ensure_ascii=False) if string_args else args
        out.append({"id": f"call0000{i + 1}", "type": "function", "function": {"name": name, "arguments": arguments}})
    return out


def assistant_turn(source: str, analysis: TemplateAnalysis, n_calls: int) -> str | None:
    """What the template renders for an assistant turn with calls, after the
    generation prompt and before the end-of-turn marker."""
    render = make_renderer(source)
    assert render is not None
    string_args = not analysis.caps["object_arguments"]
    history = [{"role": "user", "content": USER}]
    full = None
    for tools in (TOOLS, TOOLS_MAPS_TYPED, None):
        for content in ("", None):
            message = {"role": "assistant", "content": content, "tool_calls": _calls(n_calls, string_args)}
            full = render(history + [message], tools)
            if full is not None:
                break
        if full is not None:
            break
    end = analysis.evidence.get("end_of_turn", "")
    return assistant_turn_text(render, history, full, tools, analysis.generation_prompt, end)


def round_trips(path: Path) -> bool | None:
    """None: the template renders no tool calls; else whether the spec parses them back."""
    source = path.read_text()
    analysis = analyze_template(source)
    if not analysis.caps["renders_tool_calls"]:
        return None
    if analysis.spec is None:
        return False
    n = 2 if analysis.caps["parallel_calls"] else 1
    turn = assistant_turn(source, analysis, n)
    if turn is None:
        return False
    parser = SpecDialect(analysis.spec).parser(TOOLS, prompt_tail=analysis.generation_prompt, stream=False)
    parsed = parse_all(parser, turn)
    got = [(c.name, c.arguments) for c in parsed.tool_calls]
    return got == [(name, args) for name, args in CALLS[:n]]


TEMPLATES = corpus_templates()

# Reached on the corpus of 164 templates (115 of them render tool calls); the count may
# grow, never shrink: every template that renders calls must round-trip, except these.
MIN_ROUND_TRIPS = 114
TEMPLATE_BUGS = {
    # '"%sr" | format(v)' (meant as %r) writes a stray 'r' after every value
    "vllm-examples/tool_chat_template_toolace.jinja": "the template writes a stray 'r' after every value",
}


def _rel(path: Path) -> str:
    return str(path.relative_to(SHARED_TEMPLATES))


def _corpus_case(path: Path) -> Any:
    bug = TEMPLATE_BUGS.get(_rel(path))
    marks = [pytest.mark.xfail(reason=bug, strict=True)] if bug else []
    return pytest.param(path, id=_rel(path), marks=marks)


@pytest.mark.parametrize("path", [_corpus_case(p) for p in TEMPLATES])
def test_corpus_template_analysis(path: Path) -> None:
    """A template that renders tool calls is read back by its analysed description."""
    assert round_trips(path) is not False, "the analysed description does not parse this template's own calls"


def test_whole_corpus_analysis_is_quick_and_cached() -> None:
    """All 164 templates analyse without raising; a second pass hits the cache."""
    from localtools.analysis import analyze as analyze_module

    sources = [p.read_text() for p in TEMPLATES]
    analyze_module._CACHE.clear()  # measure a cold pass
    started = time.perf_counter()
    first = [analyze_template(s) for s in sources]
    total = time.perf_counter() - started
    started = time.perf_counter()
    second = [analyze_template(s) for s in sources]
    cached = time.perf_counter() - started
    print(f"\nanalysed {len(sources)} templates in {total:.2f}s (cached pass {cached:.3f}s)")
    assert [a.spec for a in first] == [a.spec for a in second]
    assert sum(a.spec is not None for a in first) >= MIN_ROUND_TRIPS


def test_analysis_of_broken_or_hostile_templates_never_raises() -> None:
    for source in ("{% for %}", "{{ ''.__class__.__mro__ }}", "{{ raise_exception('no') }}", ""):
        result = analyze_template(source)
        assert result.spec is None
        assert result.notes


# ---------------------------------------------------------------------------
# recorded outputs of the dialects hand-written modules cover
# ---------------------------------------------------------------------------

OUTPUT_TOOLS = json.loads((DATA / "outputs" / "tools.json").read_text())
_NOT_WELL_FORMED = {"malformed", "lenient", "unknown-tool", "raw-python", "builtin"}

# (template, recorded-output file, case-id prefixes of the template's variant; () = all)
RECORDED = [
    ("Qwen-Qwen3-0.6B.jinja", "hermes", ()),
    ("NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", "hermes", ("hermes",)),
    ("Qwen3.5-4B.jinja", "qwen3-coder", ()),
    ("mistralai-Mistral-Nemo-Instruct-2407.jinja", "mistral", ("v03-", "nemo-")),
    ("Mistral-Small-3.2-24B-Instruct-2506.jinja", "mistral", ("small32-", "devstral-")),
    ("meetkai-functionary-medium-v3.1.jinja", "functionary-v3.1", ()),
    ("meetkai-functionary-medium-v3.2.jinja", "functionary-v3", ()),
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", "llama3", ()),
    ("GLM-4.6.jinja", "glm", ()),
    ("llama-cpp-deepseek-r1.jinja", "deepseek-r1", ()),
    ("deepseek-ai-DeepSeek-V3.1.jinja", "deepseek-v3", ()),
    ("moonshotai-Kimi-K2.jinja", "kimi-k2", ()),
]


def _recorded_cases(dialect: str, prefixes: tuple[str, ...]) -> list[dict[str, Any]]:
    cases = json.loads((DATA / "outputs" / f"{dialect}.json").read_text())
    return [
        c for c in cases
        if not (_NOT_WELL_FORMED & set(c["tags"])) and (not prefixes or c["id"].startswith(prefixes))
    ]


@pytest.mark.parametrize(("template", "dialect", "prefixes"), RECORDED, ids=[f"{d}:{t}" for t, d, _ in RECORDED])
def test_analysed_spec_parses_recorded_outputs(template: str, dialect: str, prefixes: tuple[str, ...]) -> None:
    analysis = analyze_template((SHARED_TEMPLATES / template).read_text())
    assert analysis.spec is not None, analysis.notes
    cases = _recorded_cases(dialect, prefixes)
    assert cases
    if analysis.spec.reasoning is None:  # a template without reasoning: its model writes none
        cases = [c for c in cases if "reasoning" not in c["tags"] and not c["expected"]["reasoning"]]
    for case in cases:
        expected = case["expected"]
        _assert_parses(
            analysis, case["id"], case["prompt_tail"], case["text"], [OUTPUT_TOOLS[name] for name in case["tools"]],
            [(c["name"], c["arguments"]) for c in expected["tool_calls"]], expected["content"], expected["reasoning"],
        )


def _assert_parses(
    analysis: TemplateAnalysis, case_id: str, tail: str, text: str, tools: list[dict[str, Any]],
    calls: list[tuple[str, Any]], content: str | None, reasoning: str | None,
) -> None:
    parser = SpecDialect(analysis.spec).parser(tools, prompt_tail=tail, stream=False)  # type: ignore[arg-type]
    parsed = parse_all(parser, text)
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == calls, case_id
    assert (parsed.content or "").strip() == (content or "").strip(), case_id
    assert (parsed.reasoning or "").strip() == (reasoning or "").strip(), case_id


# the real-format outputs of the model families' tests, under the spec analysed
# from that family's template: (dialect, template, case ids)
FAMILY = [
    ("gemma4", "google-gemma-4-31B-it.jinja", ()),
    ("functiongemma", "vllm-examples/tool_chat_template_functiongemma.jinja", ()),
    ("seed-oss", "ByteDance-Seed-OSS.jinja", ()),
    ("minicpm5", "openbmb-MiniCPM5-1B.jinja", ()),
    ("minicpm3", "vllm-examples/tool_chat_template_minicpm3.jinja", ()),
    ("gigachat-3.5", "llama.cpp-older/GigaChat3.5.jinja", ()),
    ("solar", "upstage-Solar-Open-100B.jinja", ()),
    ("minimax", "MiniMax-M2.jinja", ()),
    ("minimax-m3", "MiniMax-M3.jinja", ()),
    ("kimi-k3", "Kimi-K3.jinja", ()),
    ("deepseek-v3.2", "deepseek-ai-DeepSeek-V3.2.jinja", ("dsml-rendered-v32", "dsml-string-flag-wins-over-digits")),
    ("deepseek-v3.2", "deepseek-ai-DeepSeek-V4.jinja", ("dsml-v4-flags",)),
    ("command-r", "CohereForAI-c4ai-command-r-plus-tool_use.jinja", ()),
    ("pythonic", "vllm-examples/tool_chat_template_olmo3.jinja", ("olmo3-rendered-single-quotes",)),
]


@pytest.mark.parametrize(("dialect", "template", "ids"), FAMILY, ids=[f"{d}:{t}" for d, t, _ in FAMILY])
def test_analysed_spec_parses_family_outputs(dialect: str, template: str, ids: tuple[str, ...]) -> None:
    from tests.parser_cases import all_tools
    from tests.test_dialect_families import CASES

    analysis = analyze_template((SHARED_TEMPLATES / template).read_text())
    assert analysis.spec is not None, analysis.notes
    cases = [c for c in CASES if c[0] == dialect and (not ids or c[1] in ids)]
    assert cases
    tools = all_tools()
    for _, case_id, tail, text, names, calls, content, reasoning in cases:
        _assert_parses(analysis, case_id, tail, text, [tools[n] for n in names], calls, content, reasoning)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # a type flag beside each argument's name: string="true" is raw text, else JSON
        ("deepseek-ai-DeepSeek-V3.2.jinja", {"shape": "tagged", "arg_flag_sep": '" string="', "arg_name_suffix": '">'}),
        # the call numbered in its header (index="1"), every tag ended by <|sep|>, reasoning in an element
        ("Kimi-K3.jinja", {"name_suffix": '"', "args_start": "<|sep|>", "section_end": "<|close|>tools<|sep|>",
                           "strip_markers": ("<|open|>response<|sep|>", "<|close|>response<|sep|>")}),
        # the call id before the name
        ("upstage-Solar-Open-100B.jinja", {"id_first": True, "call_start": "<|tool_call:begin|>",
                                           "name_prefix": "<|tool_call:name|>"}),
        # bare keys, strings in a quote token
        ("google-gemma-4-31B-it.jinja", {"shape": "tag_json", "args_string_quote": '<|"|>', "name_prefix": "call:"}),
        # a value's closing tag names its key, a namespace glued before every tag
        ("MiniMax-M3.jinja", {"arg_value_suffix": "]<]minimax[>[</{key}>", "arg_name_prefix": "]<]minimax[>[<"}),
        # Python calls: one a line in markers, or a bracketed list with none
        ("vllm-examples/tool_chat_template_olmo3.jinja", {"shape": "python", "section_start": "<function_calls>\n",
                                                          "call_sep": "\n"}),
        ("vllm-examples/tool_chat_template_llama3.2_pythonic.jinja", {"shape": "python", "bare_json": True,
                                                                      "call_sep": ", "}),
    ],
)
def test_analysis_reads_the_syntax_off_the_template(template: str, expected: dict[str, Any]) -> None:
    spec = analyze_template((SHARED_TEMPLATES / template).read_text()).spec
    assert spec is not None
    assert {k: getattr(spec, k) for k in expected} == expected


MUSE_OUTPUTS = [  # what a model taught by the Muse Glimmer template writes after "<|start|>assistant"
    (' to=self<|message|>Need weather.<|eom|><|start|>assistant to=get_weather<|message|><atem:function_calls>\n'
     '<atem:invoke name="get_weather">\n<atem:parameter name="city">Oslo</atem:parameter>\n'
     '<atem:parameter name="days">2</atem:parameter>\n</atem:invoke>\n</atem:function_calls>',
     "Need weather.", None, [("get_weather", {"city": "Oslo", "days": 2})]),
    (" to=user<|message|>It is sunny.", None, "It is sunny.", []),
    (" to=self<|message|>Easy.<|eom|><|start|>assistant to=user<|message|>Paris.", "Easy.", "Paris.", []),
]


@pytest.mark.parametrize("template", ["muse-glimmer.jinja", "vllm-examples/tool_chat_template_muse_glimmer.jinja"])
@pytest.mark.parametrize("stream", [False, True])
def test_muse_recipient_headers_no_module_knows(template: str, stream: bool) -> None:
    """Muse Glimmer: each message headed by its recipient (to=self reasoning,
    to=user text, to=NAME a call that repeats its name in <atem:invoke>)."""
    from localtools.dialects import MessageBuilder

    source = (SHARED_TEMPLATES / template).read_text()
    assert detect(source).dialect in ("chatml-function", "generic")
    analysis = analyze_template(source)
    assert analysis.spec is not None and analysis.spec.content_name == "user"
    for text, reasoning, content, calls in MUSE_OUTPUTS:
        parser = SpecDialect(analysis.spec).parser(TOOLS, prompt_tail=analysis.generation_prompt, stream=stream)
        builder = MessageBuilder()
        for piece in (list(text) if stream else [text]):
            builder.add(parser.feed(piece))
        builder.add(parser.finish())
        message = builder.build()
        assert (message.reasoning, message.content) == (reasoning, content), text
        assert [(c.name, c.arguments) for c in message.tool_calls] == calls


def test_a_description_that_misreads_its_own_template_is_not_served() -> None:
    """vLLM's ToolACE example writes `"%sr" | format(v)` (meant: %r), a stray "r"
    after every value: no description parses that back, so analysis offers none
    and the fallback serves the template."""
    analysis = analyze_template((SHARED_TEMPLATES / "vllm-examples/tool_chat_template_toolace.jinja").read_text())
    assert analysis.caps["renders_tool_calls"]
    assert analysis.spec is None
    assert any("does not parse the template's own rendering" in note for note in analysis.notes)
    fixed = analyze_template((SHARED_TEMPLATES / "vllm-examples/templates/tool_chat_template_toolace.jinja").read_text())
    assert fixed.spec is not None and fixed.spec.shape == "python"  # the same template with "%s"


def test_kimi_k3_reasoning_element_is_found() -> None:
    spec = analyze_template((SHARED_TEMPLATES / "Kimi-K3.jinja").read_text()).spec
    assert spec is not None and spec.reasoning is not None
    assert (spec.reasoning.start, spec.reasoning.end) == ("<|open|>think<|sep|>", "<|close|>think<|sep|>")


# ---------------------------------------------------------------------------
# templates with a syntax no dialect module knows
# ---------------------------------------------------------------------------

NOVEL_TAGGED = """{%- for message in messages %}
{{- '<|im_start|>' + message.role + '\\n' }}
{%- if message.tool_calls %}
{%- for tc in message.tool_calls %}
{{- '<fn:' + tc.function.name + '>' }}
{%- for key, value in tc.function.arguments.items() %}
{{- '<arg:' + key + '>' + (value if value is string else value | tojson) + '</arg>' }}
{%- endfor %}
{{- '</fn>\\n' }}
{%- endfor %}
{%- else %}
{{- message.content }}
{%- endif %}
{{- '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""


def _assert_novel_round_trip(source: str) -> TemplateAnalysis:
    assert detect(source).dialect in ("chatml-function", "generic")  # no module claims it
    analysis = analyze_template(source)
    assert analysis.spec is not None, analysis.notes
    assert analysis.caps["renders_tool_calls"] and analysis.caps["parallel_calls"]
    assert analysis.generation_prompt == "<|im_start|>assistant\n"
    assert round_trips_source(source, analysis)
    return analysis


def round_trips_source(source: str, analysis: TemplateAnalysis) -> bool:
    turn = assistant_turn(source, analysis, 2)
    assert turn is not None
    parser = SpecDialect(analysis.spec).parser(TOOLS, prompt_tail=analysis.generation_prompt, stream=False)  # type: ignore[arg-type]
    parsed = parse_all(parser, turn)
    return [(c.name, c.arguments) for c in parsed.tool_calls] == [(n, a) for n, a in CALLS]


def test_novel_template_file_round_trips() -> None:
    source = (DATA / "novel_template.jinja").read_text()
    analysis = _assert_novel_round_trip(source)
    spec = analysis.spec
    assert spec is not None and spec.shape == "tag_json"
    assert (spec.section_start, spec.name_prefix, spec.name_suffix, spec.call_end, spec.section_end) == (
        "~~tools~~", "<<call:", ">>", "<<end>>", "~~/tools~~"
    )
    assert spec.reasoning is not None and (spec.reasoning.start, spec.reasoning.end) == ("<|think|>", "<|/think|>")
    # what a model would write: reasoning, text, then calls — streamed a character at a time
    text = (
        "<|think|>Need the weather.<|/think|>\nLet me check.~~tools~~<<call:get_weather>>"
        '{"city": "Oslo", "days": 1}<<end>>~~/tools~~'
    )
    parser = SpecDialect(spec).parser(TOOLS, prompt_tail=analysis.generation_prompt, stream=True)
    from localtools.dialects import MessageBuilder

    builder = MessageBuilder()
    for ch in text:
        builder.add(parser.feed(ch))
    builder.add(parser.finish())
    message = builder.build()
    assert message.reasoning == "Need the weather."
    assert message.content == "Let me check."
    assert [(c.name, c.arguments) for c in message.tool_calls] == [("get_weather", {"city": "Oslo", "days": 1})]


def test_novel_tagged_template_round_trips() -> None:
    analysis = _assert_novel_round_trip(NOVEL_TAGGED)
    spec = analysis.spec
    assert spec is not None and spec.shape == "tagged"
    assert (spec.name_prefix, spec.arg_name_prefix, spec.arg_value_suffix) == ("<fn:", "<arg:", "</arg>")


def test_novel_tagged_template_with_spaces_in_markers_round_trips() -> None:
    source = NOVEL_TAGGED.replace("'<fn:'", "'<fn '").replace("'<arg:'", "'<arg '")
    analysis = analyze_template(source)
    assert analysis.spec is not None and analysis.spec.name_prefix == "<fn "
    assert round_trips_source(source, analysis)


def test_marker_aware_diff_never_splits_a_tag() -> None:
    assert segmentize_markers("<|tool_call|>[args]{ x }[/args]") == ["<|tool_call|>", "[args]", "{ x }", "[/args]"]
    split = diff_split("<tool_call>x</tool_call>", "<tool_response>y</tool_call>")
    assert (split.prefix, split.left, split.right, split.suffix) == ("", "<tool_call>x", "<tool_response>y", "</tool_call>")
    split = diff_split("Hello A_MSG<|end|>", "Hello <call>B<|end|>")
    assert (split.prefix, split.left, split.right, split.suffix) == ("Hello ", "A_MSG", "<call>B", "<|end|>")


# ---------------------------------------------------------------------------
# end to end: the grammar of an analysed spec, on the real engine
# ---------------------------------------------------------------------------

GRAMMAR_TEMPLATES = [
    "deepseek-ai-DeepSeek-V3.2.jinja",  # tagged, type flag
    "Kimi-K3.jinja",  # tagged, numbered header
    "MiniMax-M3.jinja",  # tagged, closing tag named after the key
    "google-gemma-4-31B-it.jinja",  # bare keys, quote token
    "upstage-Solar-Open-100B.jinja",  # id before the name
    "vllm-examples/tool_chat_template_olmo3.jinja",  # Python, one call a line
    "LFM2.5-8B-A1B.jinja",  # Python list in markers
    "vllm-examples/tool_chat_template_llama3.2_pythonic.jinja",  # bare Python list
    "muse-glimmer.jinja",  # recipient headers, the name written twice
]
FORECAST = {
    "type": "function",
    "function": {
        "name": "forecast",
        "description": "Weather forecast",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 20}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
            "required": ["city", "days"],
        },
    },
}


@pytest.fixture(scope="module")
def engine(model_path: Path):
    from localtools.engine import Engine, EngineConfig

    eng = Engine(EngineConfig(model_path=str(model_path), n_ctx=2048))
    yield eng
    eng.close()


@pytest.mark.e2e
@pytest.mark.parametrize("template", GRAMMAR_TEMPLATES)
def test_analysed_grammar_makes_calls_its_parser_reads(engine: Any, template: str) -> None:
    """tool_choice=required under the analysed spec's grammar: what the tiny model
    writes parses back into calls that match the schema (grammar and parser agree)."""
    import jsonschema

    from tests.e2e_dialects import constrained_text

    spec = analyze_template((SHARED_TEMPLATES / template).read_text()).spec
    assert spec is not None
    dialect = SpecDialect(spec)
    tools = [FORECAST]
    # one call: a second could be cut by max_tokens
    text = constrained_text(engine, dialect, tools, "Forecast for Oslo for 3 days?", False, 200, 5)
    parsed = parse_all(dialect.parser(tools, stream=False), text)
    assert parsed.tool_calls, text
    for call in parsed.tool_calls:
        assert call.name == "forecast"
        jsonschema.validate(call.arguments, FORECAST["function"]["parameters"])
