"""logprobs / top_logprobs: the engine's numbers against llama-cpp-python's own, grammar
masking, and OpenAI's shapes through the real openai client, streamed and not."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import llama_cpp
import pytest
from openai import BadRequestError, OpenAI

from localtools.engine import Engine, EngineConfig, Grammar, SamplingParams
from tests.live_server import live_server

pytestmark = pytest.mark.e2e

PROMPT = "The capital of France is"
CHAT = [{"role": "user", "content": "Name three colours, in one short sentence."}]


@pytest.fixture(scope="module")
def engine(model_path: Path) -> Iterator[Engine]:
    eng = Engine(EngineConfig(model_path=str(model_path), n_ctx=512))
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def reference(model_path: Path) -> dict[str, Any]:
    """llama-cpp-python's own greedy completion with logprobs, for PROMPT, with flash
    attention on as in our default (its own default is off)."""
    llm = llama_cpp.Llama(str(model_path), n_ctx=512, logits_all=True, flash_attn=True, verbose=False)
    try:
        return llm.create_completion(PROMPT, max_tokens=8, temperature=0.0, logprobs=3)["choices"][0]
    finally:
        llm.close()


def test_engine_logprobs_are_llama_cpp_pythons(engine: Engine, reference: dict[str, Any]) -> None:
    text = "".join(engine.generate(PROMPT, SamplingParams(temperature=0.0, max_tokens=8, logprobs=3)))
    entries = engine.last_stats.logprobs
    assert text == reference["text"]
    assert [e.text.decode() for e in entries] == reference["logprobs"]["tokens"]
    for e, want, top in zip(entries, reference["logprobs"]["token_logprobs"],
                            reference["logprobs"]["top_logprobs"], strict=True):
        assert math.isclose(e.logprob, want, abs_tol=1e-4)
        assert {raw.decode(): pytest.approx(lp, abs=1e-4) for raw, lp in e.top} == top
        assert e.top[0][0] == e.text  # greedy: the chosen token is the most likely one
    assert [e.offset for e in entries] == [len(b"".join(x.text for x in entries[:i])) for i in range(len(entries))]


def test_without_logprobs_nothing_is_recorded(engine: Engine) -> None:
    "".join(engine.generate(PROMPT, SamplingParams(temperature=0.0, max_tokens=3)))
    assert engine.last_stats.logprobs == []


def test_logprobs_are_taken_after_grammar_masking(engine: Engine) -> None:
    prompt = PROMPT
    free = SamplingParams(temperature=0.0, max_tokens=1, logprobs=5)
    "".join(engine.generate(prompt, free))
    unmasked = engine.last_stats.logprobs[0]
    grammar = Grammar(gbnf='root ::= " London" | " Rome"')
    "".join(engine.generate(prompt, SamplingParams(temperature=0.0, max_tokens=4, logprobs=5, grammar=grammar)))
    first = engine.last_stats.logprobs[0]
    allowed = (b" London", b" Rome")
    assert all(any(a.startswith(raw) for a in allowed) for raw, _ in first.top)  # only what the grammar allows
    assert sum(math.exp(lp) for _, lp in first.top) <= 1.0 + 1e-6
    assert unmasked.text == b" Paris"  # what the model prefers, and the grammar forbids
    unmasked_lp = dict(unmasked.top)[b" London"]
    assert first.text == b" London" and first.logprob > unmasked_lp  # renormalised over the allowed tokens
    assert b"".join(e.text for e in engine.last_stats.logprobs) in allowed


# ---- through the server


@pytest.fixture(scope="module")
def client() -> Iterator[OpenAI]:
    with live_server(["--n-ctx", "1024", "--alias", "tiny"]) as url:
        yield OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)


def _chat_entries(logprobs: Any) -> list[tuple[str, float, list[tuple[str, float]]]]:
    return [(c.token, c.logprob, [(t.token, t.logprob) for t in c.top_logprobs]) for c in logprobs.content]


def test_chat_logprobs_in_openais_shape(client: OpenAI) -> None:
    reply = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=16, temperature=0,
                                           logprobs=True, top_logprobs=3)
    choice = reply.choices[0]
    content = choice.logprobs.content
    assert content and "".join(c.token for c in content) == choice.message.content
    for c in content:
        assert bytes(c.bytes) == c.token.encode() and c.logprob <= 0
        assert len(c.top_logprobs) == 3
        lps = [t.logprob for t in c.top_logprobs]
        assert lps == sorted(lps, reverse=True)
        assert c.top_logprobs[0].token == c.token and math.isclose(lps[0], c.logprob)  # greedy
    assert len(content) == reply.usage.completion_tokens or choice.finish_reason == "stop"

    streamed = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=16, temperature=0,
                                              logprobs=True, top_logprobs=3, stream=True)
    entries: list[Any] = []
    text = ""
    for chunk in streamed:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            if chunk.choices[0].logprobs is not None:
                entries += _chat_entries(chunk.choices[0].logprobs)
    assert text == choice.message.content
    want = _chat_entries(choice.logprobs)
    assert [e[0] for e in entries] == [e[0] for e in want]
    assert [e[1] for e in entries] == pytest.approx([e[1] for e in want], abs=1e-4)


def test_chat_logprobs_without_alternatives(client: OpenAI) -> None:
    reply = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=4, temperature=0, logprobs=True)
    assert reply.choices[0].logprobs.content
    assert all(c.top_logprobs == [] for c in reply.choices[0].logprobs.content)
    plain = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=4, temperature=0)
    assert plain.choices[0].logprobs is None


def test_completion_logprobs_match_llama_cpp_python(client: OpenAI, reference: dict[str, Any]) -> None:
    reply = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=8, temperature=0, logprobs=3)
    lp = reply.choices[0].logprobs
    assert reply.choices[0].text == reference["text"]
    assert lp.tokens == reference["logprobs"]["tokens"]
    assert lp.token_logprobs == pytest.approx(reference["logprobs"]["token_logprobs"], abs=1e-4)
    assert [set(t) for t in lp.top_logprobs] == [set(t) for t in reference["logprobs"]["top_logprobs"]]
    assert lp.text_offset == [len("".join(lp.tokens[:i])) for i in range(len(lp.tokens))]

    streamed = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=8, temperature=0,
                                         logprobs=3, stream=True)
    tokens: list[str] = []
    offsets: list[int] = []
    for chunk in streamed:
        if chunk.choices and chunk.choices[0].logprobs is not None:
            tokens += chunk.choices[0].logprobs.tokens
            offsets += chunk.choices[0].logprobs.text_offset
    assert tokens == lp.tokens and offsets == lp.text_offset


def test_a_stop_strings_tokens_are_not_listed(client: OpenAI) -> None:
    reply = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=8, temperature=0, logprobs=0,
                                      stop=["."])
    lp = reply.choices[0].logprobs
    assert "".join(lp.tokens) == reply.choices[0].text and "." not in reply.choices[0].text
    assert all(t == {} for t in lp.top_logprobs)


@pytest.mark.parametrize(
    ("kind", "fields", "param"),
    [
        ("chat", {"top_logprobs": 2}, "top_logprobs"),
        ("chat", {"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ("completions", {"logprobs": 6}, "logprobs"),
    ],
)
def test_bad_logprobs_requests(client: OpenAI, kind: str, fields: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequestError) as err:
        if kind == "chat":
            client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=1, **fields)
        else:
            client.completions.create(model="tiny", prompt=PROMPT, max_tokens=1, **fields)
    assert err.value.body["param"] == param


def test_logprobs_of_a_grammar_forced_tool_call(client: OpenAI) -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    reply = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[tool],
        tool_choice="required", max_tokens=40, temperature=0, logprobs=True, top_logprobs=5)
    choice = reply.choices[0]
    assert choice.message.tool_calls and choice.message.tool_calls[0].function.name == "get_weather"
    content = choice.logprobs.content
    assert content and all(math.isfinite(c.logprob) for c in content)
    # under the grammar some steps allow fewer than 5 tokens; those list fewer, never a forbidden one
    assert any(len(c.top_logprobs) < 5 for c in content)
    assert all(c.top_logprobs[0].token == c.token for c in content)  # greedy within what the grammar allows
    assert "get_weather" in "".join(c.token for c in content)
