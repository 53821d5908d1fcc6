"""Derive a DialectSpec from renders of probe conversations.

Each step renders conversations that differ in one thing (no call vs one
call, one vs two calls, one vs two arguments, a string vs a number value)
and reads the markers off the difference. The probe names and values are
unique tokens, so their positions in a render say where the syntax is:
what precedes the function name is the call opener, what separates two
calls splits section markers from per-call markers, and so on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

from localtools.analysis.diff import DiffSplit, diff_split, is_marker, marker_prefix, marker_suffix, segmentize_markers
from localtools.analysis.probe import (
    ARG_FIRST,
    ARG_SECOND,
    ASSISTANT_MSG,
    FUN_FIRST,
    FUN_SECOND,
    ID_FIRST,
    ID_SECOND,
    NUMBER,
    VALUE_X,
    VALUE_Y,
    assistant,
    call,
    probe_tools,
    user,
)
from localtools.analysis.render import Renderer
from localtools.dialects.pycall import balanced_end
from localtools.dialects.spec import DialectSpec

_DECODER = json.JSONDecoder()
_WS = " \t\r\n"


@dataclass
class Findings:
    """What the derivation found, beyond the spec: for `inspect` and for notes."""

    evidence: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class CallRenders:
    """Renders of an assistant turn holding calls, minus the content-only turn."""

    def __init__(self, render: Renderer, string_args: bool) -> None:
        self.render = render
        self.tools = probe_tools()
        self.string_args = string_args
        self.baseline = self._turn(assistant(ASSISTANT_MSG))

    def _turn(self, message: dict[str, Any]) -> str | None:
        text = self.render([user(), message], self.tools)
        if text is None:
            text = self.render([user(), message], None)
        return text

    def calls(self, calls: list[dict[str, Any]]) -> str | None:
        """The text the calls add in place of the content-only turn's content."""
        if self.baseline is None:
            return None
        text = self._turn(assistant("", calls))
        if text is None:
            text = self._turn(assistant(None, calls))
        if text is None:
            return None
        split = diff_split(self.baseline, text)
        self.context = split.prefix  # what precedes the calls (the prompt's tail)
        self.after = split.suffix  # what follows them (the turn's end)
        return split.right

    context = ""
    after = ""

    def call(self, name: str = FUN_FIRST, args: dict[str, Any] | None = None, call_id: str = ID_FIRST) -> dict[str, Any]:
        return call(name, args, call_id, self.string_args)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _split_last_segment(opener: str) -> tuple[str, str]:
    """(before, last) — the last non-blank marker/text segment and what precedes it."""
    segs = segmentize_markers(opener)
    i = len(segs) - 1
    while i > 0 and not segs[i].strip():
        i -= 1
    if i < 0:
        return "", opener
    last = "".join(segs[i:])
    before = "".join(segs[:i])
    if not is_marker(segs[i]):
        # text like "\n<function=": whitespace before it belongs to the part before
        stripped = last.lstrip(_WS)
        before += last[: len(last) - len(stripped)]
        last = stripped
    return before, last


def _split_first_segment(closer: str) -> tuple[str, str]:
    """(first, rest) — the first non-blank segment (with its trailing blanks) and the rest."""
    segs = segmentize_markers(closer)
    i = 0
    while i < len(segs) - 1 and not segs[i].strip():
        i += 1
    j = i + 1
    while j < len(segs) and not segs[j].strip():
        j += 1
    return "".join(segs[:j]), "".join(segs[j:])


def _split_between(before: str, between: str, after: str, whole: str = "") -> tuple[str, str, str]:
    """Split the text between two calls into (closer, separator, opener).

    The opener is what the text before the first call shares with the end of
    `between`; the closer is what the text after the last call shares with
    its start. Text both could claim goes to the closer (Kimi K3's "<|sep|>"
    ends every tag) unless the whole call text begins with it, which makes it a
    prefix of every tag (MiniMax-M3's "]<]minimax[>[")."""
    opener = marker_suffix(before, between)
    closer = marker_prefix(after, between)
    overlap = len(opener) + len(closer) - len(between)
    if overlap > 0:
        shared = opener[:overlap]
        if shared.strip() and whole.lstrip(_WS).startswith(shared.strip()):
            closer = closer[: len(closer) - overlap]
        else:
            opener = opener[overlap:]
    sep = between[len(closer) : len(between) - len(opener)]
    return closer, sep, opener


def _json_object_at(text: str, start: int) -> tuple[Any, int] | None:
    try:
        value, end = _DECODER.raw_decode(text, start)
    except ValueError:
        return None
    return value, end


