"""`LocalModel`: the server's engine as a Python object, OpenAI-shaped results.

    from localtools import LocalModel
    model = LocalModel()                       # the default model, or a path / catalog name
    reply = model.chat([{"role": "user", "content": "Hi"}])
    final = model.run_tools(messages, [get_weather], tool_choice="auto")
    with McpTools("mcp.json") as mcp:         # MCP servers' tools, beside Python functions
        final = model.run_tools(messages, [get_weather, mcp])
    final = model.run_tools(messages, [get_weather], mcp="mcp.json")  # servers for this call only

Same prompt building, dialects, grammars and parsers as `localtools serve`:
only the transport differs.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localtools.adapters.openai_chat import chunks_from_run, reply_from_run
from localtools.engine import SamplingParams
from localtools.runtime import ModelRuntime, load_runtime
from localtools.service import ChatOptions, start_chat
from localtools.tool_loop import Reply, ToolChoice, run_tool_loop
from localtools.toolbox import DEFAULT_MAX_OUTPUT_CHARS, Toolbox
from localtools.tools import as_tool

if TYPE_CHECKING:
    from localtools.mcp_tools import McpTools

ToolLike = Callable[..., Any] | Mapping[str, Any]


class LocalModel:
    """A loaded GGUF model you can chat with, tools included."""

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        seed: int = -1,
        chat_template: str | Path | None = None,
        dialect: str | None = None,
        tool_prompt: str | Path | None = None,
        parallel: int | None = None,
        flash_attn: bool | None = None,
    ) -> None:
        self.runtime: ModelRuntime = load_runtime(
            str(model) if model is not None else None,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            seed=seed,
            chat_template_file=chat_template,
            dialect=dialect,
            tool_prompt_file=tool_prompt,
            n_parallel=parallel,
            flash_attn=flash_attn,
        )
        self.name = self.runtime.name

    @property
    def dialect(self) -> str:
        return self.runtime.dialect.name

    # ------------------------------------------------------------------------
    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[ToolLike] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        stream: bool = False,
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: str | list[str] | None = None,
        parallel_tool_calls: bool = True,
        response_format: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any] | Iterator[dict[str, Any]]:
        """One chat completion: a `chat.completion` dict, or (stream=True) an
        iterator of `chat.completion.chunk` dicts; closing it stops generation."""
        schemas = [as_tool(t) for t in tools] if tools else None
        sampling = SamplingParams(
            max_tokens=max_tokens,
            temperature=1.0 if temperature is None else temperature,
            top_p=1.0 if top_p is None else top_p,
            seed=seed,
            stop=[stop] if isinstance(stop, str) else list(stop or []),
        )
        for key in ("top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty"):
            if key in extra:
                setattr(sampling, key, extra.pop(key))
        options = ChatOptions(
            tools=schemas,
            tool_choice=dict(tool_choice) if isinstance(tool_choice, Mapping) else tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            response_format=dict(response_format) if response_format else None,
            sampling=sampling,
            template_kwargs=dict(extra.pop("chat_template_kwargs", {}) or {}),
            stream=stream,
        )
        if extra:
            raise TypeError(f"unexpected arguments: {', '.join(sorted(extra))}")
        run = start_chat(self.runtime, [dict(m) for m in messages], options)
        if stream:
            return chunks_from_run(self.name, run, include_usage=True)
        return reply_from_run(self.name, run)

    # ------------------------------------------------------------------------
    def run_tools(
        self,
        messages: list[dict[str, Any]],
        functions: Sequence[Any],
        tool_choice: str | Mapping[str, Any] | None = "auto",
        max_rounds: int = 8,
        on_call: Callable[[str, dict[str, Any], str], None] | None = None,
        max_output_chars: int | None = DEFAULT_MAX_OUTPUT_CHARS,
        mcp: McpTools | str | Path | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Call → execute → answer until the model replies in text.

        `functions`: Python functions and `McpTools` (connected MCP servers,
        whose tools are named `server__tool`), or one `Toolbox`. `messages` is
        extended in place with the assistant turns and tool results (each cut
        to `max_output_chars`, with a note); returns the last `chat.completion`.
        A forced `tool_choice` applies to the first round only (or the model
        could never answer). `mcp`: a config file or `mcpServers` mapping whose
        servers are started for this call and stopped after it (an `McpTools`
        is used as is and left running).
        """
        from localtools.mcp_tools import McpTools as Servers  # the SDK itself loads only to connect

        if mcp is not None and not isinstance(mcp, Servers):
            with Servers(mcp) as servers:
                for line in servers.problems:  # a server that did not start: say so, go on
                    warnings.warn(line, RuntimeWarning, stacklevel=2)
                return self.run_tools(messages, [*functions, servers], tool_choice, max_rounds, on_call,
                                      max_output_chars, **kwargs)
        box = Toolbox.of([*functions, mcp] if mcp is not None else functions, max_output_chars)
        schemas = box.schemas()

        def reply(choice: ToolChoice) -> Reply:
            response = self.chat(messages, tools=schemas, tool_choice=choice, **kwargs)
            assert isinstance(response, dict)  # not streamed
            first = response["choices"][0]
            return Reply(first["message"], first["finish_reason"], response)

        def run_call(call: dict[str, Any]) -> str:
            name = call["function"]["name"]
            raw = call["function"]["arguments"]
            result = box.run(name, raw)
            if on_call:
                try:
                    args = json.loads(raw)
                except ValueError:
                    args = {}
                on_call(name, args, result)
            return result

        end = run_tool_loop(messages, reply, run_call, tool_choice, max_rounds)
        return end.last.response if end.last is not None else {}

    # ------------------------------------------------------------------------
    def close(self) -> None:
        self.runtime.close()

    def __enter__(self) -> LocalModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
