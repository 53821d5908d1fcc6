"""analyze_template: a chat template's tool-call dialect, from the template alone.

The day a new model family appears, its template already shows how it writes
calls: render probe conversations, diff them, read the markers off the
differences (see derive.py). The result is a `DialectSpec`, from which
`SpecDialect` makes the parser, the grammar and the history rendering.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from localtools.analysis.derive import CallRenders, Findings, classify, derive_json, derive_python, derive_tag
from localtools.analysis.diff import diff_split
from localtools.analysis.probe import (
    ARG_FIRST,
    ASSISTANT_MSG,
    FUN_FIRST,
    FUN_SECOND,
    ID_SECOND,
    VALUE_Y,
    assistant,
    call,
    probe_capabilities,
    probe_tools,
    user,
)
from localtools.analysis.render import Renderer, make_renderer
from localtools.analysis.turn_markers import derive_content_wrapper, derive_reasoning, generation_prompt
from localtools.dialects.spec import DialectSpec, ReasoningSpec

_CAPS = ("reads_tools", "renders_tool_calls", "parallel_calls", "object_arguments", "system_role", "reasoning")


@dataclass
class TemplateAnalysis:
    spec: DialectSpec | None  # None when no usable tool syntax was found
    caps: dict[str, bool]  # reads_tools, renders_tool_calls, parallel_calls, object_arguments, system_role, reasoning
    generation_prompt: str  # what add_generation_prompt=True appends
    evidence: dict[str, str] = field(default_factory=dict)  # the markers found, by role
    notes: list[str] = field(default_factory=list)  # why something could not be derived


_CACHE: dict[str, TemplateAnalysis] = {}


def analyze_template(source: str) -> TemplateAnalysis:
    """Infer the tool-call dialect of a template; cached per sha256 of the source. Never raises."""
    key = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
    cached = _CACHE.get(key)
    if cached is None:
        try:
            cached = _analyze(source)
        except Exception as exc:  # analysis of untrusted input must not take the caller down
            cached = TemplateAnalysis(None, dict.fromkeys(_CAPS, False), "", {}, [f"analysis failed: {exc!r}"])
        _CACHE[key] = cached
    return replace(cached, caps=dict(cached.caps), evidence=dict(cached.evidence), notes=list(cached.notes))


def _analyze(source: str) -> TemplateAnalysis:
    render = make_renderer(source)
    if render is None:
        return TemplateAnalysis(None, dict.fromkeys(_CAPS, False), "", {}, ["the template does not compile"])
    caps = probe_capabilities(render)
    found = Findings()
    prompt = generation_prompt(render)
    found.evidence["generation_prompt"] = prompt
    eot = _end_of_turn(render)
    if eot:
        found.evidence["end_of_turn"] = eot
    reasoning = derive_reasoning(render, found, source)
    wrapper = derive_content_wrapper(render, found)
    spec = _derive_spec(render, caps, found) if caps["renders_tool_calls"] else None
    if not caps["renders_tool_calls"]:
        found.notes.append("the template does not render assistant tool calls")
    if spec is not None:
        spec = _tidy(spec, reasoning, wrapper, found)
        if spec.call_sep.strip() and not spec.section_start and spec.call_sep.strip() not in spec.strip_markers:
            # calls outside any section, joined by a marker (Muse's <|eom|>): not text
            spec = replace(spec, strip_markers=(*spec.strip_markers, spec.call_sep.strip()))
        spec = replace(spec, reasoning=reasoning, stops=(eot.strip(),) if eot.strip() else ())
        for role, value in spec.to_dict().items():
            if isinstance(value, str) and role not in ("name", "shape"):
                found.evidence[role] = value
        if not _parses_own_calls(render, spec, caps, prompt, eot):
            found.notes.append("the derived description does not parse the template's own rendering of calls")
            spec = None
    return TemplateAnalysis(spec, caps, prompt, found.evidence, found.notes)


def _parses_own_calls(render: Renderer, spec: DialectSpec, caps: dict[str, bool], prompt: str, eot: str) -> bool:
    """The self-check: what the template writes for an assistant turn with calls,
    after the generation prompt, parses back to those calls. A description that
    fails it would serve a model wrong, so the fallback serves it instead."""
    from localtools.dialects import parse_all
    from localtools.dialects.specdialect import SpecDialect

    string_args = not caps["object_arguments"]
    calls = [call(FUN_FIRST, string_args=string_args)]
    if caps["parallel_calls"]:
        calls.append(call(FUN_SECOND, {ARG_FIRST: VALUE_Y}, ID_SECOND, string_args))
    tools = probe_tools()
    full = render([user(), assistant("", calls)], tools) or render([user(), assistant(None, calls)], tools)
    turn = assistant_turn_text(render, [user()], full, tools, prompt, eot)
    if turn is None:
        return True  # nothing to check against: keep what the renders showed
    parsed = parse_all(SpecDialect(spec).parser(tools, prompt_tail=prompt, stream=False), turn)
    expected = [(c["function"]["name"], json.loads(c["function"]["arguments"]) if string_args else c["function"]["arguments"])
                for c in calls]
    return [(c.name, c.arguments) for c in parsed.tool_calls] == expected


def assistant_turn_text(
    render: Renderer,
    history: list[dict[str, Any]],
    full: str | None,
    tools: list[dict[str, Any]] | None,
    generation_prompt: str,
    end_of_turn: str,
) -> str | None:
    """The assistant turn in `full` (history + that turn, rendered): after the
    generation prompt, before the end-of-turn marker — what a model writes."""
    start = render(history, tools, add_generation_prompt=True)
    if full is None or start is None:
        return None
    if full.startswith(start):
        turn = full[len(start) :]
    else:  # the last turn renders differently from a prompt (an added empty reasoning block)
        turn = diff_split(render(history, tools) or "", full).right
        gen = generation_prompt.strip()
        if gen and turn.lstrip().startswith(gen):
            turn = turn.lstrip()[len(gen) :]
    eot = end_of_turn.strip()
    return turn[: turn.rfind(eot)] if eot and eot in turn else turn


def _derive_spec(render: Renderer, caps: dict[str, bool], found: Findings) -> DialectSpec | None:
    cr = CallRenders(render, string_args=not caps["object_arguments"])
    h1 = cr.calls([cr.call()])
    if not h1:
        found.notes.append("an assistant turn with one call does not render")
        return None
    found.evidence["call_text"] = h1
    shape = classify(h1)
    if shape is None:
        found.notes.append("the rendered call has neither a JSON name nor recognisable argument markers")
        return None
    if shape == "json":
        return derive_json(cr, h1, found)
    if shape == "python":
        return derive_python(cr, h1, found)
    return derive_tag(cr, h1, shape, found)


def _end_of_turn(render: Renderer) -> str:
    """What closes an assistant turn (the text after its content, up to the next turn)."""
    text = render([user(), assistant(ASSISTANT_MSG)], None)
    if not text or ASSISTANT_MSG not in text:
        return ""
    return text.split(ASSISTANT_MSG, 1)[1]


_MARKER_FIELDS = ("section_start", "section_end", "call_start", "call_end", "name_prefix", "args_start", "args_end")


def _tidy(
    spec: DialectSpec, reasoning: ReasoningSpec | None, wrapper: tuple[str, str] | None, found: Findings
) -> DialectSpec:
    """Drop what is not syntax: blank markers, whitespace before the first marker,
    and an empty reasoning or text block the template writes before calls
    (Command R7B's <|START_THINKING|><|END_THINKING|>, Kimi K3's empty response)."""
    changes: dict[str, Any] = {}
    for name in _MARKER_FIELDS:
        value = getattr(spec, name)
        if value and not value.strip():
            changes[name] = ""
    blocks = [(reasoning.start, reasoning.end, "empty_reasoning_before_calls")] if reasoning else []
    if wrapper is not None:
        blocks.append((wrapper[0], wrapper[1], "empty_text_before_calls"))
        changes["strip_markers"] = wrapper
    for name in ("section_start", "call_start"):
        value = changes.get(name, getattr(spec, name))
        if value.strip():
            value = value.lstrip()
        for start, end, label in blocks:
            rest = value[len(start) :].lstrip() if value.startswith(start) else value
            if rest.startswith(end) and rest[len(end) :].strip():
                value = rest[len(end) :].lstrip()
                found.evidence[label] = start + end
        if value != getattr(spec, name):
            changes[name] = value
    return replace(spec, **changes) if changes else spec
