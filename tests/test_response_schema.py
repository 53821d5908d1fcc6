"""A model no dialect module knows, served by a transformers-style
response_schema (x-regex) declared in models.toml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from localtools.dialects import parse_all
from localtools.dialects.response_schema import ResponseSchemaDialect, ResponseSchemaError
from tests.parser_cases import load_cases, tools_for

# Hermes/Qwen output described the way transformers' response_schema does it.
HERMES_SCHEMA = {
    "type": "object",
    "properties": {
        "role": {"const": "assistant"},
        "thinking": {"type": "string", "x-regex": r"^\s*<think>(.*?)</think>"},
        "content": {"type": "string", "x-regex": r"^(?:\s*<think>.*?</think>)?\s*(.*?)\s*(?=<tool_call>|\Z)"},
        "tool_calls": {
            "type": "array",
            "x-regex-iterator": r"<tool_call>\s*(\{.*?\})\s*</tool_call>",
            "items": {
                "type": "object",
                "x-parser": "json",
                "properties": {"name": {"type": "string"}, "arguments": {"type": "object"}},
            },
        },
    },
}

WELL_FORMED = [
    c for d, c in load_cases()
    if d == "hermes" and not set(c.get("tags", [])) & {"lenient", "malformed", "unknown-tool", "mentions-markup"}
    and "<think>" not in c.get("prompt_tail", "") and "after-call" not in c["id"]  # text after calls: not in this schema
]


@pytest.mark.parametrize("case", WELL_FORMED, ids=[c["id"] for c in WELL_FORMED])
def test_response_schema_parses_recorded_hermes_outputs(case: dict) -> None:
    dialect = ResponseSchemaDialect(HERMES_SCHEMA)
    msg = parse_all(dialect.parser(tools_for(case), case.get("prompt_tail", "")), case["text"])
    expected = case["expected"]
    assert [(c.name, c.arguments) for c in msg.tool_calls] == [
        (c["name"], c["arguments"]) for c in expected.get("tool_calls", [])
    ]
    assert (msg.content or None) == (expected.get("content") or None)
    assert (msg.reasoning or None) == (expected.get("reasoning") or None)


def test_nothing_extracted_means_the_text_is_content() -> None:
    dialect = ResponseSchemaDialect({"type": "object", "properties": {"tool_calls": {"type": "array", "x-regex-iterator": "<call>(.*?)</call>", "items": {"type": "object", "x-parser": "json"}}}})
    msg = parse_all(dialect.parser([{"type": "function", "function": {"name": "f"}}]), "plain words")
    assert msg.content == "plain words" and not msg.tool_calls


def test_invalid_regex_is_a_clear_error() -> None:
    with pytest.raises(ResponseSchemaError, match="invalid regex"):
        ResponseSchemaDialect({"type": "object", "properties": {"content": {"type": "string", "x-regex": "("}}})


def test_models_toml_response_schema_serves_the_model(tmp_path: Path, model_path: Path) -> None:
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(HERMES_SCHEMA))
    catalog = tmp_path / "models.toml"
    catalog.write_text(f'[models.rs-model]\npath = "{model_path}"\nresponse_schema_file = "{schema_file}"\n')
    env = dict(os.environ, LOCALTOOLS_MODELS=str(catalog))
    out = subprocess.run([sys.executable, "-m", "localtools", "inspect", "rs-model", "--json"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["dialect"] == "response-schema" and report["dialect_source"] == "pinned-spec"