def _enclosing_object(text: str, pos: int, want: str) -> tuple[int, int, dict[str, Any]] | None:
    """The innermost JSON object around `pos` whose text contains `want`."""
    i = text.rfind("{", 0, pos + 1)
    while i >= 0:
        found = _json_object_at(text, i)
        if found and isinstance(found[0], dict) and found[1] > pos and want in text[i : found[1]]:
            return i, found[1], found[0]
        i = text.rfind("{", 0, i)
    return None


def _json_name_pos(text: str, name: str) -> tuple[int, bool] | None:
    """Position of `"name"` as a JSON value (False) or key (True), if any."""
    for m in re.finditer(re.escape(json.dumps(name)), text):
        before = text[: m.start()].rstrip(_WS)
        after = text[m.end() :].lstrip(_WS)
        if before.endswith(":"):
            return m.start(), False
        if after.startswith(":") and before.endswith(("{", ",")):
            return m.start(), True
    return None


def _canonical_args_keys(key: str) -> tuple[str, ...]:
    others = [k for k in ("arguments", "parameters") if k != key]
    return (key, *others)


# ---------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------


def classify(h1: str) -> str | None:
    """json / tag_json / tagged from one rendered call, or None."""
    if FUN_FIRST not in h1:
        return None
    if _json_name_pos(h1, FUN_FIRST):
        return "json"
    if re.search(FUN_FIRST + r"\s*\(\s*" + ARG_FIRST + r"\s*=", h1):
        return "python"
    if re.search(re.escape(json.dumps(ARG_FIRST)) + r"\s*:", h1):  # a JSON key, not name="…"
        return "tag_json"
    if arg_quote(h1):
        return "quoted"
    if ARG_FIRST in h1:
        return "tagged"
    return None


def arg_quote(h1: str) -> str:
    """The token quoting strings in bare-key arguments (Gemma 4 `{k:<|"|>v<|"|>}`), or ""."""
    m = re.search(r"\{\s*" + ARG_FIRST + r"\s*:\s*(\S+?)" + VALUE_X + r"(\S+?)\s*\}", h1)
    return m.group(1) if m and m.group(1) == m.group(2) else ""


def _python_call_span(text: str, name: str) -> tuple[int, int] | None:
    m = re.search(re.escape(name) + r"\s*\(", text)
    end = balanced_end(text, m.end() - 1, "(", ")") if m else -1
    return (m.start(), end) if m and end > 0 else None


def derive_python(cr: CallRenders, h1: str, found: Findings) -> DialectSpec | None:
    """Python call syntax, `[f(a=1), g(b=2)]` or one call a line, inside optional markers."""
    span = _python_call_span(h1, FUN_FIRST)
    if span is None:
        found.notes.append("the rendered Python call does not close")
        return None
    pre, post = h1[: span[0]], h1[span[1] :]
    if pre.rstrip(_WS).endswith("[") and post.lstrip(_WS).startswith("]"):
        pre, post = pre.rstrip(_WS)[:-1], post.lstrip(_WS)[1:]
        found.evidence["call_list"] = "[…]"
    sep = ""
    h2 = cr.calls([cr.call(FUN_FIRST), cr.call(FUN_SECOND, {ARG_FIRST: VALUE_Y}, ID_SECOND)])
    first = _python_call_span(h2, FUN_FIRST) if h2 else None
    second = _python_call_span(h2, FUN_SECOND) if h2 else None
    if h2 and first and second and first[1] <= second[0]:
        sep = h2[first[1] : second[0]]
        found.evidence["call_separator"] = sep
    return DialectSpec(
        name="analyzed",
        shape="python",
        section_start=pre,
        section_end=post,
        call_sep=sep,
        bare_json=not pre.strip(),
    )


