"""The grammar's forced start of a reply is evaluated with the prompt, not sampled one
decode step per token (engine/sampling.jump_forward, localtools/gbnf_prefix.py).
Real model: what it writes is unchanged in kind (a valid call), the forced text comes
out first and whole, and requests the jump does not suit sample every token."""

from __future__ import annotations

import json

import pytest

from localtools.dialects import get_dialect
from localtools.engine import Engine, EngineConfig, GenerationStats, SamplingParams
from localtools.gbnf_prefix import forced_prefix

pytestmark = pytest.mark.e2e

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
PROMPT = ("<|im_start|>system\nYou can call get_weather(city).<|im_end|>\n"
          "<|im_start|>user\nWhat is the weather in Paris?<|im_end|>\n<|im_start|>assistant\n")
GRAMMAR = get_dialect("chatml-function").grammar([WEATHER], "required", False)
FORCED = forced_prefix(GRAMMAR.gbnf)


@pytest.fixture(scope="module")
def engine(model_path):
    eng = Engine(EngineConfig(model_path=str(model_path), n_ctx=1024, seed=1, n_parallel=2))
    yield eng
    eng.close()


def text_of(pieces: list[str]) -> str:
    return "".join(pieces)


def run(engine: Engine, **kw: object) -> tuple[list[str], GenerationStats]:
    stats = GenerationStats()
    params = SamplingParams(temperature=0.0, grammar=GRAMMAR, **kw)  # type: ignore[arg-type]
    return list(engine.generate(PROMPT, params, stats=stats)), stats


def test_the_forced_start_comes_first_and_whole_and_the_call_is_valid(engine):
    pieces, stats = run(engine, max_tokens=60)
    assert FORCED == '<tool_call>\n{"name": "get_weather", "arguments": {'
    # all but its last token, which the model samples (it may run on past the forced text)
    forced_tokens = engine.tokenize(FORCED, add_bos=False, special=True)
    head = "".join(engine.detokenize([t]) for t in forced_tokens[:-1])
    assert pieces[0] == head and FORCED.startswith(head) and len(head) > len("<tool_call>")
    assert text_of(pieces).startswith(FORCED)
    text = "".join(pieces)
    call = json.loads(text.removeprefix("<tool_call>\n").removesuffix("\n</tool_call>"))
    assert call["name"] == "get_weather" and isinstance(call["arguments"]["city"], str)
    n_forced = len(forced_tokens) - 1
    assert n_forced > 10
    # evaluated with the prompt; counted as generated (it is the reply's text)
    assert stats.prompt_tokens == len(engine.tokenize_prompt(PROMPT))
    assert stats.cached_tokens + stats.prompt_eval_tokens == stats.prompt_tokens
    assert stats.completion_tokens > n_forced
    assert stats.finish_reason == "stop"


def test_the_same_request_gives_the_same_reply(engine):
    first, _ = run(engine, max_tokens=60)
    run(engine, max_tokens=9)  # something else in between
    again, stats = run(engine, max_tokens=60)
    assert "".join(again) == "".join(first)
    # the cache held the prompt and the forced text: the counts stay the prompt's own
    assert stats.cached_tokens + stats.prompt_eval_tokens == stats.prompt_tokens
    assert stats.cached_tokens > 0


def test_logprobs_and_a_budget_below_the_forced_text_sample_every_token(engine):
    pieces, _ = run(engine, max_tokens=60, logprobs=1)  # each token's logprob is asked for
    assert len(pieces[0]) < 10 and FORCED.startswith(pieces[0])
    assert "".join(pieces).startswith(FORCED)
    pieces, stats = run(engine, max_tokens=5)
    assert stats.completion_tokens == 5 and stats.finish_reason == "length"
    assert FORCED.startswith("".join(pieces))


def test_a_stop_string_inside_the_forced_text_ends_the_reply_there(engine):
    pieces, stats = run(engine, max_tokens=60, stop=['"arguments"'])
    assert "".join(pieces) == '<tool_call>\n{"name": "get_weather", '
    assert stats.finish_reason == "stop"
