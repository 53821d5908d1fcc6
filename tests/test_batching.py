"""Continuous batching in the engine (real model): several generations in one context,
each with its own slot, sampler chain and grammar; batching and the KV cache's contents
do not change a temperature-0 reply (the reproducibility rule, engine/kv_cache.py).

Every test runs with flash attention on (the default) and off: these conversations stay
under 256 tokens, where both modes are bitwise reproducible (README, "Reproducible output")."""

from __future__ import annotations

import json
import threading

import pytest

from localtools.engine import Engine, EngineConfig, SamplingParams
from localtools.gbnf import Grammar

pytestmark = pytest.mark.e2e

SLOTS = 4


def chatml(user: str, system: str = "You are a helpful assistant.") -> str:
    return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


PROMPTS = [
    chatml("What is the capital of France?"),
    chatml("Tell me a story about a cat."),
    chatml("Write a haiku about the sea."),
    chatml("List three colours."),
    chatml("Explain what a CPU does in one sentence."),
]
GREEDY = SamplingParams(max_tokens=24, temperature=0.0)


@pytest.fixture(scope="module", params=[True, False], ids=["flash", "no-flash"])
def engine(model_path, request):
    eng = Engine(EngineConfig(model_path=str(model_path), n_ctx=1024, seed=1, n_parallel=SLOTS,
                              flash_attn=request.param))
    yield eng
    eng.close()


def alone(engine: Engine, prompt: str, params: SamplingParams = GREEDY) -> str:
    return "".join(engine.generate(prompt, params))


def together(engine: Engine, jobs: list[tuple[str, SamplingParams]], start_every: int = 0) -> list[str]:
    """Run the jobs side by side; with `start_every`, job k starts after k*start_every
    steps (so prompts are evaluated while others decode)."""
    texts = [""] * len(jobs)
    gens: dict[int, object] = {}
    step = 0
    while len(gens) < len(jobs) or any(not g.done for g in gens.values()):  # type: ignore[attr-defined]
        for k, (prompt, params) in enumerate(jobs):
            if k not in gens and step >= k * start_every:
                gens[k] = engine.start(prompt, params)
        engine.step()
        step += 1
        for k, gen in gens.items():
            texts[k] += "".join(gen.drain())  # type: ignore[attr-defined]
    for gen in gens.values():
        texts_error = gen.error  # type: ignore[attr-defined]
        assert texts_error is None
        engine.release(gen)  # type: ignore[arg-type]
    assert engine.slots_busy == 0
    return texts


def test_engine_has_slots_of_n_ctx_each(engine):
    assert engine.n_parallel == SLOTS
    assert engine.n_ctx == 1024


def test_greedy_reply_is_the_same_alone_and_in_a_busy_batch(engine):
    solo = [alone(engine, p) for p in PROMPTS[:SLOTS]]
    assert len(set(solo)) == SLOTS and all(solo)
    assert together(engine, [(p, GREEDY) for p in PROMPTS[:SLOTS]]) == solo
    # staggered: prompts evaluated (chunked prefill) while the others decode
    assert together(engine, [(p, GREEDY) for p in PROMPTS[:SLOTS]], start_every=3) == solo


def test_same_request_three_times_interleaved_whatever_the_cache_held(engine):
    target = PROMPTS[0]
    engine.reset_cache()
    first = alone(engine, target)
    outputs = [first]
    # the others share its system prompt (prefix reuse) and fill the slots' caches
    for other in PROMPTS[1:3]:
        alone(engine, other)
        outputs.append(together(engine, [(PROMPTS[3], GREEDY), (target, GREEDY), (other, GREEDY)], start_every=2)[1])
    # the same conversation continued: its earlier reply is in a slot's cache
    outputs.append(alone(engine, target))
    assert outputs == [first] * len(outputs)


