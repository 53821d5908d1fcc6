"""The agent loop: the model calls tools, they run, the results go back, until it answers.

One loop for every front end (`LocalModel.run_tools`, the terminal chat): how a
reply is obtained (whole or streamed, shown or not) and how a call is run
(confirmed, interrupted, displayed) are the caller's hooks; what is appended
to the conversation, when a forced tool_choice is released and how many steps
are allowed are decided here.

    end = run_tool_loop(messages, reply=ask_model, run_call=run_one, tool_choice="auto", max_steps=8)
    end.reason   # "answered" | "stopped" | "cut" | "max_steps"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

ToolChoice = str | Mapping[str, Any] | None


@dataclass
class Reply:
    """One model turn: the assistant message (OpenAI shape) and why it ended."""

    message: dict[str, Any]
    finish_reason: str | None
    response: Any = None  # what produced it, for the caller (LocalModel: the chat.completion)


@dataclass
class LoopEnd:
    reason: Literal["answered", "stopped", "cut", "max_steps"]
    last: Reply | None  # the last reply, None if the first one never came


def tool_result_message(call: dict[str, Any], result: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call["id"], "name": call["function"]["name"], "content": result}


def released(choice: ToolChoice) -> ToolChoice:
    """A forced choice applies to the first step only, or the model could never answer."""
    return choice if choice in (None, "auto", "none") else "auto"


def run_tool_loop(
    messages: list[dict[str, Any]],
    reply: Callable[[ToolChoice], Reply | None],
    run_call: Callable[[dict[str, Any]], str],
    tool_choice: ToolChoice = "auto",
    max_steps: int = 8,
    run_cut_calls: bool = True,
) -> LoopEnd:
    """Ask, run the calls, feed the results back, at most `max_steps` times.

    `reply(tool_choice)` gets one model turn (None: stop, e.g. the user pressed
    Ctrl-C or it failed; the hook has said so). `run_call(call)` runs one
    OpenAI tool call and returns the text the model reads (errors included).
    `messages` is extended in place with each assistant message (without
    `reasoning_content`) and one tool message per call. With `run_cut_calls`
    false, calls of a reply cut by max_tokens are not run (their arguments are
    guessed at): the loop ends with "cut".
    """
    choice = tool_choice
    last: Reply | None = None
    for _ in range(max_steps):
        turn = reply(choice)
        if turn is None:
            return LoopEnd("stopped", last)
        last = turn
        messages.append({k: v for k, v in turn.message.items() if k != "reasoning_content"})
        calls = turn.message.get("tool_calls") or []
        if not calls:
            return LoopEnd("answered", turn)
        if turn.finish_reason == "length" and not run_cut_calls:
            return LoopEnd("cut", turn)
        for call in calls:
            messages.append(tool_result_message(call, run_call(call)))
        choice = released(choice)
    return LoopEnd("max_steps", last)
