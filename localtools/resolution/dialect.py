"""Which dialect serves a template, and why.

Order: a dialect forced by the user or pinned in models.toml (a name, a full
spec, or a transformers-style `response_schema`) wins; else a known dialect module whose markers match; else the
dialect inferred by analysing the template (when it renders tool calls in a
syntax the analysis can describe); else the ChatML-function / generic
fallback. `source` says which of these decided.

This policy sits above both `dialects` and `analysis` (neither imports it),
so choosing between a module and an analysis needs no lazy import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from localtools.analysis import TemplateAnalysis, analyze_template
from localtools.dialects.base import Detection, Dialect
from localtools.dialects.registry import FALLBACK_NAMES, detect, get_dialect
from localtools.dialects.response_schema import ResponseSchemaDialect
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import SpecDialect

FALLBACKS = FALLBACK_NAMES

# how a dialect was chosen
FORCED = "forced"
PINNED_SPEC = "pinned-spec"
MODULE = "module"
ANALYSIS = "analysis"
FALLBACK = "fallback"


@dataclass
class Resolution:
    dialect: Dialect
    source: str  # forced | pinned-spec | module | analysis | fallback
    evidence: list[str] = field(default_factory=list)
    analysis: TemplateAnalysis | None = None  # when analysis ran
    unrecognised: bool = False  # the template renders tool calls but nothing could describe them

    @property
    def detection(self) -> Detection:
        return Detection(self.dialect.name, list(self.evidence), self.source)


def dialect_from_spec(data: dict[str, Any] | DialectSpec) -> SpecDialect:
    """A dialect from a spec given as data (models.toml `dialect_spec`, --dialect-spec FILE)."""
    spec = data if isinstance(data, DialectSpec) else DialectSpec.from_dict(dict(data))
    return SpecDialect(spec, None, "declared in configuration")


def resolve_dialect(
    template: str,
    forced: str | None = None,
    forced_by: str = "--dialect",
    spec: dict[str, Any] | DialectSpec | None = None,
    analyse: bool = True,
    response_schema: dict[str, Any] | None = None,
) -> Resolution:
    """The dialect for this template source (see module docstring).

    Raises KeyError for an unknown forced name, ValueError for an invalid spec."""
    detected = detect(template)
    if spec is not None:
        return Resolution(dialect_from_spec(spec), PINNED_SPEC, [f"spec pinned by {forced_by}"])
    if response_schema is not None:
        return Resolution(ResponseSchemaDialect(response_schema), PINNED_SPEC, [f"response_schema pinned by {forced_by}"])
    if forced:
        dialect = get_dialect(forced).for_template(template)
        evidence = [f"set by {forced_by}"]
        if detected.dialect != dialect.name:
            evidence.append(f"the template alone suggests {detected.dialect!r}")
        else:
            evidence += list(detected.evidence)
        return Resolution(dialect, FORCED, evidence)
    if detected.dialect not in FALLBACKS:
        return Resolution(get_dialect(detected.dialect).for_template(template), MODULE, list(detected.evidence))
    fallback = get_dialect(detected.dialect).for_template(template)
    if not analyse:
        return Resolution(fallback, FALLBACK, list(detected.evidence))
    return _by_analysis(template, fallback, detected)


def _by_analysis(template: str, fallback: Dialect, detected: Detection) -> Resolution:
    """No module knows the template: a dialect inferred from its renders, else the fallback."""
    analysis = analyze_template(template)
    renders_calls = bool(analysis.caps.get("renders_tool_calls"))
    if analysis.spec is not None and renders_calls:
        dialect = SpecDialect(analysis.spec, None, "inferred from the template by analysis")
        evidence = [f"{role}: {value!r}" for role, value in analysis.evidence.items() if role != "call_text"]
        return Resolution(dialect, ANALYSIS, evidence, analysis)
    evidence = list(detected.evidence) + list(analysis.notes)
    return Resolution(fallback, FALLBACK, evidence, analysis, unrecognised=renders_calls)
