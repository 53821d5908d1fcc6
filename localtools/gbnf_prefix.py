"""The text every string of a GBNF grammar starts with: what the grammar forces.

A `tool_choice: "required"` grammar over one tool accepts only replies that start
`<tool_call>\\n{"name": "get_weather", "arguments": {`: about twenty tokens that the
model would otherwise sample one decode step at a time, each step a full pass over
the weights. The engine evaluates the forced text with the prompt instead, in one
chunk (engine/sampling.jump_forward), and emits it as the reply's first text.

Only a conservative reading: literals, rule references, groups, alternatives (their
common start, cut back to the last non-word character so that the model still
chooses how to spell a name it picks) and repetitions that occur at least once. Any
syntax this reader does not know gives an empty prefix, never a wrong one.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_RULE_START = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*::=", re.M)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "[": "[", "]": "]", "-": "-", "^": "^"}
_MAX_DEPTH = 64


class _Unknown(Exception):
    """Syntax this reader does not follow: no prefix."""


@dataclass
class _Lit:
    text: str


@dataclass
class _Ref:
    name: str


@dataclass
class _Other:  # a character class or `.`: not forced
    pass


@dataclass
class _Group:
    alts: list[list[_Node]]


@dataclass
class _Rep:
    node: _Node
    low: int
    high: int | None


_Node = _Lit | _Ref | _Other | _Group | _Rep


@functools.lru_cache(maxsize=256)  # a client sends the same tool list request after request
def forced_prefix(gbnf: str) -> str:
    """The longest text every reply the grammar accepts starts with ("" when unsure)."""
    try:
        rules = _parse_rules(gbnf)
        if "root" not in rules:
            return ""
        text, _ = _forced_alts(rules["root"], rules, 0)
        return text
    except (_Unknown, RecursionError, IndexError, ValueError):
        return ""


# ---- reading the grammar ------------------------------------------------------


def _parse_rules(gbnf: str) -> dict[str, list[list[_Node]]]:
    text = "\n".join(_strip_comment(line) for line in gbnf.splitlines())
    starts = list(_RULE_START.finditer(text))
    rules: dict[str, list[list[_Node]]] = {}
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        body = text[match.end():end]
        alts, pos = _alternatives(body, 0)
        if body[pos:].strip():
            raise _Unknown(body[pos:])
        rules[match.group(1)] = alts
    return rules


def _strip_comment(line: str) -> str:
    """The line without a `#` comment (a `#` inside a literal or class stays)."""
    quote = bracket = False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and (quote or bracket):
            i += 2
            continue
        if ch == '"' and not bracket:
            quote = not quote
        elif ch == "[" and not quote:
            bracket = True
        elif ch == "]" and bracket:
            bracket = False
        elif ch == "#" and not quote and not bracket:
            return line[:i]
        i += 1
    return line


def _alternatives(body: str, pos: int) -> tuple[list[list[_Node]], int]:
    alts = [[]]  # type: list[list[_Node]]
    while True:
        pos = _skip_space(body, pos)
        if pos >= len(body) or body[pos] == ")":
            return alts, pos
        if body[pos] == "|":
            alts.append([])
            pos += 1
            continue
        node, pos = _atom(body, pos)
        node, pos = _postfix(node, body, pos)
        alts[-1].append(node)


def _atom(body: str, pos: int) -> tuple[_Node, int]:
    ch = body[pos]
    if ch == '"':
        return _literal(body, pos + 1)
    if ch == "[":
        end = pos + 1
        while body[end] != "]":
            end += 2 if body[end] == "\\" else 1
        return _Other(), end + 1
    if ch == ".":
        return _Other(), pos + 1
    if ch == "(":
        alts, pos = _alternatives(body, pos + 1)
        if pos >= len(body) or body[pos] != ")":
            raise _Unknown("unclosed group")
        return _Group(alts), pos + 1
    match = _NAME.match(body, pos)
    if match:
        return _Ref(match.group(0)), match.end()
    raise _Unknown(body[pos:pos + 20])


def _literal(body: str, pos: int) -> tuple[_Lit, int]:
    out: list[str] = []
    while body[pos] != '"':
        ch = body[pos]
        if ch != "\\":
            out.append(ch)
            pos += 1
            continue
        esc = body[pos + 1]
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            pos += 2
        elif esc in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[esc]
            out.append(chr(int(body[pos + 2:pos + 2 + width], 16)))
            pos += 2 + width
        else:
            raise _Unknown(f"escape \\{esc}")
    return _Lit("".join(out)), pos + 1


def _postfix(node: _Node, body: str, pos: int) -> tuple[_Node, int]:
    if pos >= len(body):
        return node, pos
    ch = body[pos]
    if ch in "*+?":
        low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[ch]
        return _Rep(node, low, high), pos + 1
    if ch == "{":
        end = body.index("}", pos)
        parts = body[pos + 1:end].split(",")
        low = int(parts[0])
        high = low if len(parts) == 1 else (int(parts[1]) if parts[1].strip() else None)
        return _Rep(node, low, high), end + 1
    return node, pos


def _skip_space(body: str, pos: int) -> int:
    while pos < len(body) and body[pos] in " \t\r\n":
        pos += 1
    return pos


# ---- what is forced -------------------------------------------------------------


def _forced_alts(alts: list[list[_Node]], rules: dict[str, list[list[_Node]]], depth: int) -> tuple[str, bool]:
    """(forced text, whether the whole of it is forced: nothing may vary after it)."""
    if depth > _MAX_DEPTH:
        return "", False
    results = [_forced_seq(alt, rules, depth + 1) for alt in alts]
    if len(results) == 1:
        return results[0]
    texts = [t for t, _ in results]
    if all(complete for _, complete in results) and len(set(texts)) == 1:
        return texts[0], True
    common = _common_start(texts)
    # cut back to a word's start: the model chooses how a name it picks goes on
    cut = len(common)
    while cut > 0 and (common[cut - 1].isalnum() or common[cut - 1] == "_"):
        cut -= 1
    return common[:cut], False


def _forced_seq(seq: list[_Node], rules: dict[str, list[list[_Node]]], depth: int) -> tuple[str, bool]:
    text = ""
    for node in seq:
        part, complete = _forced_node(node, rules, depth)
        text += part
        if not complete:
            return text, False
    return text, True


def _forced_node(node: _Node, rules: dict[str, list[list[_Node]]], depth: int) -> tuple[str, bool]:
    if isinstance(node, _Lit):
        return node.text, True
    if isinstance(node, _Ref):
        if node.name not in rules:
            raise _Unknown(f"no rule {node.name}")
        return _forced_alts(rules[node.name], rules, depth + 1)
    if isinstance(node, _Group):
        return _forced_alts(node.alts, rules, depth + 1)
    if isinstance(node, _Rep):
        if node.low == 0:
            return "", False
        part, complete = _forced_node(node.node, rules, depth + 1)
        if complete:
            return part * node.low, node.low == node.high
        return part, False
    return "", False


def _common_start(texts: list[str]) -> str:
    first = min(texts, key=len) if texts else ""
    for i, ch in enumerate(first):
        if any(t[i] != ch for t in texts):
            return first[:i]
    return first
