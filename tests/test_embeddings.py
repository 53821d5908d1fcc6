"""POST /v1/embeddings through the real openai client, checked against llama-cpp-python's
own `Llama(embedding=True).embed` for the same model and inputs."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import llama_cpp
import numpy as np
import pytest
from openai import BadRequestError, OpenAI

from tests.live_server import live_server
from tests.test_fim import _script

pytestmark = pytest.mark.e2e

TEXTS = [
    "The cat sat on the mat.",
    "Retrieval augmented generation looks documents up before answering.",
    "def add(a, b):\n    return a + b",
    "Paris is the capital of France.",
    "<|im_start|> looks like a control token but is text here",
]


def _reference(model: Path, texts: list[str], pooling: int) -> np.ndarray:
    """llama-cpp-python's own pooled, normalised embeddings."""
    llm = llama_cpp.Llama(str(model), embedding=True, pooling_type=pooling, n_ctx=1024, verbose=False)
    try:
        return np.array(llm.embed(texts, normalize=True), dtype=np.float64)
    finally:
        llm.close()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with live_server(["--n-ctx", "1024", "--alias", "tiny"]) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> OpenAI:
    return OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def reference(model_path: Path) -> np.ndarray:
    # a chat model declares no pooling: the server documents mean pooling
    return _reference(model_path, TEXTS, llama_cpp.LLAMA_POOLING_TYPE_MEAN)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_batch_of_strings_matches_llama_cpp_python(client: OpenAI, reference: np.ndarray) -> None:
    reply = client.embeddings.create(model="tiny", input=TEXTS, encoding_format="float")
    assert reply.object == "list" and reply.model == "tiny"
    assert [d.index for d in reply.data] == list(range(len(TEXTS)))
    got = np.array([d.embedding for d in reply.data])
    assert got.shape == reference.shape
    assert _cosines(got, reference).min() >= 0.999
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    assert reply.usage.prompt_tokens == reply.usage.total_tokens > len(TEXTS)


def test_the_clients_default_base64_and_one_string(client: OpenAI, reference: np.ndarray) -> None:
    # the openai client asks for base64 by default and decodes it itself
    reply = client.embeddings.create(model="tiny", input=TEXTS[1])
    assert len(reply.data) == 1
    assert _cosines(np.array([reply.data[0].embedding]), reference[1:2])[0] >= 0.999


def test_base64_is_little_endian_float32(base_url: str, reference: np.ndarray) -> None:
    r = httpx.post(f"{base_url}/v1/embeddings", json={"input": TEXTS[0], "encoding_format": "base64"},
                   timeout=60)
    assert r.status_code == 200
    raw = base64.b64decode(r.json()["data"][0]["embedding"])
    vec = np.frombuffer(raw, dtype="<f4")
    assert vec.shape == (reference.shape[1],)
    assert _cosines(vec[None], reference[:1])[0] >= 0.999


def test_token_arrays_embed_like_their_text(client: OpenAI, reference: np.ndarray, model_path: Path) -> None:
    llm = llama_cpp.Llama(str(model_path), vocab_only=True, verbose=False)
    ids = [llm.tokenize(t.encode()) for t in TEXTS[:2]]
    many = client.embeddings.create(model="tiny", input=ids, encoding_format="float")
    one = client.embeddings.create(model="tiny", input=ids[0], encoding_format="float")
    assert _cosines(np.array([d.embedding for d in many.data]), reference[:2]).min() >= 0.999
    assert _cosines(np.array([one.data[0].embedding]), reference[:1])[0] >= 0.999
    assert many.usage.prompt_tokens == len(ids[0]) + len(ids[1])


def test_dimensions_truncate_and_renormalise(client: OpenAI, reference: np.ndarray) -> None:
    reply = client.embeddings.create(model="tiny", input=TEXTS[:2], dimensions=64, encoding_format="float")
    got = np.array([d.embedding for d in reply.data])
    assert got.shape == (2, 64)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    assert _cosines(got, reference[:2, :64]).min() >= 0.999


def test_many_inputs_in_one_call(client: OpenAI, reference: np.ndarray) -> None:
    texts = TEXTS * 8  # more inputs than one llama_decode packs
    reply = client.embeddings.create(model="tiny", input=texts, encoding_format="float")
    got = np.array([d.embedding for d in reply.data])
    assert _cosines(got, np.tile(reference, (8, 1))).min() >= 0.999


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": ""}, "input[0]"),
        ({"input": []}, "input"),
        ({"input": ["ok", ""]}, "input[1]"),
        ({"input": [[1, 2], [999999999]]}, "input[1]"),
        ({"input": "x", "dimensions": 100000}, "dimensions"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": 5}, "input"),
        ({"input": "word " * 3000}, "input[0]"),
    ],
)
def test_bad_input_is_an_openai_400(base_url: str, body: dict[str, Any], param: str) -> None:
    r = httpx.post(f"{base_url}/v1/embeddings", json=body, timeout=60)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert error["message"]


def test_the_client_raises_on_a_400(client: OpenAI) -> None:
    with pytest.raises(BadRequestError):
        client.embeddings.create(model="tiny", input="x", dimensions=100000)


def test_pooling_declared_by_the_gguf_is_used(model_path: Path, tmp_path: Path) -> None:
    """A GGUF declaring `last` pooling (as Qwen3-Embedding does) is pooled that way."""
    from localtools.engine import Engine, EngineConfig
    from localtools.engine.embeddings import Embedder

    copy = tmp_path / "smollm2-last-pooling.gguf"
    _script().set_metadata(model_path, copy, {"llama.pooling_type": llama_cpp.LLAMA_POOLING_TYPE_LAST})
    engine = Engine(EngineConfig(model_path=str(copy), n_ctx=1024))
    try:
        embedder = Embedder(engine)
        try:
            assert (embedder.pooling, embedder.pooling_declared) == ("last", True)
            got = embedder.embed([embedder.tokenize(t) for t in TEXTS])
        finally:
            embedder.close()
    finally:
        engine.close()
    want = _reference(copy, TEXTS, llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED)  # the GGUF's own
    assert _cosines(got, want).min() >= 0.999
    mean = _reference(model_path, TEXTS, llama_cpp.LLAMA_POOLING_TYPE_MEAN)
    assert _cosines(got, mean).max() < 0.99  # really another pooling, not mean again
