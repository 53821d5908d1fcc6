"""The Responses API store: finished responses kept in SQLite, so `previous_response_id` works.

Each row holds the Response object a client may GET and the whole conversation
as chat messages (the input that led to it plus its own output), so a
continuation needs one row and an evicted ancestor never breaks a descendant.
Every write commits at once (WAL journal): a server killed mid-conversation
loses nothing it had answered. The store is bounded by entries and bytes; the
oldest rows go first.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_MAX_ENTRIES = 1000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
FILE_NAME = "responses.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    size       INTEGER NOT NULL,
    response   TEXT NOT NULL,
    messages   TEXT NOT NULL
)
"""


def data_dir() -> Path:
    """`$LOCALTOOLS_DATA_DIR`, else `$XDG_DATA_HOME/localtools` (~/.local/share/localtools)."""
    override = os.environ.get("LOCALTOOLS_DATA_DIR")
    if override:
        return Path(override)
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "localtools"


def _env_int(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass
class StoredResponse:
    response: dict[str, Any]  # the Response object, as GET returns it
    messages: list[dict[str, Any]]  # the conversation up to and including this response, as chat messages


class ResponseStore:
    """A bounded SQLite store of responses; safe to share between threads."""

    def __init__(self, path: Path | None = None, max_entries: int | None = None, max_bytes: int | None = None) -> None:
        self.path = path or data_dir() / FILE_NAME
        self.max_entries = max_entries or _env_int("LOCALTOOLS_RESPONSES_MAX", DEFAULT_MAX_ENTRIES)
        self.max_bytes = max_bytes or _env_int("LOCALTOOLS_RESPONSES_MAX_BYTES", DEFAULT_MAX_BYTES)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=10, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)

    def put(self, response: dict[str, Any], messages: list[dict[str, Any]]) -> None:
        """Keep a finished response (replacing one with the same id), then evict the oldest."""
        body = json.dumps(response, ensure_ascii=False)
        history = json.dumps(messages, ensure_ascii=False)
        size = len(body.encode()) + len(history.encode())
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("DELETE FROM responses WHERE id = ?", (response["id"],))
                self._conn.execute(
                    "INSERT INTO responses (id, created_at, size, response, messages) VALUES (?, ?, ?, ?, ?)",
                    (response["id"], time.time(), size, body, history),
                )
                self._evict()
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def _evict(self) -> None:
        self._conn.execute(
            "DELETE FROM responses WHERE seq NOT IN (SELECT seq FROM responses ORDER BY seq DESC LIMIT ?)",
            (self.max_entries,),
        )
        total = self._conn.execute("SELECT COALESCE(SUM(size), 0) FROM responses").fetchone()[0]
        while total > self.max_bytes:
            row = self._conn.execute("SELECT seq, size FROM responses ORDER BY seq LIMIT 1 OFFSET 0").fetchone()
            count = self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            if row is None or count <= 1:  # the newest always stays, however large
                break
            self._conn.execute("DELETE FROM responses WHERE seq = ?", (row[0],))
            total -= row[1]

    def get(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT response, messages FROM responses WHERE id = ?", (response_id,)
            ).fetchone()
        if row is None:
            return None
        return StoredResponse(json.loads(row[0]), json.loads(row[1]))

    def delete(self, response_id: str) -> bool:
        with self._lock:
            cur = self._conn.execute("DELETE FROM responses WHERE id = ?", (response_id,))
        return cur.rowcount > 0

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
