"""Concurrent requests through a live `serve --parallel 4` (real model, openai client):
no crossed or lost output, disconnects free their slots, /health and /metrics report
slots and queue, and a temperature-0 request gives the same reply alone, in a busy
batch, streamed or not, whatever the KV cache held (issue 15 item 5)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from openai import OpenAI

from tests.live_server import server_process

pytestmark = pytest.mark.e2e

SLOTS = 4
N_REQUESTS = 8  # twice the slots: half of them wait in the queue first
TOPICS = ["weather", "flights", "stocks", "recipes", "music", "books", "sports", "news"]


def tool_for(k: int) -> dict[str, Any]:
    """A tool of its own per request: a distinct name and a code only it accepts."""
    return {
        "type": "function",
        "function": {
            "name": f"lookup_{TOPICS[k]}",
            "description": f"Look up {TOPICS[k]}",
            "parameters": {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "enum": [f"code-{k}"]},
                    "query": {"type": "string", "maxLength": 24},
                },
                "required": ["code", "query"],
            },
        },
    }


def call_request(k: int) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [{"role": "user", "content": f"Find me something about {TOPICS[k]}."}],
        "tools": [tool_for(k)],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "max_tokens": 120,
        "temperature": 0.0,
    }


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, str]]:
    with server_process(["--parallel", str(SLOTS), "--n-ctx", "2048"]) as (proc, url):
        yield proc.pid, url


@pytest.fixture(scope="module")
def client(server: tuple[int, str]) -> OpenAI:
    return OpenAI(base_url=server[1] + "/v1", api_key="none", max_retries=0, timeout=300)


def health(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/health", timeout=10).json()


def wait_idle(url: str, within: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        state = health(url)
        if (state["slots_busy"] == 0 and state["queue"] == 0) or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


def check_own_call(k: int, name: str, arguments: str) -> None:
    fn = tool_for(k)["function"]
    assert name == fn["name"]
    args = json.loads(arguments)
    jsonschema.validate(args, fn["parameters"])
    assert args["code"] == f"code-{k}"


def test_health_reports_slots(server: tuple[int, str]) -> None:
    state = health(server[1])
    assert state["slots_total"] == SLOTS and state["slots_busy"] == 0 and state["queue"] == 0


def test_eight_required_calls_each_get_their_own_tool(client: OpenAI, server: tuple[int, str]) -> None:
    def plain(k: int) -> tuple[str, str]:
        reply = client.chat.completions.create(**call_request(k))
        assert reply.choices[0].finish_reason == "tool_calls", reply.choices[0].message
        call = reply.choices[0].message.tool_calls[0]
        return call.function.name, call.function.arguments

    def streamed(k: int) -> tuple[str, str]:
        name, args, finish = "", "", None
        for chunk in client.chat.completions.create(**call_request(k), stream=True):
            if not chunk.choices:
                continue
            for tc in chunk.choices[0].delta.tool_calls or []:
                if tc.index == 0:
                    name += tc.function.name or ""
                    args += tc.function.arguments or ""
            finish = chunk.choices[0].finish_reason or finish
        assert finish == "tool_calls"
        return name, args

    with ThreadPoolExecutor(N_REQUESTS) as pool:
        for run in (plain, streamed):
            results = list(pool.map(run, range(N_REQUESTS)))
            for k, (name, args) in enumerate(results):
                check_own_call(k, name, args)
    assert wait_idle(server[1])["slots_busy"] == 0


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def story_stream(url: str, k: int, keep: int | None) -> tuple[int, str | None]:
    """Stream a long free-text reply; read `keep` events then disconnect (None: all)."""
    body = {"model": "m", "stream": True, "max_tokens": 60, "temperature": 0.0,
            "messages": [{"role": "user", "content": f"Tell me a long story about {TOPICS[k]}."}]}
    events, finish = 0, None
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=300) as resp:
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            events += 1
            choices = json.loads(line[6:])["choices"]
            if choices and choices[0].get("finish_reason"):
                finish = choices[0]["finish_reason"]
            if keep is not None and events >= keep:
                break  # leaving the `with` closes the connection: a client disconnect
    return events, finish


def test_disconnecting_five_of_eight_streams_frees_their_slots(server: tuple[int, str]) -> None:
    pid, url = server
    sizes = []
    for _ in range(3):
        with ThreadPoolExecutor(N_REQUESTS) as pool:
            jobs = [pool.submit(story_stream, url, k, 3 if k < 5 else None) for k in range(N_REQUESTS)]
            results = [j.result() for j in jobs]
        for events, finish in results[5:]:
            assert finish in ("stop", "length") and events > 3
        state = wait_idle(url)
        assert state["slots_busy"] == 0 and state["queue"] == 0, state
        sizes.append(rss_kb(pid))
    # the first round may still grow caches; later rounds must not keep growing
    assert sizes[2] - sizes[0] < 40_000, sizes


def test_metrics_in_prometheus_text(server: tuple[int, str], client: OpenAI) -> None:
    request = {"model": "m", "max_tokens": 4, "temperature": 0.0,
               "messages": [{"role": "system", "content": "You are brief. " * 20},
                            {"role": "user", "content": "Hi"}]}
    client.chat.completions.create(**request)
    client.chat.completions.create(**request)  # its prompt is reused
    resp = httpx.get(f"{server[1]}/metrics", timeout=10)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    values = {}
    for line in resp.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name.split("{")[0]] = float(value)
    assert values["localtools_slots_total"] == SLOTS
    assert values["localtools_slots_busy"] == 0 and values["localtools_queue_depth"] == 0
    assert values["localtools_generated_tokens_total"] > 0
    assert values["localtools_prompt_tokens_reused_total"] > 0
    assert "localtools_tokens_per_second" in values
    assert values["localtools_prompt_prefixes_copied_total"] >= 0
    assert 1 <= values["localtools_decode_threads"] <= (os.cpu_count() or 1)
    assert 1 <= values["localtools_batch_threads"] <= (os.cpu_count() or 1)


# ---- reproducibility (issue 15, item 5) -------------------------------------------

TARGET = {"model": "m", "max_tokens": 48, "temperature": 0.0, "seed": 7,
          "messages": [{"role": "system", "content": "You are a helpful assistant."},
                       {"role": "user", "content": "Describe a lighthouse at night."}]}


def others(k: int) -> dict[str, Any]:
    """Requests sharing the target's system prompt (prefix reuse), or its whole prompt
    plus a reply (generated tokens in the cache)."""
    messages = [dict(TARGET["messages"][0]), {"role": "user", "content": f"Say something about {TOPICS[k]}."}]
    if k % 3 == 2:
        messages = [*TARGET["messages"], {"role": "assistant", "content": "A tall tower."},
                    {"role": "user", "content": "Shorter."}]
    return {**TARGET, "messages": messages, "max_tokens": 20 + 5 * k}


def target_text(client: OpenAI, stream: bool) -> str:
    if not stream:
        return client.chat.completions.create(**TARGET).choices[0].message.content or ""
    return "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(**TARGET, stream=True)
                   if c.choices)


def test_same_request_interleaved_gives_the_same_reply(client: OpenAI) -> None:
    first = target_text(client, stream=False)
    assert first
    replies = []
    with ThreadPoolExecutor(6) as pool:
        for round_ in range(3):
            for stream in (False, True):
                busy = [pool.submit(client.chat.completions.create, **others(k))
                        for k in range(round_, round_ + 3)]
                replies.append(target_text(client, stream))
                for job in busy:
                    job.result()
    replies.append(target_text(client, stream=True))  # alone again, the cache warm
    assert replies == [first] * len(replies)


# ---- LocalModel from several threads and asyncio tasks -----------------------------


def test_local_model_from_threads_and_asyncio_tasks() -> None:
    import asyncio

    from localtools import LocalModel

    with LocalModel(n_ctx=1024, parallel=SLOTS) as model:
        def ask(k: int) -> tuple[str, str]:
            body = call_request(k)
            reply = model.chat(body["messages"], tools=body["tools"], tool_choice="required",
                               parallel_tool_calls=False, max_tokens=120, temperature=0.0)
            call = reply["choices"][0]["message"]["tool_calls"][0]["function"]  # type: ignore[index]
            return call["name"], call["arguments"]

        async def main() -> list[tuple[str, str]]:
            return await asyncio.gather(*(asyncio.to_thread(ask, k) for k in range(6)))

        with ThreadPoolExecutor(2) as pool:
            stream = model.chat([{"role": "user", "content": "Tell me a long story."}], stream=True, max_tokens=200)
            for n, _ in enumerate(stream):  # type: ignore[arg-type]
                if n == 2:
                    break  # leaves its slot
            stream.close()  # type: ignore[union-attr]
            side = pool.submit(ask, 6)
            results = asyncio.run(main())
            results.append(side.result())
        for k, (name, args) in enumerate(results):
            check_own_call(k, name, args)
        scheduler = model.runtime.scheduler
        deadline = time.monotonic() + 10
        while scheduler.slots_busy and time.monotonic() < deadline:
            time.sleep(0.05)
        assert scheduler.slots_busy == 0 and scheduler.queue_depth() == 0
