"""`localtools ps`: what a running server has loaded, read from its `GET /v1/models`."""

from __future__ import annotations

from typing import Any

import httpx


class ServerUnreachable(RuntimeError):
    """The server did not answer, or answered with an error."""


def fetch_models(url: str, api_key: str | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The server's model cards; `url` is its base (http://HOST:PORT, with or without /v1)."""
    base = url.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        reply = httpx.get(f"{base}/models", headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ServerUnreachable(f"cannot reach {base}/models: {exc}") from None
    if reply.status_code != 200:
        try:
            message = reply.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = reply.text[:200]
        raise ServerUnreachable(f"{base}/models answered {reply.status_code}: {message}")
    data = reply.json().get("data")
    if not isinstance(data, list):
        raise ServerUnreachable(f"{base}/models did not answer with a model list")
    return data


def ps_rows(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model: name, state, requests in flight, idle time, dialect, file or source.

    A single-model server's card has no state: its model is loaded for the server's life."""
    rows = []
    for card in cards:
        meta = card.get("meta") or {}
        rows.append({
            "name": card.get("id", "?"),
            "state": meta.get("state", "loaded"),
            "in_flight": meta.get("in_flight", ""),
            "idle_s": meta.get("idle_s"),
            "memory": meta.get("memory_estimate"),
            "dialect": meta.get("dialect", ""),
            "model": meta.get("file") or meta.get("source") or "",
            "error": meta.get("error"),
        })
    return rows


def format_ps(rows: list[dict[str, Any]]) -> str:
    """A table for the terminal; a failed model's reason on the line below it."""
    from localtools.registry.memory import format_size

    header = ("NAME", "STATE", "IN FLIGHT", "IDLE", "MEMORY", "DIALECT", "MODEL")
    cells = [header] + [
        (r["name"], r["state"], str(r["in_flight"]), "" if r["idle_s"] is None else f"{r['idle_s']:.0f}s",
         "" if not r.get("memory") else f"~{format_size(r['memory'])}", r["dialect"], r["model"])
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        error = rows[index - 1]["error"] if index else None
        if error:
            lines.append(f"  error: {error}")
    return "\n".join(lines)
