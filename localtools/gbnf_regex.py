"""Regular expressions (the common ECMA-262 subset) -> GBNF, and GBNF text helpers.

A JSON Schema `pattern` constrains the *decoded* string, while a grammar sees the
JSON text: every character is matched in its JSON encoding (a quote as \\", a
newline as \\n), and classes never admit raw control characters. What cannot be
expressed (lookaround, backreferences, \\b, flags) raises Unsupported so the
schema converter can drop the pattern with a warning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

REPEAT_LIMIT = 1000  # larger repetition counts explode the grammar
HEX4 = "[0-9a-fA-F]{4}"
MUST_ESCAPE = [(0, 0x1F), (0x22, 0x22), (0x5C, 0x5C), (0x7F, 0x7F)]  # never raw in a JSON string


class Unsupported(Exception):
    """A schema part the grammar cannot express; the caller drops it with a warning."""


def pattern_to_gbnf(pattern: str, use_rule: Callable[[str], str]) -> str:
    """GBNF for the JSON-encoded contents (no quotes) of strings `pattern` matches.

    `use_rule(name)` makes a shared rule available ("char", "pattern-dot") and returns its name.
    """
    return _Regex(pattern, use_rule).convert()


# --------------------------------------------------------------------------
# GBNF text
# --------------------------------------------------------------------------


def literal(text: str) -> str:
    """A GBNF string literal for `text`."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _class_char(code: int) -> str:
    ch = chr(code)
    if ch.isascii() and ch.isalnum():
        return ch
    if code < 0x80:
        return f"\\x{code:02X}"
    return f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"


def char_class(ranges: list[tuple[int, int]], negated: bool = False) -> str:
    body = "".join(_class_char(a) if a == b else f"{_class_char(a)}-{_class_char(b)}" for a, b in ranges)
    return f"[{'^' if negated else ''}{body}]"


def alternatives(parts: list[str]) -> str:
    parts = [p for p in parts if p]
    if not parts:
        raise Unsupported("no alternative can match")
    return parts[0] if len(parts) == 1 else "( " + " | ".join(parts) + " )"


def sequence(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def repeat(atom: str, low: int, high: int | None) -> str:
    if (low, high) == (1, 1):
        return atom
    if (low, high) == (0, None):
        return f"{atom}*"
    if (low, high) == (1, None):
        return f"{atom}+"
    if (low, high) == (0, 1):
        return f"{atom}?"
    if low == high:
        return f"{atom}{{{low}}}"
    return f"{atom}{{{low},{'' if high is None else high}}}"


# --------------------------------------------------------------------------
# regular expressions
# --------------------------------------------------------------------------

_ESCAPED = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_DIGIT = [(0x30, 0x39)]
_WORD = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_SPACE = [(0x09, 0x0D), (0x20, 0x20)]
_CONTROL_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "f": "\f", "v": "\v", "0": "\0"}


