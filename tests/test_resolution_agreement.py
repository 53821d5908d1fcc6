"""`localtools inspect` reports the template and dialect `serve` uses.

Both go through `resolution.resolve_model`; these tests hold the two ends to it:
for every corpus template (inspect --template vs load_runtime --chat-template),
for GGUF copies carrying a corpus template (default and tool_use variants),
for the default model with --chat-template / --dialect overrides, and for a
models.toml entry pinning a template and a dialect.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from localtools import runtime
from localtools.cli import app
from localtools.runtime import RuntimeLoadError, load_runtime
from tests.conftest import SHARED_TEMPLATES, corpus_templates

runner = CliRunner()
TEMPLATES = corpus_templates()
QWEN = SHARED_TEMPLATES / "Qwen-Qwen2.5-7B-Instruct.jinja"
GLM = SHARED_TEMPLATES / "GLM-4.6.jinja"
MISTRAL = SHARED_TEMPLATES / "mistralai-Mistral-Nemo-Instruct-2407.jinja"
SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gguf_set_template.py"


def _set_chat_template() -> Any:
    spec = importlib.util.spec_from_file_location("gguf_set_template", SCRIPT)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.set_chat_template


def _inspect(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["inspect", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _served(**kwargs: Any) -> dict[str, Any]:
    """What load_runtime serves, in inspect's terms (or the refusal message)."""
    try:
        rt = load_runtime(kwargs.pop("model", None), n_ctx=256, **kwargs)
    except RuntimeLoadError as exc:
        return {"refused": str(exc)}
    try:
        spec = getattr(rt.dialect, "spec", None)
        return {
            "dialect": rt.dialect.name,
            "dialect_source": rt.detection.source,
            "dialect_evidence": list(rt.detection.evidence),
            # as inspect --json writes it (tuples become lists)
            "dialect_spec": json.loads(json.dumps(spec.to_dict(), default=str)) if spec is not None else None,
            "sources": {k: t.source for k, t in rt.templates.items()},
            "template_origin": rt.template_origin,
        }
    finally:
        rt.close()


def _reported(info: dict[str, Any]) -> dict[str, Any]:
    warning = info.get("warning", "")
    if warning.startswith("serve refuses this template: "):
        return {"refused": warning[len("serve refuses this template: "):]}
    return {k: info.get(k) for k in ("dialect", "dialect_source", "dialect_evidence", "dialect_spec")}


def _assert_agree(info: dict[str, Any], served: dict[str, Any]) -> None:
    reported = _reported(info)
    assert reported == {k: served.get(k) for k in reported}
    if "refused" not in served:
        assert sorted(info["chat_templates"].values()) == sorted(set(served["sources"].values()))


@pytest.fixture(scope="module")
def shared_engine(model_path: Path) -> Any:
    """One real engine for the corpus sweep: what is chosen does not depend on reloading weights."""
    from localtools.engine import Engine, EngineConfig

    engine = Engine(EngineConfig(model_path=str(model_path), n_ctx=256))
    yield engine
    engine.close()


@pytest.mark.skipif(not TEMPLATES, reason="template corpus not available")
@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(SHARED_TEMPLATES)))
def test_inspect_template_agrees_with_serve_chat_template(
    path: Path, shared_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "_load_engine", lambda *args: shared_engine)
    _assert_agree(_inspect("--template", str(path)), _served(chat_template_file=path))


@pytest.mark.parametrize("key", ["tokenizer.chat_template", "tokenizer.chat_template.tool_use"])
@pytest.mark.parametrize("template", [QWEN, GLM, MISTRAL], ids=lambda p: p.stem)
def test_inspect_gguf_copy_agrees_with_serve(tmp_path: Path, model_path: Path, template: Path, key: str) -> None:
    """A GGUF carrying a corpus template; as `tool_use` it sits beside the default ChatML one."""
    copy = tmp_path / "copy.gguf"
    _set_chat_template()(model_path, copy, template.read_text(encoding="utf-8"), key=key)
    info = _inspect(str(copy))
    served = _served(model=str(copy))
    _assert_agree(info, served)
    assert info["template_origin"] == served["template_origin"] == "gguf"
    assert served["sources"][key.rsplit(".", 1)[1] if key.endswith("tool_use") else "default"] == template.read_text()
    assert info["dialect"] == ("hermes" if template == QWEN else "glm" if template == GLM else "mistral")


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"dialect": "hermes"},
        {"chat_template_file": GLM},
        {"chat_template_file": GLM, "dialect": "llama3"},
        {"chat_template_file": QWEN, "dialect": "mistral"},
    ],
    ids=["default", "dialect", "chat-template", "both", "both-mismatched"],
)
def test_inspect_default_model_with_overrides_agrees_with_serve(args: dict[str, Any]) -> None:
    flags: list[str] = []
    if "chat_template_file" in args:
        flags += ["--chat-template", str(args["chat_template_file"])]
    if "dialect" in args:
        flags += ["--dialect", args["dialect"]]
    info = _inspect(*flags)
    served = _served(**args)
    _assert_agree(info, served)
    assert info["template_origin"] == served["template_origin"]
    if "dialect" in args:
        assert info["dialect"] == args["dialect"] and info["dialect_source"] == "forced"


def test_inspect_unknown_dialect_fails_like_serve() -> None:
    result = runner.invoke(app, ["inspect", "--dialect", "no-such-dialect"])
    assert result.exit_code == 2
    with pytest.raises(RuntimeLoadError) as served:
        load_runtime(None, n_ctx=256, dialect="no-such-dialect")
    assert str(served.value) in result.output


def test_catalog_template_and_dialect_pins_agree(tmp_path: Path, model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """models.toml `chat_template` + `dialect`: inspect shows that template (not the GGUF's), as serve uses."""
    catalog = tmp_path / "models.toml"
    catalog.write_text(
        f'[models.pinned]\npath = "{model_path}"\nchat_template = "{GLM}"\ndialect = "hermes"\n', encoding="utf-8"
    )
    monkeypatch.setenv("LOCALTOOLS_MODELS", str(catalog))
    info = _inspect("pinned")
    served = _served(model="pinned")
    _assert_agree(info, served)
    assert info["template_origin"] == served["template_origin"] == str(GLM)
    assert (info["dialect"], info["dialect_source"]) == ("hermes", "forced")
    assert "set by the model catalog" in info["dialect_evidence"]
    # a --chat-template given by the user drops the catalog's dialect pin, on both sides
    info = _inspect("pinned", "--chat-template", str(QWEN))
    _assert_agree(info, _served(model="pinned", chat_template_file=QWEN))
    assert info["dialect_source"] == "module"