def derive_json(cr: CallRenders, h1: str, found: Findings) -> DialectSpec | None:
    loc = _json_name_pos(h1, FUN_FIRST)
    assert loc is not None
    pos, name_is_key = loc
    enclosing = _enclosing_object(h1, pos, ARG_FIRST)
    if enclosing is None:
        found.notes.append("the call's JSON object does not parse")
        return None
    start, end, obj = enclosing
    name_key, args_key, id_key = "name", "", ""
    extra: list[tuple[str, str]] = []
    seen_name = False
    for key, value in obj.items():
        if value == FUN_FIRST:
            name_key, seen_name = key, True
        elif value == ID_FIRST:
            id_key = key
        elif (isinstance(value, dict) and ARG_FIRST in value) or (isinstance(value, str) and ARG_FIRST in value):
            args_key = key
        elif isinstance(value, str) and not seen_name:
            extra.append((key, value))  # a constant written before the name
    if name_is_key:
        args_key = FUN_FIRST
    if not args_key:
        found.notes.append("no key holds the arguments in the call's JSON object")
        return None
    # an enclosing wrapper such as {"type": "function", "function": {…}} becomes marker text
    pre, post = h1[:start], h1[end:]
    array = pre.rstrip(_WS).endswith("[") and post.lstrip(_WS).startswith("]")
    if array:
        pre = pre.rstrip(_WS)[:-1]
        post = post.lstrip(_WS)[1:]
    if ID_FIRST in pre or ID_FIRST in post:
        found.notes.append("the call id is written outside the call's JSON object")
        return None
    section_start, call_start, call_end, section_end, sep = "", pre, post, "", ""
    if array:
        section_start, call_start, call_end, section_end = pre, "", "", post
    else:
        h2 = cr.calls([cr.call(FUN_FIRST), cr.call(FUN_SECOND, {ARG_FIRST: VALUE_Y}, ID_SECOND)])
        loc1 = _json_name_pos(h2, FUN_FIRST) if h2 else None
        loc2 = _json_name_pos(h2, FUN_SECOND) if h2 else None
        first = _enclosing_object(h2, loc1[0], ARG_FIRST) if h2 and loc1 else None
        second = _enclosing_object(h2, loc2[0], ARG_FIRST) if h2 and loc2 else None
        if h2 and first and second and first[1] <= second[0]:
            between = h2[first[1] : second[0]]
            call_end, sep, call_start = _split_between(pre, between, post, h1)
            section_start = pre[: len(pre) - len(call_start)]
            section_end = post[len(call_end) :]
            found.evidence["call_separator"] = sep
    bare = not (section_start + call_start).strip()
    return DialectSpec(
        name="analyzed",
        shape="json",
        section_start=section_start,
        section_end=section_end,
        call_start=call_start,
        call_end=call_end,
        call_sep=sep if not array else "",
        array=array,
        name_key=name_key,
        args_keys=_canonical_args_keys(args_key) if not name_is_key else ("arguments",),
        id_key=id_key,
        name_is_key=name_is_key,
        extra_fields=tuple(extra),
        bare_json=bare,
    )


@dataclass
class _Call:
    name_start: int
    name_end: int
    body_start: int  # where the arguments begin (tag_json: the JSON object)
    body_end: int


def _locate_tag_json(text: str, name: str, offset: int = 0) -> _Call | None:
    n = text.find(name, offset)
    if n < 0:
        return None
    a = text.find(json.dumps(ARG_FIRST), n)
    if a < 0:
        # zero-argument or differently written call
        return None
    enclosing = _enclosing_object(text, a, ARG_FIRST)
    if enclosing is None or enclosing[0] < n + len(name):
        return None
    return _Call(n, n + len(name), enclosing[0], enclosing[1])


def _locate_quoted(text: str, name: str, value: str, quote: str, offset: int = 0) -> _Call | None:
    n = text.find(name, offset)
    brace = text.find("{", n + len(name)) if n >= 0 else -1
    v = text.find(quote + value + quote, brace) if brace >= 0 else -1
    close = text.find("}", v + 2 * len(quote) + len(value)) if v >= 0 else -1
    if close < 0:
        return None
    return _Call(n, n + len(name), brace, close + 1)


class Locator(Protocol):
    """Where the call to `name` (with `value` for its first argument) sits in `text`, from `offset`."""

    def __call__(self, text: str, name: str, value: str, offset: int = 0) -> _Call | None: ...


def _tag_locator(shape: str, quote: str, arg_fields: ArgMarkers) -> Locator:
    """How to find a rendered call of this shape: its name, and where its arguments begin and end."""

    def locate(text: str, name: str, value: str, offset: int = 0) -> _Call | None:
        if quote:
            return _locate_quoted(text, name, value, quote, offset)
        if shape == "tag_json":
            return _locate_tag_json(text, name, offset)
        n = text.find(name, offset)
        if n < 0:
            return None
        a = text.find(ARG_FIRST, n + len(name))
        v = text.find(value, a)
        if a < 0 or v < 0:
            return None
        start = a - len(arg_fields["arg_name_prefix"])
        end = v + len(value)
        suffix = arg_fields["arg_value_suffix"].replace("{key}", ARG_FIRST)
        if text.startswith(suffix, end):
            end += len(suffix)
        return _Call(n, n + len(name), max(start, n + len(name)), end)

    return locate


