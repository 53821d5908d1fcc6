"""OpenAI messages + tools -> the prompt text the model was trained on.

(Foundation stub: renders the messages with the template as they are. The
dialects issue extends this with normalisation and tool-prompt injection.)
"""

from __future__ import annotations

from typing import Any

from localtools.dialects.base import Dialect


def build_prompt(
    template: Any,  # localtools.templating.ChatTemplate
    dialect: Dialect,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    tool_choice: str | dict[str, Any] | None = None,
    template_kwargs: dict[str, Any] | None = None,
) -> str:
    """Render the conversation and the generation prompt for the model."""
    return template.render(
        messages=messages,
        tools=tools or None,
        add_generation_prompt=True,
        **(template_kwargs or {}),
    )
