"""The main dialects run end to end on the default (SmolLM2) weights.

Each main dialect is reached through a chat-template override on the same
GGUF: the model has no tool training, but under a grammar it writes calls in
the dialect's own syntax, so parsing, streaming and grammars are exercised for
real. The GGUF's special tokens are SmolLM2's, so markers like
`<|python_tag|>` are plain text here, which is fine for these tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_TEMPLATES = REPO.parent / "shared" / "templates"
CHAT_FORMATS = REPO / "chat_formats"


@dataclass(frozen=True)
class MainDialect:
    """One way to serve a main dialect: its expected name and the template that selects it."""

    key: str  # a test id (a dialect can have several template variants)
    dialect: str  # the dialect name the runtime must pick
    template: Path | None  # None: the GGUF's own template

    def server_args(self) -> list[str]:
        """`localtools serve` arguments that select this dialect."""
        return ["--chat-template", str(self.template)] if self.template else []

    def available(self) -> bool:
        return self.template is None or self.template.is_file()


MAIN_DIALECTS: list[MainDialect] = [
    MainDialect("chatml-function", "chatml-function", None),
    MainDialect("hermes", "hermes", SHARED_TEMPLATES / "Qwen-Qwen2.5-7B-Instruct.jinja"),
    MainDialect("llama3", "llama3", CHAT_FORMATS / "llama3.1-tools.jinja"),
    MainDialect("llama3-meta", "llama3", SHARED_TEMPLATES / "meta-llama-Llama-3.1-8B-Instruct.jinja"),
    MainDialect("mistral-array", "mistral", CHAT_FORMATS / "mistral-v0.3-tools.jinja"),
    MainDialect("mistral-args", "mistral", SHARED_TEMPLATES / "Mistral-Small-3.2-24B-Instruct-2506.jinja"),
    MainDialect("functionary-v3.1", "functionary-v3.1", SHARED_TEMPLATES / "meetkai-functionary-medium-v3.1.jinja"),
    MainDialect("functionary-v3", "functionary-v3", SHARED_TEMPLATES / "meetkai-functionary-medium-v3.2.jinja"),
    MainDialect("qwen3-coder", "qwen3-coder", SHARED_TEMPLATES / "Qwen3-Coder.jinja"),
    MainDialect("firefunction-v2", "firefunction-v2", SHARED_TEMPLATES / "fireworks-ai-llama-3-firefunction-v2.jinja"),
    MainDialect("functionary-v2", "functionary-v2", SHARED_TEMPLATES / "other" / "meetkai-functionary-v2-hf-chat-template.jinja"),
    MainDialect("generic", "generic", SHARED_TEMPLATES / "google-gemma-2-2b-it.jinja"),
]


def main_dialect(key: str) -> MainDialect:
    for d in MAIN_DIALECTS:
        if d.key == key:
            return d
    raise KeyError(key)


def load_local_model(d: MainDialect, n_ctx: int = 4096):  # -> LocalModel
    """A LocalModel on the default weights speaking dialect `d` (checked)."""
    from localtools import LocalModel

    model = LocalModel(chat_template=d.template, n_ctx=n_ctx, seed=0)
    if model.dialect != d.dialect:
        model.close()
        raise AssertionError(f"{d.template} loaded as dialect {model.dialect!r}, expected {d.dialect!r}")
    return model


def constrained_text(engine, dialect, tools: list[dict], question: str, parallel: bool, max_tokens: int, seed: int) -> str:
    """What the engine writes for `question` under the dialect's tool_choice=required
    grammar, the tools taught in a ChatML system prompt (the tiny model's own format)."""
    from localtools.engine import SamplingParams

    grammar = dialect.grammar(tools, "required", parallel, "")
    assert grammar is not None and not grammar.lazy
    prompt = (
        f"<|im_start|>system\n{dialect.tool_system_prompt(tools)}<|im_end|>\n"
        f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    )
    return "".join(engine.generate(prompt, SamplingParams(max_tokens=max_tokens, temperature=0.7, seed=seed, grammar=grammar)))
