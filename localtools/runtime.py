"""Everything loaded for one served model: engine, scheduler, templates, dialect.

The server, the CLI and in-process users share this so that a model is
resolved, loaded and matched to its tool dialect in exactly one place.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localtools.dialects import Detection, Dialect
from localtools.resolution.model import ModelChoice, ModelLocation, locate_model, resolve_model
from localtools.resolution.templates import (
    CHAT_FORMATS,
    FALLBACK_TEMPLATE,
    ModelNotFound,
    RuntimeLoadError,
    check_template_bounds,
    compile_templates,
    read_text,
)

log = logging.getLogger("localtools.runtime")

DEFAULT_N_CTX = 4096
# Sequence slots decoded together (continuous batching). 4 as llama-server: on the 2-core
# CPU, 4 streaming clients got 1.2x the aggregate tokens/s of 1 slot and a shorter wait
# for the first token (scripts/bench_concurrency.py, README); each slot costs one more
# n_ctx of KV cache.
DEFAULT_PARALLEL = 4

__all__ = [
    "CHAT_FORMATS",
    "DEFAULT_N_CTX",
    "DEFAULT_PARALLEL",
    "FALLBACK_TEMPLATE",
    "ModelChoice",
    "ModelLocation",
    "ModelNotFound",
    "ModelRuntime",
    "RuntimeLoadError",
    "check_template_bounds",
    "load_runtime",
    "locate_model",
    "resolve_model",
]


@dataclass
class ModelRuntime:
    """One loaded model, ready to serve chat and completion requests."""

    name: str
    model_path: Path
    engine: Any  # localtools.engine.Engine (in-process), engine.Vocab (remote: the tokenizer only)
    scheduler: Any  # a backends.GenerationBackend: scheduler.Scheduler, or remote.RemoteBackend
    templates: dict[str, Any]  # "default" (+ "tool_use"): localtools.templating.ChatTemplate
    template_origin: str  # where the templates came from (GGUF, a file, the fallback)
    dialect: Dialect
    detection: Detection
    tool_prompt: Any | None = None  # ChatTemplate rendering `tools` (--tool-prompt FILE)
    created: int = 0
    accepted_names: set[str] = field(default_factory=set)
    closed: bool = False
    choice: ModelChoice | None = None  # why these templates and this dialect (resolve_model)
    auto_tools: str = "native"  # `auto` mode: "decide" (dialects/decide.py) | "native"
    _embedder: Any = field(default=None, repr=False)
    _embedder_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def n_ctx(self) -> int:
        return int(self.engine.n_ctx)

    def template_for(self, with_tools: bool) -> Any:
        """The `tool_use` template when a request has tools and the model has one."""
        if with_tools and "tool_use" in self.templates:
            return self.templates["tool_use"]
        return self.templates["default"]

    def knows_model_name(self, name: str) -> bool:
        """Whether a request's `model` names this model (alias, catalog name, file)."""
        return name in self.accepted_names

    def embedder(self) -> Any:
        """The embedding context on this model (engine.embeddings.Embedder), made on
        first use; raises EngineError for a model that cannot embed."""
        with self._embedder_lock:
            if self._embedder is None:
                from localtools.engine.embeddings import Embedder

                self._embedder = Embedder(self.engine)
            return self._embedder

    def close(self) -> None:
        """Cancel what runs and stop the worker (shutdown); safe to call twice."""
        if not self.closed:
            self.closed = True
            self.scheduler.close(cancel_running=True)
            if self._embedder is not None:
                self._embedder.close()


def _tool_prompt(tool_prompt_file: str | Path | None) -> Any | None:
    """The --tool-prompt template, compiled (None without one)."""
    if not tool_prompt_file:
        return None
    from localtools.templating import ChatTemplate, TemplateError

    path = Path(tool_prompt_file)
    try:
        return ChatTemplate(read_text(path, "tool prompt"), name=str(path))
    except TemplateError as exc:
        raise RuntimeLoadError(str(exc)) from None


