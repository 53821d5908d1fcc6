"""JSON Schema -> GBNF, written from the JSON Schema spec and llama.cpp's GBNF syntax.

Ground-floor code (no llama_cpp import) so dialects can build grammars without the
engine. Several schemas become ONE grammar text with one rule per key; callers add
their own `root`. A schema part a grammar cannot express is dropped with a warning
naming the part (the grammar then accepts a superset), never raised: client schemas
must not break a request. Whitespace matches llama-cpp-python's converter (one
optional space after every token), so generation behaves as before.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from localtools.gbnf_regex import (
    HEX4,
    MUST_ESCAPE,
    REPEAT_LIMIT,
    Unsupported,
    alternatives,
    char_class,
    literal,
    pattern_to_gbnf,
    repeat,
    sequence,
)

log = logging.getLogger("localtools.schema_gbnf")

_GENERATED_PREFIX = "x"  # internal rule-name prefix per schema: x0-..., x1-...
_INVALID_RULE_CHARS = re.compile(r"[^a-zA-Z0-9-]+")

_PLAIN_CHAR = r'[^"\\\x7F\x00-\x1F]'  # a JSON string character needing no escape
_BUILTINS: dict[str, str] = {
    "space": '" "?',
    "char": _PLAIN_CHAR + r' | "\\" (["\\/bfnrt] | "u" ' + HEX4 + ")",
    "string": r'"\"" char* "\"" space',
    "integral-part": "[0] | [1-9] [0-9]{0,15}",
    "decimal-part": "[0-9]{1,16}",
    "integer": '"-"? integral-part space',
    "number": '"-"? integral-part ("." decimal-part)? ([eE] [-+]? integral-part)? space',
    "boolean": '("true" | "false") space',
    "null": '"null" space',
    "value": "object | array | string | number | boolean | null",
    "object": '"{" space ( string ":" space value ("," space string ":" space value)* )? "}" space',
    "array": '"[" space ( value ("," space value)* )? "]" space',
    "date": '[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [1-2] [0-9] | "3" [0-1] )',
    "time": '( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" ( [0-5] [0-9] | "60" ) ( "." [0-9]{1,9} )? '
    '( [Zz] | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )',
    "date-time": "date [Tt] time",
    "uuid": "[0-9a-fA-F]{8} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{12}",
    "pattern-dot": _PLAIN_CHAR + r' | "\\" (["\\/bfrt] | "u" ' + HEX4 + ")",
}
_DEPENDS = {
    "char": [], "string": ["char", "space"], "integer": ["integral-part", "space"],
    "number": ["integral-part", "decimal-part", "space"], "boolean": ["space"], "null": ["space"],
    "value": ["object", "array", "string", "number", "boolean", "null"],
    "object": ["space", "string", "value"], "array": ["space", "value"],
    "date-time": ["date", "time"],
}
_FORMATS = {"date": "date", "time": "time", "date-time": "date-time", "uuid": "uuid"}
# names callers may not use as keys: ours, llama-cpp-python's, and `root`
RESERVED_NAMES = frozenset(_BUILTINS) | {
    "root", "dot", "date-string", "time-string", "date-time-string", "uuid-string",
}
_IGNORED = frozenset({
    "$schema", "$id", "id", "$comment", "title", "description", "default", "examples", "example",
    "readOnly", "writeOnly", "deprecated", "$anchor", "contentMediaType", "contentEncoding",
    "strict", "discriminator", "x-order",
})
_UNSUPPORTED = ("not", "if", "then", "else", "dependentSchemas", "dependentRequired", "dependencies",
                "propertyNames", "multipleOf", "minProperties", "maxProperties", "uniqueItems",
                "contains", "minContains", "maxContains", "patternProperties", "unevaluatedProperties",
                "unevaluatedItems", "$dynamicRef")
_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")


def gbnf_rule_name(key: str) -> str:
    """The GBNF rule name `json_schema_to_gbnf` gives to `key` (invalid characters -> '-')."""
    return _INVALID_RULE_CHARS.sub("-", key)


def json_schema_to_gbnf(schemas: dict[str, dict]) -> str:
    """Convert several JSON schemas into ONE GBNF text with one rule per dict key.

    {"args-get_weather": {...}} gives a rule `args-get-weather`. No `root` rule is
    written. Raises ValueError only for keys that collide after sanitising or with
    built-in/generated rule names; schema problems are relaxed with a warning.
    """
    return _convert(schemas, None)


def relaxations(schema: Any) -> list[str]:
    """What a grammar for `schema` would not enforce ('what at /path' lines; empty: exact).

    The same notes `json_schema_to_gbnf` logs, collected without logging, for callers
    that must refuse rather than relax (strict tools)."""
    notes: list[str] = []
    _convert({"schema": schema}, notes)
    return notes


def _convert(schemas: dict[str, Any], notes: list[str] | None) -> str:
    """`notes` None: log each relaxation as a warning; a list: collect them there instead."""
    out = _Grammar()
    out.builtin("space")  # every value ends in it
    aliases: dict[str, str] = {}
    for i, (key, schema) in enumerate(schemas.items()):
        name = gbnf_rule_name(key)
        if not name or name in aliases or name in RESERVED_NAMES:
            raise ValueError(f"grammar rule name {name!r} (from {key!r}) is empty, duplicated or reserved")
        if not isinstance(schema, (dict, bool)):
            if notes is None:
                log.warning("JSON schema for %r is not an object; allowing any JSON value", key)
            else:
                notes.append("a schema that is not an object at the top level")
            schema = {}
        ctx = _Schema(out, key, f"{_GENERATED_PREFIX}{i}-{name}", schema, notes)
        try:
            aliases[name] = ctx.visit(schema, [])
        except RecursionError:  # absurdly deep nesting: give up on this schema, not the request
            ctx.warn([], "dropped a schema nested too deeply")
            aliases[name] = out.builtin("value")
    for name, body in aliases.items():
        if name in out.rules:
            raise ValueError(f"grammar rule name {name!r} collides with a generated rule")
        out.rules[name] = body
    return "\n".join(f"{n} ::= {b}" for n, b in sorted(out.rules.items())) + "\n"


# --------------------------------------------------------------------------
# GBNF text helpers
# --------------------------------------------------------------------------


def _json_lit(value: Any) -> str:
    """GBNF for exactly the JSON value `value`, with the grammar's optional spaces."""
    if isinstance(value, list):
        return sequence('"[" space', ' "," space '.join(_json_lit(v) for v in value), '"]" space')
    if isinstance(value, dict):
        members = [f"{literal(json.dumps(str(k), ensure_ascii=False))} space \":\" space {_json_lit(v)}"
                   for k, v in value.items()]
        return sequence('"{" space', ' "," space '.join(members), '"}" space')
    return literal(json.dumps(value, ensure_ascii=False, separators=(",", ":"))) + " space"


