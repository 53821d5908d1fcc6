"""What surrounds the calls in a turn: the generation prompt, reasoning tags and
the tags a template wraps an assistant's text in.

Each is read off a pair of renders that differ in one thing (with and without
reasoning, `enable_thinking` on and off, the prompt with and without
`add_generation_prompt`); the tags found are the ones next to the difference.
"""

from __future__ import annotations

import re
from typing import Any

from localtools.analysis.derive import Findings
from localtools.analysis.diff import diff_split, is_marker, segmentize_markers
from localtools.analysis.probe import ASSISTANT_MSG, THINKING, assistant, call, probe_tools, user
from localtools.analysis.render import Renderer
from localtools.dialects.spec import ReasoningSpec

_WS = " \t\r\n"


def generation_prompt(render: Renderer, **kwargs: Any) -> str:
    on = render([user()], probe_tools(), add_generation_prompt=True, **kwargs)
    off = render([user()], probe_tools(), add_generation_prompt=False, **kwargs)
    if on is None or off is None:
        return ""
    if on.startswith(off):
        return on[len(off) :]
    return diff_split(off, on).right


def derive_content_wrapper(render: Renderer, found: Findings) -> tuple[str, str] | None:
    """Tags the template puts around an assistant's text and that the prompt does
    not already hold (Command R7B's <|START_RESPONSE|>…<|END_RESPONSE|>, Kimi K3's
    response element): the model writes them, the user should not see them."""
    text = render([user(), assistant(ASSISTANT_MSG)], None)
    prompt = render([user()], None, add_generation_prompt=True)
    if not text or not prompt or ASSISTANT_MSG not in text:
        return None
    before, after = text.split(ASSISTANT_MSG, 1)
    opening, closing = _last_marker(before), _first_marker(after)
    if not (is_marker(opening[:1] + opening[-1:]) and is_marker(closing[:1] + closing[-1:])):
        return None
    if opening in prompt[-len(opening) - 40 :] or opening == closing or not before.rstrip(_WS).endswith(opening):
        return None
    found.evidence["content_wrapper"] = f"{opening}…{closing}"
    return opening, closing


def derive_reasoning(render: Renderer, found: Findings, source: str = "") -> ReasoningSpec | None:
    """Reasoning markers: around rendered reasoning_content, from enable_thinking,
    or, last, a <…think…>/</…think…> pair written in the template source (R1-style
    templates strip reasoning from history, so no render shows it)."""
    pairs = [
        (assistant(ASSISTANT_MSG), assistant(ASSISTANT_MSG, reasoning=THINKING)),
        (assistant("", [call()]), assistant("", [call()], reasoning=THINKING)),  # reasoning kept only with calls
    ]
    for without, with_reasoning in pairs:
        plain = render([user(), without], probe_tools())
        with_r = render([user(), with_reasoning], probe_tools())
        if not (plain and with_r and THINKING in with_r):
            continue
        split = diff_split(plain, with_r)
        if THINKING in split.right:
            before, after = split.right.split(THINKING, 1)
            # the tags may be in the common part (a template writing an empty block without reasoning)
            start = _last_marker(split.prefix + before)
            end = _first_marker(after + split.suffix)
            if start and end:
                found.evidence["reasoning"] = f"{start}…{end}"
                return ReasoningSpec(start, end)
    on = generation_prompt(render, enable_thinking=True)
    off = generation_prompt(render, enable_thinking=False)
    if on != off:
        d = diff_split(on, off)
        markers = [s for s in segmentize_markers(d.right) if is_marker(s)]
        if len(markers) >= 2:
            found.evidence["reasoning"] = f"{markers[0]}…{markers[-1]} (closed when thinking is off)"
            return ReasoningSpec(markers[0], markers[-1])
        opened = [s for s in segmentize_markers(d.left) if is_marker(s)]
        if opened:
            guess = "</" + opened[-1][1:] if opened[-1].startswith("<") else ""
            if guess:
                found.evidence["reasoning"] = f"{opened[-1]}… (opened by the generation prompt)"
                return ReasoningSpec(opened[-1], guess)
    for m in _THINK_TAG.finditer(source):
        opening = m.group(0)
        if "end" in opening.lower() or opening.startswith("</"):
            continue
        for closing in _closing_tags(opening):
            if closing in source:
                found.evidence["reasoning"] = f"{opening}…{closing} (from the template source)"
                return ReasoningSpec(opening, closing)
    return None


_THINK_TAG = re.compile(r"<[A-Za-z_:|]*think[A-Za-z_:|]*>", re.IGNORECASE)
_OPEN_WORDS = (("START", "END"), ("start", "end"), ("BEGIN", "END"), ("begin", "end"), ("open", "close"))


def _closing_tags(opening: str) -> list[str]:
    """Closers that pair with an opening tag: `</think>`, `<|END_THINKING|>`, `<|think_end|>`."""
    out = ["</" + opening[1:]]
    for a, b in _OPEN_WORDS:
        if a in opening:
            out.append(opening.replace(a, b, 1))
    return out


def _last_marker(text: str) -> str:
    """The tag just before some text: `<think>`, or a marker glued to a word
    (`<|channel>thought`, Kimi K3's `<|open|>think<|sep|>`)."""
    segs = segmentize_markers(text.rstrip(_WS))
    if not segs:
        return ""
    if not is_marker(segs[-1]):
        word = segs[-1].split()[-1] if segs[-1].split() else ""
        if word == segs[-1] and len(segs) > 1 and is_marker(segs[-2]):
            return segs[-2] + word
        return word
    if len(segs) >= 3 and _is_word(segs[-2]) and is_marker(segs[-3]):
        return "".join(segs[-3:])
    if len(segs) >= 2 and not is_marker(segs[-2]) and segs[-2].split() and not segs[-2][-1:].isspace():
        word = segs[-2].split()[-1]  # a header word glued to the tag (Muse's "to=self<|message|>")
        if "=" in word:
            return word + segs[-1]
    return segs[-1]


def _first_marker(text: str) -> str:
    """The tag just after some text: `</think>`, or Kimi K3's `<|close|>think<|sep|>`."""
    segs = segmentize_markers(text.lstrip(_WS))
    if not segs:
        return ""
    if not is_marker(segs[0]):
        return segs[0].split()[0] if segs[0].split() else ""
    if len(segs) >= 3 and _is_word(segs[1]) and is_marker(segs[2]):
        return "".join(segs[:3])
    return segs[0]


def _is_word(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_]+", text))
