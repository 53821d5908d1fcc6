"""GBNF, the grammar language llama.cpp constrains decoding with: the `Grammar` handed
from the dialects to the engine, literal/sequence helpers for writing rules, and the
JSON-Schema → GBNF converter.

Ground floor: nothing here imports the rest of localtools, so dialects (which write
grammars) and the engine (which runs them) both depend on this module and not on each
other.
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from localtools.gbnf_regex import literal

log = logging.getLogger(__name__)


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


# --------------------------------------------------------------------------
# JSON schema -> GBNF (several schemas, one grammar)
# --------------------------------------------------------------------------

_MAX_REPEAT = 1000  # larger min/max lengths and item counts explode the GBNF text
_GENERATED_PREFIX = "x"  # internal rule-name prefix per schema: x0-..., x1-...
_INVALID_RULE_CHARS = re.compile(r"[^a-zA-Z0-9-]+")  # as llama-cpp-python's converter


def _schema_converter() -> tuple[Any, frozenset[str]]:
    """llama-cpp-python's SchemaConverter and the rule names it reserves.

    The one place localtools uses that converter; a pure-Python one replaces it later.
    """
    from llama_cpp import llama_grammar

    converter = llama_grammar.SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    return converter, frozenset(llama_grammar.RESERVED_NAMES)


def gbnf_rule_name(key: str) -> str:
    """The GBNF rule name `json_schema_to_gbnf` gives to `key` (invalid characters -> '-')."""
    return _INVALID_RULE_CHARS.sub("-", key)


def json_schema_to_gbnf(schemas: dict[str, dict]) -> str:
    """Convert several JSON schemas into ONE GBNF text with one rule per dict key.

    Rule names are the keys with characters GBNF does not allow replaced by '-'
    (see `gbnf_rule_name`): {"args-get_weather": {...}} gives a rule `args-get-weather`.
    No `root` rule is written; callers append their own. Schema parts the converter
    cannot handle are relaxed (dropped) with a logged warning rather than raised.
    Raises ValueError only for keys that collide after sanitising or with built-in rules.
    """
    converter, reserved = _schema_converter()
    aliases: dict[str, str] = {}
    for i, (key, schema) in enumerate(schemas.items()):
        name = gbnf_rule_name(key)
        if not name or name in aliases or name == "root" or name in reserved:
            raise ValueError(f"grammar rule name {name!r} (from {key!r}) is empty, duplicated or reserved")
        internal = f"{_GENERATED_PREFIX}{i}-{name}"
        aliases[name] = _visit_relaxed(converter, schema, internal, key)
    rules = dict(converter._rules)
    for name, target in aliases.items():
        if name in rules:
            raise ValueError(f"grammar rule name {name!r} collides with a generated rule")
        rules[name] = target
    return "\n".join(f"{name} ::= {body}" for name, body in sorted(rules.items())) + "\n"


def _visit_relaxed(converter: Any, schema: Any, internal: str, key: str) -> str:
    """Visit `schema`, relaxing it step by step until the converter accepts it."""
    if not isinstance(schema, dict):
        log.warning("schema for %r is not an object; allowing any JSON value", key)
        schema = {}
    current = _namespace_defs(copy.deepcopy(schema), internal)
    current = _relax(current, drop=set(), key=key)  # huge limits always go
    steps = [
        ("", set()),
        ("dropped 'pattern'", {"pattern", "patternProperties"}),
        ("dropped '$ref'", {"$ref"}),
        ("dropped 'format'", {"format"}),
    ]
    last_error: Exception | None = None
    for what, drop in steps:
        if drop:
            current = _relax(current, drop=drop, key=None)
        snapshot = dict(converter._rules)
        try:
            resolved = converter.resolve_refs(copy.deepcopy(current), key)
            return converter.visit(resolved, internal)
        except Exception as exc:  # the converter raises assertion/value/key errors
            converter._rules = snapshot
            last_error = exc
            log.warning("JSON schema for %r: %s (next try: %s)", key, exc, what or "as is")
    log.warning("JSON schema for %r could not be converted (%s); allowing any JSON object", key, last_error)
    return converter.visit({"type": "object"}, internal)


_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "if", "then", "else", "propertyNames")
_LIMITS = ("minLength", "maxLength", "minItems", "maxItems")


def _relax(node: Any, drop: set[str], key: str | None) -> Any:
    """Copy of a schema without the keywords in `drop` and without huge length/item limits.

    Walks only schema positions, so a *property* called "pattern" is kept.
    """
    if isinstance(node, list):  # "items": [...] (old tuple form)
        return [_relax(v, drop, key) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in drop:
            continue
        if k in _LIMITS and isinstance(v, int) and not isinstance(v, bool) and not 0 <= v <= _MAX_REPEAT:
            if key is not None:
                log.warning("JSON schema for %r: dropped %s=%s (too large for a grammar)", key, k, v)
            continue
        if k in _SCHEMA_MAPS and isinstance(v, dict):
            out[k] = {name: _relax(sub, drop, key) for name, sub in v.items()}
        elif k in _SCHEMA_LISTS and isinstance(v, list):
            out[k] = [_relax(sub, drop, key) for sub in v]
        elif k in _SCHEMA_ONE:
            out[k] = _relax(v, drop, key)
        else:
            out[k] = v
    return out


def _namespace_defs(schema: dict, prefix: str) -> dict:
    """Prefix top-level $defs/definitions names (and the refs to them).

    The converter names a referenced rule after the last segment of its $ref, so two
    tool schemas that both define "Location" would otherwise share one rule.
    """
    renames: dict[str, str] = {}
    for section in ("$defs", "definitions"):
        defs = schema.get(section)
        if isinstance(defs, dict):
            schema[section] = {f"{prefix}-{name}": sub for name, sub in defs.items()}
            for name in defs:
                renames[f"#/{section}/{name}"] = f"#/{section}/{prefix}-{name}"
    if not renames:
        return schema

    def renamed(ref: str) -> str:
        for old, new in renames.items():
            if ref == old or ref.startswith(old + "/"):
                return new + ref[len(old):]
        return ref

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (renamed(v) if k == "$ref" and isinstance(v, str) else rewrite(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    return rewrite(schema)
