"""A `ModelRuntime` whose tokens come from upstream engines: `serve --engine-url`.

Templates, dialect and tokenizer come from the GGUF named by `--chat-template-from`
(resolved by the same `resolve_model` as in-process serving, so detection, rendering
and parsing are the same code); only the weights stay out of this process. The
context window is the smallest the upstreams report (or `n_ctx` when given).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx

from localtools.resolution.model import resolve_model
from localtools.resolution.templates import FALLBACK_TEMPLATE, RuntimeLoadError
from localtools.runtime import DEFAULT_N_CTX, ModelRuntime, _engine_templates, _tool_prompt, runtime_for_choice

log = logging.getLogger("localtools.remote")

READ_TIMEOUT = 300.0  # seconds without a byte from an upstream before it counts as dead


class RemoteRuntime(ModelRuntime):
    """A runtime whose engine is elsewhere: what needs the weights here is refused."""

    def embedder(self) -> Any:
        from localtools.engine import EngineError

        raise EngineError("embeddings are not served through --engine-url (this process has the "
                          "tokenizer, not the weights); serve the embedding model in-process")


def _vocab(path: Path) -> object:
    from localtools.engine import Vocab

    try:
        return Vocab(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise RuntimeLoadError(f"cannot read the tokenizer of {path}: {exc}") from None


def load_remote_runtime(
    urls: list[str],
    chat_template_from: str | None,
    *,
    n_ctx: int | None = None,
    chat_template_file: str | Path | None = None,
    dialect: str | None = None,
    tool_prompt_file: str | Path | None = None,
    max_queue: int = 64,
    alias: str | None = None,
    health_interval: float = 5.0,
    read_timeout: float = READ_TIMEOUT,
    api_key: str | None = None,
) -> ModelRuntime:
    """Resolve the model's template/dialect/tokenizer, probe the upstreams, and build the
    runtime. Raises ModelNotFound / RuntimeLoadError (also when no upstream answers)."""
    from localtools.remote.backend import RemoteBackend
    from localtools.remote.upstream import UpstreamPool

    if not chat_template_from:
        raise RuntimeLoadError("--engine-url needs --chat-template-from MODEL.gguf: the GGUF (or catalog "
                               "name) whose chat template and tokenizer the upstream engines serve")
    choice = resolve_model(chat_template_from, chat_template_file=chat_template_file, dialect=dialect)
    if choice.refusal is not None:
        raise RuntimeLoadError(choice.refusal)
    where = choice.location
    assert where is not None
    if choice.template_origin == str(FALLBACK_TEMPLATE):
        log.warning("the GGUF has no chat template; using %s", FALLBACK_TEMPLATE)
    tool_prompt = _tool_prompt(tool_prompt_file)
    vocab = _vocab(where.path)
    templates = _engine_templates(choice, vocab)

    timeout = httpx.Timeout(connect=5.0, read=read_timeout, write=30.0, pool=30.0)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None  # llama-server and vLLM alike
    client = httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=max_queue + 64), headers=headers)
    pool = UpstreamPool(urls, client, health_interval=health_interval)
    if pool.check_all() == 0:
        client.close()
        states = "; ".join(f"{u['url']}: {u['last_error']}" for u in pool.describe())
        raise RuntimeLoadError(f"no upstream engine answered ({states})")
    pool.start()
    reported = [up.n_ctx for up in pool.upstreams if up.n_ctx]
    window = n_ctx or (min(reported) if reported else (where.n_ctx or DEFAULT_N_CTX))
    vocab.n_ctx = window  # type: ignore[attr-defined]
    for up in pool.describe():
        log.info("upstream %s: %s, %s", up["url"], up["kind"] or "down", "up" if up["healthy"] else up["last_error"])

    backend = RemoteBackend(pool, vocab, window, max_queue=max_queue)
    # `auto` mode stays "native" here, as before; the serve loader applies --auto-tools / models.toml
    return runtime_for_choice(RemoteRuntime, choice, vocab, backend, templates, tool_prompt, alias, "native")


def with_auto_tools(runtime: ModelRuntime, auto_tools: str | None) -> ModelRuntime:
    """`serve`'s `auto` mode for a remote model: `--auto-tools` (or the models-file key),
    else what resolution chose from models.toml and the dialect."""
    choice = getattr(runtime, "choice", None)
    runtime.auto_tools = auto_tools or (choice.auto_tools if choice is not None else runtime.auto_tools)
    return runtime
