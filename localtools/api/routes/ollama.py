"""Ollama's API (/api/chat, /api/generate, /api/tags, /api/show, /api/version, /api/ps) over the chat pipeline.

Translation is `adapters.ollama`'s; errors use Ollama's shape `{"error": "..."}`,
streams are NDJSON (Ollama streams unless `stream: false`).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from localtools.adapters.errors import AdapterError
from localtools.adapters.ollama import (
    OLLAMA_API_VERSION,
    OllamaStream,
    chat_reply,
    generate_reply,
    load_reply,
    model_details,
    show_reply,
    tags_reply,
    translate_chat,
    translate_generate,
)
from localtools.adapters.openai_chat import chat_completion, chat_completion_chunks
from localtools.adapters.serving import check_model
from localtools.api.body import read_json
from localtools.api.errors import message_naming_param
from localtools.api.routing import RequestHost, loaded_runtimes, model_rows, pool_of, serving_for
from localtools.api.streaming import finished_reply
from localtools.api.translated_stream import errors_as, translated_stream
from localtools.gguf_meta import read_gguf_metadata, summarize


def ollama_error(exc: AdapterError) -> dict[str, Any]:
    return {"error": message_naming_param(exc)}


async def _generate(request: Request, state: Any, chat: dict[str, Any], model: str, generate: bool) -> Response:
    if chat["stream"]:
        stream = OllamaStream(model, generate)
        chunks = chat_completion_chunks(state, chat)
        return await translated_stream(request, chunks, stream, ollama_error, ndjson=True)
    started = time.monotonic_ns()
    completion = await finished_reply(request, chat_completion(state, chat))
    reply = (generate_reply if generate else chat_reply)(completion, model, time.monotonic_ns() - started)
    return JSONResponse(reply)


def _model_name(state: Any, body: Any) -> str:
    name = body.get("model") if isinstance(body, dict) else None
    return name if isinstance(name, str) and name else state.runtime.name


async def api_chat(request: Request) -> Response:
    body = await read_json(request, request.app.state.settings.max_body_bytes)
    chat = translate_chat(body)
    state = await serving_for(request, body)
    return await _generate(request, state, chat, _model_name(state, body), generate=False)


async def api_generate(request: Request) -> Response:
    body = await read_json(request, request.app.state.settings.max_body_bytes)
    chat = translate_generate(body)
    state = await serving_for(request, body)  # with a pool, an empty prompt loads the model
    if chat is None:
        check_model(state, body.get("model"))
        return JSONResponse(load_reply(_model_name(state, body)))
    return await _generate(request, state, chat, _model_name(state, body), generate=True)


def _facts(state: Any) -> dict[str, Any]:
    """What /api/tags and /api/show say about the model, read from its GGUF once
    (a pool host's runtime caches them, a single model's `app.state` does)."""
    holder = state.runtime if isinstance(state, RequestHost) else state
    facts = getattr(holder, "ollama_facts", None)
    if facts is None:
        path = state.runtime.model_path
        summary = summarize(read_gguf_metadata(path), path)
        stat = path.stat()
        arch = summary.get("architecture") or ""
        facts = {
            "size": stat.st_size,
            "modified": stat.st_mtime,
            # an identifier of this file (path, size, time), not a hash of its bytes
            "digest": hashlib.sha256(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest(),
            "details": model_details(arch, summary.get("quantization") or "", summary.get("parameters") or ""),
            "model_info": {"general.architecture": arch, f"{arch}.context_length": state.runtime.n_ctx},
        }
        holder.ollama_facts = facts
    return facts


async def _pool_tags(request: Request) -> Response:
    """Every served model; an unloaded one's file facts are unknown until it loads."""
    pool = pool_of(request)
    assert pool is not None
    models = []
    for row in model_rows(pool):
        runtime = pool.slots[row["name"]].runtime
        if runtime is not None:
            facts = await anyio.to_thread.run_sync(_facts, RequestHost(runtime, None))
        else:
            facts = {"size": 0, "modified": 0.0, "digest": hashlib.sha256(row["source"].encode()).hexdigest(),
                     "details": model_details("", "", "")}
        models += tags_reply(row["name"], facts["size"], facts["modified"], facts["digest"], facts["details"])["models"]
    return JSONResponse({"models": models})


async def api_tags(request: Request) -> Response:
    if pool_of(request) is not None:
        return await _pool_tags(request)
    state = request.app.state
    facts = await anyio.to_thread.run_sync(_facts, state)
    return JSONResponse(tags_reply(state.runtime.name, facts["size"], facts["modified"], facts["digest"],
                                   facts["details"]))


async def api_show(request: Request) -> Response:
    body = await read_json(request, request.app.state.settings.max_body_bytes)
    name = (body.get("model") or body.get("name")) if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        raise AdapterError(400, "Missing required parameter: 'model'.", param="model")
    state = await serving_for(request, body, "model", "name")
    if state.settings.strict_model_name and not state.runtime.knows_model_name(name):
        raise AdapterError(404, f"model {name!r} not found", param="model")
    facts = await anyio.to_thread.run_sync(_facts, state)
    template = state.runtime.templates["default"].source
    return JSONResponse(show_reply(template, facts["details"], facts["model_info"], ["completion", "tools"],
                                   facts["modified"]))


async def api_ps(request: Request) -> Response:
    """Ollama's running models: what is loaded now (`ollama ps`); `size_vram` is unknown (0)."""
    pool = pool_of(request)
    hosts = [RequestHost(rt, None) for rt in loaded_runtimes(pool)] if pool else [request.app.state]
    models = []
    for host in hosts:
        facts = await anyio.to_thread.run_sync(_facts, host)
        entry = tags_reply(host.runtime.name, facts["size"], facts["modified"], facts["digest"],
                           facts["details"])["models"][0]
        models.append({**entry, "size_vram": 0})
    return JSONResponse({"models": models})


async def api_version(request: Request) -> Response:
    return JSONResponse({"version": OLLAMA_API_VERSION})


_shaped = errors_as(ollama_error)

routes = [
    Route("/api/chat", _shaped(api_chat), methods=["POST"]),
    Route("/api/generate", _shaped(api_generate), methods=["POST"]),
    Route("/api/tags", _shaped(api_tags), methods=["GET"]),
    Route("/api/show", _shaped(api_show), methods=["POST"]),
    Route("/api/version", _shaped(api_version), methods=["GET"]),
    Route("/api/ps", _shaped(api_ps), methods=["GET"]),
]