def test_reused_prefix_stops_before_generated_tokens_and_leaves_the_smallest_chunk(engine):
    """A prompt of 64+ tokens: its smallest exact chunk is 2 tokens without flash
    attention, 64 with it."""
    engine.reset_cache()
    prompt = chatml("Tell me a story about a cat.", system=LONG_SYSTEM)
    n_prompt = len(engine.tokenize_prompt(prompt))
    smallest = engine.slots[0].chunk_for(n_prompt)
    assert n_prompt > 64 and smallest == (64 if engine.config.flash_attn else 2)
    reply = alone(engine, prompt)
    follow = prompt + reply + "<|im_end|>\n<|im_start|>user\nAgain.<|im_end|>\n<|im_start|>assistant\n"
    n_follow = len(engine.tokenize_prompt(follow))
    gen = engine.start(follow, GREEDY)
    # the slot holding `prompt` is chosen, and at most its prompt's K/V is kept
    assert gen.stats.cached_tokens == min(n_prompt, n_follow - smallest)
    engine.release(gen)
    gen = engine.start(prompt, GREEDY)
    assert gen.stats.prompt_eval_tokens == smallest
    engine.release(gen)


def test_a_short_prompt_reuses_all_but_two_tokens_in_both_modes(engine):
    """Under 64 tokens a prompt is one chunk of flash attention's short path, and so is
    its 2-token tail; a long prompt's cache is not reused for it (another path)."""
    engine.reset_cache()
    prompt = PROMPTS[0]
    n_prompt = len(engine.tokenize_prompt(prompt))
    assert n_prompt < 64 and engine.slots[0].chunk_for(n_prompt) == 2
    alone(engine, prompt)
    gen = engine.start(prompt, GREEDY)
    assert gen.stats.prompt_eval_tokens == 2
    engine.release(gen)
    if engine.config.flash_attn:
        engine.reset_cache()
        long_prompt = chatml("Tell me a story about a cat.", system=LONG_SYSTEM)
        alone(engine, long_prompt)  # evaluated in 64+ chunks: another path
        short = chatml("Tell me a story about a cat.", system=LONG_SYSTEM[:60])
        assert len(engine.tokenize_prompt(short)) < 64
        gen = engine.start(short, GREEDY)
        assert gen.stats.cached_tokens == 0
        engine.release(gen)


def test_constrained_and_free_requests_share_a_batch(engine):
    names = ["alpha", "bravo", "charlie"]
    jobs = [
        (chatml(f"Call the tool {n}."), SamplingParams(
            max_tokens=40, temperature=0.0,
            grammar=Grammar(f'root ::= "{{\\"name\\": \\"{n}\\", \\"n\\": " [0-9]{{1,3}} "}}"')))
        for n in names
    ]
    jobs.append((PROMPTS[1], GREEDY))
    texts = together(engine, jobs)
    for name, text in zip(names, texts[:3], strict=True):
        assert json.loads(text)["name"] == name
    assert texts[3] == alone(engine, PROMPTS[1])


def test_lazy_grammar_per_slot(engine):
    lazy = Grammar('root ::= "<tool>" [a-z]+ "</tool>"', lazy=True, triggers=["<tool>"])
    jobs = [
        (chatml("Say <tool> and then a word."), SamplingParams(max_tokens=30, temperature=0.0, grammar=lazy)),
        (PROMPTS[2], GREEDY),
    ]
    texts = together(engine, jobs)
    assert texts[1] == alone(engine, PROMPTS[2])
    if "<tool>" in texts[0]:
        tail = texts[0][texts[0].index("<tool>"):]
        assert tail.startswith("<tool>") and ("</tool>" in tail or tail[6:].isalpha())


def test_all_slots_busy_raises_and_release_frees_at_once(engine):
    gens = [engine.start(p, GREEDY) for p in PROMPTS[:SLOTS]]
    with pytest.raises(RuntimeError, match="already generating"):
        engine.start(PROMPTS[4], GREEDY)
    engine.step()
    engine.release(gens[1])  # a cancel
    assert engine.slots_busy == SLOTS - 1
    extra = engine.start(PROMPTS[4], GREEDY)
    assert extra.slot.seq_id == gens[1].slot.seq_id
    cancel = threading.Event()
    cancel.set()
    gens[0].cancel = cancel
    engine.step()
    assert gens[0].done and gens[0].stats.finish_reason == "cancelled"
    for gen in [*gens, extra]:
        engine.release(gen)
    assert engine.slots_busy == 0


