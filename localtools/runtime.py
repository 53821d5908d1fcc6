"""Everything loaded for one served model: engine, scheduler, templates, dialect.

The server, the CLI and in-process users share this so that a model is
resolved, loaded and matched to its tool dialect in exactly one place.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localtools.default_model import HOW_TO_GET, default_model_path
from localtools.dialects import Detection, Dialect
from localtools.dialects.resolve import resolve_dialect
from localtools.resources import bundled

log = logging.getLogger("localtools.runtime")

CHAT_FORMATS = bundled("chat_formats")
FALLBACK_TEMPLATE = CHAT_FORMATS / "chatml.jinja"
DEFAULT_N_CTX = 4096


class ModelNotFound(Exception):
    """The model cannot be found on this machine; the message says how to get it."""


class RuntimeLoadError(Exception):
    """The model was found but cannot be served (bad template, unknown dialect, …)."""


@dataclass
class ModelLocation:
    """Where a model file is and what is known about it before loading."""

    path: Path
    name: str
    dialect: str | None = None
    chat_template_file: Path | None = None
    n_ctx: int | None = None
    dialect_spec: dict[str, Any] | None = None  # a declarative dialect pinned in models.toml
    response_schema: dict[str, Any] | None = None  # or a transformers-style response_schema


def locate_model(model: str | None) -> ModelLocation:
    """Resolve a name, a path or None (the default model) without loading it.

    Uses the catalog when it is importable; raises ModelNotFound otherwise.
    """
    try:
        from localtools import catalog
    except ImportError:  # the catalog is optional: paths and the default still work
        catalog = None  # type: ignore[assignment]
    if catalog is not None:
        try:
            found = catalog.resolve_model(model)
        except catalog.ModelNotFound as exc:
            message = str(exc)
            if model is None:
                message = HOW_TO_GET
            raise ModelNotFound(message) from None
        except catalog.CatalogError as exc:
            raise RuntimeLoadError(f"model catalog: {exc}") from None
        extra = getattr(found.entry, "extra", None) or {}
        spec = extra.get("dialect_spec")
        schema = _response_schema(extra)
        return ModelLocation(
            path=Path(found.path),
            name=found.name,
            dialect=found.dialect,
            chat_template_file=found.chat_template_file,
            n_ctx=found.n_ctx,
            dialect_spec=spec if isinstance(spec, dict) else None,
            response_schema=schema,
        )
    if model is None:
        path = default_model_path()
        if path is None:
            raise ModelNotFound(HOW_TO_GET)
        return ModelLocation(path=path, name="smollm2-135m")
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelNotFound(f"no such model file: {path}")
    return ModelLocation(path=path.absolute(), name=path.stem)


def _response_schema(extra: dict[str, Any]) -> dict[str, Any] | None:
    """A catalog entry's `response_schema` (inline) or `response_schema_file` (JSON)."""
    schema = extra.get("response_schema")
    path = extra.get("response_schema_file")
    if schema is None and isinstance(path, str):
        import json

        try:
            schema = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RuntimeLoadError(f"cannot read response_schema_file {path}: {exc}") from None
    return schema if isinstance(schema, dict) else None


@dataclass
class ModelRuntime:
    """One loaded model, ready to serve chat and completion requests."""

    name: str
    model_path: Path
    engine: Any  # localtools.engine.Engine
    scheduler: Any  # localtools.scheduler.Scheduler
    templates: dict[str, Any]  # "default" (+ "tool_use"): localtools.templating.ChatTemplate
    template_origin: str  # where the templates came from (GGUF, a file, the fallback)
    dialect: Dialect
    detection: Detection
    tool_prompt: Any | None = None  # ChatTemplate rendering `tools` (--tool-prompt FILE)
    created: int = 0
    accepted_names: set[str] = field(default_factory=set)
    closed: bool = False

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

    def close(self) -> None:
        """Cancel what runs and stop the worker (shutdown); safe to call twice."""
        if not self.closed:
            self.closed = True
            self.scheduler.close(cancel_running=True)


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuntimeLoadError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RuntimeLoadError(f"{what} {path} is not UTF-8 text") from None


def _template_sources(engine: Any, chat_template_file: Path | None) -> tuple[dict[str, str], str]:
    """The template sources to use and a label saying where they came from."""
    if chat_template_file is not None:
        return {"default": _read_text(chat_template_file, "chat template")}, str(chat_template_file)
    embedded = {k: v for k, v in engine.chat_templates().items() if v and v.strip()}
    if embedded:
        if "default" not in embedded:  # only named templates: the first one is the default
            embedded["default"] = next(iter(embedded.values()))
        return embedded, "gguf"
    log.warning("the GGUF has no chat template; using %s", FALLBACK_TEMPLATE)
    return {"default": _read_text(FALLBACK_TEMPLATE, "chat template")}, str(FALLBACK_TEMPLATE)


