"""The `localtools` command line: a thin typer layer over the library.

Each command is one small function; the work happens in runtime, api and
gguf_meta, so the CLI never knows more than how to call them and print.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

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


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"localtools: {message}", err=True)
    return typer.Exit(code)


def _on_off_auto(flag: str, value: str) -> bool | None:
    """`auto`/`on`/`off` as None/True/False, or a usage error naming `flag`."""
    choices = {"auto": None, "on": True, "off": False}
    if value.lower() not in choices:
        raise _fail(f"{flag} takes auto, on or off, not {value!r}")
    return choices[value.lower()]


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


def _make_server(config: Any, runtime: Any, announce: str | None = None) -> Any:
    """A uvicorn server that announces itself, cancels generations on shutdown and exits 0.

    `runtime` is anything with `close()` (a model, or a pool of them); `announce`
    replaces the "NAME (dialect D)" part of the ready line."""
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
            what = announce or f"{runtime.name} (dialect {runtime.dialect.name})"
            print(f"localtools serving {what} on http://{host}:{port}/v1", flush=True)

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


def _remote_loader(urls: list[str], chat_template_from: str | None, api_key: str | None = None) -> Any:
    """`load_runtime`'s signature over upstream engines (the engine options do not apply)."""
    from localtools.remote import load_remote_runtime
    from localtools.remote.runtime import with_auto_tools

    def load(model: str | None, *, n_ctx: int | None = None, n_threads: int | None = None,
             n_gpu_layers: int = 0, seed: int = -1, n_parallel: int | None = None,
             auto_tools: str | None = None, flash_attn: bool | None = None, **options: Any) -> Any:
        return with_auto_tools(load_remote_runtime(urls, chat_template_from or model, api_key=api_key, **options),
                               auto_tools)

    return load