def first_logits(engine: Engine, prompt: str):
    gen = engine.start(prompt, SamplingParams(max_tokens=1, temperature=0.0))
    while gen.n_gen == 0 and not gen.done:
        engine.step()
    logits = gen.logits()
    engine.release(gen)
    return logits


def test_first_token_logits_are_bitwise_equal_whatever_the_cache_held(engine):
    """Stricter than comparing text: a greedy reply survives tiny differences, logits don't.
    (Reusing K/V of generated tokens, or a 1-token tail, fails this.)"""
    for prompt in PROMPTS[:3]:
        engine.reset_cache()
        reply = alone(engine, prompt)
        follow = prompt + reply + "<|im_end|>\n<|im_start|>user\nTell me more.<|im_end|>\n<|im_start|>assistant\n"
        after_reply = first_logits(engine, follow)  # the reply's tokens are in the cache
        again = first_logits(engine, follow)  # the whole prompt is in the cache
        engine.reset_cache()
        fresh = first_logits(engine, follow)
        assert (after_reply == fresh).all() and (again == fresh).all()


def capture_logits(gen) -> list:
    """The logits of each token `gen` samples from now on, read when sampled (a step may
    run two llama_decode calls, and only the last one's logits stay readable)."""
    seen = []
    sample = gen.on_logits

    def capture(row: int) -> None:
        gen.row = row
        seen.append(gen.logits())
        sample(row)

    gen.on_logits = capture
    return seen


def step_logits(engine: Engine, prompt: str, others: list[str]) -> list:
    """Logits of every step of `prompt`'s generation, with `others` decoding beside it."""
    side = [engine.start(p, GREEDY) for p in others]
    gen = engine.start(prompt, GREEDY)
    seen = capture_logits(gen)
    while not gen.done:
        engine.step()
    for g in [*side, gen]:
        engine.release(g)
    return seen


def test_decode_logits_are_bitwise_equal_alone_and_in_a_batch(engine):
    solo = step_logits(engine, PROMPTS[0], [])
    busy = step_logits(engine, PROMPTS[0], PROMPTS[1:SLOTS])
    assert len(solo) == len(busy) > 5
    assert all((a == b).all() for a, b in zip(solo, busy, strict=True))


def test_past_256_tokens_only_the_no_flash_mode_is_bitwise(engine):
    """Past 256 KV cells flash attention sums one token alone in thread-sized parts and
    inside a batch in one pass (and keeps some sums in half precision): the generated
    tokens' logits then differ by up to ~1 here, bitwise only without it (README,
    "Reproducible output"). The first token comes from the prompt, the same in both."""
    import numpy as np

    long_prompt = chatml("Summarise the above in one line.", system="The sky is blue and the sea is wide. " * 40)
    assert len(engine.tokenize_prompt(long_prompt)) > 300
    engine.reset_cache()
    solo = step_logits(engine, long_prompt, [])
    engine.reset_cache()
    busy = step_logits(engine, long_prompt, PROMPTS[1:SLOTS])
    assert len(solo) == len(busy) > 5
    assert (solo[0] == busy[0]).all()
    if engine.config.flash_attn:
        assert all(np.abs(a - b).max() < 2.5 for a, b in zip(solo, busy, strict=True))
    else:
        assert all((a == b).all() for a, b in zip(solo, busy, strict=True))


LONG_SYSTEM = "You are a careful assistant for a travel agency. " * 10


