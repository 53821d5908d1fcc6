"""`serve --max-memory`: models estimated before loading (file + KV cache), the least
recently used idle one unloaded to stay within the budget, and a model that alone does
not fit refused with a clear 503 — over HTTP with two copies of the default model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openai import APIStatusError, OpenAI

from localtools.default_model import default_model_path
from localtools.gguf_meta import read_gguf_metadata
from localtools.registry.memory import estimate_bytes, format_size, kv_bytes_per_token, parse_size
from tests.live_server import live_server

HI = [{"role": "user", "content": "Say hi."}]


@pytest.mark.parametrize("text,expected", [
    ("123456", 123456), ("800MB", 800 * 10**6), ("2GiB", 2 * 2**30), ("1.5G", 1_500_000_000), ("64 kib", 65536),
])
def test_sizes_parse(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "2 parsecs", "0", "-1G"])
def test_bad_sizes_are_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="not a size|more than 0"):
        parse_size(text)


def test_the_kv_estimate_follows_the_gguf() -> None:
    meta = read_gguf_metadata(default_model_path())
    arch = meta["general.architecture"]
    heads, kv_heads = meta[f"{arch}.attention.head_count"], meta[f"{arch}.attention.head_count_kv"]
    head_dim = meta[f"{arch}.embedding_length"] // heads
    assert kv_bytes_per_token(meta) == meta[f"{arch}.block_count"] * kv_heads * 2 * head_dim * 2
    size = default_model_path().stat().st_size
    assert estimate_bytes(default_model_path(), 512, 2) == size + kv_bytes_per_token(meta) * 1024


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    where = tmp_path_factory.mktemp("budget")
    alpha, beta = where / "alpha.gguf", where / "beta.gguf"
    alpha.symlink_to(default_model_path())
    beta.symlink_to(default_model_path())
    return alpha, beta


def one_model_bytes() -> int:
    return estimate_bytes(default_model_path(), 512, 1)


def metas(url: str) -> dict[str, dict]:
    return {c["id"]: c["meta"] for c in httpx.get(f"{url}/v1/models", timeout=10).json()["data"]}


@pytest.mark.e2e
def test_a_budget_for_one_model_unloads_the_other(two_models: tuple[Path, Path]) -> None:
    alpha, beta = two_models
    budget = str(int(one_model_bytes() * 1.5))
    with live_server([str(alpha), str(beta), "--max-memory", budget, "--n-ctx", "512", "--parallel", "1"]) as url:
        client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
        assert client.chat.completions.create(model="alpha", messages=HI, max_tokens=4).model == "alpha"
        assert client.chat.completions.create(model="beta", messages=HI, max_tokens=4).model == "beta"
        meta = metas(url)
        assert (meta["alpha"]["state"], meta["beta"]["state"]) == ("unloaded", "loaded")
        assert meta["alpha"]["unloads"]["lru"] == 1
        assert meta["beta"]["memory_estimate"] == one_model_bytes()
        ps = subprocess.run([sys.executable, "-m", "localtools", "ps", "--url", url],
                            capture_output=True, text=True, timeout=60)
        assert ps.returncode == 0, ps.stderr
        assert "MEMORY" in ps.stdout and f"~{format_size(one_model_bytes())}" in ps.stdout


@pytest.mark.e2e
def test_a_model_bigger_than_the_budget_is_refused_clearly(two_models: tuple[Path, Path]) -> None:
    alpha, beta = two_models
    with live_server([str(alpha), str(beta), "--max-memory", "10MB", "--n-ctx", "512"]) as url:
        client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
        with pytest.raises(APIStatusError) as err:
            client.chat.completions.create(model="alpha", messages=HI, max_tokens=4)
        assert err.value.status_code == 503
        body = err.value.response.json()["error"]
        assert body["code"] == "model_load_failed" and "more than --max-memory 9.5 MiB" in body["message"]
        assert metas(url)["alpha"]["state"] == "unloaded"


def test_a_bad_budget_stops_serve_with_a_clear_message(two_models: tuple[Path, Path]) -> None:
    alpha, beta = two_models
    done = subprocess.run([sys.executable, "-m", "localtools", "serve", str(alpha), str(beta), "--max-memory", "lots"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "not a size" in done.stderr and "Traceback" not in done.stderr
