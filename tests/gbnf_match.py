"""A small GBNF recognizer for tests: parse a grammar text, decide whether a string matches a rule.

Independent of llama.cpp so grammar tests can say exactly which strings a grammar
accepts. Set-of-end-positions matching with a memo per (rule, position): fine for
short strings and grammars without left recursion (JSON grammars have none).
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from typing import Any

Node = tuple[Any, ...]
_NAME = re.compile(r"[a-zA-Z0-9-]+")
_ESC = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "[": "[", "]": "]", "-": "-", "^": "^", "/": "/"}


class GbnfSyntaxError(ValueError):
    """The grammar text is not GBNF this recognizer understands."""


def parse_gbnf(text: str) -> dict[str, Node]:
    """Rule name -> AST; one rule per line (`name ::= body`), '#' comments allowed."""
    rules: dict[str, Node] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, body = line.partition("::=")
        name = name.strip()
        if not sep or not _NAME.fullmatch(name):
            raise GbnfSyntaxError(f"bad rule line: {line!r}")
        if name in rules:
            raise GbnfSyntaxError(f"rule {name!r} defined twice")
        parser = _Parser(body)
        rules[name] = parser.alternatives()
        parser.skip()
        if parser.i != len(body):
            raise GbnfSyntaxError(f"trailing text in rule {name!r}: {body[parser.i:]!r}")
    for name, node in rules.items():
        for ref in _refs(node):
            if ref not in rules:
                raise GbnfSyntaxError(f"rule {name!r} uses undefined rule {ref!r}")
    return rules


def _refs(node: Node):
    kind = node[0]
    if kind == "ref":
        yield node[1]
    elif kind in ("alt", "seq"):
        for sub in node[1]:
            yield from _refs(sub)
    elif kind == "rep":
        yield from _refs(node[1])


class _Parser:
    def __init__(self, text: str):
        self.s, self.i = text, 0

    def skip(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def alternatives(self) -> Node:
        seqs = [self.sequence()]
        while True:
            self.skip()
            if self.i < len(self.s) and self.s[self.i] == "|":
                self.i += 1
                seqs.append(self.sequence())
            else:
                return ("alt", seqs)

    def sequence(self) -> Node:
        items = []
        while True:
            self.skip()
            if self.i >= len(self.s) or self.s[self.i] in "|)":
                return ("seq", items)
            items.append(self.postfix(self.primary()))

    def primary(self) -> Node:
        c = self.s[self.i]
        if c == '"':
            self.i += 1
            out = []
            while self.s[self.i] != '"':
                out.append(self.char())
            self.i += 1
            return ("lit", "".join(out))
        if c == "[":
            self.i += 1
            neg = self.s[self.i] == "^"
            self.i += neg
            ranges = []
            while self.s[self.i] != "]":
                lo = self.char()
                if self.s[self.i] == "-" and self.s[self.i + 1] != "]":
                    self.i += 1
                    ranges.append((ord(lo), ord(self.char())))
                else:
                    ranges.append((ord(lo), ord(lo)))
            self.i += 1
            return ("cls", tuple(ranges), neg)
        if c == "(":
            self.i += 1
            node = self.alternatives()
            if self.i >= len(self.s) or self.s[self.i] != ")":
                raise GbnfSyntaxError("unbalanced '('")
            self.i += 1
            return node
        m = _NAME.match(self.s, self.i)
        if not m:
            raise GbnfSyntaxError(f"unexpected {self.s[self.i:]!r}")
        self.i = m.end()
        return ("ref", m.group(0))

    def char(self) -> str:
        c = self.s[self.i]
        self.i += 1
        if c != "\\":
            return c
        e = self.s[self.i]
        self.i += 1
        for letter, width in (("x", 2), ("u", 4), ("U", 8)):
            if e == letter:
                code = int(self.s[self.i: self.i + width], 16)
                self.i += width
                return chr(code)
        if e not in _ESC:
            raise GbnfSyntaxError(f"unknown escape \\{e}")
        return _ESC[e]

    def postfix(self, node: Node) -> Node:
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in "*+?":
                self.i += 1
                node = ("rep", node, {"*": 0, "+": 1, "?": 0}[c], 1 if c == "?" else None)
            elif c == "{":
                m = re.compile(r"\{(\d+)(,(\d*))?\}").match(self.s, self.i)
                if not m:
                    raise GbnfSyntaxError("bad repetition")
                self.i = m.end()
                lo = int(m.group(1))
                hi = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
                node = ("rep", node, lo, hi)
            else:
                break
        return node


class Recognizer:
    """Decides membership of strings in the language of a rule of a parsed grammar."""

    def __init__(self, grammar: str | dict[str, Node]):
        self.rules = parse_gbnf(grammar) if isinstance(grammar, str) else grammar

    def matches(self, rule: str, text: str) -> bool:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 20000))
        try:
            memo: dict[tuple[str, int], frozenset[int]] = {}
            return len(text) in self._ends(("ref", rule), text, 0, memo)
        finally:
            sys.setrecursionlimit(limit)

    def _ends(self, node: Node, s: str, pos: int, memo: dict) -> frozenset[int]:
        kind = node[0]
        if kind == "lit":
            return frozenset([pos + len(node[1])]) if s.startswith(node[1], pos) else frozenset()
        if kind == "cls":
            if pos >= len(s):
                return frozenset()
            code = ord(s[pos])
            inside = any(a <= code <= b for a, b in node[1])
            return frozenset([pos + 1]) if inside != node[2] else frozenset()
        if kind == "ref":
            key = (node[1], pos)
            if key not in memo:
                memo[key] = frozenset()  # no left recursion in JSON grammars
                memo[key] = self._ends(self.rules[node[1]], s, pos, memo)
            return memo[key]
        if kind == "alt":
            out: set[int] = set()
            for sub in node[1]:
                out |= self._ends(sub, s, pos, memo)
            return frozenset(out)
        if kind == "seq":
            current = frozenset([pos])
            for sub in node[1]:
                current = frozenset(e for p in current for e in self._ends(sub, s, p, memo))
                if not current:
                    break
            return current
        _, sub, lo, hi = node
        current, out, count = frozenset([pos]), set(), 0
        seen: set[int] = set()
        while current:
            if count >= lo:
                out |= current
            if hi is not None and count >= hi:
                break
            nxt = frozenset(e for p in current for e in self._ends(sub, s, p, memo))
            count += 1
            if count > lo:
                nxt = nxt - seen
                seen |= nxt
            current = nxt
        return frozenset(out)


@lru_cache(maxsize=64)
def recognizer(grammar: str) -> Recognizer:
    return Recognizer(grammar)
