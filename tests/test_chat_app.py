"""The terminal chat's loop on a scripted backend (recorded OpenAI chunks, no model):
what a user does wrong or interrupts never ends the chat."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterator

from localtools.chat.app import ChatApp, ChatSettings


def _call_chunks(name: str, arguments: str) -> list[dict[str, Any]]:
    return [
        {"choices": [{"index": 0, "delta": {"role": "assistant"}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": name, "arguments": ""}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]


def _text_chunks(text: str) -> list[dict[str, Any]]:
    return [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]


class ScriptedBackend:
    """Replies with the given chunk lists in turn; records the messages it was sent."""

    name = "scripted"

    def __init__(self, *replies: list[dict[str, Any]]) -> None:
        self.replies = list(replies)
        self.sent: list[list[dict[str, Any]]] = []

    def stream(self, messages, tools, tool_choice, temperature, max_tokens) -> Iterator[dict[str, Any]]:
        self.sent.append([dict(m) for m in messages])
        yield from self.replies.pop(0)


def _lines(*lines: str):
    queue = list(lines)

    def read_line(prompt: str) -> str:
        if not queue:
            raise EOFError
        return queue.pop(0)

    return read_line


def slow_tool(seconds: int) -> str:
    """Sleep for a while.

    Args:
        seconds: How long.
    """
    raise KeyboardInterrupt  # what Ctrl-C while the tool runs looks like


def test_ctrl_c_in_a_tool_stops_the_tool_not_the_chat() -> None:
    backend = ScriptedBackend(_call_chunks("slow_tool", '{"seconds": 9}'), _text_chunks("Stopped, then."))
    out = io.StringIO()
    app = ChatApp(backend, [slow_tool], ChatSettings(auto_yes=True), out=out, read_line=_lines("wait please"))
    assert app.run() == 0  # reached Ctrl-D, not an escaped KeyboardInterrupt
    assert "[tool stopped]" in out.getvalue()
    tool_msgs = [m for m in app.messages if m["role"] == "tool"]
    assert tool_msgs and tool_msgs[0]["content"] == "error: the user interrupted this tool"
    # the model was told, and answered
    assert backend.sent[1][-1]["role"] == "tool"
    assert app.messages[-1] == {"role": "assistant", "content": "Stopped, then."}


def test_save_to_an_unwritable_path_is_a_message_and_the_chat_goes_on(tmp_path: Path) -> None:
    backend = ScriptedBackend(_text_chunks("Hello!"))
    out = io.StringIO()
    good = tmp_path / "ok.json"
    bad = tmp_path / "no-such-dir" / "x.json"
    app = ChatApp(backend, [], out=out, read_line=_lines("hi", f"/save {bad}", f"/save {good}"))
    assert app.run() == 0
    assert f"cannot save to {bad}" in out.getvalue()
    assert json.loads(good.read_text()) == [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}]
