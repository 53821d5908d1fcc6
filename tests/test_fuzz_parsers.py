"""Hypothesis over every registered dialect's parser: model output that breaks the
dialect (half a call, bad JSON, an unknown tool, stray markers) never raises and
never loses text.

Inputs are built from the dialect's own marker strings (from its spec), JSON
fragments, offered and unknown tool names, and random text, so that most
examples look like started, broken or complete calls.

Invariants, for every dialect, stream=True and stream=False:

1. Parsing never raises, whether the prompt ended plainly, inside an opened call
   header or inside opened reasoning.
2. The final message (content, reasoning, calls with name/arguments/id) is the
   same whether the text is fed whole or in arbitrary chunks.
3. Text containing none of the characters used by the dialect's markers (nor
   JSON/call punctuation) comes back as content, exactly, with no reasoning and
   no call.
4. When no call is parsed, nothing is lost: every non-whitespace character of
   the input, after deleting the dialect's marker strings (and a marker prefix
   cut off at the very end, which parsers drop), appears in content + reasoning
   (compared as multisets: reasoning and content are separate strings).
"""

from __future__ import annotations

import collections
import dataclasses
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localtools.dialects import Dialect, MessageBuilder, ParsedMessage, all_dialects
from tests.parser_cases import all_tools

DIALECTS = all_dialects()
MAX_EXAMPLES = 150
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)

TOOL_NAMES = ("get_weather", "python", "special_function")
TOOLS = [all_tools()[name] for name in TOOL_NAMES]
JSON_FRAGMENTS = (
    "{", "}", "[", "]", ":", ",", '"', "\n", " ",
    '"name"', '"arguments"', '"parameters"', '"get_weather"', '"python"', '"no_such_tool"',
    '{"city": "Paris"}', '{"city": ', '"Par', '{"name": "get_weather", "arguments": {"city": "Oslo"}}',
    '{"name": "get_weather", "arguments": {', "get_weather", "no_such_tool", "(", ")", "=", "city=",
    "'Rome'", "null", "true", "12.5", "\\", "\\u00e9", "é", "日本", "🙂",
)
# characters that start JSON, Python-call or tag syntax in some dialect
SYNTAX_CHARS = set("{}[]()<>|\"'`=:;,\\")


def marker_strings(dialect: Dialect) -> list[str]:
    """Every literal marker the dialect's spec knows (sections, calls, names, args, reasoning, stops)."""
    spec = dialect.spec  # type: ignore[attr-defined]
    out: list[str] = []
    skip = {"name", "shape", "id_pattern", "id_format", "name_key", "id_key"}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if f.name in skip:
            continue
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, tuple):
            for item in value:
                out.extend([item] if isinstance(item, str) else [x for x in item if isinstance(x, str)])
    if spec.reasoning is not None:
        out += [spec.reasoning.start, spec.reasoning.end]
    out += dialect.stop_strings()
    out = [m.replace("{key}", "city") for m in out if m]
    return sorted(set(out), key=lambda m: (-len(m), m))


def dialect_alphabet(dialect: Dialect) -> str:
    """Printable characters (plus some non-ASCII) that occur in none of the dialect's markers."""
    used = set("".join(marker_strings(dialect))) | SYNTAX_CHARS
    chars = string.ascii_letters + string.digits + " .!?-_+*/#%&@~^$" + "éü日本🙂"
    return "".join(c for c in chars if c not in used)


def texts(dialect: Dialect) -> st.SearchStrategy[str]:
    """Random text biased toward this dialect's markers and JSON pieces."""
    piece = st.one_of(
        st.sampled_from(marker_strings(dialect) or ["<>"]),
        st.sampled_from(JSON_FRAGMENTS),
        st.text(max_size=6),
    )
    return st.lists(piece, max_size=24).map("".join)


def chunked(text: str, cuts: list[int]) -> list[str]:
    """`text` split at the given (sorted, deduplicated) offsets."""
    points = sorted({c % (len(text) + 1) for c in cuts})
    out, last = [], 0
    for p in points + [len(text)]:
        out.append(text[last:p])
        last = p
    return out