def test_a_prompt_starts_from_a_busy_slot_that_shares_its_long_prefix(engine):
    """Two parallel requests with one long system prompt: the second copies the first's
    KV instead of evaluating the prefix again, and its numbers are bitwise those of a
    fresh evaluation (the reproducibility rule)."""
    a_prompt = chatml("Where should I go in May?", system=LONG_SYSTEM)
    b_prompt = chatml("Which countries need a visa?", system=LONG_SYSTEM)
    engine.reset_cache()
    fresh = first_logits(engine, b_prompt)
    b_alone = alone(engine, b_prompt)
    engine.reset_cache()
    a = engine.start(a_prompt, GREEDY)
    while a.n_gen < 2:
        engine.step()
    copied = engine.prefixes_copied
    b = engine.start(b_prompt, GREEDY)
    seen = capture_logits(b)
    engine.step()  # the copy is made before b's first prompt chunk
    text = "".join(b.drain())
    assert engine.prefixes_copied == copied + 1
    assert b.slot.seq_id != a.slot.seq_id
    shared = len(engine.tokenize_prompt(chatml("", system=LONG_SYSTEM))) - 8
    # all of the shared prefix, less what the smallest exact chunk re-evaluates
    n_b = len(engine.tokenize_prompt(b_prompt))
    assert b.stats.cached_tokens >= min(shared, n_b - engine.slots[0].chunk_for(n_b))
    while not b.done:
        engine.step()
        text += "".join(b.drain())
    engine.release(a)
    engine.release(b)
    assert (seen[0] == fresh).all()
    assert text == b_alone


def test_requests_arriving_together_evaluate_their_shared_prefix_once(engine):
    prompts = [chatml(q, system=LONG_SYSTEM) for q in ("Is Rome nice in May?", "Name a quiet beach.", "Pack light?")]
    engine.reset_cache()
    expected = [alone(engine, p) for p in prompts]
    engine.reset_cache()
    copied = engine.prefixes_copied
    gens = [engine.start(p, GREEDY) for p in prompts]
    assert engine.prefixes_copied == copied  # nobody holds the prefix yet
    texts = ["", "", ""]
    while any(not g.done for g in gens):
        engine.step()
        for k, g in enumerate(gens):
            texts[k] += "".join(g.drain())
    shared = len(engine.tokenize_prompt(chatml("", system=LONG_SYSTEM))) - 8
    evaluated = sum(g.stats.prompt_eval_tokens for g in gens)
    for g in gens:
        engine.release(g)
    assert engine.prefixes_copied == copied + 2
    lengths = [len(engine.tokenize_prompt(p)) for p in prompts]
    saved = sum(min(shared, n - engine.slots[0].chunk_for(n)) for n in lengths[1:])  # the two that copy
    assert saved > 0
    assert evaluated <= sum(lengths) - saved
    assert texts == expected


def test_a_conversation_whose_slot_was_taken_comes_back_in_a_free_slot(engine):
    """A request takes the slot holding a finished conversation (the lowest free id);
    that conversation's next request, landing in another, empty slot, gets its saved
    state back instead of evaluating it all again, and replies as before."""
    conv = chatml("Where should I go in May?", system=LONG_SYSTEM)
    engine.reset_cache()
    expected = alone(engine, conv)
    other = engine.start(PROMPTS[1], GREEDY)
    assert other.slot.seq_id == 0 and engine.saved_states  # conv's state was saved
    back = engine.start(conv, GREEDY)
    assert back.slot.seq_id != 0
    n = len(engine.tokenize_prompt(conv))
    assert back.stats.cached_tokens == n - back.slot.chunk_for(n)
    text = ""
    while not back.done:
        engine.step()
        text += "".join(back.drain())
    engine.release(other)
    engine.release(back)
    assert text == expected


def test_a_small_batch_size_still_evaluates_every_prompt_length(model_path):
    """With flash attention a long prompt is cut in chunks of 64+ leaving 64+: a prompt of
    65-127 tokens cannot be cut so under a batch of 64, and stalled (steps evaluated
    nothing, for ever). The batch is raised to fit; replies match the default batch's."""
    prompt = chatml("Summarise this. " + "The fox jumps over the dog. " * 12)
    texts = []
    for n_batch in (64, 512):
        eng = Engine(EngineConfig(model_path=str(model_path), n_ctx=512, n_batch=n_batch, flash_attn=True))
        try:
            assert 64 < len(eng.tokenize_prompt(prompt)) < 128
            gen = eng.start(prompt, GREEDY)
            for _ in range(200):
                if gen.done:
                    break
                eng.step()
            assert gen.done
            texts.append("".join(gen.drain()))
            eng.release(gen)
        finally:
            eng.close()
    assert texts[0] == texts[1] and texts[0]


