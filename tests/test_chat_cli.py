"""`localtools chat` driven in a real terminal (tmux): it starts, streams a
reply, lists tools, shows a tool call, runs it after confirmation, feeds the
result back, saves the conversation as valid JSON and quits cleanly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Tmux:
    def __init__(self, command: str, cwd: Path) -> None:
        self.name = f"lt-{uuid.uuid4().hex[:8]}"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", "160", "-y", "50", "-c", str(cwd), command],
            check=True,
        )

    def screen(self) -> str:
        out = subprocess.run(
            ["tmux", "capture-pane", "-p", "-J", "-S", "-2000", "-t", self.name], capture_output=True, text=True
        )
        return out.stdout

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def type_line(self, text: str) -> None:
        self.send("-l", text)
        self.send("Enter")

    def wait_for(self, needle: str, timeout: float = 120.0, after: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if needle in screen[after:] if after else needle in screen:
                return screen
            if not self.alive():
                break
            time.sleep(0.2)
        raise AssertionError(f"{needle!r} never appeared; screen:\n{self.screen()}")

    def alive(self) -> bool:
        return subprocess.run(["tmux", "has-session", "-t", self.name], capture_output=True).returncode == 0

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def test_terminal_chat_with_a_tool_call(tmp_path: Path) -> None:
    save = tmp_path / "conversation.json"
    exe = Path(sys.executable).parent / "localtools"
    cmd = (
        f"{exe} chat --tools tests/data/chat_tools.py --tool-choice required "
        f"--temperature 0 --max-tokens 120; echo CHAT-EXITED-$?; sleep 30"
    )
    term = Tmux(cmd, REPO)
    try:
        term.wait_for(">>> ", timeout=180)
        term.type_line("/tools")
        term.wait_for("get_weather(city)")
        assert "_helper" not in term.screen()
        term.type_line("What is the weather in Paris?")
        screen = term.wait_for("Run get_weather? [y/N]", timeout=180)
        assert "→ tool call: get_weather" in screen
        assert '"city"' in screen
        term.type_line("y")
        term.wait_for("← result: Sunny and 21 degrees C", timeout=60)
        # then `auto`: the tiny model may answer or call again; decline further
        # calls until the prompt comes back
        deadline = time.monotonic() + 240
        declined = 0
        while time.monotonic() < deadline:
            lines = [l for l in term.screen().rstrip().splitlines() if l.strip()]
            last = lines[-1].strip() if lines else ""
            if last == ">>>":
                break
            if last.endswith("[y/N]") and term.screen().count("[y/N]") > 1 + declined:
                term.type_line("n")
                declined += 1
            time.sleep(0.3)
        else:
            raise AssertionError("no prompt after the answer:\n" + term.screen())
        term.type_line(f"/save {save}")
        term.wait_for("saved")
        data = json.loads(save.read_text())
        roles = [m["role"] for m in data]
        assert roles[:3] == ["user", "assistant", "tool"], roles
        assert data[1]["tool_calls"][0]["function"]["name"] == "get_weather"
        assert json.loads(data[1]["tool_calls"][0]["function"]["arguments"]).get("city")
        assert data[2]["content"].startswith("Sunny")
        assert roles[-1] == "assistant"
        # the answer after the tool result was streamed to the screen as it was written
        answer = (data[-1].get("content") or "").strip()
        if answer and not data[-1].get("tool_calls"):
            assert answer.splitlines()[0][:40] in term.screen()
        term.type_line("/quit")
        term.wait_for("CHAT-EXITED-0", timeout=30)
    finally:
        print(term.screen())
        term.kill()
