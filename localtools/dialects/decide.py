"""`auto` for models without tool training: the first tokens decide, call or text.

An untrained model rarely opens a call marker on its own, so a lazy grammar
waiting for that marker never fires (SmolLM2-135M made no call at all). In
"decide" mode the whole reply is constrained instead, and the choice is made
at its first token: either the dialect's call syntax over the offered tools
(names from the list, arguments by their schemas, several calls when parallel
calls are allowed) or a short text opener followed by any text at all. The
opener turns the first token into a choice between two continuations (the
call marker against the opener) rather than the marker against every word
prose could start with; the parser drops it, so a client sees only the text.

Which dialects decide by default, and their opener, is each dialect module's
knowledge (`Dialect.auto_tools_default`, `SpecDialect.text_opener`).
"""

from __future__ import annotations

from typing import Any

from localtools.dialects.base import Event, StreamParser
from localtools.dialects.grammar import call_list_rules, finish_grammar
from localtools.dialects.spec import DialectSpec
from localtools.gbnf import Grammar, gbnf_literal

DECIDE = "decide"
NATIVE = "native"
AUTO_TOOLS_MODES = (DECIDE, NATIVE)

DEFAULT_TEXT_OPENER = "Answer:"  # for dialects that do not name their own

# Added to the logits of the tokens that open a call, at the reply's first token only.
# SmolLM2-135M's first-token log-odds on scripts/eval_tools.py's cases put many
# multiple-tool questions just on the text side; a lean towards calling alone costs
# irrelevance, so it comes with the grounding check (dialects/grounding.py), which turns
# calls made of invented values back into text. Measured on all 180 cases (non-stream,
# simple/multiple/parallel/irrelevance %): 0 → 59/28/25/91, 1.5 → 63/37/27/89,
# 2.0 → 65/37/27/84, 2.5 → 67/39/30/82. Above 1.5 the calls gained come with grounded
# wrong calls ("What is the capital of France?" → get_stock_price(symbol="France")), and a
# wrong call does something where a missed one only answers in text: 1.5.
CALL_LEAN = 1.5


def decision_grammar(spec: DialectSpec, tools: list[dict[str, Any]], parallel: bool, opener: str) -> Grammar:
    """`root ::= calls | text`: the calls over `tools`, or `opener` then any text.

    Further calls in one reply repeat the first call's function: measured with
    scripts/eval_tools.py (SmolLM2-135M, first 20 multiple-tool and parallel
    cases), a small model that picked the right tool went on to call the other
    offered tools with invented arguments (multiple-tool 10%); held to its first
    choice it scored 20%, parallel unchanged at 45%. The cost: parallel requests
    for two different tools get the first one only.

    With an empty opener the text branch is any text not starting with the first
    character of the call syntax."""
    rules, schemas = call_list_rules(spec, tools, parallel, same_tool=True)
    rules.insert(0, "root ::= calls | text-reply")
    return Grammar(gbnf=finish_grammar(rules + _text_reply_rules(spec, opener), schemas))


def answer_grammar(spec: DialectSpec) -> Grammar:
    """Text that does not start like a call: the reply made again when the call first
    made was not grounded in the conversation (dialects/grounding.py). No opener: the
    choice is made, and without `answer:` in its context the model answers in its own
    words (measured: "Who wrote Hamlet?" went from a garbled `"A: 19th-century English
    playwright` to "Hamlet is a classic play written by William Shakespeare.")."""
    return Grammar(gbnf="\n".join(["root ::= text-reply", *_text_reply_rules(spec, "")]) + "\n")


def call_opening(spec: DialectSpec) -> str:
    """The text every call reply starts with (what CALL_LEAN favours at the first token)."""
    return spec.section_start or spec.call_start or "{"


def _text_reply_rules(spec: DialectSpec, opener: str) -> list[str]:
    """Text that does not start like a call: after the opener, if any, and any spaces the
    first character is not the call opening's. A small model that chose text, or was
    sent back to text by the grounding check, otherwise writes the call syntax itself,
    and the client would get a made-up call as content."""
    first = call_opening(spec)[:1]
    excluded = "\\\\" if first == "\\" else first.replace("]", "\\]").replace("^", "\\^")
    if opener:
        head = f"text-reply ::= {gbnf_literal(opener)} [ \\t\\n]* ([^{excluded} \\t\\n\\x00] free-text)?"
    else:
        head = f"text-reply ::= [ \\t\\n]* [^{excluded} \\t\\n\\x00] free-text"
    return [head, "free-text ::= [^\\x00]*"]


class OpenerStripper:
    """A parser that drops a leading text opener (and the whitespace after it).

    Text that does not start with the opener passes through unchanged, so the
    same parser serves replies made with or without the decision grammar."""

    def __init__(self, inner: StreamParser, opener: str) -> None:
        self._inner = inner
        self._opener = opener
        self._head = ""  # text held while the opener may still be arriving
        self._opened = not opener  # the opener was seen (or there is none)
        self._passing = not opener  # past the head: everything goes to the inner parser

    def feed(self, text: str) -> list[Event]:
        if self._passing:
            return self._inner.feed(text)
        self._head += text
        if not self._opened:
            if len(self._head) < len(self._opener) and self._opener.startswith(self._head):
                return []
            if not self._head.startswith(self._opener):
                return self._release(self._head)
            self._head = self._head[len(self._opener):]
            self._opened = True
        rest = self._head.lstrip()
        if not rest:
            self._head = ""
            return []
        return self._release(rest)

    @property
    def took_call_branch(self) -> bool:
        """The reply began without the opener: under the decision grammar, a call. A
        call cut by max_tokens is then dropped rather than shown as content."""
        return bool(self._opener) and self._passing and not self._opened

    def _release(self, text: str) -> list[Event]:
        self._passing = True
        self._head = ""
        return self._inner.feed(text)

    def finish(self) -> list[Event]:
        events: list[Event] = []
        if not self._passing and not self._opened and self._head:
            events = self._inner.feed(self._head)  # a reply shorter than the opener
        return events + self._inner.finish()
