"""The SQLite response store: round trips, bounds, where it lives, and surviving a kill."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from localtools.response_store import FILE_NAME, ResponseStore, data_dir


def response(rid: str, text: str = "hi") -> dict:
    return {"id": rid, "object": "response", "output": [{"type": "message", "content": [{"text": text}]}]}


MESSAGES = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]


def test_put_get_delete(tmp_path: Path):
    store = ResponseStore(tmp_path / "r.sqlite3")
    store.put(response("resp_1", "héllo"), MESSAGES)
    got = store.get("resp_1")
    assert got is not None and got.response == response("resp_1", "héllo") and got.messages == MESSAGES
    assert store.get("resp_2") is None
    assert store.delete("resp_1") is True and store.delete("resp_1") is False
    assert store.get("resp_1") is None and len(store) == 0


def test_oldest_are_evicted_by_count(tmp_path: Path):
    store = ResponseStore(tmp_path / "r.sqlite3", max_entries=3)
    for i in range(5):
        store.put(response(f"resp_{i}"), MESSAGES)
    assert len(store) == 3
    assert [store.get(f"resp_{i}") is not None for i in range(5)] == [False, False, True, True, True]


def test_oldest_are_evicted_by_size_but_the_newest_stays(tmp_path: Path):
    store = ResponseStore(tmp_path / "r.sqlite3", max_bytes=1000)
    big = [{"role": "user", "content": "x" * 400}]
    for i in range(4):
        store.put(response(f"resp_{i}"), big)
    assert 1 <= len(store) <= 2 and store.get("resp_3") is not None and store.get("resp_0") is None
    store.put(response("huge"), [{"role": "user", "content": "y" * 5000}])
    assert len(store) == 1 and store.get("huge") is not None


def test_data_dir_follows_the_environment(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("LOCALTOOLS_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "localtools"
    monkeypatch.setenv("LOCALTOOLS_DATA_DIR", str(tmp_path / "own"))
    assert data_dir() == tmp_path / "own"
    store = ResponseStore()
    assert store.path == tmp_path / "own" / FILE_NAME and store.path.exists()


def test_a_killed_writer_loses_nothing_it_stored(tmp_path: Path):
    path = tmp_path / "r.sqlite3"
    script = (
        "import os, signal, sys\n"
        "from localtools.response_store import ResponseStore\n"
        f"s = ResponseStore(__import__('pathlib').Path({str(path)!r}))\n"
        "s.put({'id': 'resp_k', 'object': 'response'}, [{'role': 'user', 'content': 'q'}])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent.parent)
    assert proc.returncode == -9
    got = ResponseStore(path).get("resp_k")
    assert got is not None and got.messages == [{"role": "user", "content": "q"}]