@dataclass
class _Frame:
    """What surrounds the calls: read from one call, and from two calls for the separator."""

    head: str  # before the first call's name
    mid: str  # between the name and the arguments
    tail: str  # after the arguments
    opener: str  # the call's own opener (head without the section start)
    closer: str
    section_start: str = ""
    section_end: str = ""
    sep: str = ""
    mid2: str = ""  # the second call's `mid` (differs when calls are numbered)
    prompt_opened: bool = False  # the generation prompt wrote the first opener


def _call_frame(cr: CallRenders, h1: str, c1: _Call, locate: Locator, found: Findings) -> _Frame:
    head, mid, tail = h1[: c1.name_start], h1[c1.name_end : c1.body_start], h1[c1.body_end :]
    frame = _Frame(head, mid, tail, opener=head, closer=tail)
    h2 = cr.calls([cr.call(FUN_FIRST), cr.call(FUN_SECOND, {ARG_FIRST: VALUE_Y}, ID_SECOND)])
    if h2:
        a1 = locate(h2, FUN_FIRST, VALUE_X)
        a2 = locate(h2, FUN_SECOND, VALUE_Y, a1.body_end if a1 else 0)
        if a1 and a2:
            between = h2[a1.body_end : a2.name_start].replace(ID_SECOND, ID_FIRST)  # ids align like markers
            frame.mid2 = h2[a2.name_end : a2.body_start]
            frame.closer, frame.sep, frame.opener = _split_between(head, between, tail, h1)
            if not head.strip() and not frame.opener.strip():
                # the generation prompt opens the first call (Functionary v3.2's ">>>")
                _, frame.sep, frame.opener = _split_between(cr.context + head, between, tail, h1)
                frame.head = head = frame.opener
                frame.prompt_opened = True
            frame.section_start = head[: len(head) - len(frame.opener)]
            frame.section_end = tail[len(frame.closer) :]
            found.evidence["call_separator"] = frame.sep
    frame.section_end = _claim_terminator(frame.section_end, frame.closer, cr.after)
    return frame


def _call_header(frame: _Frame, shape: str, id_first: bool, found: Findings) -> tuple[str, str, str, int]:
    """(name_suffix, id_prefix, args_start, header_skip): what sits between a call's name and its arguments."""
    mid, mid2 = frame.mid, frame.mid2
    name_suffix, id_prefix, args_start, header_skip = mid, "", "", 0
    if FUN_FIRST in mid:
        # the name again further on (Muse's "to=NAME<|message|>…<invoke name=NAME>")
        name_suffix = mid.replace(FUN_FIRST, "{name}")
        found.evidence["name_repeated"] = name_suffix
    elif ID_FIRST in mid:
        before, after = mid.split(ID_FIRST, 1)
        name_suffix, id_prefix = _split_last_segment(before)
        args_start = after
    elif mid2 and mid2 != mid and shape in ("tag_json", "quoted"):
        # the header differs between calls: an index or id written after the name (Kimi's ":0")
        split = diff_split(mid, mid2)
        if split.left.isalnum() and split.right.isalnum():
            name_suffix, id_prefix = _split_last_segment(split.prefix) if split.prefix.strip() else ("", "")
            if not id_prefix:
                name_suffix, id_prefix = "", split.prefix
            args_start = split.suffix
            found.evidence["call_index"] = f"{split.left!r} then {split.right!r}"
    elif mid2 and mid2 != mid and shape == "tagged":
        # an attribute numbering the calls after the name (Kimi K3's ` index="1"`): skip it
        split = diff_split(mid, mid2)
        if split.left.isalnum() and split.right.isalnum() and split.suffix.strip():
            k = next((i for i, ch in enumerate(split.prefix) if ch in _WS), len(split.prefix))
            name_suffix = split.prefix[:k]
            args_start = split.suffix[len(name_suffix) :] if split.suffix.startswith(name_suffix) else split.suffix
            header_skip = len(split.prefix) - k + len(split.left) + 8
            found.evidence["call_index"] = f"{split.left!r} then {split.right!r}"
    elif (ID_FIRST in frame.head and not id_first) or ID_FIRST in frame.tail:
        found.notes.append("the call id is written away from the name; ids are not parsed")
    return name_suffix, id_prefix, args_start, header_skip


