"""How many tokens a chat-completions request's prompt is (Anthropic's count_tokens).

The prompt is rendered exactly as a generation would render it (template,
injected tool prompt and all), then tokenized; nothing is generated.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread

from localtools.adapters.errors import bad_request
from localtools.adapters.openai_chat import chat_options
from localtools.adapters.openai_schemas import ChatCompletionRequest, chat_messages, check_chat_request, parse_body
from localtools.adapters.serving import ServingState, check_model
from localtools.service import ChatRequestError, render_prompt


def _count(state: ServingState, messages: list[dict[str, Any]], options: Any) -> int:
    try:
        prompt = render_prompt(state.runtime, messages, options)
    except ChatRequestError as exc:
        raise bad_request(exc.message, param=exc.param, code=exc.code) from None
    return len(state.runtime.engine.tokenize_prompt(prompt))


async def count_prompt_tokens(state: ServingState, body: dict[str, Any]) -> int:
    """The prompt's token count for this chat body (raises AdapterError for bad input)."""
    req = parse_body(ChatCompletionRequest, body)
    check_chat_request(req)
    check_model(state, req.model)
    options = chat_options(req, stream=False)
    return await anyio.to_thread.run_sync(_count, state, chat_messages(req), options)
