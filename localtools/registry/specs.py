"""Which models a multi-model server serves: command-line models and a `--models-file`.

Nothing here loads or even finds a model file: a bad path must only fail when that
model is requested, so each `ServedModel` carries a loader that resolves and loads
on first use. A models file is TOML with one `[models.NAME]` table per served
name (the catalog's layout):

    [models.fast]
    model = "~/models/qwen2.5-0.5b-instruct-q4_k_m.gguf"   # a path or a catalog name
    n_ctx = 2048
    dialect = "hermes"

Keys: `model` (or `path`; required), `n_ctx`, `threads`, `n_gpu_layers`, `seed`,
`chat_template`, `tool_prompt` (files, relative to the models file), `dialect`,
`max_queue`, `parallel`, `auto_tools`, `flash_attn` (true/false); `engine_url` (a URL or a list) makes the model
remote (`model` then names the GGUF whose template and tokenizer the upstreams serve),
with `engine_api_key`. Unknown keys are an error at start-up, so a typo never goes unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from localtools.catalog import tomllib  # the catalog's TOML reader (tomli on Python 3.10)
from localtools.registry.memory import estimate_local_model
from localtools.registry.pool import ServedModel


class ModelsFileError(ValueError):
    """The models file or the command line's model list cannot be served as given."""


@dataclass(frozen=True)
class LoadOptions:
    """`load_runtime`'s options for one model (the serve flags are every model's defaults)."""

    n_ctx: int | None = None
    n_threads: int | None = None
    n_gpu_layers: int = 0
    seed: int = -1
    chat_template_file: str | None = None
    dialect: str | None = None
    tool_prompt_file: str | None = None
    max_queue: int = 64
    n_parallel: int | None = None  # sequence slots (None: the catalog's, else the default)
    auto_tools: str | None = None  # tool_choice auto: "decide" | "native" (None: models.toml, else the dialect's)
    flash_attn: bool | None = None  # None: on for the CPU, llama.cpp's choice with GPU layers; False: reproducible


# models-file key -> (LoadOptions field, expected type; a file path when None)
_KEYS: dict[str, tuple[str, type | None]] = {
    "n_ctx": ("n_ctx", int),
    "threads": ("n_threads", int),
    "n_gpu_layers": ("n_gpu_layers", int),
    "seed": ("seed", int),
    "max_queue": ("max_queue", int),
    "parallel": ("n_parallel", int),
    "dialect": ("dialect", str),
    "auto_tools": ("auto_tools", str),
    "flash_attn": ("flash_attn", bool),
    "chat_template": ("chat_template_file", None),
    "tool_prompt": ("tool_prompt_file", None),
}


def served_name(source: str) -> str:
    """A command-line model's served name: a file's stem, else the catalog name as given."""
    if source.endswith(".gguf") or "/" in source or "\\" in source:
        return Path(source).stem
    return source


def _aliases(name: str, source: str) -> frozenset[str]:
    """Other names a request may use for the model: what the user typed, the file name."""
    return frozenset({source, Path(source).name, Path(source).stem} - {name, ""})


def local_model(name: str, source: str, options: LoadOptions,
                loader: Callable[..., Any] | None = None) -> ServedModel:
    """A model loaded in-process by `load_runtime` (resolution happens at load time)."""
    if loader is None:
        from localtools.runtime import load_runtime

        loader = load_runtime
    load = partial(loader, source, alias=name, **vars(options))
    estimate = partial(estimate_local_model, source, options.n_ctx, options.n_parallel)
    return ServedModel(name=name, source=source, load=load, kind="local", aliases=_aliases(name, source),
                       estimate=estimate)


REMOTE_KEYS = ("engine_url", "engine_api_key")


def load_remote(urls: list[str], source: str, options: LoadOptions, alias: str, api_key: str | None) -> Any:
    """`load_remote_runtime` with a models-file table's options (engine options do not apply)."""
    from localtools.remote import load_remote_runtime
    from localtools.remote.runtime import with_auto_tools

    runtime = load_remote_runtime(
        urls, source, n_ctx=options.n_ctx, chat_template_file=options.chat_template_file, dialect=options.dialect,
        tool_prompt_file=options.tool_prompt_file, max_queue=options.max_queue, alias=alias, api_key=api_key)
    return with_auto_tools(runtime, options.auto_tools)


