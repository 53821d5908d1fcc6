"""Text searches run on generated output: stop strings (and the partial stop a piece
may end in) and the trigger patterns that arm a lazy grammar. Pure Python, no llama.cpp."""

from __future__ import annotations

import re

from localtools.engine.errors import GrammarError

TRIGGER_LOOKBACK = 1024  # chars of earlier text a new trigger match may start in


def compile_triggers(patterns: list[str]) -> list[re.Pattern[str]]:
    """A lazy grammar's trigger regexes, compiled (GrammarError for none or a bad one)."""
    if not patterns:
        raise GrammarError("a lazy grammar needs at least one trigger pattern")
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise GrammarError(f"invalid trigger pattern {pattern!r}: {exc}") from None
    return compiled


def trigger_start(triggers: list[re.Pattern[str]], text: str, search_from: int) -> int:
    """Where the grammar starts if a trigger matches `text`, else -1.

    As in llama.cpp: a pattern written `^...$` must match the whole text, others match
    anywhere; the grammar starts at the first non-empty capturing group, else at the match.
    """
    best = -1
    for rx in triggers:
        src = rx.pattern
        if src.startswith("^") and src.endswith("$"):
            m = rx.fullmatch(text)
        else:
            m = rx.search(text, search_from)
        if m is None:
            continue
        start = m.start()
        for g in range(1, (rx.groups or 0) + 1):
            if m.start(g) >= 0 and m.end(g) > m.start(g):
                start = m.start(g)
                break
        if best < 0 or start < best:
            best = start
    return best


def find_stop(text: str, stops: list[str]) -> int:
    """Index of the earliest stop string in `text`, or -1."""
    best = -1
    for s in stops:
        i = text.find(s)
        if i >= 0 and (best < 0 or i < best):
            best = i
    return best


def partial_stop_len(text: str, stops: list[str], max_stop: int) -> int:
    """Length of the longest tail of `text` that is a proper prefix of some stop string."""
    upto = min(len(text), max_stop - 1)
    for k in range(upto, 0, -1):
        tail = text[-k:]
        for s in stops:
            if len(s) > k and s.startswith(tail):
                return k
    return 0


class StopFilter:
    """Holds back generated text that may be the start of a stop string.

    `feed` returns (text safe to emit now, whether a stop string was reached); after a
    stop the text before it is returned and the rest dropped.
    """

    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self._max_stop = max((len(s) for s in self.stops), default=0)
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        if not self.stops:
            return text, False
        pending = self.pending + text
        cut = find_stop(pending, self.stops)
        if cut >= 0:
            self.pending = ""
            return pending[:cut], True
        keep = partial_stop_len(pending, self.stops, self._max_stop)
        self.pending = pending[len(pending) - keep :]
        return pending[: len(pending) - keep], False

    def flush(self, tail: str) -> tuple[str, bool]:
        """What is left at the end (held text plus `tail`), cut at a stop string."""
        rest = self.pending + tail
        self.pending = ""
        if self.stops:
            cut = find_stop(rest, self.stops)
            if cut >= 0:
                return rest[:cut], True
        return rest, False
