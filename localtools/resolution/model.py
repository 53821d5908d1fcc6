"""The one decision of what a model is served with: file, chat templates, dialect.

`serve` and `chat` (through `runtime.load_runtime`), `LocalModel` (the same)
and `inspect` all call `resolve_model`, so `inspect` reports exactly the
template and dialect that `serve` uses, with the reasons.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localtools.default_model import HOW_TO_GET, default_model_path
from localtools.dialects.base import Detection, Dialect
from localtools.dialects.decide import AUTO_TOOLS_MODES
from localtools.resolution.dialect import Resolution, resolve_dialect
from localtools.resolution.templates import (
    ModelNotFound,
    RuntimeLoadError,
    choose_templates,
    template_refusal,
    tool_template_key,
)


@dataclass
class ModelLocation:
    """Where a model file is and what is known about it before loading."""

    path: Path
    name: str
    dialect: str | None = None
    chat_template_file: Path | None = None
    n_ctx: int | None = None
    parallel: int | None = None  # sequence slots pinned in models.toml (`parallel = N`)
    dialect_spec: dict[str, Any] | None = None  # a declarative dialect pinned in models.toml
    response_schema: dict[str, Any] | None = None  # or a transformers-style response_schema
    auto_tools: str | None = None  # models.toml `auto_tools`: "decide" | "native"


@dataclass
class ModelChoice:
    """What a model is served with, and why (the evidence `inspect` prints)."""

    location: ModelLocation | None  # None for a bare template (inspect --template)
    templates: dict[str, str]  # "default" (+ "tool_use", other named variants): template sources
    template_origin: str  # "gguf", the template file's path, or the bundled fallback's
    tool_template: str  # the key of `templates` whose source chose the dialect
    resolution: Resolution  # the dialect, how it was chosen (source) and the evidence
    dialect_set_by: str  # "--dialect" or "the model catalog": whose pin applied, if any
    refusal: str | None = None  # why serve refuses the template (then no analysis ran)
    auto_tools: str = "native"  # `auto` mode: "decide" (call or text at the first tokens) | "native"
    auto_tools_set_by: str = "the dialect"  # "--auto-tools", "the model catalog" or "the dialect"

    @property
    def dialect(self) -> Dialect:
        return self.resolution.dialect

    @property
    def detection(self) -> Detection:
        return self.resolution.detection


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
            raise ModelNotFound(HOW_TO_GET if model is None else str(exc)) from None
        except catalog.CatalogError as exc:
            raise RuntimeLoadError(f"model catalog: {exc}") from None
        extra = getattr(found.entry, "extra", None) or {}
        spec = extra.get("dialect_spec")
        return ModelLocation(
            path=Path(found.path),
            name=found.name,
            dialect=found.dialect,
            chat_template_file=found.chat_template_file,
            n_ctx=found.n_ctx,
            parallel=extra.get("parallel"),
            dialect_spec=spec if isinstance(spec, dict) else None,
            response_schema=_response_schema(extra),
            auto_tools=_auto_tools(extra.get("auto_tools"), "models.toml auto_tools"),
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
        try:
            schema = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RuntimeLoadError(f"cannot read response_schema_file {path}: {exc}") from None
    return schema if isinstance(schema, dict) else None


def _auto_tools(value: Any, where: str) -> str | None:
    """A checked `auto_tools` setting (None: not set)."""
    if value is None:
        return None
    if value not in AUTO_TOOLS_MODES:
        raise RuntimeLoadError(f"{where} must be one of {', '.join(AUTO_TOOLS_MODES)}, not {value!r}")
    return str(value)


def _auto_tools_choice(forced: str | None, where: ModelLocation | None, dialect: Dialect) -> tuple[str, str]:
    """`auto` mode and who set it: --auto-tools, else models.toml, else the dialect's default."""
    if _auto_tools(forced, "--auto-tools"):
        return str(forced), "--auto-tools"
    if where is not None and where.auto_tools:
        return where.auto_tools, "the model catalog"
    return dialect.auto_tools_default, "the dialect"


def resolve_model(
    model: str | None = None,
    *,
    chat_template_file: str | Path | None = None,
    dialect: str | None = None,
    bare_template: str | Path | None = None,
    auto_tools: str | None = None,
) -> ModelChoice:
    """Model file, chat templates and dialect for `model` (a path, catalog name, or None: the default).

    Templates: `chat_template_file`, else models.toml `chat_template`, else the GGUF's own,
    else the bundled fallback; the `tool_use` variant, when there is one, chooses the dialect.
    Dialect: `dialect` (--dialect), else models.toml `dialect` / `dialect_spec` /
    `response_schema` (only with the catalog's own template), else detection, analysis,
    fallback. `bare_template`: a template file with no model (inspect --template).
    `auto_tools` (--auto-tools), else models.toml `auto_tools`, else the dialect's default.
    Raises ModelNotFound / RuntimeLoadError.
    """
    where = None if bare_template is not None else locate_model(model)
    explicit = bare_template if bare_template is not None else chat_template_file
    template_file = Path(explicit) if explicit else (where.chat_template_file if where else None)
    templates, origin = choose_templates(where.path if where else None, template_file)
    refusal = template_refusal(templates, origin)
    key = tool_template_key(templates)
    # the catalog's dialect goes with the catalog's template, not a user's --chat-template
    pins = where if where is not None and not dialect and explicit is None else None
    how = "--dialect" if dialect or pins is None else "the model catalog"
    try:
        resolution = resolve_dialect(
            templates[key],
            dialect or (pins.dialect if pins else None),
            how,
            pins.dialect_spec if pins else None,
            analyse=refusal is None,
            response_schema=pins.response_schema if pins else None,
        )
    except KeyError as exc:
        raise RuntimeLoadError(f"{exc.args[0]} (from {how})") from None
    except ValueError as exc:
        raise RuntimeLoadError(f"invalid dialect description (dialect_spec / response_schema, from {how}): {exc}") from None
    mode, set_by = _auto_tools_choice(auto_tools, where, resolution.dialect)
    return ModelChoice(where, templates, origin, key, resolution, how, refusal, mode, set_by)