def derive_tag(cr: CallRenders, h1: str, shape: str, found: Findings) -> DialectSpec | None:
    arg_fields: ArgMarkers = {}
    quote = arg_quote(h1) if shape == "quoted" else ""
    if quote:
        found.evidence["string_quote"] = quote
    if shape == "tagged":
        arg_fields_or_none = _derive_arg_markers(cr, found)
        if arg_fields_or_none is None:
            return None
        arg_fields = arg_fields_or_none
    locate = _tag_locator(shape, quote, arg_fields)
    c1 = locate(h1, FUN_FIRST, VALUE_X)
    if c1 is None:
        found.notes.append("could not find the arguments after the function name")
        return None
    frame = _call_frame(cr, h1, c1, locate, found)
    opener, closer, mid = frame.opener, frame.closer, frame.mid
    id_first = ID_FIRST in opener  # the id opens the call (Solar Open's "<|tool_call:begin|>ID")
    if id_first:
        call_start, name_prefix = opener.split(ID_FIRST, 1)
    else:
        call_start, name_prefix = _split_last_segment(opener)
        if frame.prompt_opened:
            call_start, name_prefix = _split_at_prompt(opener, found.evidence.get("generation_prompt", ""), call_start, name_prefix)
    name_suffix, id_prefix, args_start, header_skip = _call_header(frame, shape, id_first, found)
    if ID_FIRST in (frame.section_start + call_start + name_prefix + closer):
        found.notes.append("the call id sits inside a call marker")
        return None
    if shape == "tagged":
        prefix = arg_fields["arg_name_prefix"]
        if name_suffix.endswith(prefix) and not header_skip:
            name_suffix = name_suffix[: len(name_suffix) - len(prefix)]
    elif ID_FIRST not in mid and not id_prefix:
        name_suffix, args_start = _split_first_segment(mid) if _has_two_segments(mid) else (mid, "")
    if not name_prefix.strip() and not call_start.strip() and not frame.section_start.strip():
        found.notes.append("nothing marks where a call begins")
        return None
    content_name = _content_name(cr.baseline or "", name_prefix, name_suffix)
    if content_name:
        found.evidence["content_name"] = content_name
    return DialectSpec(
        name="analyzed",
        shape="tag_json" if quote else shape,  # type: ignore[arg-type]
        args_string_quote=quote,
        content_name=content_name,
        section_start=frame.section_start,
        section_end=frame.section_end,
        call_start=call_start,
        call_end=closer,
        call_sep=frame.sep,
        name_prefix=name_prefix,
        name_suffix=name_suffix,
        id_prefix=id_prefix,
        args_start=args_start,
        header_skip=header_skip,
        id_first=id_first,
        **arg_fields,
    )


def _split_at_prompt(opener: str, prompt: str, call_start: str, name_prefix: str) -> tuple[str, str]:
    """Where the generation prompt writes the start of the first call's opener
    (Muse's prompt ends in "<|start|>assistant", a call in " to=NAME"), the opener
    splits there: the prompt's part is the call start, the rest the name prefix."""
    text, gen = opener.lstrip(_WS), prompt.strip()
    for k in range(len(gen), 0, -1):
        if text.startswith(gen[-k:]) and text[k:].strip():
            return gen[-k:], text[k:]
    return call_start, name_prefix


def _claim_terminator(section_end: str, call_end: str, after: str) -> str:
    """A marker ending every element (Kimi K3's `<|sep|>`) that the diff against the
    content-only turn left in the common suffix: the section's end owns it too."""
    segs = [s for s in segmentize_markers(call_end) if s.strip()]
    last = segs[-1] if segs and is_marker(segs[-1]) else ""
    if last and section_end.strip() and not section_end.endswith(last) and after.startswith(last):
        return section_end + last
    return section_end


def _content_name(baseline: str, name_prefix: str, name_suffix: str) -> str:
    """A pseudo-recipient for plain text, when the content turn is headed like a call
    (Functionary v3.2 writes ">>>all\ntext")."""
    if ASSISTANT_MSG not in baseline or not name_prefix.strip():
        return ""
    before = baseline.split(ASSISTANT_MSG, 1)[0]
    if "{name}" in name_suffix:  # a call header repeating the name: text has only its first tag
        name_suffix = _split_first_segment(name_suffix)[0]
    if name_suffix and before.endswith(name_suffix):
        before = before[: len(before) - len(name_suffix)]
    k = before.rfind(name_prefix.strip())
    word = before[k + len(name_prefix.strip()) :] if k >= 0 else ""
    return word if re.fullmatch(r"[A-Za-z0-9_]+", word) else ""