def _subtract(ranges: list[tuple[int, int]], cut: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = sorted(ranges)
    for c0, c1 in cut:
        nxt = []
        for a, b in out:
            if b < c0 or a > c1:
                nxt.append((a, b))
                continue
            if a < c0:
                nxt.append((a, c0 - 1))
            if b > c1:
                nxt.append((c1 + 1, b))
        out = nxt
    return out


def _contains(ranges: list[tuple[int, int]], code: int) -> bool:
    return any(a <= code <= b for a, b in ranges)


def _encoded_class(ranges: list[tuple[int, int]], negated: bool) -> str:
    """GBNF for the JSON encodings of the characters in (or, negated, not in) `ranges`."""
    parts: list[str] = []
    if negated:
        parts.append(char_class(sorted(ranges) + MUST_ESCAPE, negated=True))
        parts += [literal(esc) for ch, esc in _ESCAPED.items() if not _contains(ranges, ord(ch))]
        return alternatives(parts)
    plain = _subtract(ranges, MUST_ESCAPE)
    if plain:
        parts.append(char_class(plain))
    for code in [c for a, b in ranges for c in range(max(a, 0), min(b, 0x7F) + 1)]:
        if code < 0x20 or code in (0x22, 0x5C, 0x7F):
            ch = chr(code)
            parts.append(literal(_ESCAPED.get(ch, f"\\u{code:04x}")))
    return alternatives(parts)


class _Regex:
    """Translates a JSON Schema `pattern` into GBNF for the string's JSON encoding."""

    def __init__(self, source: str, use_rule: Callable[[str], str]):
        self.src, self.i, self.use_rule = source, 0, use_rule

    def convert(self) -> str:
        src = self.src
        start = src.startswith("^")
        end = src.endswith("$") and not _escaped(src, len(src) - 1)
        self.src = src[1 if start else 0: len(src) - 1 if end else len(src)]
        branches = self.alternation()
        if self.i != len(self.src):
            raise Unsupported("unbalanced ')'")
        if len(branches) > 1 and (start or end):
            raise Unsupported("an anchor beside a top-level '|'")
        body = self.join(branches)
        free = f"{self.use_rule('char')}*"
        return sequence("" if start else free, body, "" if end else free) or '""'

    def join(self, branches: list[str]) -> str:
        nonempty = [b for b in branches if b]
        if not nonempty:
            return ""
        expr = alternatives(nonempty)
        if len(nonempty) < len(branches):
            return f"{expr if expr.startswith('(') and len(nonempty) > 1 else f'( {expr} )'}?"
        return expr

    def alternation(self) -> list[str]:
        branches = [self.sequence()]
        while self.i < len(self.src) and self.src[self.i] == "|":
            self.i += 1
            branches.append(self.sequence())
        return branches

    def sequence(self) -> str:
        parts: list[str] = []
        while self.i < len(self.src) and self.src[self.i] not in "|)":
            atom = self.atom()
            parts.append(self.quantified(atom))
        return " ".join(p for p in parts if p)

    def atom(self) -> str:
        ch = self.src[self.i]
        self.i += 1
        if ch == "(":
            if self.src.startswith("?:", self.i):
                self.i += 2
            elif self.src.startswith("?", self.i):
                raise Unsupported("lookaround, named groups and flags")
            inner = self.join(self.alternation())
            if self.i >= len(self.src) or self.src[self.i] != ")":
                raise Unsupported("unbalanced '('")
            self.i += 1
            return f"( {inner} )" if inner else ""
        if ch == "[":
            return self.char_class()
        if ch == ".":
            return self.use_rule("pattern-dot")
        if ch in "^$":
            raise Unsupported(f"'{ch}' inside the pattern")
        if ch in "*+?{":
            raise Unsupported(f"a quantifier {ch!r} with nothing to repeat")
        if ch == "\\":
            return self.escape()
        return literal(json.dumps(ch, ensure_ascii=False)[1:-1])

    def escape(self) -> str:
        if self.i >= len(self.src):
            raise Unsupported("a trailing backslash")
        ch = self.src[self.i]
        self.i += 1
        sets = {"d": _DIGIT, "w": _WORD, "s": _SPACE}
        if ch.lower() in sets:
            return _encoded_class(sets[ch.lower()], negated=ch.isupper())
        code = self.escaped_code(ch)
        return literal(json.dumps(chr(code), ensure_ascii=False)[1:-1])

    def escaped_code(self, ch: str) -> int:
        """The character code of an escape like \\n, \\x41, \\u0041, \\. (after the backslash)."""
        if ch in _CONTROL_ESCAPES:
            return ord(_CONTROL_ESCAPES[ch])
        for letter, width in (("x", 2), ("u", 4)):
            if ch == letter:
                digits = self.src[self.i: self.i + width]
                if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                    raise Unsupported(f"a malformed \\{letter} escape")
                self.i += width
                return int(digits, 16)
        if ch.isalnum():
            raise Unsupported(f"the escape \\{ch}")
        return ord(ch)

    def char_class(self) -> str:
        negated = self.src.startswith("^", self.i)
        self.i += negated
        ranges: list[tuple[int, int]] = []
        first = True
        while True:
            if self.i >= len(self.src):
                raise Unsupported("unbalanced '['")
            ch = self.src[self.i]
            if ch == "]" and not first:
                self.i += 1
                break
            first = False
            low = self.class_member(ranges)
            if low is None:
                continue
            if self.src.startswith("-", self.i) and self.i + 1 < len(self.src) and self.src[self.i + 1] != "]":
                self.i += 1
                high = self.class_member(ranges)
                if high is None or high < low:
                    raise Unsupported("a bad range in a character class")
                ranges.append((low, high))
            else:
                ranges.append((low, low))
        return _encoded_class(ranges, negated)

    def class_member(self, ranges: list[tuple[int, int]]) -> int | None:
        """One class member's code; a \\d/\\w/\\s set is added to `ranges` (None returned)."""
        ch = self.src[self.i]
        self.i += 1
        if ch != "\\":
            return ord(ch)
        if self.i >= len(self.src):
            raise Unsupported("a trailing backslash")
        esc = self.src[self.i]
        self.i += 1
        sets = {"d": _DIGIT, "w": _WORD, "s": _SPACE}
        if esc in sets:
            ranges.extend(sets[esc])
            return None
        if esc == "b":
            return 8
        return self.escaped_code(esc)

    def quantified(self, atom: str) -> str:
        if self.i >= len(self.src) or not atom:
            return atom
        ch = self.src[self.i]
        if ch in "*+?":
            self.i += 1
            low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[ch]
        elif ch == "{" and (m := re.match(r"\{(\d+)(,(\d*))?\}", self.src[self.i:])):
            self.i += m.end()
            low = int(m.group(1))
            high = low if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
            if max(low, high or 0) > REPEAT_LIMIT or (high is not None and high < low):
                raise Unsupported(f"the repetition {m.group(0)}")
        else:
            return atom
        if self.src.startswith("?", self.i):  # lazy: same language
            self.i += 1
        elif self.src.startswith("+", self.i):
            raise Unsupported("a possessive quantifier")
        return repeat(atom if _is_unit(atom) else f"( {atom} )", low, high)


def _is_unit(expr: str) -> bool:
    """Whether `expr` can take a quantifier as is (a name, literal, class or group)."""
    return bool(re.fullmatch(r'[a-zA-Z0-9-]+|"(\\.|[^"\\])*"|\[(\\.|[^\]\\])*\]', expr)) or (
        expr.startswith("( ") and expr.endswith(" )") and _balanced_group(expr))


def _balanced_group(expr: str) -> bool:
    depth, i, in_lit, in_cls = 0, 0, False, False
    while i < len(expr):
        c = expr[i]
        if c == "\\":
            i += 2
            continue
        if in_lit:
            in_lit = c != '"'
        elif in_cls:
            in_cls = c != "]"
        elif c == '"':
            in_lit = True
        elif c == "[":
            in_cls = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0 and i != len(expr) - 1:
                return False
        i += 1
    return depth == 0


def _escaped(text: str, pos: int) -> bool:
    """Whether the character at `pos` is escaped by an odd run of backslashes."""
    n = 0
    while pos - 1 - n >= 0 and text[pos - 1 - n] == "\\":
        n += 1
    return n % 2 == 1
