"""Streamed chunks follow OpenAI's delta rules for every recorded dialect output.

No model: each recorded output (tests/data/outputs) is fed through the same
path as a server request — the dialect's parser inside `service.ChatRun`, then
`adapters.openai_chat.ChunkWriter` — token by token, in chunks of 2, 3, 5 and 8, in
random splits, and cut short as a stop string would cut it. The chunk sequence
must be what an OpenAI client expects, and reassembled it must equal the
non-streamed message.
"""

from __future__ import annotations

import json
import random
from types import SimpleNamespace
from typing import Any, Iterator

import pytest

from localtools.adapters.openai_chat import ChunkWriter, MessageAccumulator, openai_finish_reason
from localtools.dialects import get_dialect
from localtools.engine import GenerationStats
from localtools.service import ChatRun, Finish
from tests.parser_cases import load_cases, tools_for



def _family_cases() -> list[tuple[str, dict[str, Any]]]:
    """The real-format outputs of the other model families, in the recorded-case shape."""
    from tests.test_dialect_families import CASES as FAMILY

    out = []
    for dialect, cid, tail, text, tools, calls, content, _reasoning in FAMILY:
        expected = {"content": content, "tool_calls": [{"name": n, "arguments": a} for n, a in calls]}
        out.append((dialect, {"id": cid, "prompt_tail": tail, "text": text, "tools": tools, "expected": expected}))
    # `generic` writes calls the way chatml-function does (only the roles around them differ)
    out += [("generic", dict(c, prompt_tail="")) for d, c in load_cases() if d == "chatml-function"]
    return out


# every dialect with real-format outputs: the recorded files and the families' cases
CASES = load_cases() + _family_cases()
IDS = [f"{d}:{c['id']}" for d, c in CASES]
GENERIC_MARKERS = ("<tool_call>", "[TOOL_CALLS]", ">>>", "<function=", "<|python_tag|>", "functools[", "[ARGS]")


class RecordedHandle:
    """Stands in for the scheduler's handle: yields recorded text as the engine would."""

    def __init__(self, pieces: list[str], finish_reason: str = "stop") -> None:
        self._pieces = pieces
        self.stats = GenerationStats(finish_reason=finish_reason, completion_tokens=len(pieces))
        self.cancelled = False

    def __iter__(self) -> Iterator[str]:
        for piece in self._pieces:
            if self.cancelled:
                self.stats.finish_reason = "cancelled"
                return
            yield piece

    def cancel(self) -> None:
        self.cancelled = True


def run_items(
    dialect_name: str, case: dict[str, Any], pieces: list[str], stream: bool, max_calls: int | None = None
) -> list[Any]:
    """Events and the Finish of a ChatRun over recorded text (as start_chat wires it)."""
    dialect = get_dialect(dialect_name)
    runtime = SimpleNamespace(dialect=dialect)
    parser = dialect.parser(tools_for(case), prompt_tail=case.get("prompt_tail", ""), stream=stream)
    run = ChatRun(RecordedHandle(pieces), parser, runtime, calls_allowed=True, prompt="",  # type: ignore[arg-type]
                  stream=stream, max_calls=max_calls)
    return list(run)


def stream_chunks(items: list[Any]) -> list[dict[str, Any]]:
    """The SSE chunk payloads, exactly as the server's _stream_chat makes them."""
    writer = ChunkWriter("m")
    chunks = [writer.first()]
    for item in items:
        if isinstance(item, Finish):
            chunks.append(writer.finish(item.finish_reason))
            break
        chunk = writer.event(item)
        if chunk is not None:
            chunks.append(chunk)
    return chunks


def non_stream_message(items: list[Any]) -> tuple[dict[str, Any], str]:
    acc = MessageAccumulator()
    finish = None
    for item in items:
        if isinstance(item, Finish):
            finish = item
        else:
            acc.add(item)
    assert finish is not None
    return acc.message(), openai_finish_reason(finish.finish_reason)


