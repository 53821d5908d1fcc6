"""How a dialect is chosen: module > analysis > fallback, pinned specs, and the
inspect command's report of it (issue: serve templates no module knows)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest

from localtools.dialects import get_dialect
from localtools.resolution import ANALYSIS, FALLBACK, MODULE, PINNED_SPEC, resolve_dialect
from localtools.dialects.spec import DialectSpec

DATA = Path(__file__).resolve().parent / "data"
NOVEL = DATA / "novel_template.jinja"
QWEN = Path(__file__).resolve().parent.parent.parent / "shared" / "templates" / "Qwen-Qwen2.5-7B-Instruct.jinja"
LOCALTOOLS = [sys.executable, "-m", "localtools"]

# Calls written as "CALL name WITH a=1 AND b=2": nothing in it is a marker the
# analysis can anchor on, so it must fall back and say so.
UNRECOGNISABLE = """{%- for m in messages -%}
<|im_start|>{{ m.role }}
{% if m.tool_calls %}{% for c in m.tool_calls %}CALL {{ c.function.name }} WITH {% for k, v in c.function.arguments.items() %}{{ k }}={{ v }}{% if not loop.last %} AND {% endif %}{% endfor %}
{% endfor %}{% else %}{{ m.content }}{% endif %}<|im_end|>
{% endfor -%}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif -%}"""


def _inspect(*args: str, env: dict | None = None) -> dict:
    out = subprocess.run(LOCALTOOLS + ["inspect", *args, "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_known_module_wins() -> None:
    res = resolve_dialect(QWEN.read_text())
    assert (res.dialect.name, res.source) == ("hermes", MODULE)


def test_novel_template_is_served_by_analysis() -> None:
    res = resolve_dialect(NOVEL.read_text())
    assert res.source == ANALYSIS
    assert res.dialect.spec.name_prefix == "<<call:"


def test_unrecognised_tool_syntax_falls_back_and_is_flagged(tmp_path: Path) -> None:
    res = resolve_dialect(UNRECOGNISABLE)
    assert res.source == FALLBACK and res.dialect.name == "chatml-function"
    assert res.unrecognised
    path = tmp_path / "weird.jinja"
    path.write_text(UNRECOGNISABLE)
    report = _inspect("--template", str(path))
    assert report["dialect_source"] == "fallback"
    assert "does not recognise" in report["warning"]


def test_inspect_template_reports_analysis_and_writes_a_pinnable_spec(tmp_path: Path) -> None:
    out = tmp_path / "novel.toml"
    report = _inspect("--template", str(NOVEL), "--dialect-out", str(out))
    assert report["dialect_source"] == "analysis"
    assert report["dialect_spec"]["name_prefix"] == "<<call:"
    pinned = tomllib.loads(out.read_text())["models"]["MODEL"]["dialect_spec"]
    assert DialectSpec.from_dict(pinned) == DialectSpec.from_dict(report["dialect_spec"])


def test_a_spec_pinned_in_a_user_catalog_serves_the_model(tmp_path: Path, model_path: Path) -> None:
    """models.toml: a model entry carrying its own dialect_spec (no module needed)."""
    spec = get_dialect("mistral").spec.to_dict()
    spec["name"] = "my-dialect"
    lines = [f'[models.my-model]', f'path = "{model_path}"', 'dialect = "chatml-function"', "", "[models.my-model.dialect_spec]"]
    from localtools.dialects.spec_io import _toml_value

    lines += [f"{k} = {_toml_value(v)}" for k, v in spec.items()]
    catalog = tmp_path / "models.toml"
    catalog.write_text("\n".join(lines) + "\n")
    env = dict(os.environ, LOCALTOOLS_MODELS=str(catalog))
    report = _inspect("my-model", env=env)
    assert report["dialect"] == "my-dialect" and report["dialect_source"] == PINNED_SPEC


@pytest.mark.e2e
def test_default_model_with_an_unknown_template_makes_a_valid_required_call(model_path: Path) -> None:
    from localtools import LocalModel

    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
        "required": ["city", "days"],
    }
    tools = [{"type": "function", "function": {"name": "forecast", "description": "Weather forecast", "parameters": schema}}]
    with LocalModel(chat_template=NOVEL) as model:
        assert model.runtime.detection.source == ANALYSIS
        reply = model.chat(
            [{"role": "user", "content": "Forecast for Oslo for 3 days?"}],
            tools=tools, tool_choice="required", temperature=0, max_tokens=60,
        )
    message = reply["choices"][0]["message"]
    assert reply["choices"][0]["finish_reason"] == "tool_calls"
    assert message["tool_calls"], message
    call = message["tool_calls"][0]["function"]
    assert call["name"] == "forecast"
    jsonschema.validate(json.loads(call["arguments"]), schema)
