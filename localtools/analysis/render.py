"""Render a chat template for analysis, safely and without raising.

Analysis renders one untrusted template a few dozen times with probe
conversations; every failure is an answer ("the template rejects this"),
never an exception for the caller. Rendering goes through
`localtools.templating.ChatTemplate` (sandboxed, time-bounded), the same
renderer that serves requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from localtools.templating import ChatTemplate

BOS = "<s>"
EOS = "</s>"


Renderer = Callable[..., "str | None"]


def make_renderer(source: str, name: str = "template") -> Renderer | None:
    """A function rendering this template, returning None where it fails.

    None itself when the template does not even compile."""
    try:
        template = ChatTemplate(source, name=name, bos_token=BOS, eos_token=EOS)
    except Exception:
        return None

    def render(
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = False,
        **kwargs: Any,
    ) -> str | None:
        try:
            return template.render(messages, tools=tools, add_generation_prompt=add_generation_prompt, **kwargs)
        except Exception:  # a template rejecting a probe is an answer, not an error
            return None

    return render