@app.command()
def serve(
    model: list[str] | None = typer.Argument(
        None, help=MODEL_HELP + " Several: one server for all of them, routed by each request's `model`.",
        show_default=False),
    host: str = typer.Option("127.0.0.1", help="Address to bind. Keep 127.0.0.1 unless you also set --api-key."),
    port: int = typer.Option(8000, help="Port to listen on (0: any free port, printed when ready)."),
    n_ctx: int = typer.Option(4096, "--n-ctx", help="Context window in tokens (0: the model's trained length)."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for generation (default: one per physical core)."),
    n_gpu_layers: int = typer.Option(0, "--n-gpu-layers", help="Layers to offload to the GPU (-1: all); needs a CUDA/Metal build."),
    seed: int = typer.Option(-1, help="Default sampling seed (-1: random)."),
    chat_template: Path | None = typer.Option(None, "--chat-template", help="Jinja chat template file used instead of the GGUF's."),
    dialect: str | None = typer.Option(None, help="Tool-call dialect to use instead of the detected one (see `localtools inspect`)."),
    tool_prompt: Path | None = typer.Option(None, "--tool-prompt", help="Jinja file rendering `tools` into the system prompt, replacing the dialect's."),
    auto_tools: str | None = typer.Option(None, "--auto-tools", help="tool_choice auto: 'decide' (first tokens choose call or text; untrained models) or 'native'. Default: models.toml, else the dialect's."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="LOCALTOOLS_API_KEY", help="Require 'Authorization: Bearer KEY' on /v1 routes."),
    max_queue: int = typer.Option(64, "--max-queue", help="Requests waiting beyond this many get HTTP 429."),
    parallel: int | None = typer.Option(None, "--parallel", min=1, help="Requests decoded together, each in its own n_ctx slot (default: models.toml's `parallel`, else 4)."),
    flash_attn: str = typer.Option("auto", "--flash-attn", help="Flash attention: auto (on for the CPU, as llama-server; llama.cpp's choice with --n-gpu-layers), on, or off. Off decodes ~10% slower on a CPU, but temperature-0 replies are then bitwise the same alone or beside others at any length (on: up to 256 tokens of context)."),
    max_body_mb: float = typer.Option(8, "--max-body-mb", help="Largest accepted request body, in MB (bigger: HTTP 413)."),
    alias: str | None = typer.Option(None, help="Model name reported by the API (default: the catalog name or file stem)."),
    strict_model_name: bool = typer.Option(False, "--strict-model-name", help="Reject requests whose `model` is not this model's name (404)."),
    log_level: str = typer.Option("info", "--log-level", help="Server log level: debug, info, warning, error."),
    cors_origin: list[str] = typer.Option([], "--cors-origin", help="Let browser pages from this origin (scheme://host[:port], or * for any) call the API; repeatable. Default: no CORS."),
    models_file: Path | None = typer.Option(None, "--models-file", help="TOML file with one models.NAME table per served model (model = PATH or catalog name, n_ctx, dialect...)."),
    idle_unload: float | None = typer.Option(None, "--idle-unload", help="Several models: unload a model idle for this many SECONDS (it reloads on its next request)."),
    max_loaded: int | None = typer.Option(None, "--max-loaded", help="Several models: keep at most N loaded; the least recently used idle one is unloaded to make room."),
    max_memory: str | None = typer.Option(None, "--max-memory", help="Several models: keep the loaded ones within this much memory (e.g. 8GiB, 800MB; estimated as file + KV cache), unloading the least recently used idle ones."),
    engine_url: list[str] | None = typer.Option(None, "--engine-url", help="Get tokens from this llama-server or vLLM instead of in-process (repeat for a pool; --n-ctx then comes from them). Needs --chat-template-from."),
    chat_template_from: str | None = typer.Option(None, "--chat-template-from", help="With --engine-url: the GGUF (or catalog name) whose template and tokenizer the engines serve."),
    engine_api_key: str | None = typer.Option(None, "--engine-api-key", envvar="LOCALTOOLS_ENGINE_API_KEY", show_envvar=True, help="With --engine-url: the upstreams' API key (llama-server --api-key, vLLM --api-key), sent as a bearer token; never logged."),
) -> None:
    """Serve a model with the OpenAI API on http://HOST:PORT/v1 (chat, completions, embeddings, models).

    With several models (or --models-file, --idle-unload, --max-loaded, --max-memory) nothing loads at
    start: each model loads on its first request, and a request naming no model goes to
    the first one."""
    from localtools.api.app import ServerSettings
    from localtools.api.cors import check_origins
    from localtools.runtime import ModelNotFound, RuntimeLoadError, load_runtime

    _configure_logging(log_level)
    if engine_api_key and not (engine_url or models_file) and os.environ.get("LOCALTOOLS_ENGINE_API_KEY") != engine_api_key:
        raise _fail("--engine-api-key is for the upstreams of --engine-url or of models-file engine_url tables")
    load = _remote_loader(engine_url, chat_template_from, engine_api_key or None) if engine_url else load_runtime
    try:
        cors_origins = check_origins(cors_origin)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    settings = ServerSettings(api_key=api_key or None, max_body_bytes=int(max_body_mb * 1024 * 1024),
                              strict_model_name=strict_model_name, cors_origins=cors_origins)
    sources = list(model or [])
    options: dict[str, Any] = dict(
        n_ctx=n_ctx, n_threads=threads, n_gpu_layers=n_gpu_layers, seed=seed,
        chat_template_file=str(chat_template) if chat_template else None, dialect=dialect,
        tool_prompt_file=str(tool_prompt) if tool_prompt else None, max_queue=max_queue,
        n_parallel=parallel, auto_tools=auto_tools, flash_attn=_on_off_auto("--flash-attn", flash_attn),
    )
    if len(sources) > 1 or models_file or idle_unload or max_loaded or max_memory:
        if engine_url:
            raise _fail("--engine-url serves one model; for several, give each models-file table its own "
                        "engine_url (and chat template through its model key)")
        if alias:
            raise _fail("--alias names one model; name several in a --models-file")
        pool = _model_pool(sources, models_file, options, max_loaded, idle_unload, max_memory, engine_api_key)
        _run_server(pool, settings, host, port, log_level)
        return
    try:
        runtime = load(sources[0] if sources else None, alias=alias, **options)
    except (ModelNotFound, RuntimeLoadError) as exc:
        raise _fail(str(exc)) from None
    _run_server(runtime, settings, host, port, log_level)


def _model_pool(sources: list[str], models_file: Path | None, options: dict[str, Any], max_loaded: int | None,
                idle_unload: float | None, max_memory: str | None, engine_api_key: str | None) -> Any:
    """The ModelPool of a several-model `serve` (exits with the reason when the
    command line or the models file cannot be served as given)."""
    from localtools.registry.launch import LoadOptions, build_pool
    from localtools.registry.memory import parse_size

    try:
        budget = parse_size(max_memory) if max_memory else None
        return build_pool(sources, models_file, LoadOptions(**options), max_loaded, idle_unload, budget,
                          engine_api_key or None)
    except ValueError as exc:
        raise _fail(str(exc)) from None


def _run_server(runtime: Any, settings: Any, host: str, port: int, log_level: str) -> None:
    """Serve `runtime` (one model, or a ModelPool) until a signal stops the server."""
    import uvicorn

    from localtools.api.app import create_app
    from localtools.registry import ModelPool

    config = uvicorn.Config(
        create_app(runtime, settings),
        host=host,
        port=port,
        log_level=log_level.lower() if log_level.lower() != "info" else "warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    announce = None
    if isinstance(runtime, ModelPool):
        names = ", ".join(runtime.slots)
        announce = f"{len(runtime.slots)} models ({names}; loaded on first request, default {runtime.default.name})"
    server = _make_server(config, runtime, announce)
    try:
        server.run()
    finally:
        runtime.close()
    if not server.started:
        raise typer.Exit(1)


# ---------------------------------------------------------------- inspect


def _dialect_report(choice: Any) -> dict[str, Any]:
    """Dialect, how it was chosen, its evidence and its markers (from resolve_model's choice)."""
    resolution = choice.resolution
    report: dict[str, Any] = {
        "dialect": resolution.dialect.name,
        "dialect_source": resolution.source,
        "dialect_evidence": list(resolution.evidence),
        "auto_tools": f"{choice.auto_tools} (set by {choice.auto_tools_set_by})",
    }
    dialect_spec = getattr(resolution.dialect, "spec", None)
    if dialect_spec is not None:
        report["dialect_spec"] = dialect_spec.to_dict()
    if choice.refusal is not None:
        report["warning"] = f"serve refuses this template: {choice.refusal}"
    elif resolution.unrecognised:
        report["warning"] = (
            "the template renders tool calls in a syntax localtools does not recognise; "
            "tools will be explained in the system prompt (generic fallback). Pin a dialect with "
            "--dialect or a dialect_spec in models.toml."
        )
    if resolution.analysis is not None and resolution.analysis.notes:
        report["analysis_notes"] = list(resolution.analysis.notes)
    return report


def _shown_templates(choice: Any) -> dict[str, str]:
    """The chosen templates, labelled as inspect always has: a file's as "file", the fallback's as "fallback"."""
    from localtools.resolution import FALLBACK_TEMPLATE

    if choice.template_origin == "gguf":
        return dict(choice.templates)
    label = "fallback" if choice.template_origin == str(FALLBACK_TEMPLATE) and choice.location else "file"
    return {label: choice.templates["default"]}


def _inspect_data(
    model: str | None, chat_template: Path | None, template_only: Path | None, dialect: str | None = None
) -> dict[str, Any]:
    """What `serve` would use for this model (or bare template), plus the GGUF's metadata."""
    from localtools.resolution import resolve_model

    choice = resolve_model(model, chat_template_file=chat_template, dialect=dialect, bare_template=template_only)
    if choice.location is None:
        info: dict[str, Any] = {"template": str(template_only), "chat_templates": _shown_templates(choice)}
        info.update(_dialect_report(choice))
        return info
    from localtools.gguf_meta import read_gguf_metadata, summarize

    where = choice.location
    info = dict(summarize(read_gguf_metadata(where.path), where.path))
    info.update(model=where.name, path=str(where.path), chat_templates=_shown_templates(choice),
                template_origin=choice.template_origin)
    info.update(_dialect_report(choice))
    return info


def _print_inspect(info: dict[str, Any]) -> None:
    skip = {"chat_templates", "special_tokens", "dialect_evidence", "dialect_spec", "analysis_notes", "warning"}
    for key, value in info.items():
        if key not in skip:
            typer.echo(f"{key + ':':<18}{value}")
    evidence = info["dialect_evidence"]
    typer.echo(f"{'evidence:':<18}" + ("" if evidence else "(no markers: fallback)"))
    for item in evidence:
        typer.echo(f"  {item}" if isinstance(item, str) and ":" in item else f"  {item!r}")
    spec = info.get("dialect_spec")
    if spec:
        typer.echo("dialect markers:")
        for key, value in spec.items():
            if key != "name":
                typer.echo(f"  {key}: {value!r}")
    for note in info.get("analysis_notes", []):
        typer.echo(f"{'analysis:':<18}{note}")
    if info.get("warning"):
        typer.echo(f"{'WARNING:':<18}{info['warning']}")
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
    model: str | None = typer.Argument(None, help=MODEL_HELP, show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
    chat_template: Path | None = typer.Option(None, "--chat-template", help="Inspect the model with this template file instead of the GGUF's."),
    template: Path | None = typer.Option(None, "--template", help="Inspect a bare chat template file (no model)."),
    dialect: str | None = typer.Option(None, help="Tool-call dialect instead of the detected one (as serve --dialect)."),
    dialect_out: Path | None = typer.Option(
        None, "--dialect-out", help="Write the dialect's description (TOML for models.toml, or .json) to review and pin."
    ),
) -> None:
    """Show a GGUF's metadata, chat templates and tool-call dialect (markers, and whether a module, analysis or the fallback chose it)."""
    from localtools.runtime import ModelNotFound, RuntimeLoadError

    try:
        info = _inspect_data(model, chat_template, template, dialect)
    except (ModelNotFound, RuntimeLoadError, OSError, ValueError, KeyError) as exc:
        raise _fail(str(exc)) from None
    if dialect_out is not None:
        from localtools.dialects.spec import DialectSpec
        from localtools.dialects.spec_io import write_spec

        if not info.get("dialect_spec"):
            raise _fail(f"dialect {info['dialect']!r} is hand-written code, not a spec; nothing to write")
        write_spec(DialectSpec.from_dict(info["dialect_spec"]), str(dialect_out), info.get("model", "MODEL"))
        typer.echo(f"wrote the {info['dialect']} dialect description to {dialect_out}", err=True)
    if as_json:
        typer.echo(json.dumps(info, indent=2, ensure_ascii=False, default=str))
    else:
        _print_inspect(info)


# ---------------------------------------------------------------- chat


@app.command()
def chat(
    model: str | None = typer.Argument(None, help=MODEL_HELP, show_default=False),
    url: str | None = typer.Option(None, "--url", help="Chat with a running server (e.g. http://127.0.0.1:8000/v1) instead of loading the model here."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="LOCALTOOLS_API_KEY", help="API key for --url."),
    system: str | None = typer.Option(None, "--system", help="System prompt."),
    tools: list[Path] = typer.Option([], "--tools", help="A .py file whose public functions become tools (repeatable)."),
    builtin_tools: bool = typer.Option(False, "--builtin-tools", help="Offer the built-in tools: date/time and a calculator."),
    files_root: Path | None = typer.Option(None, "--files", help="Also offer list_files/read_file, confined to this directory."),
    tool_choice: str | None = typer.Option(None, "--tool-choice", help="auto, required, none, or a tool name (first step of each turn)."),
    temperature: float | None = typer.Option(None, "--temperature", help="Sampling temperature."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Longest reply, in tokens."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Run tool calls without asking."),
    mcp: list[Path] = typer.Option([], "--mcp", metavar="FILE", help="An MCP config file ({\"mcpServers\": {NAME: {\"command\", \"args\", \"env\"} or {\"url\", \"headers\"}}}): its servers' tools are offered as NAME__TOOL (repeatable; added to the default file, see --no-default-mcp)."),
    no_default_mcp: bool = typer.Option(False, "--no-default-mcp", help="Ignore the default MCP config ($XDG_CONFIG_HOME/localtools/mcp.json, ~/.config/localtools/mcp.json without it)."),
    max_tool_output: int = typer.Option(8000, "--max-tool-output", min=1, help="Longest tool result the model reads, in characters (longer ones are cut, with a note)."),
    dialect: str | None = typer.Option(None, help="Tool-call dialect instead of the detected one."),
    chat_template: Path | None = typer.Option(None, "--chat-template", help="Jinja chat template file used instead of the GGUF's."),
    n_ctx: int = typer.Option(4096, "--n-ctx", help="Context window in tokens."),
    n_gpu_layers: int = typer.Option(0, "--n-gpu-layers", help="Layers to offload to the GPU (-1: all)."),
) -> None:
    """Talk to a model in the terminal; it can call your Python functions and MCP servers' tools."""
    from localtools.chat.app import ChatApp, ChatSettings
    from localtools.chat.backends import HttpBackend, LocalBackend, ServerError
    from localtools.chat.builtin_tools import calculate, current_datetime, make_file_tools
    from localtools.chat.line_editing import enable_line_editing
    from localtools.chat.mcp_setup import start_mcp_servers
    from localtools.mcp_tools import load_configs
    from localtools.toolbox import Toolbox
    from localtools.tools import ToolFileError, ToolSchemaError, function_to_tool, tools_from_file

    functions: list[Any] = []
    try:
        for path in tools:
            functions += tools_from_file(path)
        if builtin_tools:
            functions += [current_datetime, calculate]
        if files_root is not None:
            functions += make_file_tools(files_root)
        for fn in functions:
            function_to_tool(fn)
        mcp_configs = load_configs(mcp, use_default=not no_default_mcp)  # before the slow model load
    except (ToolFileError, ToolSchemaError, OSError, ValueError) as exc:
        raise _fail(str(exc)) from None
    choice: Any = tool_choice
    if tool_choice and tool_choice not in ("auto", "required", "none"):
        choice = {"type": "function", "function": {"name": tool_choice}}

    if url:
        try:
            backend: Any = HttpBackend(url, api_key=api_key, model=model)
        except ServerError as exc:
            raise _fail(str(exc)) from None
    else:
        from localtools.local_model import LocalModel
        from localtools.runtime import ModelNotFound, RuntimeLoadError

        typer.echo("loading model…", err=True)
        try:
            local = LocalModel(model, n_ctx=n_ctx, n_gpu_layers=n_gpu_layers, chat_template=chat_template, dialect=dialect)
        except (ModelNotFound, RuntimeLoadError) as exc:
            raise _fail(str(exc)) from None
        backend = LocalBackend(local)
    names = [function_to_tool(fn)["function"]["name"] for fn in functions]
    servers = start_mcp_servers(mcp_configs, names, lambda line: typer.echo(line, err=True))
    try:
        toolbox = Toolbox(functions, servers, max_output_chars=max_tool_output)
        enable_line_editing()
        settings = ChatSettings(system=system, tool_choice=choice, temperature=temperature, max_tokens=max_tokens, auto_yes=yes)
        code = ChatApp(backend, functions, settings, toolbox=toolbox).run()
    finally:
        if servers is not None:
            servers.close()
    raise typer.Exit(code)


# ---------------------------------------------------------------- catalog


@app.command()
def pull(
    name: str = typer.Argument(..., help="A catalog name (see `localtools models`) or a Hugging Face repo id."),
    filename: str | None = typer.Argument(None, help="The .gguf file in the repo (when NAME is a repo id)."),
    revision: str | None = typer.Option(None, help="Branch, tag or commit of the repo."),
) -> None:
    """Download a model into the Hugging Face cache (resumes; honours HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE)."""
    from localtools.hub import PullError
    from localtools.hub import pull as hub_pull

    try:
        path = hub_pull(name, filename, progress=True, revision=revision)
    except PullError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{path}")
    typer.echo(f"ready: localtools serve {name if filename is None else path}", err=True)


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the model catalog (models.toml) and which models are on this machine."""
    from localtools.catalog import CatalogError, list_models
    from localtools.hub import format_models_table

    try:
        statuses = list_models()
    except CatalogError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps([s.__dict__ for s in statuses], indent=2, default=str))
    else:
        typer.echo(format_models_table(statuses))


# ---------------------------------------------------------------- ps


@app.command()
def ps(
    url: str = typer.Option("http://127.0.0.1:8000", "--url", help="The running server (http://HOST:PORT, with or without /v1)."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="LOCALTOOLS_API_KEY", help="The server's --api-key, if it has one."),
    as_json: bool = typer.Option(False, "--json", help="Print the server's model list as JSON."),
) -> None:
    """Show what a running `localtools serve` serves: each model's state (loaded, unloaded,
    loading, failed), requests in flight and idle time (from its GET /v1/models)."""
    from localtools.registry.ps import ServerUnreachable, fetch_models, format_ps, ps_rows

    try:
        cards = fetch_models(url, api_key)
    except ServerUnreachable as exc:
        raise _fail(str(exc), code=1) from None
    typer.echo(json.dumps(cards, indent=2) if as_json else format_ps(ps_rows(cards)))


# ---------------------------------------------------------------- bench


@app.command()
def bench(
    model: str | None = typer.Argument(None, help=MODEL_HELP, show_default=False),
    quick: bool = typer.Option(False, "--quick", help="Fewer repeats and shorter outputs."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for both sides (default: one per physical core)."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Tokens generated per decode run."),
    repeats: int | None = typer.Option(None, "--repeats", help="Interleaved runs per side (medians are reported)."),
) -> None:
    """Measure localtools against raw llama-cpp-python on one model (overhead, prefix reuse, grammar, parser, RSS).

    Runs scripts/bench.py of the source checkout this package is in.
    """
    import subprocess

    script = bench_script()
    if script is None:
        typer.echo("localtools bench: the benchmark ships with the source checkout (scripts/bench.py), "
                   "not with an installed package", err=True)
        raise typer.Exit(2)
    argv = [model] if model else []
    argv += ["--quick"] if quick else []
    argv += ["--json"] if as_json else []
    for flag, value in (("--threads", threads), ("--max-tokens", max_tokens), ("--repeats", repeats)):
        if value is not None:
            argv += [flag, str(value)]
    raise typer.Exit(subprocess.call([sys.executable, str(script), *argv]))


def bench_script() -> Path | None:
    """scripts/bench.py beside this package in a source checkout (None: an installed wheel)."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"
    return script if script.is_file() else None


def main() -> None:
    """Console entry point (`localtools`, `python -m localtools`)."""
    app(prog_name="localtools")


if __name__ == "__main__":
    main()
