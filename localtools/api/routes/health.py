"""GET /health (liveness, slots and queue for probes) and GET /metrics (Prometheus text
format), neither needing an API key."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from localtools.api.errors import json_errors
from localtools.api.routing import loaded_runtimes, pool_of

# name -> (Prometheus type, help text, key in Scheduler.stats())
METRICS = {
    "localtools_slots_total": ("gauge", "Sequence slots (requests decoded together).", "slots_total"),
    "localtools_slots_busy": ("gauge", "Slots running a generation now.", "slots_busy"),
    "localtools_queue_depth": ("gauge", "Requests waiting for a slot.", "queue_depth"),
    "localtools_tokens_per_second": ("gauge", "Generated tokens per second, last 10 s.", "tokens_per_second"),
    "localtools_generated_tokens_total": ("counter", "Tokens generated.", "tokens_generated_total"),
    "localtools_prompt_tokens_reused_total": (
        "counter", "Prompt tokens taken from the KV cache instead of evaluated.", "prompt_tokens_reused_total"),
    "localtools_prompt_prefixes_copied_total": (
        "counter", "Prompts that started from another slot's KV cache.", "prompt_prefixes_copied_total"),
    "localtools_decode_threads": (
        "gauge", "CPU threads for one-token steps now (the governor may use one).", "decode_threads"),
    "localtools_batch_threads": (
        "gauge", "CPU threads for prompt chunks and batched steps now (the governor may use one).", "batch_threads"),
    "localtools_requests_total": ("counter", "Generations submitted.", "requests_total"),
}


def scheduler_stats(scheduler: Any) -> dict[str, float]:
    """The scheduler's numbers; queue depth only for one without `stats()` (a remote engine)."""
    stats = getattr(scheduler, "stats", None)
    if callable(stats):
        return dict(stats())
    return {"queue_depth": scheduler.queue_depth(), "slots_busy": int(bool(scheduler.busy))}


def served_stats(request: Request) -> list[tuple[str, dict[str, float]]]:
    """(model name, its scheduler's numbers) for each loaded model."""
    pool = pool_of(request)
    if pool is not None:
        return [(runtime.name, scheduler_stats(runtime.scheduler)) for runtime in loaded_runtimes(pool)]
    state = request.app.state
    return [(state.runtime.name, scheduler_stats(state.scheduler))]


async def health(request: Request) -> Response:
    served = served_stats(request)
    counts: dict[str, Any] = {"queue": sum(stats.get("queue_depth", 0) for _, stats in served)}
    for key in ("slots_busy", "slots_total"):
        values = [stats[key] for _, stats in served if key in stats]
        if values:
            counts[key] = sum(values)
    pool = pool_of(request)
    if pool is not None:  # the default model's name; queue and slots: every loaded model's together
        return JSONResponse({"status": "ok", "model": pool.default.name, **counts,
                             "models": {row["name"]: row["state"] for row in pool.status()}})
    return JSONResponse({"status": "ok", "model": request.app.state.runtime.name, **counts})


def _label(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def metrics(request: Request) -> Response:
    served = served_stats(request)
    lines = []
    for metric, (kind, text, key) in METRICS.items():
        samples = [f'{metric}{{model="{_label(name)}"}} {stats[key]}' for name, stats in served if key in stats]
        if samples:
            lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}", *samples]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


routes = [
    Route("/health", json_errors(health), methods=["GET"]),
    Route("/metrics", json_errors(metrics), methods=["GET"]),
]
