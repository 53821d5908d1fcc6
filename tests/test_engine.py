"""The engine on the real default model (SmolLM2-135M-Instruct): generation, stops,
counts, grammars (strict and lazy), prefix reuse, cancellation, limits."""

from __future__ import annotations

import json
import logging
import re
import threading
import time

import jsonschema
import pytest

from localtools.engine import (
    ContextLengthExceeded,
    Engine,
    EngineConfig,
    GenerationStats,
    GrammarError,
    SamplingParams,
)
from localtools.gbnf import Grammar, gbnf_rule_name, json_schema_to_gbnf

pytestmark = pytest.mark.e2e


def chatml(user: str, system: str | None = None) -> str:
    sys_part = f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""
    return f"{sys_part}<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


CAPITAL = chatml("What is the capital of France?")
STORY = chatml("Tell me a story about a cat.")
GREEDY = dict(temperature=0.0)


@pytest.fixture(scope="module")
def engine(model_path):
    eng = Engine(EngineConfig(model_path=str(model_path), n_ctx=1024, seed=1))
    yield eng
    eng.close()


def run(engine: Engine, prompt: str, fresh: bool = False, **kw) -> tuple[list[str], GenerationStats]:
    """Generate; `fresh` evaluates the prompt from scratch (identical numerics run to run)."""
    if fresh:
        engine.reset_cache()
    stats = GenerationStats()
    pieces = list(engine.generate(prompt, SamplingParams(**kw), stats=stats))
    return pieces, stats


# ---- model facts & tokens ---------------------------------------------------


def test_model_facts(engine):
    assert engine.n_ctx == 1024
    assert engine.bos_token == "<|im_start|>" and engine.eos_token == "<|im_end|>"
    assert engine.metadata["general.architecture"] == "llama"
    templates = engine.chat_templates()
    assert "<|im_start|>" in templates["default"]


def test_tokenize_and_count(engine):
    ids = engine.tokenize("<|im_start|>user\nhello")
    assert ids[0] == engine.bos_token_id  # special text parsed as the control token
    assert len(engine.tokenize("<|im_start|>", special=False)) > 1
    assert engine.count_tokens("hello world, again") == len(engine.tokenize("hello world, again"))
    assert engine.detokenize(engine.tokenize("héllo 世界")) == "héllo 世界"
    # SmolLM2 does not ask for BOS: the prompt is used as written
    assert engine.tokenize_prompt(CAPITAL) == engine.tokenize(CAPITAL)


def test_bad_model_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        Engine(EngineConfig(model_path=str(tmp_path / "missing.gguf")))
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"NOPE" + b"\0" * 64)
    with pytest.raises(ValueError, match="not a GGUF"):
        Engine(EngineConfig(model_path=str(junk)))


# ---- plain generation --------------------------------------------------------


def test_generates_text_and_counts(engine):
    pieces, st = run(engine, CAPITAL, max_tokens=32, **GREEDY)
    text = "".join(pieces)
    assert "Paris" in text
    assert st.prompt_tokens == len(engine.tokenize(CAPITAL))
    assert st.cached_tokens + st.prompt_eval_tokens == st.prompt_tokens
    assert st.finish_reason == "stop"  # the model ended its turn (EOS), not max_tokens
    assert 0 < st.completion_tokens < 32
    assert "<|im_end|>" not in text  # the end-of-turn token ends generation, unseen
    assert st.first_token_seconds is not None and st.decode_seconds > 0


def test_max_tokens_gives_length(engine):
    pieces, st = run(engine, STORY, max_tokens=5, **GREEDY)
    assert st.finish_reason == "length"
    assert st.completion_tokens == 5
    assert "".join(pieces)
    # the text is exactly what those 5 tokens spell
    assert engine.count_tokens("".join(pieces)) <= 6