def prompt_tails(dialect: Dialect) -> list[str]:
    """How a generation prompt may end for this dialect: plainly, having opened a call
    header (Functionary's '>>>'), or having opened reasoning ('<think>')."""
    spec = dialect.spec  # type: ignore[attr-defined]
    tails = ["<|im_start|>assistant\n"]
    opener = spec.call_start + spec.name_prefix
    if spec.shape != "json" and opener.strip() and not spec.section_start:
        tails.append(tails[0] + opener)
    if spec.reasoning is not None:
        tails.append(tails[0] + spec.reasoning.start)
    return tails


def parse(dialect: Dialect, chunks: list[str], stream: bool, prompt_tail: str = "") -> ParsedMessage:
    parser = dialect.parser(TOOLS, prompt_tail, stream=stream)
    builder = MessageBuilder()
    for chunk in chunks:
        builder.add(parser.feed(chunk))
    builder.add(parser.finish())
    return builder.build()


def summary(msg: ParsedMessage) -> dict[str, Any]:
    return {
        "content": msg.content,
        "reasoning": msg.reasoning,
        "calls": [(c.name, c.arguments_json, c.id) for c in msg.tool_calls],
    }


def without_markers(text: str, markers: list[str]) -> str:
    """The input with every marker occurrence deleted (longest first) and a marker
    prefix cut off at the very end dropped (parsers hold such a tail, then drop it)."""
    for m in markers:
        if m.strip():
            text = text.replace(m, "")
    for m in markers:
        for k in range(len(m) - 1, 0, -1):
            if text.endswith(m[:k]) and m[:k].strip():
                return text[: -k]
    return text


def non_ws(text: str | None) -> collections.Counter[str]:
    return collections.Counter(c for c in (text or "") if not c.isspace())


def assert_nothing_lost(dialect: Dialect, text: str, msg: ParsedMessage) -> None:
    if msg.tool_calls:
        return
    expected = non_ws(without_markers(text, marker_strings(dialect)))
    got = non_ws((msg.content or "") + (msg.reasoning or ""))
    missing = expected - got
    assert not missing, f"{dialect.name} lost {dict(missing)} of {text!r}: {summary(msg)}"


@pytest.mark.parametrize("dialect", DIALECTS, ids=[d.name for d in DIALECTS])
def test_marker_soup_never_raises_and_ignores_chunking(dialect: Dialect) -> None:
    @FUZZ
    @given(text=texts(dialect), cuts=st.lists(st.integers(0, 400), max_size=8),
           tail=st.sampled_from(prompt_tails(dialect)))
    def check(text: str, cuts: list[int], tail: str) -> None:
        for stream in (False, True):
            whole = parse(dialect, [text], stream, tail)
            split = parse(dialect, chunked(text, cuts), stream, tail)
            assert summary(split) == summary(whole), (stream, chunked(text, cuts))
            assert_nothing_lost(dialect, text, whole)

    check()


@pytest.mark.parametrize("dialect", DIALECTS, ids=[d.name for d in DIALECTS])
def test_text_without_marker_characters_is_content_exactly(dialect: Dialect) -> None:
    alphabet = dialect_alphabet(dialect)

    @FUZZ
    @given(text=st.text(alphabet=alphabet + "\n ", max_size=80), cuts=st.lists(st.integers(0, 100), max_size=6))
    def check(text: str, cuts: list[int]) -> None:
        for stream in (False, True):
            for chunks in ([text], chunked(text, cuts)):
                msg = parse(dialect, chunks, stream)
                assert msg.tool_calls == [] and msg.reasoning is None, summary(msg)
                assert (msg.content or "") == text

    check()


def test_markers_are_found_for_every_dialect() -> None:
    """The fuzzer's bias is real: every dialect but marker-less ones yields markers."""
    empty = [d.name for d in DIALECTS if not marker_strings(d)]
    assert set(empty) <= {"xlam"}, empty
    assert len(DIALECTS) >= 40
