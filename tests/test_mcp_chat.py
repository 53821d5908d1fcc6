"""The terminal chat with a real MCP server (stdio, tests/data/mcp_server.py) on a
scripted backend: calls are confirmed like Python tools, run on the server, and
their (capped) results go back to the model; /tools names each tool's server."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from localtools.chat.app import ChatApp, ChatSettings
from localtools.chat.mcp_setup import start_mcp_servers
from localtools.mcp_tools import McpTools
from localtools.mcp_tools.config import parse_config
from localtools.toolbox import Toolbox
from tests.mcp_helpers import stdio_entry
from tests.test_chat_app import ScriptedBackend, _call_chunks, _lines, _text_chunks

pytest.importorskip("mcp")
REPO = Path(__file__).resolve().parent.parent


def shout(text: str) -> str:
    """Upper-case a text.

    Args:
        text: The text.
    """
    return text.upper()


@pytest.fixture(scope="module")
def alpha(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("mcp-chat")
    with McpTools({"alpha": stdio_entry("alpha", tmp)}, log_dir=tmp / "logs") as mcp:
        yield mcp, tmp


def _app(mcp: McpTools, backend: ScriptedBackend, *lines: str, cap: int | None = 8000) -> tuple[ChatApp, io.StringIO]:
    out = io.StringIO()
    answer = _lines(*lines)

    def read_line(prompt: str) -> str:
        out.write(prompt + "\n")  # the prompts asked, in the transcript
        return answer(prompt)

    app = ChatApp(backend, settings=ChatSettings(), out=out, read_line=read_line,
                  toolbox=Toolbox([shout], mcp, max_output_chars=cap))
    return app, out


def test_a_confirmed_mcp_call_runs_on_the_server_and_reaches_the_model(alpha: Any) -> None:
    mcp, tmp = alpha
    backend = ScriptedBackend(_call_chunks("alpha__record", '{"note": "from chat"}'), _text_chunks("Noted."))
    app, out = _app(mcp, backend, "please record", "y")
    assert app.run() == 0
    screen = out.getvalue()
    assert "tools: shout; mcp alpha: " in screen
    assert "→ tool call: alpha__record" in screen and "Run alpha__record? [y/N]" in screen
    assert "← result: recorded by alpha: from chat" in screen
    assert {"server": "alpha", "note": "from chat"} in [json.loads(x) for x in (tmp / "record.jsonl").read_text().split("\n") if x]
    tool_message = backend.sent[1][-1]
    assert tool_message["role"] == "tool" and tool_message["content"] == "recorded by alpha: from chat"
    assert app.messages[-1] == {"role": "assistant", "content": "Noted."}


def test_a_declined_mcp_call_does_not_run(alpha: Any) -> None:
    mcp, tmp = alpha
    before = (tmp / "record.jsonl").read_text() if (tmp / "record.jsonl").exists() else ""
    backend = ScriptedBackend(_call_chunks("alpha__record", '{"note": "secret"}'), _text_chunks("OK."))
    app, _ = _app(mcp, backend, "record", "n")
    app.run()
    after = (tmp / "record.jsonl").read_text() if (tmp / "record.jsonl").exists() else ""
    assert after == before
    assert backend.sent[1][-1]["content"] == "error: the user declined to run this tool"


def test_results_are_capped_for_the_model(alpha: Any) -> None:
    mcp, _ = alpha
    backend = ScriptedBackend(_call_chunks("alpha__big", '{"n": 300}'), _text_chunks("Long."))
    app, _ = _app(mcp, backend, "big", "y", cap=100)
    app.run()
    content = backend.sent[1][-1]["content"]
    assert content == "x" * 100 + "\n[output truncated: showing the first 100 of 300 characters]"


def test_slash_tools_names_each_tools_server(alpha: Any) -> None:
    mcp, _ = alpha
    app, out = _app(mcp, ScriptedBackend(), "/tools")
    app.run()
    lines = out.getvalue().splitlines()
    assert any(line.startswith("  shout(text) — Upper-case a text.") for line in lines)
    record = next(line for line in lines if "alpha__record(note)" in line)
    assert record.endswith("[mcp alpha]") and "Record a short note" in record
    assert any("alpha__get_time_()" in line for line in lines)


def test_with_yes_an_is_error_result_is_a_tool_message_and_no_question_is_asked(alpha: Any) -> None:
    mcp, _ = alpha
    backend = ScriptedBackend(_call_chunks("alpha__fail", '{"reason": "disk full"}'), _text_chunks("It failed."))
    app, out = _app(mcp, backend, "try it")
    app.settings.auto_yes = True
    assert app.run() == 0
    assert "[y/N]" not in out.getvalue()
    tool_message = backend.sent[1][-1]
    assert tool_message["role"] == "tool" and tool_message["name"] == "alpha__fail"
    assert tool_message["content"].startswith("error: ") and "cannot do it: disk full" in tool_message["content"]
    assert app.messages[-1] == {"role": "assistant", "content": "It failed."}


def test_an_image_is_summarised_for_the_model(alpha: Any) -> None:
    mcp, _ = alpha
    backend = ScriptedBackend(_call_chunks("alpha__picture", "{}"), _text_chunks("A pixel."))
    app, _ = _app(mcp, backend, "show me", "y")
    app.run()
    assert backend.sent[1][-1]["content"] == "[image: image/png, 67 bytes; not shown to the model]\na 1x1 pixel"


def test_the_user_sees_the_truncation_note_even_in_a_long_preview(alpha: Any) -> None:
    mcp, _ = alpha
    backend = ScriptedBackend(_call_chunks("alpha__big", '{"n": 5000}'), _text_chunks("Long."))
    app, out = _app(mcp, backend, "big", "y", cap=2000)
    app.run()
    note = "[output truncated: showing the first 2000 of 5000 characters]"
    content = backend.sent[1][-1]["content"]
    assert content == "x" * 2000 + "\n" + note
    assert f"x … ({len(content)} characters)\n{note}" in out.getvalue()


def test_start_up_reports_a_broken_server_and_keeps_the_rest(tmp_path: Path) -> None:
    configs = parse_config({"mcpServers": {
        "good": stdio_entry("good", tmp_path), "ghost": {"command": "/nonexistent/mcp-ghost"},
    }}, "test")
    lines: list[str] = []
    servers = start_mcp_servers(configs, ["shout"], lines.append)
    assert servers is not None
    try:
        assert lines[0] == "starting 2 MCP servers…"
        assert len(lines) == 2 and lines[1].startswith("warning: mcp server 'ghost' (/nonexistent/mcp-ghost) failed")
        assert servers.servers == ["good"]
    finally:
        servers.close()
    assert start_mcp_servers([], [], lines.append) is None and len(lines) == 2


def test_an_unreadable_config_stops_the_chat_before_the_model_loads(tmp_path: Path) -> None:
    bad = tmp_path / "mcp.json"
    bad.write_text("{not json")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "localtools", "chat", "--mcp", str(bad)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode != 0
    assert str(bad) in proc.stderr and "Traceback" not in proc.stderr
    assert "loading model" not in proc.stderr
    print(proc.stderr, f"{time.monotonic() - started:.1f}s")