def test_greedy_and_seeded_sampling_are_deterministic(engine):
    a, _ = run(engine, STORY, fresh=True, max_tokens=24, **GREEDY)
    b, _ = run(engine, STORY, fresh=True, max_tokens=24, **GREEDY)
    assert "".join(a) == "".join(b)
    c, _ = run(engine, STORY, fresh=True, max_tokens=24, temperature=1.0, seed=1234)
    d, _ = run(engine, STORY, fresh=True, max_tokens=24, temperature=1.0, seed=1234)
    assert "".join(c) == "".join(d)
    texts = {"".join(run(engine, STORY, fresh=True, max_tokens=24, temperature=1.5, seed=s)[0]) for s in (1, 2, 3)}
    assert len(texts) > 1  # the seed matters


def test_penalties_change_greedy_text(engine, story_text):
    for penalty in (dict(repeat_penalty=1.5), dict(frequency_penalty=1.5), dict(presence_penalty=1.5)):
        pieces, st = run(engine, STORY, fresh=True, max_tokens=40, **penalty, **GREEDY)
        assert "".join(pieces) != story_text, penalty
    assert "".join(run(engine, STORY, fresh=True, max_tokens=40, repeat_penalty=1.0, **GREEDY)[0]) == story_text


# ---- stop strings ------------------------------------------------------------


@pytest.fixture(scope="module")
def story_text(engine) -> str:
    pieces, st = run(engine, STORY, fresh=True, max_tokens=40, **GREEDY)
    text = "".join(pieces)
    assert len(text) > 60 and st.finish_reason == "length"
    return text


def test_stop_string_cuts_exactly(engine, story_text):
    stop = story_text[20:24]
    cut = story_text.find(stop)
    pieces, st = run(engine, STORY, fresh=True, max_tokens=40, stop=[stop], **GREEDY)
    assert "".join(pieces) == story_text[:cut]
    assert st.finish_reason == "stop"
    assert all(stop not in p for p in pieces)


def test_earliest_of_several_stops_wins(engine, story_text):
    late, early = story_text[40:44], story_text[15:18]
    cut = min(story_text.find(late), story_text.find(early))
    pieces, st = run(engine, STORY, fresh=True, max_tokens=40, stop=[late, early], **GREEDY)
    assert "".join(pieces) == story_text[:cut]
    assert st.finish_reason == "stop"


def test_held_back_stop_prefix_is_released(engine, story_text):
    # a stop string that starts like the text's end but never completes
    never = story_text[-3:] + "\u2603\u2603"
    pieces, st = run(engine, STORY, fresh=True, max_tokens=40, stop=[never], **GREEDY)
    assert "".join(pieces) == story_text
    assert st.finish_reason == "length"


# ---- grammars ----------------------------------------------------------------


def test_strict_grammar_is_obeyed(engine):
    spec = Grammar('root ::= "yes" | "no"')
    for seed in (1, 2, 3):
        pieces, st = run(engine, chatml("Is the sky green?"), max_tokens=8, temperature=1.0, seed=seed, grammar=spec)
        assert "".join(pieces) in ("yes", "no")
        assert st.finish_reason == "stop"


def test_multibyte_text_and_special_tokens_come_through(engine):
    target = "héllo 世界 🎉"
    pieces, st = run(engine, CAPITAL, max_tokens=40, grammar=Grammar(f'root ::= "{target}"'), **GREEDY)
    assert "".join(pieces) == target
    assert all("\ufffd" not in p for p in pieces)  # no half characters
    pieces, _ = run(engine, CAPITAL, max_tokens=5, grammar=Grammar('root ::= <|im_start|> "ok"'), **GREEDY)
    assert "".join(pieces) == "<|im_start|>ok"  # a generated control token is shown as text


def test_json_schema_grammar_yields_valid_json(engine):
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 12},
            "unit": {"enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
        },
        "required": ["city", "unit", "days"],
    }
    gbnf = json_schema_to_gbnf({"args-get_weather": schema}) + "root ::= args-get-weather\n"
    for seed in (1, 2):
        pieces, st = run(engine, chatml("Weather in Paris?"), max_tokens=60, temperature=0.8, seed=seed, grammar=Grammar(gbnf))
        value = json.loads("".join(pieces))
        jsonschema.validate(value, schema)
        assert st.finish_reason == "stop"