def _has_two_segments(text: str) -> bool:
    return len([s for s in segmentize_markers(text) if s.strip()]) >= 2


class ArgMarkers(TypedDict, total=False):
    """The tagged-argument fields of a `DialectSpec`, as derived from the renders."""

    arg_name_prefix: str
    arg_name_suffix: str
    arg_value_prefix: str
    arg_value_suffix: str
    arg_flag_sep: str


def _derive_arg_markers(cr: CallRenders, found: Findings) -> ArgMarkers | None:
    """Tagged arguments: markers around each argument's name and value."""
    h = cr.calls([cr.call(FUN_FIRST, {ARG_FIRST: VALUE_X, ARG_SECOND: VALUE_Y})])
    if not h:
        found.notes.append("a call with two arguments does not render")
        return None
    n = h.find(FUN_FIRST)
    pa1 = h.find(ARG_FIRST, n)
    px = h.find(VALUE_X, pa1)
    pa2 = h.find(ARG_SECOND, px)
    py = h.find(VALUE_Y, pa2)
    if min(n, pa1, px, pa2, py) < 0:
        found.notes.append("the arguments are not written in order")
        return None
    g0 = h[n + len(FUN_FIRST) : pa1]
    g1 = h[pa1 + len(ARG_FIRST) : px]
    g2 = h[px + len(VALUE_X) : pa2]
    g3 = h[py + len(VALUE_Y) :]
    if ARG_FIRST in g2 and ARG_SECOND in g3:  # the value's closing tag names its key (MiniMax-M3 "</K>")
        g2, g3 = g2.replace(ARG_FIRST, "{key}"), g3.replace(ARG_SECOND, "{key}")
        found.evidence["value_end_names_key"] = "{key}"
    value_suffix, sep, name_prefix = _split_between(g0, g2, g3, h)
    if sep.strip():
        found.notes.append(f"arguments are separated by {sep!r}, which the spec cannot express")
    if not name_prefix.strip():
        found.notes.append("nothing marks where an argument begins")
        return None
    if g1.strip() and _has_two_segments(g1):
        name_suffix, value_prefix = _split_first_segment(g1)
    else:
        name_suffix, value_prefix = g1, ""
    if not (name_suffix.strip() or value_prefix.strip()):
        found.notes.append("nothing separates an argument's name from its value")
        return None
    if not value_suffix.strip():
        found.notes.append("nothing marks where an argument's value ends")
        return None
    fields: ArgMarkers = {
        "arg_name_prefix": name_prefix,
        "arg_name_suffix": name_suffix,
        "arg_value_prefix": value_prefix,
        "arg_value_suffix": value_suffix,
    }
    fields.update(_derive_type_flag(cr, g1, found))
    return fields


def _whole_words(split: DiffSplit) -> DiffSplit:
    """Widen a difference to whole words: "true"/"false" share their last letter."""
    prefix, left, right, suffix = split.prefix, split.left, split.right, split.suffix
    while prefix and prefix[-1].isalnum():
        prefix, left, right = prefix[:-1], prefix[-1] + left, prefix[-1] + right
    while suffix and suffix[0].isalnum():
        left, right, suffix = left + suffix[0], right + suffix[0], suffix[1:]
    return DiffSplit(prefix, left, right, suffix)


def _derive_type_flag(cr: CallRenders, g1: str, found: Findings) -> ArgMarkers:
    """A type flag written with each argument's name (DeepSeek DSML `string="true"`,
    Kimi K3 `type="string"`): the header differs between a string and a number."""
    h = cr.calls([cr.call(FUN_FIRST, {ARG_FIRST: NUMBER})])
    value = json.dumps(NUMBER)
    if not h or ARG_FIRST not in h or value not in h:
        return {}
    start = h.find(ARG_FIRST) + len(ARG_FIRST)
    g1_number = h[start : h.find(value, start)]
    if g1_number == g1:
        return {}
    split = _whole_words(diff_split(g1, g1_number))
    if not (split.left.isalnum() and split.right.isalnum() and split.prefix.strip()):
        found.notes.append(f"an argument's header differs by type in a way the spec cannot express: {g1!r}")
        return {}
    found.evidence["type_flag"] = f"{split.left!r} for a string, {split.right!r} for a number"
    # the whole rest is the name's suffix: the parser reads the name up to its first token
    return {"arg_flag_sep": split.prefix, "arg_name_suffix": split.suffix, "arg_value_prefix": ""}
