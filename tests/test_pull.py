"""`localtools pull` against a local imitation of the Hugging Face hub (tests/hf_mirror.py).

Each pull runs in a fresh Python process with HF_ENDPOINT / HF_HOME / HF_HUB_OFFLINE set,
because huggingface-hub reads some of them once, at import.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from localtools.hub import PullError, pull
from tests.hf_mirror import HubMirror, make_tiny_gguf

REPO = "me/tiny-GGUF"
FILE = "tiny.gguf"
CHUNK = 10 * 1024 * 1024  # huggingface-hub's download chunk: resume points are multiples of it

_PULL_SCRIPT = """
import json, sys
from localtools.hub import PullError, pull
args = json.loads(sys.argv[1])
try:
    print(json.dumps({"path": str(pull(*args, progress=False))}))
except PullError as exc:
    print(json.dumps({"error": str(exc)}))
"""

_RESOLVE_SCRIPT = """
import json, sys
from localtools.catalog import list_models, resolve_model
model = resolve_model(sys.argv[1])
status = next(s for s in list_models() if s.name == sys.argv[1])
print(json.dumps({"path": str(model.path), "dialect": model.dialect, "present": status.present,
                  "size": status.size_bytes}))
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12 MiB GGUF: bigger than one download chunk, so a cut after 11 MiB can resume."""
    return make_tiny_gguf(tmp_path_factory.mktemp("hub-source") / FILE, size_bytes=12 << 20)


@pytest.fixture()
def mirror(source: Path):
    with HubMirror({REPO: {FILE: source}}) as hub:
        yield hub


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _env(tmp_path: Path, endpoint: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.pop("TRANSFORMERS_OFFLINE", None)
    catalog = tmp_path / "models.toml"
    catalog.write_text(f'[models.tiny]\nrepo = "{REPO}"\nfile = "{FILE}"\ndialect = "hermes"\n')
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        LOCALTOOLS_MODELS=str(catalog),
        PYTHONPATH=str(Path(__file__).resolve().parent.parent),
    )
    env.update(extra)
    return env


def _run(script: str, arg: str, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, arg], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _pull(env: dict[str, str], *args: str) -> dict:
    return _run(_PULL_SCRIPT, json.dumps(list(args)), env)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_pull_downloads_identical_file_into_the_hub_cache(tmp_path, mirror, source):
    env = _env(tmp_path, mirror.url)
    result = _pull(env, "tiny")
    path = Path(result["path"])
    assert path.is_relative_to(tmp_path / "hf-home" / "hub")
    assert _sha(path) == _sha(source)
    assert ("HEAD", f"/{REPO}/resolve/main/{FILE}") in [(r.method, r.path) for r in mirror.requests]
    assert mirror.ranged_gets() == []

    # The catalog now finds it offline, from the cache, with the user catalog's dialect.
    found = _run(_RESOLVE_SCRIPT, "tiny", env)
    assert found == {"path": str(path), "dialect": "hermes", "present": True, "size": source.stat().st_size}

    # Pulling again, or by REPO/FILE, or by REPO FILE: the same cached file, nothing re-downloaded.
    gets_before = sum(r.method == "GET" for r in mirror.requests)
    assert _pull(env, f"{REPO}/{FILE}") == result
    assert _pull(env, REPO, FILE) == result
    assert sum(r.method == "GET" for r in mirror.requests) == gets_before


def test_dropped_connection_resumes_with_a_range_request(tmp_path, source):
    with HubMirror({REPO: {FILE: source}}, cut_after=11 << 20, cuts=1) as hub:
        result = _pull(_env(tmp_path, hub.url), REPO, FILE)
        assert hub.ranged_gets() == [f"bytes={CHUNK}-"]
    assert _sha(Path(result["path"])) == _sha(source)


def test_failed_pull_is_a_clear_error_and_the_next_pull_completes(tmp_path, source):
    env_home = tmp_path
    with HubMirror({REPO: {FILE: source}}, cut_after=1000, cuts=100) as hub:
        failed = _pull(_env(env_home, hub.url), "tiny")
        assert "error" in failed
        assert failed["error"].startswith(f"download of {REPO}/{FILE} from {hub.url} failed:")
        assert "peer closed connection" in failed["error"]
    leftovers = [p for p in (tmp_path / "hf-home").rglob("*") if p.is_file() and p.name.endswith(".incomplete")]
    assert leftovers == []
    with HubMirror({REPO: {FILE: source}}) as hub:
        done = _pull(_env(env_home, hub.url), "tiny")
    assert _sha(Path(done["path"])) == _sha(source)


def test_offline_reuses_the_cached_file_with_the_mirror_gone(tmp_path, source):
    with HubMirror({REPO: {FILE: source}}) as hub:
        online = _pull(_env(tmp_path, hub.url), "tiny")
        endpoint = hub.url
    offline = _pull(_env(tmp_path, endpoint, HF_HUB_OFFLINE="1"), "tiny")
    assert offline == online
    assert _sha(Path(offline["path"])) == _sha(source)


def test_offline_makes_no_request_at_all(tmp_path, mirror):
    env = _env(tmp_path, mirror.url)
    _pull(env, "tiny")
    seen = len(mirror.requests)
    _pull({**env, "HF_HUB_OFFLINE": "1"}, "tiny")
    assert len(mirror.requests) == seen


def test_offline_and_not_cached_is_a_clear_error(tmp_path, mirror):
    result = _pull(_env(tmp_path, mirror.url, HF_HUB_OFFLINE="1"), "tiny")
    assert result["error"].startswith(f"HF_HUB_OFFLINE is set and {REPO}/{FILE} is not in the cache")
    assert mirror.requests == []


def test_missing_file_is_a_clear_error(tmp_path, mirror):
    result = _pull(_env(tmp_path, mirror.url), REPO, "missing.gguf")
    assert result == {"error": f"file missing.gguf not found in {REPO} on {mirror.url}"}


def test_missing_repository_is_a_clear_error(tmp_path, mirror):
    result = _pull(_env(tmp_path, mirror.url), "nobody/nothing-GGUF", FILE)
    assert result["error"].startswith(f"repository nobody/nothing-GGUF not found on {mirror.url}")
    assert "HF_TOKEN" in result["error"]


def test_hf_token_is_sent(tmp_path, mirror):
    _pull(_env(tmp_path, mirror.url, HF_TOKEN="hf_test_token_123"), "tiny")
    assert {r.headers.get("authorization") for r in mirror.requests} == {"Bearer hf_test_token_123"}


def test_unreachable_endpoint_is_a_clear_error(tmp_path):
    """Slow on purpose (about 25 s): huggingface-hub retries a refused connection with backoff."""
    endpoint = _closed_port_url()
    result = _pull(_env(tmp_path, endpoint), "tiny")
    assert result["error"].startswith(f"cannot reach {endpoint}: ConnectError")
    assert f"{REPO}/{FILE} is not in the cache" in result["error"]


def test_unknown_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", _closed_port_url())
    with pytest.raises(PullError, match=r"unknown model 'no-such-model': not in the catalog \(.*qwen3-4b"):
        pull("no-such-model", progress=False)
    with pytest.raises(PullError, match="not a repository id"):
        pull("just-a-name", "file.gguf", progress=False)


def test_bundled_default_needs_no_network(monkeypatch):
    from localtools.default_model import default_model_path

    monkeypatch.setenv("HF_ENDPOINT", _closed_port_url())
    assert pull("smollm2-135m", progress=False) == default_model_path()