def test_grammar_errors(engine):
    with pytest.raises(GrammarError, match="Undefined rule"):
        list(engine.generate(CAPITAL, SamplingParams(grammar=Grammar("root ::= nothing"))))
    with pytest.raises(GrammarError, match="trigger"):
        list(engine.generate(CAPITAL, SamplingParams(grammar=Grammar('root ::= "a"', lazy=True, triggers=["(open"]))))
    with pytest.raises(GrammarError):
        list(engine.generate(CAPITAL, SamplingParams(grammar=Grammar('root ::= "a"', lazy=True, triggers=[]))))
    # the engine still works afterwards
    assert "".join(run(engine, CAPITAL, max_tokens=4, **GREEDY)[0])


def test_lazy_grammar_constrains_after_trigger(engine, story_text):
    assert " cat" in story_text  # free text reaches the trigger
    spec = Grammar('root ::= "cat=" [0-9] [0-9] [0-9]', lazy=True, triggers=[r"\bcat\b"])
    pieces, st = run(engine, STORY, fresh=True, max_tokens=40, grammar=spec, **GREEDY)
    text = "".join(pieces)
    at = text.find("cat")
    assert text[:at] == story_text[: story_text.find(" cat") + 1]  # free before the trigger
    assert re.fullmatch(r"cat=\d{3}", text[at:]), text
    assert st.finish_reason == "stop"


def test_lazy_grammar_starts_at_first_capture_group(engine, story_text):
    words = story_text.split()
    first_two = f"{words[0]} ({words[1]})"
    spec = Grammar('root ::= "' + words[1] + '" "!"', lazy=True, triggers=[first_two])
    pieces, _ = run(engine, STORY, fresh=True, max_tokens=20, grammar=spec, **GREEDY)
    assert "".join(pieces) == f"{words[0]} {words[1]}!"


def test_lazy_trigger_token_running_past_grammar_is_cut_not_fatal(engine, story_text):
    # the trigger "a" matches inside a longer token (e.g. " was"): llama.cpp's native lazy
    # sampler would abort the process here; we keep the grammar's part of that token.
    spec = Grammar('root ::= "a"', lazy=True, triggers=["a"])
    pieces, st = run(engine, STORY, fresh=True, max_tokens=20, grammar=spec, **GREEDY)
    text = "".join(pieces)
    assert text == story_text[: story_text.find("a") + 1]
    assert st.finish_reason == "stop"


def test_lazy_grammar_without_trigger_is_free(engine, story_text):
    spec = Grammar('root ::= "x"', lazy=True, triggers=["NEVER-APPEARS"])
    pieces, _ = run(engine, STORY, fresh=True, max_tokens=40, grammar=spec, **GREEDY)
    assert "".join(pieces) == story_text


# ---- KV prefix reuse ---------------------------------------------------------


# long enough for flash attention's smallest exact chunk (64 tokens, engine/kv_cache.py)
BRIEF = "You are brief. Answer in one short sentence, without lists, and never ask questions back. " * 4
THEN = "And of Germany? Please answer in the same way as before: one short sentence, nothing more. " * 3


def test_multi_turn_reuses_the_cached_prefix(engine):
    engine.reset_cache()
    first = chatml("What is the capital of France?", system=BRIEF)
    pieces, st1 = run(engine, first, max_tokens=16, **GREEDY)
    assert st1.cached_tokens == 0 and st1.prompt_eval_tokens == st1.prompt_tokens
    assert st1.prompt_tokens >= 64  # flash attention's long-prompt class
    reply = "".join(pieces)
    second = first + reply + f"<|im_end|>\n<|im_start|>user\n{THEN}<|im_end|>\n<|im_start|>assistant\n"
    _, st2 = run(engine, second, max_tokens=8, **GREEDY)
    assert st2.prompt_tokens == len(engine.tokenize(second))
    # the first prompt only: the reply's tokens were evaluated one at a time, and such
    # K/V is never reused (the reproducibility rule, engine/kv_cache.py)
    assert st2.cached_tokens == st1.prompt_tokens
    assert st2.prompt_eval_tokens < st2.prompt_tokens
    assert st2.cached_tokens + st2.prompt_eval_tokens == st2.prompt_tokens
    # the identical prompt again: everything but the smallest exact chunk (2 tokens, 64
    # with flash attention) comes from the cache
    _, st3 = run(engine, second, max_tokens=2, **GREEDY)
    assert st3.prompt_eval_tokens == engine.slots[0].chunk_for(st3.prompt_tokens)