def remote_model(name: str, source: str, options: LoadOptions, urls: list[str], api_key: str | None) -> ServedModel:
    """A model whose tokens come from upstream engines; `source` is the GGUF (or catalog
    name) whose template and tokenizer they serve. Nothing here is loaded in-process."""
    load = partial(load_remote, urls, source, options, name, api_key)
    return ServedModel(name=name, source=source, load=load, kind="remote", aliases=_aliases(name, source))


def _remote_of(table: dict[str, Any], where: str, default_key: str | None) -> tuple[list[str], str | None] | None:
    """A table's upstreams and API key, or None for an in-process model."""
    urls = table.get("engine_url")
    if urls is None:
        if "engine_api_key" in table:
            raise ModelsFileError(f"{where}.engine_api_key needs engine_url")
        return None
    urls = [urls] if isinstance(urls, str) else urls
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u.startswith("http") for u in urls):
        raise ModelsFileError(f"{where}.engine_url must be an http(s) URL or a list of them")
    key = table.get("engine_api_key", default_key)
    if key is not None and not isinstance(key, str):
        raise ModelsFileError(f"{where}.engine_api_key must be a string")
    return urls, key or None


def _options_from_table(table: dict[str, Any], defaults: LoadOptions, where: str, base: Path) -> LoadOptions:
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key in ("model", "path", *REMOTE_KEYS):
            continue
        if key not in _KEYS:
            known = ", ".join(["model", *sorted([*_KEYS, *REMOTE_KEYS])])
            raise ModelsFileError(f"{where}: unknown key {key!r} (known: {known})")
        field_name, kind = _KEYS[key]
        if kind is None:
            if not isinstance(value, str) or not value:
                raise ModelsFileError(f"{where}.{key} must be a file path (a string)")
            value = str(base / Path(value).expanduser())
        elif not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ModelsFileError(f"{where}.{key} must be {kind.__name__}, not {type(value).__name__}")
        changes[field_name] = value
    return replace(defaults, **changes)


Entry = tuple[str, str, LoadOptions, "tuple[list[str], str | None] | None"]


def read_models_file(path: Path, defaults: LoadOptions, api_key: str | None = None) -> list[Entry]:
    """(served name, model source, options, upstreams and key or None) per `[models.NAME]`
    table, in file order."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ModelsFileError(f"cannot read models file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ModelsFileError(f"models file {path} is not valid TOML: {exc}") from None
    tables = data.get("models")
    if not isinstance(tables, dict) or not tables:
        raise ModelsFileError(f"{path}: expected one [models.NAME] table per served model")
    found = []
    for name, table in tables.items():
        where = f"{path}: models.{name}"
        if not isinstance(table, dict):
            raise ModelsFileError(f"{where} must be a table")
        source = table.get("model", table.get("path"))
        if not isinstance(source, str) or not source:
            raise ModelsFileError(f"{where} needs `model = \"PATH or catalog name\"`")
        if source.endswith(".gguf") and not Path(source).expanduser().is_absolute():
            source = str(path.parent / Path(source).expanduser())
        found.append((name, str(Path(source).expanduser()) if source.startswith("~") else source,
                      _options_from_table(table, defaults, where, path.parent), _remote_of(table, where, api_key)))
    return found


def served_models(sources: list[str], models_file: Path | None, defaults: LoadOptions,
                  loader: Callable[..., Any] | None = None, api_key: str | None = None) -> list[ServedModel]:
    """The command line's models (named by `served_name`), then the models file's
    (`api_key`: the upstreams' key for tables with `engine_url` and no key of their own)."""
    entries: list[Entry] = [(served_name(s), s, defaults, None) for s in sources]
    if models_file is not None:
        entries += read_models_file(models_file, defaults, api_key)
    seen: dict[str, str] = {}
    for name, source, _, _ in entries:
        if name in seen:
            raise ModelsFileError(
                f"two models are both served as {name!r} ({seen[name]} and {source}); "
                "name them in a --models-file"
            )
        seen[name] = source
    return [local_model(name, source, options, loader) if remote is None else remote_model(name, source, options, *remote)
            for name, source, options, remote in entries]