def context_shape(where: ModelLocation, n_ctx: int | None, n_parallel: int | None) -> tuple[int, int]:
    """(n_ctx per slot, slots) the engine gets for these options: the flags, else the
    catalog's entry, else the defaults (also what --max-memory estimates)."""
    return (n_ctx if n_ctx is not None else min(where.n_ctx or DEFAULT_N_CTX, DEFAULT_N_CTX),
            n_parallel or where.parallel or DEFAULT_PARALLEL)


def _load_engine(
    where: ModelLocation, n_ctx: int | None, n_threads: int | None, n_gpu_layers: int, seed: int, n_parallel: int | None,
    flash_attn: bool | None = None,
) -> Any:
    from localtools.engine import Engine, EngineConfig

    ctx, slots = context_shape(where, n_ctx, n_parallel)
    config = EngineConfig(
        model_path=str(where.path), n_ctx=ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers, seed=seed,
        n_parallel=slots, flash_attn=flash_attn,
    )
    try:
        return Engine(config)
    except (FileNotFoundError, ValueError) as exc:
        raise RuntimeLoadError(f"cannot load {where.path}: {exc}") from None


def _engine_templates(choice: ModelChoice, engine: Any) -> dict[str, Any]:
    """The chosen templates compiled with the model's own BOS/EOS, checked once more;
    the engine is closed when they cannot be served."""
    try:
        templates = compile_templates(choice.templates, choice.template_origin, engine.bos_token, engine.eos_token)
        check_template_bounds(templates)
        return templates
    except Exception:
        engine_close = getattr(engine, "close", None)
        if callable(engine_close):
            engine_close()
        raise


def file_created(path: str | Path) -> int:
    """The model file's mtime as OpenAI's `created` (0 when it cannot be read)."""
    try:
        return int(os.path.getmtime(path))
    except OSError:
        return 0


def runtime_for_choice(kind: type[ModelRuntime], choice: ModelChoice, engine: Any, scheduler: Any,
                       templates: dict[str, Any], tool_prompt: Any | None, alias: str | None,
                       auto_tools: str | None = None) -> Any:
    """A `kind` (ModelRuntime or a subclass) for what `resolve_model` chose: the one place
    the in-process and remote runtimes are assembled, so the two cannot drift."""
    where = choice.location
    assert where is not None
    name = alias or where.name
    return kind(
        name=name,
        model_path=where.path,
        engine=engine,
        scheduler=scheduler,
        templates=templates,
        template_origin=choice.template_origin,
        dialect=choice.dialect,
        detection=choice.detection,
        tool_prompt=tool_prompt,
        created=file_created(where.path),
        accepted_names={name, where.name, where.path.name, where.path.stem},
        choice=choice,
        auto_tools=auto_tools or choice.auto_tools,
    )


def load_runtime(
    model: str | None,
    *,
    n_ctx: int | None = None,
    n_threads: int | None = None,
    n_gpu_layers: int = 0,
    seed: int = -1,
    chat_template_file: str | Path | None = None,
    dialect: str | None = None,
    tool_prompt_file: str | Path | None = None,
    max_queue: int = 64,
    alias: str | None = None,
    n_parallel: int | None = None,
    auto_tools: str | None = None,
    flash_attn: bool | None = None,
) -> ModelRuntime:
    """Resolve, load and prepare one model. Raises ModelNotFound / RuntimeLoadError.

    What is served (file, templates, dialect) is `resolve_model`'s choice, the one
    `localtools inspect` reports; this only loads it."""
    choice = resolve_model(model, chat_template_file=chat_template_file, dialect=dialect, auto_tools=auto_tools)
    if choice.refusal is not None:
        raise RuntimeLoadError(choice.refusal)
    where = choice.location
    assert where is not None  # resolve_model locates every model it is given
    if choice.template_origin == str(FALLBACK_TEMPLATE):
        log.warning("the GGUF has no chat template; using %s", FALLBACK_TEMPLATE)
    tool_prompt = _tool_prompt(tool_prompt_file)
    engine = _load_engine(where, n_ctx, n_threads, n_gpu_layers, seed, n_parallel, flash_attn)
    templates = _engine_templates(choice, engine)

    from localtools.scheduler import Scheduler

    return runtime_for_choice(ModelRuntime, choice, engine, Scheduler(engine, max_queue=max_queue), templates,
                              tool_prompt, alias)
