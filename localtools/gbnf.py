"""GBNF, the grammar language llama.cpp constrains decoding with: the `Grammar` handed
from the dialects to the engine, literal/sequence helpers for writing rules, and the
JSON-Schema → GBNF converter (pure Python, in `schema_gbnf` + `gbnf_regex`; re-exported
here so callers have one module to import).

Ground floor: nothing here (nor in schema_gbnf, gbnf_regex) imports the rest of
localtools, so dialects (which write
grammars) and the engine (which runs them) both depend on this module and not on each
other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from localtools.gbnf_regex import literal
from localtools.schema_gbnf import gbnf_rule_name, json_schema_to_gbnf, relaxations

__all__ = [
    "Grammar",
    "gbnf_charclass_escape",
    "gbnf_literal",
    "gbnf_optional_literal",
    "gbnf_rule_name",
    "gbnf_sequence",
    "json_schema_to_gbnf",
    "relaxations",
]


# --------------------------------------------------------------------------
# The grammar a request is decoded under
# --------------------------------------------------------------------------


@dataclass
class Grammar:
    """A GBNF grammar for constrained decoding; dialects build it, the engine runs it.

    The start rule is `root`. lazy=False: the whole output is constrained from the first
    token. lazy=True: generation is free until one of `triggers` (Python regexes,
    searched in the generated text) matches; the grammar then constrains the output
    starting at the match, so it must accept the trigger text itself. As in llama.cpp:
    when the pattern has capturing groups, the grammar starts at the first non-empty
    group (`^\\s*(\\{)` starts at the brace); a pattern written `^...$` must match the
    whole generated text.
    """

    gbnf: str
    lazy: bool = False
    triggers: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------
# Writing rules
# --------------------------------------------------------------------------


def gbnf_literal(text: str) -> str:
    """A GBNF string literal for `text` (one escaping rule for the tool grammars and the
    schema converter: `gbnf_regex.literal`)."""
    return literal(text)


def gbnf_optional_literal(text: str) -> str:
    """`gbnf_literal(text)`, or nothing for empty text (so sequences skip it)."""
    return gbnf_literal(text) if text else ""


def gbnf_sequence(*parts: str) -> str:
    """Rule parts joined in order, leaving out empty ones and empty literals."""
    return " ".join(p for p in parts if p and p != '""')


def gbnf_charclass_escape(ch: str) -> str:
    """`ch` escaped for use inside a GBNF character class `[...]`."""
    return {"\\": "\\\\", "]": "\\]", "^": "\\^", "-": "\\-", "\n": "\\n"}.get(ch, ch)