def test_prefix_reuse_gives_the_same_greedy_text(engine):
    capital = chatml("What is the capital of France?", system=BRIEF)
    fresh, _ = run(engine, capital, fresh=True, max_tokens=12, **GREEDY)
    run(engine, chatml("What is the capital of Spain?", system=BRIEF), max_tokens=3, **GREEDY)  # shares a prefix
    reused, st = run(engine, capital, max_tokens=12, **GREEDY)
    assert st.cached_tokens > 0
    assert "".join(reused) == "".join(fresh)


# ---- cancellation & limits ----------------------------------------------------


def test_cancel_stops_within_a_token(engine):
    cancel = threading.Event()
    stats = GenerationStats()
    after_cancel = 0
    started = time.perf_counter()
    for i, _ in enumerate(engine.generate(STORY, SamplingParams(max_tokens=None, temperature=0.8), cancel, stats)):
        if i == 2:
            cancel.set()
        elif i > 2:
            after_cancel += 1
    assert after_cancel <= 1
    assert stats.finish_reason == "cancelled"
    assert stats.completion_tokens <= 4
    assert time.perf_counter() - started < 5


def test_cancel_from_another_thread(engine):
    cancel = threading.Event()
    stats = GenerationStats()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    pieces = list(engine.generate(STORY, SamplingParams(max_tokens=None, temperature=0.8), cancel, stats))
    timer.join()
    assert stats.finish_reason == "cancelled"
    assert stats.completion_tokens < engine.n_ctx - stats.prompt_tokens
    assert pieces is not None


def test_context_length_exceeded(engine):
    prompt = chatml("word " * 1200)
    gen = engine.generate(prompt, SamplingParams(max_tokens=4))
    with pytest.raises(ContextLengthExceeded) as info:
        next(gen)
    assert info.value.n_ctx == 1024 and info.value.prompt_tokens > 1024
    # exactly full: no room for a reply either
    filler = engine.detokenize(engine.tokenize("a b " * 600)[: 1024 - engine.count_tokens(chatml(""))])
    with pytest.raises(ContextLengthExceeded):
        next(engine.generate(chatml(filler), SamplingParams(max_tokens=4)))
    assert "".join(run(engine, CAPITAL, max_tokens=3, **GREEDY)[0])


def test_generation_stops_when_the_context_is_full(model_path):
    small = Engine(EngineConfig(model_path=str(model_path), n_ctx=160))
    try:
        room = small.n_ctx  # llama.cpp may round the size up
        assert 160 <= room <= 512
        words = 10
        while small.count_tokens(chatml("Count: " + "one two " * (words + 1))) < room - 30:
            words += 1
        prompt = chatml("Count: " + "one two " * words)
        n = small.count_tokens(prompt)
        assert room - 40 < n < room
        # the grammar keeps the model from ending its turn early (no EOS before 1 char)
        pieces, st = run(small, prompt, max_tokens=None, temperature=1.0, seed=5, grammar=Grammar("root ::= [a-z ]+"))
        if st.finish_reason == "stop":  # the model may still choose EOS after a word
            assert st.completion_tokens < room - n
        else:
            assert st.finish_reason == "length"
            assert st.completion_tokens == room - n
    finally:
        small.close()


