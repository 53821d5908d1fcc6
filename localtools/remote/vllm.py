"""vLLM's OpenAI-compatible `/v1/completions` as a token source.

Request shape from vLLM's documentation (OpenAI completions plus vLLM's extra
parameters): the rendered prompt as text with `add_special_tokens: false` (BOS is
written here when the GGUF asks for one, so the server adds nothing), special tokens
kept in the output (`skip_special_tokens: false`: tool markers such as `<tool_call>`
are special tokens in many vocabularies and the dialect parsers need them), usage in
the last chunk (`stream_options.include_usage`).

Grammars: vLLM takes a context-free grammar in `structured_outputs.grammar` (the field
that replaced `guided_grammar`, removed in v0.12). Its xgrammar backend (what `auto`
picks for grammars) reads GBNF/EBNF in llama.cpp's syntax, which is what localtools
writes, so a strict grammar goes as is. Lark text would be converted by vLLM; the
guidance backend reads Lark (llguidance), so serve with xgrammar or `auto`. vLLM has
no lazy grammar: for `tool_choice: auto` (a lazy grammar) the request goes without
one and the dialect parser reads the free text, as for a dialect with no grammar.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from localtools.engine import SamplingParams
from localtools.remote.wire import StreamEnd, UpstreamFailed, reply_error, sse_data


def request_body(model: str, prompt: str | list[int], params: SamplingParams, max_tokens: int) -> dict[str, Any]:
    """The /v1/completions body for one generation (`prompt`: text with its BOS, if any, or
    token ids as they are, e.g. a fill-in-the-middle prompt)."""
    body: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "min_p": params.min_p,
        "repetition_penalty": params.repeat_penalty,
        "presence_penalty": params.presence_penalty,
        "frequency_penalty": params.frequency_penalty,
        "stop": list(params.stop),
        "add_special_tokens": False,
        "skip_special_tokens": False,
        "spaces_between_special_tokens": False,
    }
    if params.top_k > 0:  # unset: vLLM's default, no top-k (its "off" value changed across versions)
        body["top_k"] = params.top_k
    if params.seed is not None:
        body["seed"] = params.seed
    grammar = params.grammar
    if grammar is not None and not grammar.lazy:
        body["structured_outputs"] = {"grammar": grammar.gbnf}
    return body


def _usage(end: StreamEnd, usage: dict[str, Any]) -> None:
    end.prompt_tokens = usage.get("prompt_tokens")
    end.completion_tokens = usage.get("completion_tokens")
    details = usage.get("prompt_tokens_details") or {}
    if details.get("cached_tokens") is not None:
        end.cached_tokens = int(details["cached_tokens"])


def stream(client: httpx.Client, url: str, body: dict[str, Any], prompt_tokens: int, n_ctx: int,
           end: list[StreamEnd]) -> Iterator[str]:
    """Text pieces of one streamed completion; its StreamEnd is appended to `end`
    (errors as `llama_server.stream`)."""
    result = StreamEnd()
    finished = False
    try:
        with client.stream("POST", url + "/v1/completions", json=body) as response:
            if response.status_code != 200:
                raise reply_error(response.status_code, response.read().decode("utf-8", "replace"),
                                  prompt_tokens, n_ctx)
            for event in sse_data(response):
                if "error" in event:
                    raise UpstreamFailed(f"upstream error: {str(event['error'])[:300]}")
                if event.get("usage"):
                    _usage(result, event["usage"])
                for choice in event.get("choices") or []:
                    text = choice.get("text") or ""
                    if text:
                        yield text
                    if choice.get("finish_reason"):
                        finished = True
                        result.finish_reason = "length" if choice["finish_reason"] == "length" else "stop"
    except httpx.HTTPError as exc:
        raise UpstreamFailed(f"{type(exc).__name__}: {exc}") from None
    if not finished:
        raise UpstreamFailed("the stream ended without a finish_reason")
    end.append(result)
