"""The `localtools` command line: a thin typer layer over the library.

Each command is one small function; the work happens in runtime, api and
gguf_meta, so the CLI never knows more than how to call them and print.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from localtools import __version__

app = typer.Typer(
    name="localtools",
    help="Run local GGUF models behind an OpenAI-compatible API, tool calling included.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

MODEL_HELP = "A .gguf file, a catalog name, or REPO/FILE.gguf from the hub cache (default: the SmolLM2-135M default model)."


def _fail(message: str, code: int = 2) -> "typer.Exit":
    typer.echo(f"localtools: {message}", err=True)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"localtools {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Run local GGUF models behind an OpenAI-compatible API, tool calling included."""


# ---------------------------------------------------------------- serve


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _make_server(config: Any, runtime: Any) -> Any:
    """A uvicorn server that announces itself, cancels generations on shutdown and exits 0."""
    import uvicorn

    class LocaltoolsServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if not self.started:
                return
            host, port = config.host, config.port
            try:
                host, port = self.servers[0].sockets[0].getsockname()[:2]
            except (IndexError, AttributeError):
                pass
            print(
                f"localtools serving {runtime.name} (dialect {runtime.dialect.name}) on http://{host}:{port}/v1",
                flush=True,
            )

        async def shutdown(self, sockets: Any = None) -> None:
            # cancel in-flight generations first so open streams end at once
            await asyncio.to_thread(runtime.close)
            await super().shutdown(sockets)

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            # uvicorn re-raises the signal after shutting down; a clean stop exits 0 instead
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()

    return LocaltoolsServer(config)


@app.command()
def serve(
    model: Optional[str] = typer.Argument(None, help=MODEL_HELP, show_default=False),
    host: str = typer.Option("127.0.0.1", help="Address to bind. Keep 127.0.0.1 unless you also set --api-key."),
    port: int = typer.Option(8000, help="Port to listen on (0: any free port, printed when ready)."),
    n_ctx: int = typer.Option(4096, "--n-ctx", help="Context window in tokens (0: the model's trained length)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for generation (default: llama.cpp's choice)."),
    n_gpu_layers: int = typer.Option(0, "--n-gpu-layers", help="Layers to offload to the GPU (-1: all); needs a CUDA/Metal build."),
    seed: int = typer.Option(-1, help="Default sampling seed (-1: random)."),
    chat_template: Optional[Path] = typer.Option(None, "--chat-template", help="Jinja chat template file used instead of the GGUF's."),
    dialect: Optional[str] = typer.Option(None, help="Tool-call dialect to use instead of the detected one (see `localtools inspect`)."),
    tool_prompt: Optional[Path] = typer.Option(None, "--tool-prompt", help="Jinja file rendering `tools` into the system prompt, replacing the dialect's."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="LOCALTOOLS_API_KEY", help="Require 'Authorization: Bearer KEY' on /v1 routes."),
    max_queue: int = typer.Option(64, "--max-queue", help="Requests waiting beyond this many get HTTP 429."),
    max_body_mb: float = typer.Option(8, "--max-body-mb", help="Largest accepted request body, in MB (bigger: HTTP 413)."),
    alias: Optional[str] = typer.Option(None, help="Model name reported by the API (default: the catalog name or file stem)."),
    strict_model_name: bool = typer.Option(False, "--strict-model-name", help="Reject requests whose `model` is not this model's name (404)."),
    log_level: str = typer.Option("info", "--log-level", help="Server log level: debug, info, warning, error."),
) -> None:
    """Serve a model with the OpenAI API on http://HOST:PORT/v1 (chat, completions, models)."""
    from localtools.runtime import ModelNotFound, RuntimeLoadError, load_runtime

    _configure_logging(log_level)
    try:
        runtime = load_runtime(
            model,
            n_ctx=n_ctx,
            n_threads=threads,
            n_gpu_layers=n_gpu_layers,
            seed=seed,
            chat_template_file=chat_template,
            dialect=dialect,
            tool_prompt_file=tool_prompt,
            max_queue=max_queue,
            alias=alias,
        )
    except (ModelNotFound, RuntimeLoadError) as exc:
        raise _fail(str(exc)) from None

    import uvicorn

    from localtools.api.app import ServerSettings, create_app

    settings = ServerSettings(
        api_key=api_key or None,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        strict_model_name=strict_model_name,
    )
    config = uvicorn.Config(
        create_app(runtime, settings),
        host=host,
        port=port,
        log_level=log_level.lower() if log_level.lower() != "info" else "warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    server = _make_server(config, runtime)
    try:
        server.run()
    finally:
        runtime.close()
    if not server.started:
        raise typer.Exit(1)


# ---------------------------------------------------------------- inspect


def _inspect_data(model: str | None, chat_template: Path | None) -> dict[str, Any]:
    from localtools.runtime import FALLBACK_TEMPLATE, locate_model, pick_dialect

    where = locate_model(model)
    from localtools.gguf_meta import read_gguf_metadata, summarize

    info = dict(summarize(read_gguf_metadata(where.path), where.path))
    templates: dict[str, str] = dict(info.get("chat_templates") or {})
    template_origin = "gguf"
    if chat_template is not None:
        templates = {"file": chat_template.read_text(encoding="utf-8")}
        template_origin = str(chat_template)
    elif not templates:
        templates = {"fallback": FALLBACK_TEMPLATE.read_text(encoding="utf-8")}
        template_origin = str(FALLBACK_TEMPLATE)
    source = next((v for k, v in templates.items() if k.endswith("tool_use")), next(iter(templates.values())))
    dialect, detection = pick_dialect(source, where.dialect if chat_template is None else None, "the model catalog")
    info.update(
        model=where.name,
        path=str(where.path),
        chat_templates=templates,
        template_origin=template_origin,
        dialect=dialect.name,
        dialect_evidence=list(detection.evidence),
    )
    return info


def _print_inspect(info: dict[str, Any]) -> None:
    skip = {"chat_templates", "special_tokens", "dialect_evidence"}
    for key, value in info.items():
        if key not in skip:
            typer.echo(f"{key + ':':<18}{value}")
    evidence = ", ".join(repr(e) for e in info["dialect_evidence"]) or "(no markers: fallback)"
    typer.echo(f"{'evidence:':<18}{evidence}")
    tokens = info.get("special_tokens") or {}
    if tokens:
        typer.echo("special tokens:")
        for key, value in tokens.items():
            typer.echo(f"  {key}: {value}")
    for name, source in info["chat_templates"].items():
        lines = source.splitlines()
        typer.echo(f"chat template {name!r} ({len(source)} chars, {len(lines)} lines):")
        for line in lines[:8]:
            typer.echo(f"  | {line[:120]}")
        if len(lines) > 8:
            typer.echo("  | …")


@app.command()
def inspect(
    model: Optional[str] = typer.Argument(None, help=MODEL_HELP, show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
    chat_template: Optional[Path] = typer.Option(None, "--chat-template", help="Inspect with this template file instead of the GGUF's."),
) -> None:
    """Show a GGUF's metadata, chat templates and the tool-call dialect detected (no model load)."""
    from localtools.runtime import ModelNotFound, RuntimeLoadError

    try:
        info = _inspect_data(model, chat_template)
    except (ModelNotFound, RuntimeLoadError, OSError, ValueError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(info, indent=2, ensure_ascii=False, default=str))
    else:
        _print_inspect(info)


def main() -> None:
    """Console entry point (`localtools`, `python -m localtools`)."""
    app(prog_name="localtools")


if __name__ == "__main__":
    main()