def test_a_short_request_arriving_during_a_long_prompt_goes_first(engine):
    """A long prompt is evaluated in chunks even alone (before any chunk was timed, of
    MIN_CHUNK tokens), so a short request that arrives meanwhile gets its first token
    after one chunk, not after the whole long prompt."""
    from localtools.engine.batch import MIN_CHUNK

    engine.reset_cache()
    long = engine.start(chatml("Summarise: " + "The fox jumps over the dog by the river. " * 50), GREEDY)
    engine._stepper._prompt_speed.clear()  # as on a fresh engine
    assert engine.step() == MIN_CHUNK
    short = engine.start(PROMPTS[3], GREEDY)
    engine.step()
    assert short.n_gen >= 1 and long.prefilling
    for gen in (long, short):
        engine.release(gen)


def test_chunk_size_follows_the_measured_prompt_speed():
    from localtools.engine.batch import CHUNK_SECONDS, MIN_CHUNK, BatchStepper

    stepper = BatchStepper(None, 512)
    try:
        assert stepper.chunk_limit() == MIN_CHUNK  # nothing timed yet
        stepper._prompt_speed.extend([0.002] * 3)  # 2 ms a token: 125 fit in 0.25 s
        assert stepper.chunk_limit() == MIN_CHUNK
        stepper._prompt_speed.extend([CHUNK_SECONDS / 300] * 8)
        assert stepper.chunk_limit() == 300
        stepper._prompt_speed.extend([0.00001] * 8)  # 100,000 tokens a second: the whole batch
        assert stepper.chunk_limit() == 512
    finally:
        stepper.free()


def test_first_token_bias_moves_only_the_first_token(engine):
    """Decide mode's lean (SamplingParams.first_token_bias): the first token turns to one
    that begins the favoured text; the rest of the reply is sampled as usual, and the
    tokens that can begin it are exactly those whose text is a prefix of it (or extends it)."""
    prompt = PROMPTS[0]
    plain = alone(engine, prompt, SamplingParams(max_tokens=8, temperature=0.0))
    assert not plain.startswith("Zebra")
    leaning = SamplingParams(max_tokens=8, temperature=0.0, first_token_bias=("Zebra", 100.0))
    text = alone(engine, prompt, leaning)
    assert text.startswith("Z")  # a non-empty beginning of "Zebra", or "Zebra" and more
    for tok in engine.tokens_opening("Zebra"):
        piece = engine.piece(tok)
        assert piece and (b"Zebra".startswith(piece) or piece.startswith(b"Zebra"))
    # a bias on every token would make all 8 begin with "Z"; after the first the model writes its own
    assert text.count("Z") < 4, text
    # no lean: the same reply as without the field
    assert alone(engine, prompt, SamplingParams(max_tokens=8, temperature=0.0, first_token_bias=("Zebra", 0.0))) == plain


def test_a_thread_trial_leaves_a_greedy_reply_past_256_tokens_alone(engine):
    """With flash attention a token alone past 256 tokens of context is summed in
    thread-sized parts, so a trial of one thread in the middle of a greedy reply changed
    its logits (llama3.1's 332-token `required` call went from get_weather to get_time).
    The governor now holds the thread count under such a request's steps: its logits are
    bitwise those of a run with no trial due (this engine's seed makes every request
    reproducible; test_thread_governor has the trials that other steps still get)."""
    gov = engine.threads
    if not gov.active:
        pytest.skip("one core: the thread count never changes")
    long_prompt = chatml("Summarise the above in one line.", system="The sky is blue and the sea is wide. " * 40)
    engine.reset_cache()
    gov._next_trial = float("inf")  # no trial in the reference run
    quiet = step_logits(engine, long_prompt, [])
    engine.reset_cache()
    gov._next_trial = 0.0  # a trial due at every step from now on
    due = step_logits(engine, long_prompt, [])
    assert len(quiet) == len(due) > 5
    assert all((a == b).all() for a, b in zip(quiet, due, strict=True))
