"""CORS: off by default; `serve --cors-origin` answers real preflights and a real
headless Chromium fetch from another origin (skipped when Debian's chromium is absent)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from localtools.api.cors import check_origins
from tests.live_server import live_server

pytestmark = pytest.mark.e2e

PAGE_ORIGIN = "http://localhost:5173"
KEY = "sekrit"


def _preflight(base_url: str, origin: str, path: str = "/v1/chat/completions") -> httpx.Response:
    return httpx.options(f"{base_url}{path}", headers={
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    })


def test_origins_are_checked() -> None:
    assert check_origins(["http://localhost:5173/", "*", "http://localhost:5173"]) == ["http://localhost:5173", "*"]
    for bad in ("localhost:5173", "http://localhost:5173/app", "http://"):
        with pytest.raises(ValueError, match="not an origin"):
            check_origins([bad])


def test_serve_refuses_a_path_as_origin() -> None:
    import sys

    proc = subprocess.run([sys.executable, "-m", "localtools", "serve", "--cors-origin", "http://x.test/app"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "not an origin" in proc.stderr


def test_off_by_default() -> None:
    with live_server(["--n-ctx", "256"]) as url:
        pre = _preflight(url, PAGE_ORIGIN)
        post = httpx.post(f"{url}/v1/embeddings", json={"input": "hi"}, headers={"Origin": PAGE_ORIGIN})
    assert pre.status_code == 405  # no CORS layer: OPTIONS is just a method the route lacks
    assert "access-control-allow-origin" not in pre.headers
    assert post.status_code == 200 and "access-control-allow-origin" not in post.headers


@pytest.fixture(scope="module")
def cors_url() -> Iterator[str]:
    args = ["--n-ctx", "256", "--api-key", KEY, "--cors-origin", PAGE_ORIGIN, "--cors-origin", "http://127.0.0.1:1"]
    with live_server(args) as url:
        yield url


def test_preflight_from_an_allowed_origin(cors_url: str) -> None:
    r = _preflight(cors_url, PAGE_ORIGIN)
    assert r.status_code == 200  # answered without the API key: a browser sends none in a preflight
    assert r.headers["access-control-allow-origin"] == PAGE_ORIGIN
    assert "POST" in r.headers["access-control-allow-methods"]
    assert {"authorization", "content-type"} <= {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert int(r.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in r.headers


def test_preflight_from_another_origin_is_refused(cors_url: str) -> None:
    r = _preflight(cors_url, "http://evil.test")
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers


def test_responses_carry_the_header_errors_included(cors_url: str) -> None:
    ok = httpx.post(f"{cors_url}/v1/embeddings", json={"input": "hi"},
                    headers={"Origin": PAGE_ORIGIN, "Authorization": f"Bearer {KEY}"})
    denied = httpx.post(f"{cors_url}/v1/embeddings", json={"input": "hi"}, headers={"Origin": PAGE_ORIGIN})
    other = httpx.post(f"{cors_url}/v1/embeddings", json={"input": "hi"},
                       headers={"Origin": "http://evil.test", "Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == PAGE_ORIGIN
    assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == PAGE_ORIGIN
    assert "access-control-allow-origin" not in other.headers  # the browser hides this answer from the page


def test_any_origin() -> None:
    with live_server(["--n-ctx", "256", "--cors-origin", "*"]) as url:
        r = _preflight(url, "http://anything.test:8080")
        get = httpx.get(f"{url}/v1/models", headers={"Origin": "http://anything.test:8080"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    assert get.headers["access-control-allow-origin"] == "*"


# ---- a real browser


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PAGE = """<!doctype html><html><body>pending<script>
fetch("%(api)s/v1/embeddings", {
  method: "POST",
  headers: {"Authorization": "Bearer %(key)s", "Content-Type": "application/json"},
  body: JSON.stringify({input: ["hello from a page"], encoding_format: "float"}),
}).then(r => r.json()).then(j => { document.body.textContent = "RESULT:ok:" + j.data[0].embedding.length; })
  .catch(e => { document.body.textContent = "RESULT:blocked:" + e; });
</script></body></html>"""


@contextlib.contextmanager
def _page_server(directory: Path) -> Iterator[str]:
    """A static server for the page, on 127.0.0.1 (another port: another origin)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_a_headless_chromium_page_on_another_origin(tmp_path: Path) -> None:
    # the page's origin is only known once its server runs: start it first, then the API
    (tmp_path / "allowed").mkdir()
    (tmp_path / "blocked").mkdir()
    results = {}
    for name, cors in (("allowed", True), ("blocked", False)):
        where = tmp_path / name
        with _page_server(where) as page:
            args = ["--n-ctx", "256", "--api-key", KEY] + (["--cors-origin", page] if cors else [])
            with live_server(args) as api:
                (where / "index.html").write_text(PAGE % {"api": api, "key": KEY})
                proc = subprocess.run(
                    [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     f"--user-data-dir={where / 'profile'}", "--virtual-time-budget=30000",
                     "--dump-dom", f"{page}/index.html"],
                    capture_output=True, text=True, timeout=180,
                )
        results[name] = proc.stdout
    assert "RESULT:ok:576" in results["allowed"], results["allowed"][-500:]
    assert "RESULT:blocked:" in results["blocked"], results["blocked"][-500:]
