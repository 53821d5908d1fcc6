"""The OpenAI adapter's whole-request entry points without HTTP, on the real engine:
what the other APIs' translators call."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any, Iterator

import pytest

from localtools.adapters.errors import AdapterError
from localtools.adapters.openai_chat import chat_completion, chat_completion_chunks

pytestmark = pytest.mark.e2e

ENDLESS = [{"role": "user", "content": "Continue this sequence forever without stopping: 1, 2, 3, 4, 5,"}]


@pytest.fixture(scope="module")
def state() -> Iterator[Any]:
    from localtools.runtime import load_runtime

    runtime = load_runtime(None, n_ctx=2048)
    try:
        yield SimpleNamespace(runtime=runtime, settings=SimpleNamespace(strict_model_name=False))
    finally:
        runtime.close()


def test_a_whole_reply_is_a_chat_completion(state: Any) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "stream": True}  # stream ignored
    reply = asyncio.run(chat_completion(state, body))
    assert reply["object"] == "chat.completion" and reply["model"] == state.runtime.name
    assert reply["usage"]["completion_tokens"] <= 3
    assert reply["choices"][0]["finish_reason"] in ("stop", "length")


def test_bad_input_and_wrong_model_are_adapter_errors(state: Any) -> None:
    with pytest.raises(AdapterError) as info:
        asyncio.run(chat_completion(state, {"messages": [{"role": "user"}]}))
    assert (info.value.status, info.value.param) == (400, "messages[0].content")
    strict = SimpleNamespace(runtime=state.runtime, settings=SimpleNamespace(strict_model_name=True))
    with pytest.raises(AdapterError) as info:
        asyncio.run(chat_completion(strict, {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}))
    assert (info.value.status, info.value.code) == (404, "model_not_found")


async def _collect(state: Any, body: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    chunks = chat_completion_chunks(state, body)
    return [chunk async for chunk in chunks], chunks.usage


def test_chunks_end_with_finish_and_the_usage_asked_for(state: Any) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4,
            "stream_options": {"include_usage": True}}
    chunks, usage = asyncio.run(_collect(state, body))
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] in ("stop", "length")
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == usage and usage["completion_tokens"] <= 4
    without, usage = asyncio.run(_collect(state, {"messages": body["messages"], "max_tokens": 4}))
    assert without[-1]["choices"][0]["finish_reason"] and usage is not None  # usage kept, not sent


async def _read_then_leave(state: Any, count: int) -> None:
    chunks = chat_completion_chunks(state, {"messages": ENDLESS, "max_tokens": 1500, "temperature": 0})
    async for _ in chunks:
        count -= 1
        if count == 0:
            break
    await chunks.aclose()


def test_stopping_early_frees_the_engine(state: Any) -> None:
    asyncio.run(_read_then_leave(state, 4))
    deadline = time.monotonic() + 5
    while state.runtime.scheduler.busy and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not state.runtime.scheduler.busy, "the abandoned generation was still running"


def test_cancelling_the_awaiting_task_frees_the_engine(state: Any) -> None:
    async def leave_while_waiting() -> None:
        # temperature 0: a sampled reply may end by itself before the cancel (seen on a fast machine)
        task = asyncio.ensure_future(chat_completion(state, {"messages": ENDLESS, "max_tokens": 1500, "temperature": 0}))
        while not state.runtime.scheduler.busy and not task.done():  # cancel once it generates
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(leave_while_waiting())
    deadline = time.monotonic() + 5
    while state.runtime.scheduler.busy and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not state.runtime.scheduler.busy, "the abandoned generation was still running"
