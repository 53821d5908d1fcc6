"""A tiny HTTP server on 127.0.0.1 that plays an engine from a recorded exchange.

It answers vLLM's `/health`, `/v1/models` and streamed `/v1/completions` with what
`tests/data/remote/vllm_completions.json` holds, keeps every request body it got,
and can misbehave on purpose: `mode="fail"` (HTTP 500 on completions), `"die"` (two
events, then the connection drops), `"context"` (vLLM's 400 for a long prompt).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RECORDING = Path(__file__).resolve().parent / "data" / "remote" / "vllm_completions.json"


def recording() -> dict[str, Any]:
    return json.loads(RECORDING.read_text())


class ReplayEngine:
    """`with ReplayEngine() as engine:` serves on `engine.url`; `engine.requests` holds the bodies."""

    def __init__(self, mode: str = "ok"):
        self.mode = mode
        self.data = recording()
        self.requests: list[dict[str, Any]] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                if self.path == "/health":
                    self._json(200, {})
                elif self.path == "/v1/models":
                    self._json(200, replay.data["models"])
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/v1/completions":
                    self._json(404, {"error": {"message": "not found"}})
                    return
                replay.requests.append(body)
                if replay.mode == "fail":
                    self._json(500, {"error": {"message": "engine overloaded", "code": 500}})
                    return
                if replay.mode == "context":
                    err = replay.data["context_error"]
                    self._json(err["status"], err["body"])
                    return
                self._stream(replay.data["events"][:2] if replay.mode == "die" else replay.data["events"])

            def _stream(self, events: list[Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for event in events:
                    self._send(f"data: {json.dumps(event)}\n\n".encode())
                if replay.mode == "die":  # as a killed process: no last chunk, the socket closes
                    self.close_connection = True
                    return
                self._send(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")

            def _send(self, raw: bytes) -> None:
                self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ReplayEngine:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
