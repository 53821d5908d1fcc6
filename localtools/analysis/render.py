"""Render a chat template for analysis, safely and without raising.

Analysis renders one untrusted template a few dozen times with probe
conversations; every failure is an answer ("the template rejects this"),
never an exception for the caller. Rendering goes through
`localtools.templating.ChatTemplate` (sandboxed, time-bounded) when it exists;
until then a local sandboxed environment with the Hugging Face globals.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Callable

try:  # the shared renderer, once it lands
    from localtools.templating import ChatTemplate as _ChatTemplate
except ImportError:  # pragma: no cover - depends on the tree's state
    _ChatTemplate = None  # type: ignore[assignment,misc]

BOS = "<s>"
EOS = "</s>"


class _ShimTemplate:
    """Minimal sandboxed renderer with the globals HF templates expect."""

    def __init__(self, source: str, name: str = "template") -> None:
        from jinja2 import nodes
        from jinja2.ext import Extension
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        class _GenerationTag(Extension):
            """`{% generation %}…{% endgeneration %}` (transformers): render the body."""

            tags = {"generation"}

            def parse(self, parser: Any) -> Any:
                lineno = next(parser.stream).lineno
                body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
                return nodes.Scope(body, lineno=lineno)

        env = ImmutableSandboxedEnvironment(
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=["jinja2.ext.loopcontrols", _GenerationTag],
        )
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        self.name = name
        self.source = source
        self._template = env.from_string(source)

    def render(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
        **kwargs: Any,
    ) -> str:
        context: dict[str, Any] = {"bos_token": BOS, "eos_token": EOS}
        context.update(kwargs)
        return self._template.render(
            messages=messages, tools=tools, add_generation_prompt=add_generation_prompt, **context
        )


def _raise(message: str) -> None:
    raise ValueError(message)


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False, sort_keys: bool = False) -> str:
    """transformers' tojson: no HTML escaping, generators accepted."""
    if not isinstance(value, (dict, list, str, int, float, bool, type(None))) and hasattr(value, "__iter__"):
        value = list(value)
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys)


Renderer = Callable[..., "str | None"]


def make_renderer(source: str, name: str = "template") -> Renderer | None:
    """A function rendering this template, returning None where it fails.

    None itself when the template does not even compile."""
    try:
        if _ChatTemplate is not None:
            template: Any = _ChatTemplate(source, name=name, bos_token=BOS, eos_token=EOS)
        else:
            template = _ShimTemplate(source, name)
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
