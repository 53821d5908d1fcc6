"""Routing and wire shapes of the remote engine, without a network: the upstream pool's
choices, llama-server's /completion body, and what an engine's error reply means."""

from __future__ import annotations

import httpx
import pytest

from localtools.backends import GenerationBackend
from localtools.engine import ContextLengthExceeded, GrammarError, SamplingParams
from localtools.gbnf import Grammar
from localtools.remote import llama_server
from localtools.remote.backend import RemoteBackend
from localtools.remote.upstream import LLAMA_SERVER, UpstreamPool, token_bytes
from localtools.remote.wire import UpstreamFailed, reply_error
from localtools.scheduler import Scheduler


def _pool(n: int, slots: int = 1) -> UpstreamPool:
    pool = UpstreamPool([f"http://127.0.0.1:{9000 + i}" for i in range(n)], httpx.Client())
    for up in pool.upstreams:
        up.kind, up.slots, up.healthy = LLAMA_SERVER, slots, True
    return pool


def test_least_busy_healthy_upstream_is_chosen() -> None:
    pool = _pool(3)
    key = token_bytes([1, 2, 3])
    picks = [pool.acquire(key, set()) for _ in range(3)]
    assert sorted(up.url for up, _ in picks) == [up.url for up in pool.upstreams]  # one each
    pool.release(picks[1][0], -1, None, key)
    assert pool.acquire(key, set())[0] is picks[1][0]  # the only idle one


def test_failed_and_excluded_upstreams_are_skipped_until_none_is_left() -> None:
    pool = _pool(2)
    a, b = pool.upstreams
    pool.mark_failed(a, "connection refused")
    assert pool.acquire(b"", set())[0] is b
    assert pool.acquire(b"", {b.url}) is None
    assert pool.describe()[0]["last_error"] == "connection refused"


def test_a_prompt_goes_back_to_the_slot_that_holds_its_prefix() -> None:
    pool = _pool(2, slots=2)
    a, b = pool.upstreams
    conversation = list(range(500))
    first = token_bytes(conversation)
    pool.release(b, -1, 1, first)  # b's slot 1 served this conversation
    up, slot = pool.acquire(token_bytes(conversation + [7, 8, 9]), set())
    assert (up, slot) == (b, 1)
    # while that slot is ours and busy, the next turn may still go to b but not pinned to it
    up2, slot2 = pool.acquire(token_bytes(conversation + [10]), set())
    assert slot2 == -1
    # a short shared prefix is not worth it: least busy wins (a is idle)
    other = token_bytes([0, 1, 2] + [99] * 100)
    assert pool.acquire(other, set())[0] is a


def test_no_slot_is_pinned_while_a_request_that_let_llama_server_choose_runs() -> None:
    """Such a request may be in the very slot that holds the prefix: pinning a busy slot
    made llama-server run the request already there under the new one's grammar."""
    pool = _pool(1, slots=2)
    (a,) = pool.upstreams
    conversation = list(range(300))
    pool.release(a, -1, 0, token_bytes(conversation))  # slot 0 holds this conversation
    anywhere = pool.acquire(token_bytes([5] * 40), set())  # llama-server picks its slot: maybe 0
    assert anywhere == (a, -1)
    assert pool.acquire(token_bytes(conversation + [1]), set()) == (a, -1)  # slot 0 may be busy
    pool.release(a, -1, 1, token_bytes([5] * 40))  # the first one ends (it ran in slot 1)
    assert pool.acquire(token_bytes(conversation + [2]), set()) == (a, -1)  # the second still runs
    pool.release(a, -1, 0, token_bytes(conversation + [1]))  # it ran in slot 0 after all
    pool.release(a, -1, 0, token_bytes(conversation + [2]))
    assert a.unpinned == 0
    assert pool.acquire(token_bytes(conversation + [2, 3]), set()) == (a, 0)  # known free again


def test_affinity_never_picks_a_clearly_busier_upstream() -> None:
    pool = _pool(2)
    a, b = pool.upstreams
    conversation = token_bytes(list(range(300)))
    pool.release(b, -1, 0, conversation)
    b.in_flight = 3
    assert pool.acquire(conversation, set())[0] is a


def test_llama_server_body_has_tokens_cache_slot_and_lazy_pattern_triggers() -> None:
    grammar = Grammar(gbnf='root ::= "x"', lazy=True, triggers=[r"^\s*(\{)", "<tool_call>"])
    params = SamplingParams(max_tokens=50, temperature=0.2, stop=["<|im_end|>"], seed=7, grammar=grammar)
    body = llama_server.request_body([1, 2, 3], params, 4, 50)
    assert body["prompt"] == [1, 2, 3] and body["n_predict"] == 50
    assert (body["cache_prompt"], body["id_slot"], body["stream"]) == (True, 4, True)
    assert body["grammar"] == 'root ::= "x"' and body["grammar_lazy"] is True
    assert body["grammar_triggers"] == [{"type": 2, "value": r"^\s*(\{)"}, {"type": 2, "value": "<tool_call>"}]
    assert (body["stop"], body["seed"], body["temperature"]) == (["<|im_end|>"], 7, 0.2)
    strict = llama_server.request_body([1], SamplingParams(grammar=Grammar(gbnf='root ::= "y"')), -1, 10)
    assert "grammar_lazy" not in strict and strict["grammar"] == 'root ::= "y"'


@pytest.mark.parametrize(("status", "text", "expected"), [
    (400, '{"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it", "type": "exceed_context_size_error"}}', ContextLengthExceeded),
    (400, '{"error": {"message": "failed to parse grammar", "type": "invalid_request_error"}}', GrammarError),
    (400, '{"error": {"message": "top_k must be an integer"}}', ValueError),
    (503, '{"error": {"message": "Loading model", "code": 503}}', UpstreamFailed),
    (500, "Internal Server Error", UpstreamFailed),
])
def test_error_replies_map_to_the_engines_errors(status: int, text: str, expected: type) -> None:
    assert isinstance(reply_error(status, text, 3000, 2048), expected)


def test_both_token_sources_implement_the_backend_interface() -> None:
    scheduler = Scheduler(engine=None)  # type: ignore[arg-type]  # never generates here
    try:
        assert isinstance(scheduler, GenerationBackend)
    finally:
        scheduler.close()
    remote = RemoteBackend(_pool(1), vocab=None, n_ctx=2048)
    assert isinstance(remote, GenerationBackend)
    assert remote.queue_depth() == 0 and not remote.busy
