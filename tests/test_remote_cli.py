"""`localtools serve --engine-url`: the errors a person sees before anything is served."""

from __future__ import annotations

import os
import subprocess
import sys

from localtools.default_model import default_model_path
from tests.llama_server import free_port


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "localtools", "serve", "--port", "0", *args],
                          capture_output=True, text=True, timeout=120, env={**os.environ})


def test_no_upstream_answering_is_a_clear_start_up_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = _serve("--engine-url", url, "--chat-template-from", str(default_model_path()))
    assert result.returncode == 2
    assert "no upstream engine answered" in result.stderr and url in result.stderr
    assert "Traceback" not in result.stderr


def test_engine_url_needs_the_model_whose_template_it_serves() -> None:
    result = _serve("--engine-url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "--chat-template-from" in result.stderr and "Traceback" not in result.stderr
