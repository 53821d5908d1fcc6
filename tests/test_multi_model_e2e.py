"""End to end: one `localtools serve` for several models, with the real openai client.

Two links to the default model under two names plus one bad path: listing, routing by
`model` on every API, lazy loading, a bad path failing only when requested, concurrent
requests for both, LRU under --max-loaded 1, --idle-unload, and `localtools ps`.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import APIStatusError, NotFoundError, OpenAI

from tests.live_server import live_server, server_process, stop_server

pytestmark = pytest.mark.e2e

HI = [{"role": "user", "content": "Say hi."}]


@pytest.fixture(scope="module")
def model_links(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """alpha.gguf and beta.gguf (links to the default model) and a models file adding `broken`."""
    from localtools.default_model import default_model_path

    where = tmp_path_factory.mktemp("models")
    alpha, beta = where / "alpha.gguf", where / "beta.gguf"
    alpha.symlink_to(default_model_path())
    beta.symlink_to(default_model_path())
    models_file = where / "models.toml"
    models_file.write_text(f'[models.broken]\nmodel = "{where / "missing" / "gone.gguf"}"\n')
    return alpha, beta, models_file


def openai_client(base_url: str) -> OpenAI:
    return OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120)


def states(base_url: str) -> dict[str, dict[str, Any]]:
    data = httpx.get(f"{base_url}/v1/models", timeout=10).json()["data"]
    return {card["id"]: card["meta"] for card in data}


def chat(client: OpenAI, model: str, stream: bool = False) -> str:
    """The `model` the reply names (streamed: every chunk's must agree)."""
    if stream:
        names = {chunk.model for chunk in client.chat.completions.create(
            model=model, messages=HI, max_tokens=4, stream=True)}
        assert len(names) == 1
        return names.pop()
    return client.chat.completions.create(model=model, messages=HI, max_tokens=4).model


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def server(model_links: tuple[Path, Path, Path]) -> Iterator[str]:
    alpha, beta, models_file = model_links
    with live_server([str(alpha), str(beta), "--models-file", str(models_file), "--n-ctx", "512"]) as url:
        yield url


def test_everything_is_listed_and_nothing_loaded_at_start(server: str) -> None:
    listed = openai_client(server).models.list()
    assert [m.id for m in listed.data] == ["alpha", "beta", "broken"]
    assert {name: meta["state"] for name, meta in states(server).items()} == {
        "alpha": "unloaded", "beta": "unloaded", "broken": "unloaded"}
    tags = httpx.get(f"{server}/api/tags", timeout=10).json()
    assert [m["name"] for m in tags["models"]] == ["alpha", "beta", "broken"]


def test_requests_are_routed_by_model_and_load_it_lazily(server: str) -> None:
    client = openai_client(server)
    assert chat(client, "beta") == "beta"
    meta = states(server)
    assert (meta["beta"]["state"], meta["alpha"]["state"]) == ("loaded", "unloaded")
    assert meta["beta"]["dialect"] and meta["beta"]["n_ctx"] == 512


def test_a_request_naming_no_model_goes_to_the_first(server: str) -> None:
    reply = httpx.post(f"{server}/v1/chat/completions", json={"messages": HI, "max_tokens": 4}, timeout=120)
    assert reply.status_code == 200 and reply.json()["model"] == "alpha"


def test_an_unknown_model_is_an_openai_404(server: str) -> None:
    with pytest.raises(NotFoundError) as info:
        chat(openai_client(server), "gamma")
    error = info.value.body
    assert isinstance(error, dict) and error["code"] == "model_not_found" and error["param"] == "model"
    assert "'alpha', 'beta', 'broken'" in error["message"]


def test_a_bad_path_fails_clearly_when_requested_and_is_listed_as_failed(server: str) -> None:
    with pytest.raises(APIStatusError) as info:
        chat(openai_client(server), "broken")
    assert info.value.status_code == 503
    error = info.value.body
    assert isinstance(error, dict) and error["code"] == "model_load_failed"
    assert "gone.gguf" in error["message"] and "Traceback" not in error["message"]
    meta = states(server)["broken"]
    assert meta["state"] == "failed" and "gone.gguf" in meta["error"]
    assert chat(openai_client(server), "alpha") == "alpha"  # the others still serve


def test_every_api_routes_by_model(server: str) -> None:
    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = httpx.post(f"{server}{path}", json=body, timeout=120)
        assert reply.status_code == 200, reply.text
        return reply.json()

    assert post("/v1/completions", {"model": "beta", "prompt": "Hi", "max_tokens": 3})["model"] == "beta"
    assert post("/v1/responses", {"model": "beta", "input": "Hi", "max_output_tokens": 3})["model"] == "beta"
    assert post("/v1/messages", {"model": "alpha", "max_tokens": 3, "messages": HI})["model"] == "alpha"
    assert post("/v1/embeddings", {"model": "beta", "input": "Hi"})["model"] == "beta"
    ollama = post("/api/chat", {"model": "beta", "messages": HI, "stream": False, "options": {"num_predict": 3}})
    assert ollama["model"] == "beta"
    missing = httpx.post(f"{server}/api/chat", json={"model": "gamma", "messages": HI}, timeout=30)
    assert missing.status_code == 404 and "gamma" in missing.json()["error"]


def test_concurrent_requests_for_both_models(server: str) -> None:
    client = openai_client(server)
    jobs = [("alpha", False), ("beta", True), ("alpha", True), ("beta", False)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        names = list(pool.map(lambda job: chat(client, *job), jobs))
    assert names == [name for name, _ in jobs]
    meta = states(server)
    assert (meta["alpha"]["loads"], meta["beta"]["loads"]) == (1, 1)
    assert meta["alpha"]["in_flight"] == meta["beta"]["in_flight"] == 0


def test_ps_shows_what_the_server_has_loaded(server: str) -> None:
    out = subprocess.run([sys.executable, "-m", "localtools", "ps", "--url", server],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split()[1] for line in out.stdout.splitlines()[1:] if not line.startswith(" ")}
    assert rows == {"alpha": "loaded", "beta": "loaded", "broken": "failed"}
    assert "error:" in out.stdout and "gone.gguf" in out.stdout
    running = httpx.get(f"{server}/api/ps", timeout=10).json()["models"]
    assert sorted(m["name"] for m in running) == ["alpha", "beta"] and all(m["size"] > 0 for m in running)


def test_max_loaded_1_unloads_the_least_recently_used(model_links: tuple[Path, Path, Path]) -> None:
    alpha, beta, _ = model_links
    with live_server([str(alpha), str(beta), "--max-loaded", "1", "--n-ctx", "512"]) as url:
        client = openai_client(url)
        assert chat(client, "alpha") == "alpha"
        assert chat(client, "beta") == "beta"
        meta = states(url)
        assert (meta["alpha"]["state"], meta["beta"]["state"]) == ("unloaded", "loaded")
        assert meta["alpha"]["unloads"]["lru"] == 1

        seen_loaded: list[int] = []
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                seen_loaded.append(sum(m["state"] in ("loaded", "loading", "unloading") for m in states(url).values()))
                time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        jobs = [("alpha", True), ("beta", False), ("alpha", False), ("beta", True)]
        try:
            with ThreadPoolExecutor(len(jobs)) as pool:
                names = list(pool.map(lambda job: chat(client, *job), jobs))
        finally:
            done.set()
            watcher.join()
        assert names == [name for name, _ in jobs]
        assert seen_loaded and max(seen_loaded) == 1


def test_idle_models_unload_and_reload(model_links: tuple[Path, Path, Path]) -> None:
    alpha, beta, _ = model_links
    with server_process([str(alpha), str(beta), "--idle-unload", "1", "--n-ctx", "512"]) as (proc, url):
        client = openai_client(url)
        assert chat(client, "alpha") == "alpha"
        assert wait_for(lambda: states(url)["alpha"]["state"] == "unloaded")
        assert states(url)["alpha"]["unloads"]["idle"] == 1
        assert chat(client, "alpha") == "alpha"
        assert states(url)["alpha"]["loads"] == 2
        assert stop_server(proc) == 0  # SIGTERM closes the pool's models and exits cleanly
