"""The terminal chat with a real MCP server (stdio, tests/data/mcp_server.py) on a
scripted backend: calls are confirmed like Python tools, run on the server, and
their (capped) results go back to the model; /tools names each tool's server."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from localtools.chat.app import ChatApp, ChatSettings
from localtools.mcp_tools import McpTools
from localtools.toolbox import Toolbox
from tests.mcp_helpers import stdio_entry
from tests.test_chat_app import ScriptedBackend, _call_chunks, _lines, _text_chunks

pytest.importorskip("mcp")


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