def reassemble(chunks: list[dict[str, Any]]) -> tuple[dict[str, Any], str | None]:
    """A client's reassembly of the stream into one message."""
    content = ""
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    for chunk in chunks:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            for tc in delta.get("tool_calls") or []:
                call = calls.setdefault(tc["index"], {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
                if "id" in tc:
                    call["id"] = tc["id"]
                    call["function"]["name"] = tc["function"]["name"]
                call["function"]["arguments"] += tc["function"].get("arguments", "")
            finish = choice["finish_reason"] or finish
    ordered = [calls[i] for i in sorted(calls)]
    if ordered:
        content = content.strip()
    msg: dict[str, Any] = {"role": "assistant", "content": content if (content or not ordered) else None}
    if ordered:
        msg["tool_calls"] = ordered
    return msg, finish


def markers_of(dialect_name: str) -> set[str]:
    spec = getattr(get_dialect(dialect_name), "spec", None)
    found = set(GENERIC_MARKERS)
    if spec is not None:
        for text in (spec.section_start, spec.call_start, spec.name_prefix, spec.args_start):
            if text.strip():
                found.add(text.strip())
    return found


def check_chunk_rules(chunks: list[dict[str, Any]], dialect_name: str) -> None:
    """OpenAI's streaming rules (docs/ARCHITECTURE.md, 'OpenAI wire format')."""
    first = chunks[0]["choices"][0]
    assert first["delta"].get("role") == "assistant" and first["finish_reason"] is None
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    opened: dict[int, str] = {}
    args: dict[int, str] = {}
    content = ""
    for chunk in chunks[1:-1]:
        choice = chunk["choices"][0]
        assert choice["finish_reason"] is None
        delta = choice["delta"]
        assert "role" not in delta
        content += delta.get("content") or ""
        for tc in delta.get("tool_calls") or []:
            i = tc["index"]
            if i not in opened:
                assert i == len(opened), "calls open in index order"
                assert set(tc) == {"index", "id", "type", "function"}
                assert tc["type"] == "function" and tc["id"]
                assert tc["function"]["name"] and tc["function"]["arguments"] == ""
                opened[i] = tc["id"]
                args[i] = ""
            else:
                assert set(tc) == {"index", "function"} and set(tc["function"]) == {"arguments"}
                assert tc["function"]["arguments"], "no empty argument fragments"
                args[i] += tc["function"]["arguments"]
    assert len(set(opened.values())) == len(opened), "call ids are unique"
    last = chunks[-1]["choices"][0]
    assert last["delta"] == {}
    if opened:
        assert last["finish_reason"] == "tool_calls"
        for text in args.values():
            assert isinstance(json.loads(text), dict) and text.rstrip().endswith("}")
        leaked = [m for m in markers_of(dialect_name) if m in content]
        assert not leaked, f"marker text {leaked} in content {content!r}"
    else:
        assert last["finish_reason"] == "stop"


def splits(text: str) -> dict[str, list[str]]:
    out = {"whole": [text], "chars": list(text) or [""]}
    for n in (2, 3, 5, 8):
        out[f"by{n}"] = [text[i : i + n] for i in range(0, len(text), n)] or [""]
    for seed in range(3):
        rng = random.Random(seed)
        pieces, i = [], 0
        while i < len(text):
            k = rng.randint(1, 12)
            pieces.append(text[i : i + k])
            i += k
        out[f"random{seed}"] = pieces or [""]
    return out


def summary(msg: dict[str, Any]) -> tuple[Any, list[tuple[str, str]]]:
    return msg["content"], [(c["function"]["name"], c["function"]["arguments"]) for c in msg.get("tool_calls") or []]


@pytest.mark.parametrize("dialect,case", CASES, ids=IDS)
def test_chunks_follow_openai_rules_and_reassemble_to_the_message(dialect: str, case: dict[str, Any]) -> None:
    text = case["text"]
    held, held_finish = non_stream_message(run_items(dialect, case, [text], stream=False))
    for label, pieces in splits(text).items():
        items = run_items(dialect, case, pieces, stream=True)
        chunks = stream_chunks(items)
        check_chunk_rules(chunks, dialect)
        streamed, finish = reassemble(chunks)
        # (the held parse differs only where a call breaks: streamed, it was already sent)
        if len(streamed.get("tool_calls") or []) == len(held.get("tool_calls") or []):
            assert summary(streamed) == summary(held), label
            assert finish == held_finish, label
        for call in streamed.get("tool_calls") or []:
            if call["function"]["arguments"].strip() in ("{}", ""):
                assert call["function"]["arguments"] == "{}", "a parameterless call streams {}"


@pytest.mark.parametrize("dialect,case", CASES, ids=IDS)
def test_chunks_stay_valid_when_a_stop_string_cuts_the_output(dialect: str, case: dict[str, Any]) -> None:
    text = case["text"]
    rng = random.Random(case["id"])
    for cut in sorted({len(text) // 3, len(text) // 2, (2 * len(text)) // 3, rng.randrange(len(text) + 1)}):
        items = run_items(dialect, case, [text[i : i + 3] for i in range(0, cut, 3)], stream=True)
        check_chunk_rules(stream_chunks(items), dialect)


def test_parallel_recorded_call_streams_two_indexes() -> None:
    """A concrete sequence, so a reader sees what the rules above look like."""
    dialect, case = next((d, c) for d, c in CASES if c["id"] == "reka-parallel")
    chunks = stream_chunks(run_items(dialect, case, list(case["text"]), stream=True))
    deltas = [c["choices"][0]["delta"] for c in chunks]
    opens = [tc for d in deltas for tc in d.get("tool_calls") or [] if "id" in tc]
    assert [(tc["index"], tc["function"]["name"]) for tc in opens] == [
        (0, "special_function"), (1, "special_function_with_opt")]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    msg, _ = reassemble(chunks)
    assert [json.loads(c["function"]["arguments"]) for c in msg["tool_calls"]] == [{"arg1": 1}, {"arg1": 1, "arg2": 2}]


PARALLEL = [(d, c) for d, c in CASES if len(c.get("expected", {}).get("tool_calls") or []) > 1]


@pytest.mark.parametrize("dialect_name,case", PARALLEL, ids=[f"{d}:{c['id']}" for d, c in PARALLEL])
def test_parallel_tool_calls_false_returns_only_the_first_call(dialect_name: str, case: dict[str, Any]) -> None:
    """Whatever the grammar allows (some dialects have none in `auto`), a request with
    parallel_tool_calls false gets one call: the first, whole; streamed and not alike."""
    text = case["text"]
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    full, _ = non_stream_message(run_items(dialect_name, case, pieces, stream=False))
    assert len(full["tool_calls"]) > 1
    one, finish = non_stream_message(run_items(dialect_name, case, pieces, stream=False, max_calls=1))
    chunks = stream_chunks(run_items(dialect_name, case, pieces, stream=True, max_calls=1))
    check_chunk_rules(chunks, dialect_name)
    streamed, streamed_finish = reassemble(chunks)
    assert finish == streamed_finish == "tool_calls"
    for msg in (one, streamed):
        assert [c["function"] for c in msg["tool_calls"]] == [full["tool_calls"][0]["function"]]
