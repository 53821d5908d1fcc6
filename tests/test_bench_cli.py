"""`localtools bench` and scripts/bench.py: the benchmark lives in the source checkout,
and the CLI command runs it there (or says why it cannot)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import localtools.cli as cli

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def test_bench_script_found_in_checkout() -> None:
    assert cli.bench_script() == ROOT / "scripts" / "bench.py"


def test_bench_command_runs_the_script_with_the_same_args(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_call(cmd: list[str]) -> int:
        seen.append(cmd)
        return 3

    monkeypatch.setattr(subprocess, "call", fake_call)
    result = runner.invoke(cli.app, ["bench", "my-model", "--quick", "--json", "--threads", "2", "--repeats", "3"])
    assert result.exit_code == 3  # the script's exit status is the command's
    assert seen == [[sys.executable, str(ROOT / "scripts" / "bench.py"),
                     "my-model", "--quick", "--json", "--threads", "2", "--repeats", "3"]]


def test_bench_command_without_checkout_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "bench_script", lambda: None)
    result = runner.invoke(cli.app, ["bench", "--quick"])
    assert result.exit_code == 2
    message = result.output.strip()
    assert "\n" not in message and "source checkout" in message


def test_bench_script_help_runs_from_anywhere(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--help"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "--json" in done.stdout
