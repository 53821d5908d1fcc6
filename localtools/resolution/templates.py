"""Which chat templates a model is served with, and whether they are safe to serve.

Order: a `--chat-template FILE`; else the catalog's (models.toml `chat_template`);
else the GGUF's own (`tokenizer.chat_template` and its named variants such as
`tool_use`); else the bundled ChatML fallback. Read from the file's metadata,
not the loaded engine, so `inspect` sees exactly what `serve` will use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localtools.resources import bundled

CHAT_FORMATS = bundled("chat_formats")
FALLBACK_TEMPLATE = CHAT_FORMATS / "chatml.jinja"
GGUF = "gguf"  # the origin label of templates embedded in the model file
TEMPLATE_KEY = "tokenizer.chat_template"


class ModelNotFound(Exception):
    """The model cannot be found on this machine; the message says how to get it."""


class RuntimeLoadError(Exception):
    """The model was found but cannot be served (bad template, unknown dialect, …)."""


def read_text(path: Path, what: str) -> str:
    """A UTF-8 file's text, or a RuntimeLoadError saying what is wrong with it."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuntimeLoadError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RuntimeLoadError(f"{what} {path} is not UTF-8 text") from None


def gguf_templates(model_path: Path) -> dict[str, str]:
    """Non-blank templates embedded in a GGUF: {"default": …, NAME: …}."""
    from localtools.gguf_meta import read_gguf_metadata

    try:
        meta = read_gguf_metadata(model_path)
    except (OSError, ValueError) as exc:
        raise RuntimeLoadError(f"cannot load {model_path}: {exc}") from None
    out: dict[str, str] = {}
    for key, value in meta.items():
        if not isinstance(value, str) or not value.strip():
            continue
        if key == TEMPLATE_KEY:
            out["default"] = value
        elif key.startswith(TEMPLATE_KEY + "."):
            out[key[len(TEMPLATE_KEY) + 1 :]] = value
    return out


def choose_templates(model_path: Path | None, template_file: Path | None) -> tuple[dict[str, str], str]:
    """The template sources to serve and a label saying where they came from.

    `template_file`: --chat-template or the catalog's; `model_path` None: a bare template."""
    if template_file is not None:
        if not template_file.is_file():
            raise RuntimeLoadError(f"no such chat template file: {template_file}")
        return {"default": read_text(template_file, "chat template")}, str(template_file)
    embedded = gguf_templates(model_path) if model_path is not None else {}
    if embedded:
        if "default" not in embedded:  # only named templates: the first one is the default
            embedded["default"] = next(iter(embedded.values()))
        return embedded, GGUF
    return {"default": read_text(FALLBACK_TEMPLATE, "chat template")}, str(FALLBACK_TEMPLATE)


def tool_template_key(templates: dict[str, str]) -> str:
    """The template that renders requests with tools: its dialect is the model's."""
    return "tool_use" if "tool_use" in templates else "default"


def compile_templates(sources: dict[str, str], origin: str, bos_token: str = "", eos_token: str = "") -> dict[str, Any]:
    """ChatTemplates for the sources; a RuntimeLoadError for one that does not compile."""
    from localtools.templating import ChatTemplate, TemplateError

    templates = {}
    for key, source in sources.items():
        label = f"{TEMPLATE_KEY}.{key}" if origin == GGUF and key != "default" else (
            TEMPLATE_KEY if origin == GGUF else origin
        )
        try:
            templates[key] = ChatTemplate(source, name=label, bos_token=bos_token, eos_token=eos_token)
        except TemplateError as exc:
            raise RuntimeLoadError(f"{exc} — pass a working one with --chat-template FILE") from None
    return templates


# A plain conversation and a tool round trip: every template is rendered with these
# once at load (see check_template_bounds).
_SMOKE_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi! How can I help?"},
    {"role": "user", "content": "What is the weather in Paris?"},
]
_SMOKE_TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]
# failures that mean a hostile or broken template, not one that dislikes a conversation
_REFUSED_KINDS = ("unsafe", "timeout", "too_large")


def check_template_bounds(templates: dict[str, Any]) -> None:
    """Refuse a template that reaches for Python internals or exceeds its time/size bounds
    on an ordinary conversation (with and without tools).

    Caught at load, such a template is reported once instead of failing every request;
    and template analysis, which renders a template dozens of times, never sees a template
    that spends its whole time budget on each render (minutes of start-up).
    """
    from localtools.templating import TemplateError

    for template in templates.values():
        for tools in (None, _SMOKE_TOOLS):
            try:
                template.render(_SMOKE_MESSAGES, tools=tools, add_generation_prompt=True)
            except TemplateError as exc:
                if exc.kind in _REFUSED_KINDS:
                    raise RuntimeLoadError(f"{exc} — refusing to serve it; pass a working one with "
                                           "--chat-template FILE") from None


def template_refusal(sources: dict[str, str], origin: str) -> str | None:
    """Why these templates cannot be served (no compile, or out of bounds), else None."""
    try:
        check_template_bounds(compile_templates(sources, origin))
    except RuntimeLoadError as exc:
        return str(exc)
    return None
