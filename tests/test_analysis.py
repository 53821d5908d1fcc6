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
    for tools in (TOOLS, None):
        for content in ("", None):
            message = {"role": "assistant", "content": content, "tool_calls": _calls(n_calls, string_args)}
            full = render(history + [message], tools)
            if full is not None:
                break
        if full is not None:
            break
    prompt = render(history, tools, add_generation_prompt=True)
    if full is None or prompt is None:
        return None
    if full.startswith(prompt):
        turn = full[len(prompt) :]
    else:  # the last turn renders differently from a prompt (e.g. an added <think></think>)
        turn = diff_split(render(history, tools, add_generation_prompt=False) or "", full).right
        gen = analysis.generation_prompt.strip()
        if gen and turn.lstrip().startswith(gen):
            turn = turn.lstrip()[len(gen) :]
    eot = analysis.evidence.get("end_of_turn", "").strip()
    if eot and eot in turn:
        turn = turn[: turn.rfind(eot)]
    return turn


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
_RESULTS: dict[str, bool | None] = {}

# Reached on the corpus of 164 templates; the count may grow, never shrink.
MIN_ROUND_TRIPS = 80


def _rel(path: Path) -> str:
    return str(path.relative_to(SHARED_TEMPLATES))


@pytest.mark.parametrize("path", TEMPLATES, ids=[_rel(p) for p in TEMPLATES])
def test_corpus_template_analysis(path: Path) -> None:
    _RESULTS[_rel(path)] = round_trips(path)


def test_zz_round_trip_count() -> None:
    if len(_RESULTS) < len(TEMPLATES) or not TEMPLATES:
        pytest.skip("needs the whole corpus run")
    rendering = [k for k, v in _RESULTS.items() if v is not None]
    ok = [k for k, v in _RESULTS.items() if v]
    failed = sorted(k for k, v in _RESULTS.items() if v is False)
    print(f"\n{len(ok)}/{len(rendering)} templates that render tool calls round-trip; failing: {failed}")
    assert len(ok) >= MIN_ROUND_TRIPS
