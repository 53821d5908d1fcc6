"""A tiny local HTTP server that the real `huggingface_hub` client accepts as HF_ENDPOINT.

It serves `{endpoint}/{repo}/resolve/{revision}/{file}` the way the hub does for a file
that is not behind Xet: HEAD and GET with `X-Repo-Commit`, `ETag`/`X-Linked-Etag`
(the sha256, as for LFS files), `X-Linked-Size`, `Content-Length`, and `Range` requests
answered with 206. Errors carry the hub's `X-Error-Code` (`RepoNotFound`,
`EntryNotFound`, `RevisionNotFound`) so the client raises its real exceptions.

`cut_after=N` makes the next `cuts` GETs stop after N body bytes and drop the
connection, which is how a flaky network looks to the client. Every request is logged.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>.+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class HubMirror:
    """`repos` maps "owner/name" to {filename: local path}."""

    repos: dict[str, dict[str, Path]]
    cut_after: int | None = None
    cuts: int = 1
    commit: str = COMMIT
    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None, "mirror not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubMirror:
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                mirror._handle(self, body=False)

            def do_GET(self) -> None:
                mirror._handle(self, body=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HubMirror:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def ranged_gets(self) -> list[str]:
        """The Range headers of the GET requests seen so far."""
        return [r.headers["range"] for r in self.requests if r.method == "GET" and "range" in r.headers]

    # ------------------------------------------------------------ request handling

    def _handle(self, handler: BaseHTTPRequestHandler, *, body: bool) -> None:
        path = unquote(urlsplit(handler.path).path)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.requests.append(Request(handler.command, path, headers))
        match = _RESOLVE.match(path)
        if match is None:
            return self._error(handler, 404, None, "not a resolve URL")
        repo, revision, filename = match["repo"], match["revision"], match["file"]
        files = self.repos.get(repo)
        if files is None:
            # The hub answers 401 for a missing (or private) repository.
            return self._error(handler, 401, "RepoNotFound", "Repository not found")
        if revision not in ("main", self.commit):
            return self._error(handler, 404, "RevisionNotFound", "Invalid rev id")
        source = files.get(filename)
        if source is None:
            return self._error(handler, 404, "EntryNotFound", "Entry not found")
        self._send_file(handler, source, headers.get("range"), body=body)

    def _error(self, handler: BaseHTTPRequestHandler, status: int, code: str | None, message: str) -> None:
        payload = f'{{"error": "{message}"}}'.encode()
        handler.send_response(status)
        if code:
            handler.send_header("X-Error-Code", code)
        handler.send_header("X-Error-Message", message)
        if code in ("EntryNotFound", "RevisionNotFound"):
            handler.send_header("X-Repo-Commit", self.commit)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(payload)

    def _send_file(self, handler: BaseHTTPRequestHandler, source: Path, range_header: str | None, *, body: bool) -> None:
        data = source.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        start, end = 0, len(data) - 1
        status = 200
        if range_header:
            match = _RANGE.match(range_header.strip())
            if match is None or int(match[1]) >= len(data):
                handler.send_response(416)
                handler.send_header("Content-Range", f"bytes */{len(data)}")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
            start = int(match[1])
            end = min(int(match[2]), end) if match[2] else end
            status = 206
        chunk = data[start : end + 1]
        handler.send_response(status)
        handler.send_header("X-Repo-Commit", self.commit)
        handler.send_header("ETag", f'"{digest}"')
        handler.send_header("X-Linked-Etag", f'"{digest}"')
        handler.send_header("X-Linked-Size", str(len(data)))
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(chunk)))
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        handler.end_headers()
        if not body:
            return
        with self._lock:
            cut = self.cut_after is not None and self.cuts > 0
            if cut:
                self.cuts -= 1
        if cut:
            handler.wfile.write(chunk[: self.cut_after])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)  # drop it mid-body, like a broken network
            return
        handler.wfile.write(chunk)


def make_tiny_gguf(path: Path, *, size_bytes: int = 1 << 20) -> Path:
    """A small, valid GGUF (one f32 tensor) to serve: real format, quick to move around."""
    import numpy as np
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "llama")
    writer.add_name("tiny-test-model")
    writer.add_context_length(256)
    values = np.arange(size_bytes // 4, dtype=np.float32)
    writer.add_tensor("token_embd.weight", values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
