"""`localtools pull`: download a catalog model (or any REPO FILE) into the huggingface-hub cache.

huggingface-hub does the real work: cache layout, locking, progress bars, Xet, and
resuming a dropped connection with a Range request (from the last whole 10 MiB chunk,
up to 5 failures in a row without progress). Note: huggingface-hub 2.4 deletes a failed
download's partial file (its PR 4228), so a *new* pull after a failed one starts over.

This module picks repo and file from the catalog, reads the environment *at call time*
(huggingface-hub reads HF_ENDPOINT and HF_HUB_OFFLINE once, at import), and turns its
exceptions into one-line errors that say what to do.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from localtools.catalog import (
    DEFAULT_MODEL,
    CatalogEntry,
    ModelStatus,
    bundled_file,
    hub_cache_dir,
    load_catalog,
)

DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "on", "yes", "true"}


class PullError(Exception):
    """A download that could not happen; the message says why and what to do."""


def hub_endpoint() -> str:
    """`$HF_ENDPOINT` (a mirror) or the Hugging Face hub, read now."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    """`$HF_HUB_OFFLINE` (or the older `$TRANSFORMERS_OFFLINE`), read now."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in _TRUE


def _target(name_or_repo: str, filename: str | None) -> tuple[str, str, CatalogEntry | None]:
    """(repo, file, catalog entry or None) for `pull NAME`, `pull REPO/FILE.gguf` or `pull REPO FILE`."""
    catalog = load_catalog()
    if filename is not None:
        if name_or_repo.count("/") != 1 or not all(name_or_repo.split("/")):
            raise PullError(f"{name_or_repo!r} is not a repository id: expected OWNER/NAME")
        known = next((e for e in catalog.values() if (e.repo, e.file) == (name_or_repo, filename)), None)
        return name_or_repo, filename, known
    entry = catalog.get(name_or_repo)
    if entry is not None:
        if not entry.repo:
            raise PullError(f"model {entry.name!r} has no `repo` in the catalog: nothing to pull from")
        return entry.repo, entry.file, entry
    parts = name_or_repo.split("/")
    if len(parts) >= 3 and all(parts):
        return "/".join(parts[:2]), "/".join(parts[2:]), None
    names = ", ".join(sorted(catalog))
    raise PullError(
        f"unknown model {name_or_repo!r}: not in the catalog ({names}); "
        f"to pull any file, give the repository and the file: `localtools pull OWNER/REPO FILE.gguf`"
    )


def _silent_tqdm() -> type:
    from tqdm.auto import tqdm

    class SilentTqdm(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return SilentTqdm


def pull(
    name_or_repo: str,
    filename: str | None = None,
    *,
    progress: bool = True,
    revision: str | None = None,
) -> Path:
    """Download a model into the huggingface-hub cache (or find it there) and return its path.

    `name_or_repo` is a catalog name, `OWNER/REPO/FILE.gguf`, or `OWNER/REPO` with
    `filename`. A bundled model that is installed is returned as is. Respects
    HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE and HF_HOME/HF_HUB_CACHE.
    """
    repo, file, entry = _target(name_or_repo, filename)
    if entry is not None and revision is None:
        bundled = bundled_file(entry)
        if bundled is not None:
            return bundled

    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    offline = hub_offline()
    endpoint = hub_endpoint()
    where = f"{repo}/{file}"
    try:
        path = hf_hub_download(
            repo_id=repo,
            filename=file,
            revision=revision,
            cache_dir=hub_cache_dir(),
            endpoint=endpoint,
            token=os.environ.get("HF_TOKEN") or None,
            local_files_only=offline,
            tqdm_class=None if progress else _silent_tqdm(),
        )
    except hf_errors.GatedRepoError as exc:
        raise PullError(
            f"{repo} is gated: accept its terms on {endpoint}/{repo} and set HF_TOKEN to a token that may read it"
        ) from exc
    except hf_errors.RepositoryNotFoundError as exc:
        raise PullError(
            f"repository {repo} not found on {endpoint} (if it is private or gated, set HF_TOKEN)"
        ) from exc
    except hf_errors.RevisionNotFoundError as exc:
        raise PullError(f"revision {revision or 'main'} not found in {repo}") from exc
    except hf_errors.RemoteEntryNotFoundError as exc:
        raise PullError(f"file {file} not found in {repo} on {endpoint}") from exc
    except hf_errors.LocalEntryNotFoundError as exc:
        if offline:
            raise PullError(
                f"HF_HUB_OFFLINE is set and {where} is not in the cache ({hub_cache_dir()}); "
                "unset HF_HUB_OFFLINE to download it"
            ) from exc
        cause = exc.__cause__ or exc.__context__
        reason = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        raise PullError(
            f"cannot reach {endpoint}{reason} — and {where} is not in the cache; "
            "check the network (or HF_ENDPOINT), or set HF_HUB_OFFLINE=1 to use only cached files"
        ) from exc
    except hf_errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise PullError(f"download of {where} from {endpoint} failed: HTTP {status}") from exc
    except Exception as exc:  # the connection dropped for good, a size mismatch, a full disk
        raise PullError(f"download of {where} from {endpoint} failed: {type(exc).__name__}: {exc}") from exc
    return Path(path)


def human_size(size_bytes: int | None) -> str:
    """1536 → '1.5 KB' (powers of 1024, as file managers show GGUF sizes)."""
    if size_bytes is None:
        return "-"
    size = float(size_bytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def format_models_table(statuses: Sequence[ModelStatus]) -> str:
    """A plain-text table for `localtools models`: name, dialect, present, size."""
    header = ("NAME", "DIALECT", "PRESENT", "SIZE")
    rows = [
        (
            s.name + (" (default)" if s.name == DEFAULT_MODEL else ""),
            s.dialect or "auto",
            "yes" if s.present else "no",
            human_size(s.size_bytes),
        )
        for s in statuses
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)