def _not_strings(names: list[str]) -> str:
    """GBNF for the JSON-encoded text of any string except `names` (without quotes)."""
    trie: dict[str, Any] = {}
    for name in names:
        node = trie
        for ch in json.dumps(name, ensure_ascii=False)[1:-1]:
            node = node.setdefault(ch, {})
        node[""] = {}

    def rest(node: dict[str, Any]) -> str:
        kids = sorted(k for k in node if k)
        other = [char_class(sorted({(ord(k),) * 2 for k in kids}) + MUST_ESCAPE, negated=True)]
        if "\\" not in kids:
            other.append('"\\\\" (["\\\\/bfnrt] | "u" ' + HEX4 + ")")
        alts = [f"{literal(k)} {rest(node[k])}".strip() for k in kids]
        alts.append(f"{alternatives(other)} char*")
        expr = alternatives(alts)
        return expr if "" in node else f"{expr}?"

    return rest(trie)


@dataclass
class _Grammar:
    """The rules of the grammar being written (built-ins are added when first used)."""

    rules: dict[str, str] = field(default_factory=dict)

    def builtin(self, name: str) -> str:
        if name not in self.rules:
            self.rules[name] = _BUILTINS[name]
            for dep in _DEPENDS.get(name, []):
                self.builtin(dep)
        return name

    def add(self, name: str, body: str) -> str:
        """Add a rule under `name` (or `name-2`, ... when taken); returns the name used."""
        base, n = name, 1
        while name in self.rules or name in RESERVED_NAMES:
            if self.rules.get(name) == body:
                return name
            n += 1
            name = f"{base}-{n}"
        self.rules[name] = body
        return name


