"""The model pool without a model: lazy loads, one load for concurrent requests, leases,
LRU under max_loaded (waiting, draining), idle unload, failed loads; the models file;
each API's 404 for an unknown model. Loaders are fakes that count their calls."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from localtools.api.app import create_app
from localtools.registry import (
    FAILED,
    LOADED,
    UNLOADED,
    LoadOptions,
    ModelLoadFailed,
    ModelPool,
    ModelsFileError,
    ServedModel,
    UnknownModel,
    read_models_file,
    served_models,
    served_name,
)


class FakeEngine:
    def __init__(self) -> None:
        self.freed = False

    def close(self) -> None:
        self.freed = True


class FakeRuntime:
    def __init__(self, name: str) -> None:
        self.name = name
        self.engine = FakeEngine()
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Loader:
    """Counts loads; `gate` (when set) holds every load until it is opened."""

    def __init__(self, name: str, delay: float = 0.0, gate: threading.Event | None = None,
                 error: str | None = None) -> None:
        self.name, self.delay, self.gate, self.error = name, delay, gate, error
        self.calls = 0
        self.made: list[FakeRuntime] = []

    def __call__(self) -> FakeRuntime:
        self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(10)
        time.sleep(self.delay)
        if self.error:
            raise FileNotFoundError(self.error)
        runtime = FakeRuntime(self.name)
        self.made.append(runtime)
        return runtime


def make_pool(*loaders: Loader, **kwargs: Any) -> ModelPool:
    return ModelPool([ServedModel(ld.name, f"/models/{ld.name}.gguf", ld, aliases=frozenset({f"{ld.name}.gguf"}))
                      for ld in loaders], **kwargs)


def states(pool: ModelPool) -> dict[str, str]:
    return {row["name"]: row["state"] for row in pool.status()}


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_nothing_loads_until_requested_and_names_route() -> None:
    a, b = Loader("a"), Loader("b")

    async def scenario() -> None:
        pool = make_pool(a, b)
        assert states(pool) == {"a": UNLOADED, "b": UNLOADED}
        lease = await pool.acquire("b.gguf")  # an alias
        assert lease.runtime.name == "b" and states(pool) == {"a": UNLOADED, "b": LOADED}
        lease.release()
        lease.release()  # idempotent
        assert pool.slots["b"].in_flight == 0
        default = await pool.acquire(None)
        assert default.runtime.name == "a"
        default.release()
        with pytest.raises(UnknownModel) as info:
            await pool.acquire("c")
        assert info.value.served == ["a", "b"]

    run(scenario())
    assert (a.calls, b.calls) == (1, 1)


def test_an_alias_two_models_share_names_neither() -> None:
    same = "/models/shared.gguf"
    pool = ModelPool([ServedModel("x", same, Loader("x"), aliases=frozenset({same, "shared.gguf"})),
                      ServedModel("y", same, Loader("y"), aliases=frozenset({same, "shared.gguf", "x"}))])
    with pytest.raises(UnknownModel):
        pool.find("shared.gguf")
    assert pool.find("x").name == "x"


def test_concurrent_first_requests_load_once() -> None:
    a = Loader("a", delay=0.2)

    async def scenario() -> None:
        pool = make_pool(a)
        leases = await asyncio.gather(*(pool.acquire("a") for _ in range(6)))
        assert {id(lease.runtime) for lease in leases} == {id(a.made[0])}
        assert pool.slots["a"].in_flight == 6
        for lease in leases:
            lease.release()
        assert pool.status()[0]["loads"] == 1

    run(scenario())
    assert a.calls == 1


def test_a_loading_model_does_not_block_another() -> None:
    gate = threading.Event()
    a, b = Loader("a"), Loader("b", gate=gate)

    async def scenario() -> None:
        pool = make_pool(a, b)
        (await pool.acquire("a")).release()
        slow = asyncio.ensure_future(pool.acquire("b"))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        lease = await pool.acquire("a")
        assert time.monotonic() - started < 0.05 and not slow.done()
        lease.release()
        gate.set()
        (await slow).release()

    run(scenario())


def test_max_loaded_unloads_the_least_recently_used_idle_model() -> None:
    a, b, c = Loader("a"), Loader("b"), Loader("c")

    async def scenario() -> None:
        pool = make_pool(a, b, c, max_loaded=2)
        (await pool.acquire("a")).release()
        await asyncio.sleep(0.01)
        (await pool.acquire("b")).release()
        (await pool.acquire("a")).release()  # b is now the least recently used
        (await pool.acquire("c")).release()
        assert states(pool) == {"a": LOADED, "b": UNLOADED, "c": LOADED}
        assert b.made[0].closed and b.made[0].engine.freed
        assert pool.slots["b"].unloads == {"idle": 0, "lru": 1}

    run(scenario())


def test_a_model_with_requests_in_flight_is_never_unloaded() -> None:
    a, b = Loader("a"), Loader("b")

    async def scenario() -> None:
        pool = make_pool(a, b, max_loaded=1)
        held = await pool.acquire("a")
        waiting = asyncio.ensure_future(pool.acquire("b"))
        await asyncio.sleep(0.1)
        assert not waiting.done() and not a.made[0].closed and b.calls == 0
        held.release()
        lease = await waiting
        assert lease.runtime.name == "b" and a.made[0].closed
        assert states(pool) == {"a": UNLOADED, "b": LOADED}
        lease.release()

    run(scenario())


def test_a_waiting_model_is_not_starved_by_new_requests_for_the_busy_one() -> None:
    a, b = Loader("a"), Loader("b")
    order: list[str] = []

    async def use(pool: ModelPool, name: str, hold: float) -> None:
        lease = await pool.acquire(name)
        order.append(name)
        await asyncio.sleep(hold)
        lease.release()

    async def scenario() -> None:
        pool = make_pool(a, b, max_loaded=1)
        first = asyncio.ensure_future(use(pool, "a", 0.2))
        await asyncio.sleep(0.02)
        for_b = asyncio.ensure_future(use(pool, "b", 0.05))
        await asyncio.sleep(0.02)
        late_a = asyncio.ensure_future(use(pool, "a", 0.0))  # arrives while b waits: goes after b
        await asyncio.gather(first, for_b, late_a)
        assert sum(s.holds_memory for s in pool.slots.values()) == 1

    run(scenario())
    assert order == ["a", "b", "a"]
    assert a.calls == 2 and b.calls == 1


def test_a_failed_load_is_reported_and_listed_and_spares_the_others() -> None:
    bad, good = Loader("bad", error="no such file: /nope.gguf"), Loader("good")

    async def scenario() -> None:
        pool = make_pool(good, bad)
        results = await asyncio.gather(pool.acquire("bad"), pool.acquire("bad"), return_exceptions=True)
        assert all(isinstance(r, ModelLoadFailed) and "no such file: /nope.gguf" in r.reason for r in results)
        assert states(pool)["bad"] == FAILED
        assert pool.status()[1]["error"] == "no such file: /nope.gguf"
        with pytest.raises(ModelLoadFailed):
            await pool.acquire("bad")  # reported again, not retried at once
        (await pool.acquire("good")).release()

    run(scenario())
    assert bad.calls == 1


def test_idle_models_unload_and_reload_on_the_next_request() -> None:
    a, b = Loader("a"), Loader("b")

    async def scenario() -> None:
        pool = make_pool(a, b, idle_unload_s=0.2)
        (await pool.acquire("a")).release()
        held = await pool.acquire("b")
        await asyncio.sleep(0.6)
        assert states(pool) == {"a": UNLOADED, "b": LOADED}  # b is in use
        assert pool.slots["a"].unloads["idle"] == 1
        held.release()
        await asyncio.sleep(0.6)
        assert states(pool) == {"a": UNLOADED, "b": UNLOADED}
        (await pool.acquire("a")).release()
        assert a.calls == 2
        pool.close()

    run(scenario())


def test_a_client_leaving_while_its_model_loads_leaks_no_lease() -> None:
    a = Loader("a", delay=0.2)

    async def scenario() -> None:
        pool = make_pool(a)
        task = asyncio.ensure_future(pool.acquire("a"))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.sleep(0.3)
        assert states(pool) == {"a": LOADED} and pool.slots["a"].in_flight == 0

    run(scenario())


def test_models_file_names_paths_and_options(tmp_path: Path) -> None:
    (tmp_path / "t.jinja").write_text("x")
    path = tmp_path / "models.toml"
    path.write_text('[models.fast]\nmodel = "a.gguf"\nn_ctx = 1024\nchat_template = "t.jinja"\n'
                    '[models.cat]\nmodel = "smollm2-135m"\ndialect = "hermes"\n')
    entries = read_models_file(path, LoadOptions(n_ctx=4096, seed=7))
    assert [(name, source) for name, source, _, _ in entries] == [("fast", str(tmp_path / "a.gguf")),
                                                             ("cat", "smollm2-135m")]
    fast, cat = entries[0][2], entries[1][2]
    assert (fast.n_ctx, fast.seed, fast.chat_template_file) == (1024, 7, str(tmp_path / "t.jinja"))
    assert (cat.n_ctx, cat.dialect) == (4096, "hermes")
    assert entries[0][3] is None and entries[1][3] is None  # in-process models


def test_models_file_tables_with_engine_urls_are_remote(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text('[models.big]\nmodel = "b.gguf"\nengine_url = ["http://h1:8080", "http://h2:8080"]\n'
                    '[models.keyed]\nmodel = "k.gguf"\nengine_url = "http://h3:8000"\nengine_api_key = "own"\n'
                    '[models.small]\nmodel = "s.gguf"\n')
    specs = {s.name: s for s in served_models([], path, LoadOptions(), api_key="shared")}
    assert (specs["big"].kind, specs["keyed"].kind, specs["small"].kind) == ("remote", "remote", "local")
    entries = {e[0]: e for e in read_models_file(path, LoadOptions(), api_key="shared")}
    assert entries["big"][3] == (["http://h1:8080", "http://h2:8080"], "shared")
    assert entries["keyed"][3] == (["http://h3:8000"], "own")
    bad = tmp_path / "bad.toml"
    bad.write_text('[models.x]\nmodel = "x.gguf"\nengine_url = "ftp://nope"\n')
    with pytest.raises(ModelsFileError, match="engine_url must be an http"):
        read_models_file(bad, LoadOptions())
    bad.write_text('[models.x]\nmodel = "x.gguf"\nengine_api_key = "k"\n')
    with pytest.raises(ModelsFileError, match="engine_api_key needs engine_url"):
        read_models_file(bad, LoadOptions())


def test_models_file_mistakes_are_named(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text('[models.fast]\nmodel = "a.gguf"\nnctx = 1024\n')
    with pytest.raises(ModelsFileError, match=r"models.fast: unknown key 'nctx'"):
        read_models_file(path, LoadOptions())
    path.write_text('[models.fast]\nn_ctx = "big"\nmodel = "a.gguf"\n')
    with pytest.raises(ModelsFileError, match=r"models.fast.n_ctx must be int"):
        read_models_file(path, LoadOptions())
    path.write_text('[models.a]\nmodel = "x.gguf"\n')
    with pytest.raises(ModelsFileError, match="both served as 'a'"):
        served_models(["/m/a.gguf"], path, LoadOptions(), loader=lambda *a, **k: None)


def test_served_names_and_loader_arguments() -> None:
    assert served_name("/models/Qwen-0.5B.gguf") == "Qwen-0.5B" and served_name("smollm2-135m") == "smollm2-135m"
    seen: list[tuple[Any, ...]] = []
    (spec,) = served_models(["/m/x.gguf"], None, LoadOptions(n_ctx=512),
                            loader=lambda source, **kw: seen.append((source, kw)))
    spec.load()
    assert seen[0][0] == "/m/x.gguf" and seen[0][1]["alias"] == "x" and seen[0][1]["n_ctx"] == 512


@pytest.mark.parametrize(("path", "body", "expected"), [
    ("/v1/chat/completions", {"model": "nope", "messages": [{"role": "user", "content": "hi"}]},
     {"error": {"message": "The model 'nope' does not exist: this server serves 'a', 'b'.",
                "type": "invalid_request_error", "param": "model", "code": "model_not_found"}}),
    ("/v1/completions", {"model": "nope", "prompt": "hi"}, None),
    ("/v1/responses", {"model": "nope", "input": "hi"}, None),
    ("/v1/messages", {"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
     {"type": "error", "error": {"type": "not_found_error",
                                 "message": "The model 'nope' does not exist: this server serves 'a', 'b'."}}),
    ("/api/chat", {"model": "nope", "messages": [{"role": "user", "content": "hi"}]},
     {"error": "The model 'nope' does not exist: this server serves 'a', 'b'."}),
])
def test_unknown_model_is_a_404_in_each_apis_shape(path: str, body: dict[str, Any], expected: Any) -> None:
    a, b = Loader("a"), Loader("b")
    with TestClient(create_app(make_pool(a, b))) as client:
        reply = client.post(path, json=body)
        assert reply.status_code == 404
        if expected is None:
            assert reply.json()["error"]["code"] == "model_not_found"
        else:
            assert reply.json() == expected
        listing = client.get("/v1/models").json()
        assert [(m["id"], m["meta"]["state"]) for m in listing["data"]] == [("a", UNLOADED), ("b", UNLOADED)]
    assert a.calls == b.calls == 0


def test_models_file_flash_attn_is_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text('[models.fast]\nmodel = "a.gguf"\nflash_attn = true\n[models.plain]\nmodel = "b.gguf"\n')
    (fast, plain) = [entry[2] for entry in read_models_file(path, LoadOptions())]
    assert fast.flash_attn is True and plain.flash_attn is None
    path.write_text('[models.fast]\nmodel = "a.gguf"\nflash_attn = "on"\n')
    with pytest.raises(ModelsFileError, match="flash_attn must be bool"):
        read_models_file(path, LoadOptions())
    path.write_text('[models.fast]\nmodel = "a.gguf"\nn_ctx = true\n')
    with pytest.raises(ModelsFileError, match="n_ctx must be int"):
        read_models_file(path, LoadOptions())