def test_one_generation_at_a_time(engine):
    outer = engine.generate(CAPITAL, SamplingParams(max_tokens=8, **GREEDY))
    next(outer)
    with pytest.raises(RuntimeError, match="already generating"):
        next(engine.generate(CAPITAL, SamplingParams(max_tokens=2)))
    outer.close()
    assert "".join(run(engine, CAPITAL, max_tokens=3, **GREEDY)[0])


# ---- JSON schema -> GBNF -------------------------------------------------------


def test_schema_rules_are_named_by_keys_and_do_not_collide(engine):
    loc_a = {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]}
    loc_b = {"type": "object", "properties": {"name": {"enum": ["x", "y"]}}, "required": ["name"]}
    schemas = {
        "args-a": {"type": "object", "properties": {"where": {"$ref": "#/$defs/Location"}}, "required": ["where"], "$defs": {"Location": loc_a}},
        "args-b": {"type": "object", "properties": {"where": {"$ref": "#/$defs/Location"}}, "required": ["where"], "$defs": {"Location": loc_b}},
        "args-a-where": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    }
    gbnf = json_schema_to_gbnf(schemas)
    names = [line.split(" ::= ")[0] for line in gbnf.splitlines() if line]
    assert len(names) == len(set(names))
    assert "root" not in names
    for key, schema in schemas.items():
        rule = gbnf_rule_name(key)
        assert rule in names
        pieces, _ = run(engine, chatml("Give JSON."), max_tokens=40, temperature=0.7, seed=3,
                        grammar=Grammar(gbnf + f"root ::= {rule}\n"))
        value = json.loads("".join(pieces))
        resolved = {**schema, "$defs": schema.get("$defs", {})}
        jsonschema.validate(value, resolved)


def test_unsupported_schema_parts_are_relaxed_with_a_warning(engine, caplog):
    schemas = {
        # a lookahead is beyond a grammar ([A-Z]{3} is enforced now)
        "args-pat": {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(?!X)[A-Z]{3}$"}, "pattern": {"type": "string"}}, "required": ["code", "pattern"]},
        "args-ref": {"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}, "required": ["x"]},
        "args-huge": {"type": "object", "properties": {"s": {"type": "string", "maxLength": 10**9}}, "required": ["s"]},
    }
    with caplog.at_level(logging.WARNING, logger="localtools.schema_gbnf"):
        gbnf = json_schema_to_gbnf(schemas)
    assert "args-pat" in caplog.text and "args-ref" in caplog.text and "args-huge" in caplog.text
    assert '\\"pattern\\"' in gbnf  # a *property* named "pattern" survives the relaxation
    for key in schemas:
        pieces, _ = run(engine, chatml("JSON please"), max_tokens=30, temperature=0.0,
                        grammar=Grammar(gbnf + f"root ::= {gbnf_rule_name(key)}\n"))
        assert "".join(pieces).startswith("{")


def test_bad_rule_names_are_refused():
    with pytest.raises(ValueError):
        json_schema_to_gbnf({"a_b": {}, "a-b": {}})
    with pytest.raises(ValueError):
        json_schema_to_gbnf({"root": {}})
    with pytest.raises(ValueError):
        json_schema_to_gbnf({"string": {}})


def test_flash_attn_reaches_llama_cpp(model_path):
    """Flash attention, the default (serve --flash-attn off turns it off), runs other
    attention kernels: the same prompt's logits differ by tenths (its CPU kernels keep
    some sums in half precision), while the chosen token stays the same."""
    import numpy as np

    prompt = "<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\n"
    rows = []
    for flash in (False, None):
        eng = Engine(EngineConfig(model_path=str(model_path), n_ctx=256, n_threads=2, flash_attn=flash))
        try:
            gen = eng.start(prompt, SamplingParams(max_tokens=1, temperature=0.0))
            while gen.n_gen == 0 and not gen.done:
                eng.step()
            rows.append(np.array(gen.logits(), dtype=np.float32))
            eng.release(gen)
        finally:
            eng.close()
    off, default = rows
    assert off.argmax() == default.argmax()
    assert 0 < np.abs(off - default).max() < 1.0