# --------------------------------------------------------------------------
# integers with bounds
# --------------------------------------------------------------------------


def _same_length_range(a: str, b: str) -> list[str]:
    """Sequences of digit classes matching the digit strings a..b (same length)."""
    if not a:
        return [""]
    if a[0] == b[0]:
        return [f"{char_class([(ord(a[0]),) * 2])} {tail}".strip() for tail in _same_length_range(a[1:], b[1:])]
    rest = len(a) - 1
    nines, zeros = "9" * rest, "0" * rest
    out: list[str] = []
    lo, hi = int(a[0]), int(b[0])
    if a[1:] != zeros:
        out += [f"[{lo}] {t}".strip() for t in _same_length_range(a[1:], nines)]
        lo += 1
    if b[1:] != nines:
        tail_hi = [f"[{hi}] {t}".strip() for t in _same_length_range(zeros, b[1:])]
        hi -= 1
    else:
        tail_hi = []
    if lo <= hi:
        out.append(f"[{lo}-{hi}] {repeat('[0-9]', rest, rest)}" if rest else f"[{lo}-{hi}]")
    return out + tail_hi


def _naturals(low: int, high: int | None) -> str:
    """Natural numbers low..high (None: unbounded, capped at 16 digits) without leading zeros."""
    parts: list[str] = []
    top = high if high is not None else 10**16 - 1
    for length in range(len(str(low)), len(str(top)) + 1):
        first = max(low, 10 ** (length - 1) if length > 1 else 0)
        last = min(top, 10**length - 1)
        if first > last:
            continue
        if high is None and first == 10 ** (length - 1) and length > 1:
            parts.append(f"[1-9] [0-9]{{{length - 1},15}}")  # every longer number too
            break
        parts += _same_length_range(str(first), str(last))
    return alternatives(parts)


def _integer_expr(low: int | None, high: int | None) -> str:
    """GBNF for the integers in [low, high] (None: unbounded on that side)."""
    if low is not None and high is not None and low > high:
        raise Unsupported(f"empty integer range {low}..{high}")
    parts = []
    if low is None or low < 0:  # negative values: "-" then a natural number
        neg_hi = None if low is None else -low
        neg_lo = 1 if high is None or high >= 0 else -high
        parts.append(f'"-" {_naturals(neg_lo, neg_hi)}')
    if high is None or high >= 0:
        parts.append(_naturals(max(low or 0, 0), high))
    return f"{alternatives(parts)} space"


def _bounds(schema: dict) -> tuple[float | None, bool, float | None, bool]:
    """(low, low_exclusive, high, high_exclusive), draft-4 boolean exclusives included."""

    def num(v: Any) -> float | None:
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    low, high = num(schema.get("minimum")), num(schema.get("maximum"))
    low_ex = high_ex = False
    if schema.get("exclusiveMinimum") is True:
        low_ex = low is not None
    elif (ex := num(schema.get("exclusiveMinimum"))) is not None and (low is None or ex >= low):
        low, low_ex = ex, True
    if schema.get("exclusiveMaximum") is True:
        high_ex = high is not None
    elif (ex := num(schema.get("exclusiveMaximum"))) is not None and (high is None or ex <= high):
        high, high_ex = ex, True
    return low, low_ex, high, high_ex


