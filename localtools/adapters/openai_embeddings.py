"""OpenAI embeddings (/v1/embeddings) ⇄ the engine's Embedder.

    async def create_embeddings(state: ServingState, body: dict) -> dict
        A `list` of `embedding` objects with usage; raises AdapterError.

`input` is a string, a list of strings, a token array or a list of token arrays
(OpenAI's four forms); all inputs are embedded in as few llama_decode calls as fit.
`encoding_format` "base64" is the little-endian float32 bytes, as OpenAI's (the
`openai` Python client asks for it by default). `dimensions` keeps the first N
components and renormalises them (the Matryoshka convention); it only means something
for a model trained that way, and more dimensions than the model has is a 400.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import anyio.to_thread
import numpy as np
from pydantic import Field

from localtools.adapters.errors import bad_request, server_error
from localtools.adapters.openai_schemas import _Loose, parse_body
from localtools.adapters.serving import ServingState, check_model, check_running
from localtools.engine import EngineError
from localtools.engine.embeddings import EmbeddingInputError

MAX_INPUTS = 2048  # OpenAI's limit on inputs per request


class EmbeddingRequest(_Loose):
    input: str | list[str] | list[int] | list[list[int]]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


def _inputs(req: EmbeddingRequest, tokenize: Any) -> list[list[int]]:
    """Every input as tokens (strings through the model's tokenizer, token arrays as given)."""
    raw = req.input
    if isinstance(raw, str):
        items: list[Any] = [raw]
    elif raw and all(isinstance(x, int) for x in raw):
        items = [raw]  # one token array
    else:
        items = list(raw)
    if not items:
        raise bad_request("Invalid value for 'input': the list is empty; send at least one input.", param="input")
    if len(items) > MAX_INPUTS:
        raise bad_request(f"Invalid value for 'input': at most {MAX_INPUTS} inputs per request.", param="input")
    out: list[list[int]] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            if not item:
                raise bad_request(f"Invalid value for 'input[{i}]': the string is empty.", param=f"input[{i}]")
            out.append(tokenize(item))
        else:
            out.append(list(item))
    return out


def _shaped(rows: np.ndarray, dimensions: int | None, encoding: str) -> list[Any]:
    """Rows cut to `dimensions` (renormalised), as float lists or base64 strings."""
    if dimensions is not None and dimensions < rows.shape[1]:
        rows = rows[:, :dimensions]
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        rows = rows / np.where(norms > 0, norms, 1.0)
    rows = rows.astype("<f4")
    if encoding == "base64":
        return [base64.b64encode(row.tobytes()).decode("ascii") for row in rows]
    return [row.tolist() for row in rows]


def _embedder(state: ServingState) -> Any:
    try:
        return state.runtime.embedder()
    except EngineError as exc:
        raise bad_request(f"The model {state.runtime.name!r} cannot give embeddings: {exc}.",
                          param="model", code="model_not_supported") from None


def _embed(embedder: Any, tokens: list[list[int]]) -> np.ndarray:
    try:
        return embedder.embed(tokens)
    except EmbeddingInputError as exc:
        raise bad_request(f"Invalid value for 'input[{exc.index}]': {exc}.", param=f"input[{exc.index}]") from None
    except EngineError:
        raise server_error() from None


def _embed_sync(state: ServingState, req: EmbeddingRequest) -> tuple[np.ndarray, int]:
    embedder = _embedder(state)
    if req.dimensions is not None and req.dimensions > embedder.n_embd:
        raise bad_request(
            f"Invalid value for 'dimensions': this model's embeddings have {embedder.n_embd} dimensions; "
            f"ask for {embedder.n_embd} or fewer.", param="dimensions")
    tokens = _inputs(req, embedder.tokenize)
    return _embed(embedder, tokens), sum(len(t) for t in tokens)


async def create_embeddings(state: ServingState, body: Any) -> dict[str, Any]:
    """The embeddings of a request's inputs (see the module docstring)."""
    req = parse_body(EmbeddingRequest, body)
    check_model(state, req.model)
    check_running(state)
    rows, n_tokens = await anyio.to_thread.run_sync(_embed_sync, state, req)
    data = [
        {"object": "embedding", "index": i, "embedding": vec}
        for i, vec in enumerate(_shaped(rows, req.dimensions, req.encoding_format))
    ]
    return {
        "object": "list",
        "data": data,
        "model": state.runtime.name,
        "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
    }
