"""The shared agent loop and the shared chunk accumulator, on scripted replies (no model)."""

from __future__ import annotations

from typing import Any

from localtools.adapters.openai_chunks import ChunkAccumulator
from localtools.tool_loop import Reply, run_tool_loop


def _call(call_id: str, name: str, arguments: str = "{}") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _calls_reply(*calls: dict[str, Any], finish: str = "tool_calls") -> Reply:
    return Reply({"role": "assistant", "content": None, "tool_calls": list(calls)}, finish)


def _text_reply(text: str) -> Reply:
    return Reply({"role": "assistant", "content": text, "reasoning_content": "thinking"}, "stop")


class Script:
    """Hands out replies in turn and records the tool_choice each step was asked with."""

    def __init__(self, *replies: Reply | None) -> None:
        self.replies = list(replies)
        self.choices: list[Any] = []

    def __call__(self, choice: Any) -> Reply | None:
        self.choices.append(choice)
        return self.replies.pop(0)


def test_calls_run_in_order_and_results_answer_them_by_id() -> None:
    script = Script(_calls_reply(_call("a", "one"), _call("b", "two")), _text_reply("done"))
    ran: list[str] = []
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    end = run_tool_loop(messages, script, lambda call: ran.append(call["id"]) or f"result {call['id']}")
    assert end.reason == "answered" and end.last is not None and end.last.message["content"] == "done"
    assert ran == ["a", "b"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "assistant"]
    assert messages[2] == {"role": "tool", "tool_call_id": "a", "name": "one", "content": "result a"}
    assert "reasoning_content" not in messages[-1]  # not sent back to the model


def test_a_forced_choice_applies_to_the_first_step_only() -> None:
    forced = {"type": "function", "function": {"name": "one"}}
    script = Script(_calls_reply(_call("a", "one")), _calls_reply(_call("b", "one")), _text_reply("ok"))
    run_tool_loop([], script, lambda call: "r", tool_choice=forced)
    assert script.choices == [forced, "auto", "auto"]


def test_steps_are_bounded() -> None:
    script = Script(*[_calls_reply(_call(str(i), "one")) for i in range(3)])
    messages: list[dict[str, Any]] = []
    end = run_tool_loop(messages, script, lambda call: "r", max_steps=3)
    assert end.reason == "max_steps" and len(script.choices) == 3
    assert sum(m["role"] == "tool" for m in messages) == 3


def test_a_reply_cut_at_max_tokens_runs_its_calls_only_when_allowed() -> None:
    ran: list[str] = []
    messages: list[dict[str, Any]] = []
    end = run_tool_loop(messages, Script(_calls_reply(_call("a", "one"), finish="length")),
                        lambda call: ran.append("x") or "r", run_cut_calls=False)
    assert end.reason == "cut" and ran == [] and [m["role"] for m in messages] == ["assistant"]
    end = run_tool_loop([], Script(_calls_reply(_call("a", "one"), finish="length"), _text_reply("ok")),
                        lambda call: ran.append("x") or "r")
    assert end.reason == "answered" and ran == ["x"]


def test_a_stopped_reply_ends_the_loop_and_keeps_the_last_one() -> None:
    script = Script(_calls_reply(_call("a", "one")), None)
    messages: list[dict[str, Any]] = []
    end = run_tool_loop(messages, script, lambda call: "r")
    assert end.reason == "stopped" and end.last is not None and end.last.message["tool_calls"][0]["id"] == "a"
    assert [m["role"] for m in messages] == ["assistant", "tool"]


def test_chunks_fold_into_the_final_message() -> None:
    acc = ChunkAccumulator()
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"index": 0, "delta": {"reasoning_content": "hmm"}}]},
        {"choices": [{"index": 0, "delta": {"content": "Let me "}}]},
        {"choices": [{"index": 0, "delta": {"content": "check."}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 1, "id": "call_b", "type": "function", "function": {"name": "two", "arguments": ""}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "type": "function", "function": {"name": "one", "arguments": '{"x"'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}},
    ]
    news = [acc.add(c) for c in chunks]
    assert [n.content for n in news if n.content] == ["Let me ", "check."]
    assert news[1].reasoning == "hmm" and news[5].tool_call_delta and not news[3].tool_call_delta
    assert acc.finish_reason == "tool_calls" and acc.usage is not None and acc.usage["completion_tokens"] == 7
    assert acc.reasoning == "hmm"
    assert acc.message() == {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [  # by index, whatever order they arrived in; a missing id is made up
            {"id": "call_0", "type": "function", "function": {"name": "one", "arguments": '{"x": 1}'}},
            {"id": "call_b", "type": "function", "function": {"name": "two", "arguments": "{}"}},
        ],
    }


def test_a_text_only_stream_has_no_tool_calls_key() -> None:
    acc = ChunkAccumulator()
    acc.add({"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}]})
    assert acc.message() == {"role": "assistant", "content": "Hi"} and acc.finish_reason == "stop"