def _int_bounds(schema: dict) -> tuple[int | None, int | None]:
    low, low_ex, high, high_ex = _bounds(schema)
    ilow = None if low is None else (int(low) + 1 if low_ex and low == int(low) else -int(-low // 1))
    ihigh = None if high is None else (int(high) - 1 if high_ex and high == int(high) else int(high // 1))
    return ilow, ihigh


# --------------------------------------------------------------------------
# schemas
# --------------------------------------------------------------------------


def _path(path: list[str]) -> str:
    return "/" + "/".join(path) if path else "the top level"


class _Schema:
    """Converts one client schema; its rules are namespaced by `prefix` ($defs cannot clash)."""

    def __init__(self, grammar: _Grammar, key: str, prefix: str, root: Any, notes: list[str] | None):
        self.g, self.key, self.prefix, self.root, self.notes = grammar, key, prefix, root, notes
        self.refs: dict[str, str] = {}
        self.seen: set[str] = set()

    def warn(self, path: list[str], what: str) -> None:
        note = f"{what} at {_path(path)}"
        if note not in self.seen:
            self.seen.add(note)
            if self.notes is None:
                log.warning("JSON schema for %r: %s; the grammar allows more", self.key, note)
            else:
                self.notes.append(note)

    def rule(self, path: list[str], body: str) -> str:
        tail = gbnf_rule_name("-".join(path)).strip("-")
        return self.g.add(f"{self.prefix}-{tail}" if tail else self.prefix, body)

    def visit(self, node: Any, path: list[str]) -> str:
        """A GBNF expression (ending in `space`) for the JSON values `node` accepts."""
        try:
            return self.visit_node(node, path)
        except Unsupported as exc:
            self.warn(path, f"allowed any value for a schema it cannot express ({exc})")
            return self.g.builtin("value")

    def visit_node(self, node: Any, path: list[str]) -> str:
        if node is True or node == {}:
            return self.g.builtin("value")
        if not isinstance(node, dict):
            self.warn(path, "a schema that is neither an object nor true")
            return self.g.builtin("value")
        for k in node:
            if k in _UNSUPPORTED:
                self.warn(path, f"dropped {k!r}")
        if isinstance(node.get("$ref"), str):
            return self.ref(node, path)
        for word in ("anyOf", "oneOf"):
            if isinstance(node.get(word), list):
                rest = {k: v for k, v in node.items() if k != word and k not in _UNSUPPORTED}  # warned
                alts = [self.merge([rest, alt], path) for alt in node[word]]
                return alternatives([self.visit(a, path + [word, str(i)]) for i, a in enumerate(alts)])
        if isinstance(node.get("allOf"), list):
            return self.visit(self.merge_all_of(node, path), path)
        if "const" in node:
            return _json_lit(node["const"])
        if isinstance(node.get("enum"), list):
            return self.enum(node, path)
        types = node.get("type")
        if isinstance(types, str):
            types = [types]
        if not isinstance(types, list) or not types:
            types = self.infer_types(node)
        if node.get("nullable") is True and "null" not in types:
            types = [*types, "null"]
        if "integer" in types and "number" in types:
            types = [t for t in types if t != "integer"]
        exprs = []
        for t in types:
            if t not in _TYPES:
                self.warn(path, f"dropped unknown type {t!r}")
                return self.g.builtin("value")
            exprs.append(self.typed(t, node, path))
        return alternatives(exprs)

    def infer_types(self, node: dict) -> list[str]:
        """Types a schema without `type` is meant for (as llama.cpp: keywords decide)."""
        if any(k in node for k in ("properties", "additionalProperties", "required")):
            return ["object"]
        if any(k in node for k in ("items", "prefixItems", "minItems", "maxItems")):
            return ["array"]
        if any(k in node for k in ("minLength", "maxLength", "pattern", "format")):
            return ["string"]
        if any(k in node for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
            return ["number"]
        return list(_TYPES[:3]) + ["number", "boolean", "null"]

    def typed(self, t: str, node: dict, path: list[str]) -> str:
        if t == "object":
            return self.object(node, path)
        if t == "array":
            return self.array(node, path)
        if t == "string":
            return self.string(node, path)
        if t == "integer":
            return self.integer(node, path)
        if t == "number":
            return self.number(node, path)
        return self.g.builtin(t)

    def enum(self, node: dict, path: list[str]) -> str:
        types = node.get("type")
        allowed = [types] if isinstance(types, str) else types if isinstance(types, list) else None

        def fits(v: Any) -> bool:
            if allowed is None:
                return True
            kinds = {"null": v is None, "boolean": isinstance(v, bool), "string": isinstance(v, str),
                     "object": isinstance(v, dict), "array": isinstance(v, list),
                     "number": isinstance(v, (int, float)) and not isinstance(v, bool),
                     "integer": isinstance(v, int) and not isinstance(v, bool)
                     or isinstance(v, float) and v.is_integer()}
            return any(kinds.get(t, False) for t in allowed)

        values = [v for v in node["enum"] if fits(v)]
        if not values:
            self.warn(path, "dropped an 'enum' no value of which fits 'type'")
            return self.g.builtin("value")
        return alternatives([_json_lit(v) for v in values])

    # ---- $ref and allOf ---------------------------------------------------

    def lookup(self, ref: str, path: list[str]) -> Any:
        """The schema at a local JSON pointer ('#', '#/$defs/X', ...), or raise Unsupported."""
        if not ref.startswith("#"):
            raise Unsupported(f"non-local $ref {ref!r}")
        node = self.root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise Unsupported(f"unresolvable $ref {ref!r}")
        return node

    def ref(self, node: dict, path: list[str]) -> str:
        ref = node["$ref"]
        try:
            target = self.lookup(ref, path)
        except Unsupported as exc:
            self.warn(path, f"dropped '$ref' ({exc})")
            return self.visit({k: v for k, v in node.items() if k != "$ref"}, path)
        skip = ("$ref", "$defs", "definitions", *_IGNORED, *_UNSUPPORTED)  # _UNSUPPORTED: warned already
        siblings = {k: v for k, v in node.items() if k not in skip}
        if siblings:  # siblings of $ref apply too (2019-09+)
            return self.visit(self.merge([siblings, target], path), path)
        if ref not in self.refs:
            tail = gbnf_rule_name(ref[1:].replace("$defs", "").replace("definitions", "")).strip("-")
            name = self.g.add(f"{self.prefix}-ref-{tail}" if tail else f"{self.prefix}-ref", "space")
            self.refs[ref] = name
            self.g.rules[name] = self.visit(target, [f"ref-{tail}"])
        return self.refs[ref]

    def deref(self, node: Any, path: list[str]) -> Any:
        """`node` with its own top-level $ref (and allOf) merged in, for allOf merging."""
        for _ in range(16):
            if not isinstance(node, dict):
                return node
            if isinstance(node.get("$ref"), str):
                try:
                    target = self.lookup(node["$ref"], path)
                except Unsupported as exc:
                    self.warn(path, f"dropped '$ref' ({exc})")
                    target = {}
                rest = {k: v for k, v in node.items() if k != "$ref"}
                node = self.merge([rest, target], path) if rest else target
            elif isinstance(node.get("allOf"), list):
                node = self.merge_all_of(node, path)
            else:
                return node
        self.warn(path, "dropped a '$ref' cycle inside 'allOf'")
        return {}

    def merge_all_of(self, node: dict, path: list[str]) -> dict:
        rest = {k: v for k, v in node.items() if k != "allOf"}
        return self.merge([rest, *[self.deref(s, path) for s in node["allOf"]]], path)

    def merge(self, parts: list[Any], path: list[str]) -> Any:
        """One schema meaning all of `parts` (exact for the keywords merged here)."""
        out: dict[str, Any] = {}
        for part in parts:
            if part is True:
                continue
            if not isinstance(part, dict):
                self.warn(path, "dropped a non-object schema in a combination")
                continue
            for k, v in part.items():
                if k not in out:
                    out[k] = v
                elif k == "properties" and isinstance(v, dict) and isinstance(out[k], dict):
                    props = dict(out[k])
                    for name, sub in v.items():
                        props[name] = self.merge([props[name], sub], path) if name in props else sub
                    out[k] = props
                elif k == "required" and isinstance(v, list):
                    out[k] = list(dict.fromkeys([*out[k], *v]))
                elif k == "type":
                    a = out[k] if isinstance(out[k], list) else [out[k]]
                    b = v if isinstance(v, list) else [v]
                    both = [t for t in a if t in b or (t == "integer" and "number" in b)]
                    both += [t for t in b if t == "integer" and "number" in a and t not in both]
                    out[k] = both or a
                elif k in ("minimum", "minLength", "minItems", "exclusiveMinimum") and _is_num(v) and _is_num(out[k]):
                    out[k] = max(out[k], v)
                elif k in ("maximum", "maxLength", "maxItems", "exclusiveMaximum") and _is_num(v) and _is_num(out[k]):
                    out[k] = min(out[k], v)
                elif k in ("anyOf", "oneOf") and isinstance(v, list):
                    out["allOf"] = [*out.get("allOf", []), {k: v}]
                elif k == "allOf" and isinstance(v, list) and isinstance(out[k], list):
                    out[k] = [*out[k], *v]
                elif k not in _IGNORED and out[k] != v:
                    self.warn(path, f"kept the first of two different {k!r} values in a combination")
        return out

    # ---- objects and arrays -------------------------------------------------

    def object(self, node: dict, path: list[str]) -> str:
        """Required properties in order, then any subset of the optional ones in order.

        An absent additionalProperties closes an object that lists properties (as
        llama.cpp does: a model should write the declared keys, not invent others).
        """
        declared, listed = node.get("properties"), node.get("required")
        props: dict[str, Any] = declared if isinstance(declared, dict) else {}
        required = [r for r in listed if isinstance(r, str)] if isinstance(listed, list) else []
        extra = node.get("additionalProperties")
        if "properties" not in node and not required and (extra is None or extra is True or extra == {}):
            return self.g.builtin("object")
        props = {k: v for k, v in props.items() if v is not False}
        for name in required:
            if name not in props:
                if extra is False:
                    self.warn(path, f"allowed required property {name!r} that 'additionalProperties' forbids")
                props[name] = extra if isinstance(extra, dict) else {}
        kvs = {name: self.kv(name, sub, path) for name, sub in props.items()}
        req = [kvs[n] for n in props if n in required]
        opt = [n for n in props if n not in required]
        extras = ""
        if extra is not None and extra is not False:
            value = self.visit(extra if isinstance(extra, dict) else {}, path + ["additionalProperties"])
            self.g.builtin("char")
            key = f'"\\"" {_not_strings(list(props))} "\\"" space' if props else self.g.builtin("string")
            akv = self.rule(path + ["additional-kv"], f'{key} ":" space {value}')
            more = self.rule(path + ["additional-more"], f'( "," space {akv} )*')
            extras = f"{akv} {more}"
        tails: dict[int, str] = {}
        for j in range(len(opt) - 1, -2, -1):
            choices = [f"{kvs[opt[k]]} {tails[k]}".strip() for k in range(j + 1, len(opt))]
            choices += [extras] if extras else []
            if j == -1:
                start = choices
            elif choices:
                tails[j] = self.rule(path + [opt[j], "rest"], f'( "," space {alternatives(choices)} )?')
            else:
                tails[j] = ""
        if req:
            body = ' "," space '.join(req)
            if start:
                body += f' ( "," space {alternatives(start)} )?'
        else:
            body = f"( {alternatives(start)} )?" if start else ""
        return sequence('"{" space', body, '"}" space')

    def kv(self, name: str, sub: Any, path: list[str]) -> str:
        key = literal(json.dumps(name, ensure_ascii=False))
        value = self.visit(sub, path + [name])
        return self.rule(path + [name, "kv"], f'{key} space ":" space {value}')

    def array(self, node: dict, path: list[str]) -> str:
        """Items (or a prefixItems tuple, written in full) with minItems/maxItems."""
        items, tuple_items = node.get("items"), node.get("prefixItems")
        if isinstance(items, list):  # draft 4-7 tuple form
            tuple_items, items = items, node.get("additionalItems")
        low = self.limit(node, "minItems", path) or 0
        high = self.limit(node, "maxItems", path)
        if isinstance(tuple_items, list):
            seq = [self.visit(s, path + ["prefixItems", str(i)]) for i, s in enumerate(tuple_items)]
            body = ' "," space '.join(seq)
            if items is not None and items is not False:
                item = self.item(items, path)
                k = len(seq)
                more = repeat(f'( "," space {item} )', max(low - k, 0), None if high is None else max(high - k, 0))
                body = f"{body} {more}" if seq else f"( {item} {more} )?"
            return sequence('"[" space', body, '"]" space')
        if high == 0 or items is False:
            return '"[" space "]" space'
        item = self.item(items if items is not None else {}, path)
        more = repeat(f'( "," space {item} )', max(low - 1, 0), None if high is None else high - 1)
        inner = f"{item} {more}".strip()
        return f'"[" space {inner if low else f"( {inner} )?"} "]" space'

    def item(self, sub: Any, path: list[str]) -> str:
        expr = self.visit(sub, path + ["item"])
        return expr if re.fullmatch(r"[a-zA-Z0-9-]+", expr) else self.rule(path + ["item"], expr)

    def limit(self, node: dict, word: str, path: list[str]) -> int | None:
        v = node.get(word)
        if v is None:
            return None
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= REPEAT_LIMIT:
            self.warn(path, f"dropped {word}={v!r} (not a count up to {REPEAT_LIMIT})")
            return None
        return v

    # ---- scalars ----------------------------------------------------------

    def string(self, node: dict, path: list[str]) -> str:
        low = self.limit(node, "minLength", path)
        high = self.limit(node, "maxLength", path)
        inner = None
        if isinstance(node.get("pattern"), str):
            try:
                inner = pattern_to_gbnf(node["pattern"], self.g.builtin)
            except Unsupported as exc:
                self.warn(path, f"dropped 'pattern' {node['pattern']!r} ({exc})")
        fmt = node.get("format")
        if inner is None and isinstance(fmt, str):
            if fmt in _FORMATS:
                inner = self.g.builtin(_FORMATS[fmt])
            else:
                self.warn(path, f"dropped 'format' {fmt!r} (not supported)")
        if inner is not None:
            if low is not None or high is not None:
                self.warn(path, "dropped 'minLength'/'maxLength' beside a pattern or format")
        else:
            if low is not None and high is not None and low > high:
                self.warn(path, "dropped 'minLength' > 'maxLength'")
                low = None
            inner = repeat(self.g.builtin("char"), low or 0, high)
        self.g.builtin("space")
        return f'"\\"" {inner} "\\"" space'

    def integer(self, node: dict, path: list[str]) -> str:
        low, high = _int_bounds(node)
        if low is None and high is None:
            return self.g.builtin("integer")
        self.g.builtin("space")
        try:
            return _integer_expr(low, high)
        except Unsupported as exc:
            self.warn(path, f"dropped 'minimum'/'maximum' ({exc})")
            return self.g.builtin("integer")

    def number(self, node: dict, path: list[str]) -> str:
        low, low_ex, high, _ = _bounds(node)
        if low is None and high is None:
            return self.g.builtin("number")
        if low == 0 and not low_ex and high is None:  # non-negative: no sign
            self.g.builtin("number")
            return 'integral-part ("." decimal-part)? ([eE] [-+]? integral-part)? space'
        self.warn(path, "dropped 'minimum'/'maximum' on a number (only integers are bounded)")
        return self.g.builtin("number")


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
