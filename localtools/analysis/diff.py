"""Marker-aware text diffing: a diff boundary never falls inside a tag.

Chat templates write special markers as `<…>` or `[…]` tokens
(`<|tool_call|>`, `[TOOL_CALLS]`); a character diff of two renders would cut
`<tool_call>` vs `<tool_response>` after `<tool_`. Here texts are first cut
into marker and text segments, and whole equal segments are matched from both
ends before characters are compared inside text segments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

_CLOSER = {"<": ">", "[": "]"}


def segmentize_markers(text: str) -> list[str]:
    """Split into segments: each `<…>`/`[…]` marker alone, text runs between.

    An opener without its closer (before the next opener of either kind) is text:
    MiniMax-M3's namespace `]<]minimax[>[` glued to each tag is no marker itself."""
    segments: list[str] = []
    buf_start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        closer = _CLOSER.get(ch)
        if closer is not None:
            j = i + 1
            while j < n and text[j] != closer and text[j] not in _CLOSER and text[j] != "\n":
                j += 1
            if j < n and text[j] == closer and j > i + 1:
                if i > buf_start:
                    segments.append(text[buf_start:i])
                segments.append(text[i : j + 1])
                i = j + 1
                buf_start = i
                continue
        i += 1
    if buf_start < n:
        segments.append(text[buf_start:])
    return segments


def is_marker(segment: str) -> bool:
    return len(segment) >= 2 and segment[0] in _CLOSER and segment[-1] == _CLOSER[segment[0]]


@dataclass(frozen=True)
class DiffSplit:
    """left = prefix + left_mid + suffix; right = prefix + right_mid + suffix."""

    prefix: str
    left: str
    right: str
    suffix: str


def diff_split(left: str, right: str) -> DiffSplit:
    """Common prefix and suffix of two renders, never splitting a marker."""
    a, b = segmentize_markers(left), segmentize_markers(right)
    lo = 0
    while lo < len(a) and lo < len(b) and a[lo] == b[lo]:
        lo += 1
    hi = 0
    while hi < len(a) - lo and hi < len(b) - lo and a[-1 - hi] == b[-1 - hi]:
        hi += 1
    prefix = "".join(a[:lo])
    suffix = "".join(a[len(a) - hi :]) if hi else ""
    mid_a = a[lo : len(a) - hi]
    mid_b = b[lo : len(b) - hi]
    # inside text segments at the boundaries, extend character-wise
    if mid_a and mid_b and not is_marker(mid_a[0]) and not is_marker(mid_b[0]):
        extra = os.path.commonprefix([mid_a[0], mid_b[0]])
        if extra:
            prefix += extra
            mid_a = [mid_a[0][len(extra) :]] + mid_a[1:]
            mid_b = [mid_b[0][len(extra) :]] + mid_b[1:]
    if mid_a and mid_b and not is_marker(mid_a[-1]) and not is_marker(mid_b[-1]):
        extra = common_suffix(mid_a[-1], mid_b[-1])
        if extra:
            keep_a = len(mid_a[-1]) - len(extra)
            keep_b = len(mid_b[-1]) - len(extra)
            suffix = extra + suffix
            mid_a = mid_a[:-1] + [mid_a[-1][:keep_a]]
            mid_b = mid_b[:-1] + [mid_b[-1][:keep_b]]
    return DiffSplit(prefix, "".join(mid_a), "".join(mid_b), suffix)


def common_suffix(a: str, b: str) -> str:
    n = 0
    while n < len(a) and n < len(b) and a[-1 - n] == b[-1 - n]:
        n += 1
    return a[len(a) - n :] if n else ""


def common_prefix(a: str, b: str) -> str:
    return os.path.commonprefix([a, b])


def _marker_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    pos = 0
    for seg in segmentize_markers(text):
        if is_marker(seg):
            spans.append((pos, pos + len(seg)))
        pos += len(seg)
    return spans


def _inside(spans: list[tuple[int, int]], cut: int) -> tuple[int, int] | None:
    for lo, hi in spans:
        if lo < cut < hi:
            return lo, hi
    return None


def marker_suffix(a: str, b: str) -> str:
    """The longest common suffix of a and b that cuts no marker of either."""
    n = len(common_suffix(a, b))
    spans_a, spans_b = _marker_spans(a), _marker_spans(b)
    while n > 0:
        hit = _inside(spans_a, len(a) - n) or _inside(spans_b, len(b) - n)
        if hit is None:
            break
        lo, hi = hit
        cut = len(a) - n if _inside(spans_a, len(a) - n) else len(b) - n
        n -= hi - cut
    return a[len(a) - n :] if n > 0 else ""


def marker_prefix(a: str, b: str) -> str:
    """The longest common prefix of a and b that cuts no marker of either."""
    n = len(common_prefix(a, b))
    spans_a, spans_b = _marker_spans(a), _marker_spans(b)
    while n > 0:
        hit = _inside(spans_a, n) or _inside(spans_b, n)
        if hit is None:
            break
        n = hit[0]
    return a[:n]