def _compile_templates(sources: dict[str, str], origin: str, engine: Any) -> dict[str, Any]:
    from localtools.templating import ChatTemplate, TemplateError

    templates = {}
    for key, source in sources.items():
        label = f"tokenizer.chat_template.{key}" if origin == "gguf" and key != "default" else (
            "tokenizer.chat_template" if origin == "gguf" else origin
        )
        try:
            templates[key] = ChatTemplate(
                source, name=label, bos_token=engine.bos_token, eos_token=engine.eos_token
            )
        except TemplateError as exc:
            raise RuntimeLoadError(f"{exc} — pass a working one with --chat-template FILE") from None
    return templates


# A plain conversation and a tool round trip: every template is rendered with these
# once at load (see check_template_bounds).
_SMOKE_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi! How can I help?"},
    {"role": "user", "content": "What is the weather in Paris?"},
]
_SMOKE_TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]
# failures that mean a hostile or broken template, not one that dislikes a conversation
_REFUSED_KINDS = ("unsafe", "timeout", "too_large")


def check_template_bounds(templates: dict[str, Any]) -> None:
    """Refuse a template that reaches for Python internals or exceeds its time/size bounds
    on an ordinary conversation (with and without tools).

    Caught at load, such a template is reported once instead of failing every request;
    and template analysis, which renders a template dozens of times, never sees a template
    that spends its whole time budget on each render (minutes of start-up).
    """
    from localtools.templating import TemplateError

    for template in templates.values():
        for tools in (None, _SMOKE_TOOLS):
            try:
                template.render(_SMOKE_MESSAGES, tools=tools, add_generation_prompt=True)
            except TemplateError as exc:
                if exc.kind in _REFUSED_KINDS:
                    raise RuntimeLoadError(f"{exc} — refusing to serve it; pass a working one with "
                                           "--chat-template FILE") from None


def pick_dialect(
    template_source: str,
    forced: str | None,
    how: str = "--dialect",
    spec: dict[str, Any] | None = None,
    response_schema: dict[str, Any] | None = None,
) -> tuple[Dialect, Detection]:
    """The forced or pinned dialect, else the detected one, else one inferred by analysis."""
    try:
        resolution = resolve_dialect(template_source, forced, how, spec, response_schema=response_schema)
    except KeyError as exc:
        raise RuntimeLoadError(f"{exc.args[0]} (from {how})") from None
    except ValueError as exc:
        raise RuntimeLoadError(f"invalid dialect description (dialect_spec / response_schema, from {how}): {exc}") from None
    return resolution.dialect, resolution.detection


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
) -> ModelRuntime:
    """Resolve, load and prepare one model. Raises ModelNotFound / RuntimeLoadError."""
    where = locate_model(model)  # first: a missing model is reported before anything loads

    from localtools.engine import Engine, EngineConfig
    from localtools.scheduler import Scheduler
    from localtools.templating import ChatTemplate, TemplateError

    template_file = Path(chat_template_file) if chat_template_file else where.chat_template_file
    if template_file is not None and not template_file.is_file():
        raise RuntimeLoadError(f"no such chat template file: {template_file}")
    tool_prompt = None
    if tool_prompt_file:
        path = Path(tool_prompt_file)
        try:
            tool_prompt = ChatTemplate(_read_text(path, "tool prompt"), name=str(path))
        except TemplateError as exc:
            raise RuntimeLoadError(str(exc)) from None

    config = EngineConfig(
        model_path=str(where.path),
        n_ctx=n_ctx if n_ctx is not None else min(where.n_ctx or DEFAULT_N_CTX, DEFAULT_N_CTX),
        n_threads=n_threads,
        n_gpu_layers=n_gpu_layers,
        seed=seed,
    )
    try:
        engine = Engine(config)
    except (FileNotFoundError, ValueError) as exc:
        raise RuntimeLoadError(f"cannot load {where.path}: {exc}") from None

    try:
        sources, origin = _template_sources(engine, template_file)
        templates = _compile_templates(sources, origin, engine)
        check_template_bounds(templates)
        tool_source = sources.get("tool_use", sources["default"])
        how = "--dialect" if dialect else "the model catalog"
        # the catalog's dialect goes with the catalog's template, not a user's --chat-template
        catalog_applies = not dialect and chat_template_file is None
        chosen, detection = pick_dialect(
            tool_source,
            dialect or (where.dialect if catalog_applies else None),
            how,
            where.dialect_spec if catalog_applies else None,
            where.response_schema if catalog_applies else None,
        )
    except Exception:
        engine_close = getattr(engine, "close", None)
        if callable(engine_close):
            engine_close()
        raise

    name = alias or where.name
    try:
        created = int(os.path.getmtime(where.path))
    except OSError:
        created = 0
    return ModelRuntime(
        name=name,
        model_path=where.path,
        engine=engine,
        scheduler=Scheduler(engine, max_queue=max_queue),
        templates=templates,
        template_origin=origin,
        dialect=chosen,
        detection=detection,
        tool_prompt=tool_prompt,
        created=created,
        accepted_names={name, where.name, where.path.name, where.path.stem},
    )
