"""`localtools chat --mcp CONFIG` in a real terminal (tmux) on the default model, with
real MCP servers written with the `mcp` SDK: one over stdio, one over streamable
HTTP on 127.0.0.1, one entry that cannot start and one malformed. Each broken
one is reported in one line and the chat goes on; `/tools` shows both servers'
tools; with `--tool-choice required` the model calls one, the user confirms,
the server records the call, and its result is in the conversation the model
reads (`/save`); after `/quit` no process the chat started is left (/proc)."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.mcp_helpers import descendants, http_server, server_pids, stdio_entry, wait_gone
from tests.test_chat_cli import Tmux

REPO = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def _finish_turn(term: Tmux, timeout: float = 240) -> None:
    """After the forced first call the choice is `auto`: confirm any further call
    (the model tends to try the other server too) until the prompt comes back."""
    deadline = time.monotonic() + timeout
    confirmed = 1
    while time.monotonic() < deadline:
        lines = [line for line in term.screen().rstrip().splitlines() if line.strip()]
        last = lines[-1].strip() if lines else ""
        if last == ">>>":
            return
        if last.endswith("[y/N]") and term.screen().count("[y/N]") > confirmed:
            term.type_line("y")
            confirmed += 1
        time.sleep(0.3)
    raise AssertionError("no prompt after the answer:\n" + term.screen())


def _chat_command(config: Path, tmp_path: Path) -> str:
    """The chat in tmux; it prints its pid first (its process tree is checked after
    it exits) and the shell says how it exited."""
    env = f"XDG_CONFIG_HOME={tmp_path / 'config'} XDG_STATE_HOME={tmp_path / 'state'}"
    chat = (
        f"echo CHAT-PID-$$; exec env {env} {shlex.quote(sys.executable)} -m localtools chat --mcp {config} "
        f"--tool-choice required --temperature 0 --max-tokens 120"
    )
    return f"sh -c {shlex.quote(chat)}; echo CHAT-EXITED-$?; sleep 60"


def test_chat_uses_mcp_servers(tmp_path: Path) -> None:
    save = tmp_path / "conversation.json"
    with http_server("beta", tmp_path, MCP_TEST_TOOLS="record") as url:
        alpha = stdio_entry("alpha", tmp_path, MCP_TEST_TOOLS="record")
        config = tmp_path / "mcp.json"
        config.write_text(json.dumps({"mcpServers": {
            "alpha": alpha,
            "beta": {"url": url},
            "ghost": {"command": "/nonexistent/mcp-ghost"},
            "typo": {"comand": "mcp-server-git"},
        }}))
        term = Tmux(_chat_command(config, tmp_path), REPO)
        try:
            screen = term.wait_for(">>> ", timeout=600)
            assert (
                "mcp server 'ghost' (/nonexistent/mcp-ghost) failed to start: "
                "cannot run '/nonexistent/mcp-ghost': No such file or directory"
            ) in screen
            assert "warning: mcp server 'typo': " in screen
            assert "Traceback" not in screen
            chat_pid = int(screen.split("CHAT-PID-")[1].split()[0])
            tree = descendants(chat_pid)
            stdio_pids = server_pids(tmp_path)
            assert len(stdio_pids) == 1 and stdio_pids[0] in tree, "the stdio server runs under the chat"

            term.type_line("/tools")
            screen = term.wait_for("beta__record(note)", timeout=60)
            assert "alpha__record(note)" in screen and "[mcp alpha]" in screen and "[mcp beta]" in screen

            term.type_line("Record a note saying hello.")
            screen = term.wait_for("[y/N]", timeout=600)
            assert "→ tool call: alpha__record" in screen or "→ tool call: beta__record" in screen
            term.type_line("y")
            term.wait_for("← result: ", timeout=120)
            _finish_turn(term, timeout=600)
            term.type_line(f"/save {save}")
            term.wait_for("saved", timeout=60)
            _check_saved_conversation(json.loads(save.read_text()), tmp_path)

            term.type_line("/quit")
            term.wait_for("CHAT-EXITED-0", timeout=120)
            assert wait_gone([chat_pid, *tree], timeout=10) == [], "no process of the chat is left after it exits"
        finally:
            print(term.screen())
            term.kill()


def _check_saved_conversation(data: list[dict[str, Any]], tmp_path: Path) -> None:
    """Every call ran on its own server, and its result is in what the model reads."""
    assert [m["role"] for m in data][:3] == ["user", "assistant", "tool"]
    calls = {c["id"]: c["function"] for m in data if m["role"] == "assistant" for c in m.get("tool_calls") or []}
    results = [m for m in data if m["role"] == "tool"]
    records = {"alpha": tmp_path / "record.jsonl", "beta": tmp_path / "beta-record.jsonl"}
    for result in results:
        call = calls[result["tool_call_id"]]
        server = call["name"].split("__")[0]
        note = json.loads(call["arguments"])["note"]
        assert result["content"] == f"recorded by {server}: {note}"
        assert {"server": server, "note": note} in [json.loads(x) for x in records[server].read_text().splitlines()]
    print("servers called:", [calls[r["tool_call_id"]]["name"] for r in results])


def test_local_model_runs_mcp_and_python_tools(tmp_path: Path) -> None:
    """The same from Python: LocalModel.run_tools with a function and `mcp=` servers
    (stdio and HTTP), started for the call and stopped after it."""
    from localtools import LocalModel

    def get_weather(city: str) -> str:
        """Get the weather in a city.

        Args:
            city: The city.
        """
        return f"Sunny in {city}"

    with http_server("beta", tmp_path, MCP_TEST_TOOLS="record") as url, LocalModel() as model:
        servers = {"alpha": stdio_entry("alpha", tmp_path, MCP_TEST_TOOLS="record"), "beta": {"url": url}}
        messages = [{"role": "user", "content": "Record a note saying hello."}]
        seen: list[tuple[str, str]] = []
        forced = {"type": "function", "function": {"name": "beta__record"}}
        final = model.run_tools(
            messages, [get_weather], tool_choice=forced, max_rounds=2, temperature=0, max_tokens=60,
            on_call=lambda name, args, result: seen.append((name, result)), mcp=servers,
        )
        assert final["object"] == "chat.completion"
        assert [m["role"] for m in messages][:3] == ["user", "assistant", "tool"]
        note = json.loads(messages[1]["tool_calls"][0]["function"]["arguments"])["note"]
        assert seen[0] == ("beta__record", f"recorded by beta: {note}")
        assert messages[2]["content"] == f"recorded by beta: {note}"
        record = tmp_path / "beta-record.jsonl"
        assert json.loads(record.read_text().splitlines()[0]) == {"server": "beta", "note": note}
        pids = server_pids(tmp_path)
        assert len(pids) == 1, "the stdio server was started for the call"
        assert wait_gone(pids, timeout=5) == [], "and stopped after it"
