"""The function-calling eval: its case file, its checker, and `auto` deciding on the default model.

The case file and the checker are what scripts/eval_tools.py measures with, so a
broken case or a lenient checker would make every number in the README wrong.
The last tests run the real engine: `auto` in decide mode (dialects/decide.py)
must call for an obvious request and answer in text when no tool fits.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from tool_eval_check import (  # noqa: E402
    CATEGORIES,
    Reply,
    canonical_reply,
    case_problems,
    check_reply,
)

CASES_FILE = REPO / "tests" / "data" / "tool_eval_cases.jsonl"


def load_cases() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


CASES = load_cases()
BY_ID = {c["id"]: c for c in CASES}


# ---------------------------------------------------------------- the case file


def test_at_least_40_cases_per_category() -> None:
    counts = Counter(c["category"] for c in CASES)
    assert set(counts) == set(CATEGORIES)
    assert all(counts[c] >= 40 for c in CATEGORIES), counts


def test_case_ids_are_unique() -> None:
    assert len(BY_ID) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case_is_well_formed(case: dict[str, Any]) -> None:
    assert case_problems(case) == []
    assert case["messages"] and case["messages"][-1]["role"] == "user"
    names = [t["function"]["name"] for t in case["tools"]]
    assert len(names) == len(set(names)), "tool names repeat"
    for tool in case["tools"]:
        jsonschema.Draft202012Validator.check_schema(tool["function"]["parameters"])


@pytest.mark.parametrize("case", [c for c in CASES if c["expected"]], ids=[c["id"] for c in CASES if c["expected"]])
def test_every_expected_call_is_valid_for_its_tool(case: dict[str, Any]) -> None:
    """The canonical right answer validates against the offered schema and is judged right."""
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in case["tools"]}
    reply = canonical_reply(case)
    for name, arguments in reply.calls:
        jsonschema.validate(json.loads(arguments), schemas[name])
    assert check_reply(case, reply).correct


# ---------------------------------------------------------------- the checker on recorded replies

TRIANGLE = BY_ID["simple-002"]  # calculate_triangle_area(base=10, height=5)
WEATHER = BY_ID["simple-001"]  # get_weather(location one of Paris / Paris, France)


def first(category: str, calls: int | None = None) -> dict[str, Any]:
    return next(c for c in CASES if c["category"] == category and (calls is None or len(c["expected"]) == calls))


def test_checker_right_call() -> None:
    verdict = check_reply(TRIANGLE, Reply(calls=[("calculate_triangle_area", '{"base": 10.0, "height": 5}')]))
    assert verdict.correct and verdict.outcome == "correct"


def test_checker_forgives_case_and_whitespace_and_one_of() -> None:
    verdict = check_reply(WEATHER, Reply(calls=[("get_weather", '{"location": "  paris,  FRANCE "}')]))
    assert verdict.correct


def test_checker_wrong_name() -> None:
    case = first("multiple")
    wrong = next(t["function"]["name"] for t in case["tools"] if t["function"]["name"] != case["expected"][0]["name"])
    schema = next(t["function"]["parameters"] for t in case["tools"] if t["function"]["name"] == wrong)
    args = {k: "x" if (schema["properties"][k].get("type") == "string") else 1 for k in schema.get("required", [])}
    verdict = check_reply(case, Reply(calls=[(wrong, json.dumps(args))]))
    assert not verdict.correct


def test_checker_wrong_value_and_wrong_type() -> None:
    wrong_value = check_reply(TRIANGLE, Reply(calls=[("calculate_triangle_area", '{"base": 10, "height": 6}')]))
    assert (wrong_value.correct, wrong_value.outcome) == (False, "wrong_args")
    wrong_type = check_reply(TRIANGLE, Reply(calls=[("calculate_triangle_area", '{"base": "10", "height": 5}')]))
    assert (wrong_type.correct, wrong_type.outcome) == (False, "malformed")
    assert wrong_type.malformed == 1


def test_checker_unknown_tool_and_broken_json_are_malformed() -> None:
    unknown = check_reply(TRIANGLE, Reply(calls=[("area_of_triangle", '{"base": 10, "height": 5}')]))
    broken = check_reply(TRIANGLE, Reply(calls=[("calculate_triangle_area", '{"base": 10, "height"')]))
    assert unknown.outcome == broken.outcome == "malformed"


def test_checker_text_instead_of_a_call() -> None:
    verdict = check_reply(TRIANGLE, Reply(content="The area is 25."))
    assert (verdict.correct, verdict.outcome) == (False, "text")


def test_checker_parallel_is_order_free_but_counts_calls() -> None:
    case = first("parallel")
    right = canonical_reply(case).calls
    assert check_reply(case, Reply(calls=list(reversed(right)))).correct
    assert not check_reply(case, Reply(calls=right[:1])).correct
    assert not check_reply(case, Reply(calls=right + right[:1])).correct
    assert check_reply(case, Reply(calls=right[:1] + right[:1])).correct is (right[0] == right[1])


def test_checker_irrelevance() -> None:
    case = first("irrelevance")
    assert check_reply(case, Reply(content="I cannot help with that.")).correct
    name = case["tools"][0]["function"]["name"]
    called = check_reply(case, Reply(calls=[(name, "{}")]))
    assert not called.correct


def test_checker_http_error() -> None:
    verdict = check_reply(TRIANGLE, Reply(error="HTTP 500: boom"))
    assert (verdict.correct, verdict.outcome) == (False, "http_error")


# ---------------------------------------------------------------- decide mode on the real model


@pytest.fixture(scope="module")
def default_model() -> Any:
    from localtools.local_model import LocalModel

    model = LocalModel(None, n_ctx=2048)
    yield model
    model.close()


def test_default_model_decides_in_auto(default_model: Any) -> None:
    assert default_model.runtime.auto_tools == "decide"


@pytest.mark.parametrize("stream", [False, True])
def test_auto_calls_for_an_obvious_request(default_model: Any, stream: bool) -> None:
    case = WEATHER
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in case["tools"]}
    reply = _chat(default_model, case, stream)
    assert reply["tool_calls"], reply
    for call in reply["tool_calls"]:
        assert call["name"] in schemas
        jsonschema.validate(json.loads(call["arguments"]), schemas[call["name"]])


@pytest.mark.parametrize("stream", [False, True])
def test_auto_answers_in_text_when_no_tool_fits(default_model: Any, stream: bool) -> None:
    case = BY_ID["irrelevance-002"]  # "What is the capital of France?" with a stock-price tool
    reply = _chat(default_model, case, stream)
    assert not reply["tool_calls"], reply
    assert reply["content"] and reply["content"].strip()
    assert not reply["content"].startswith(default_model.runtime.dialect.text_opener)


@pytest.mark.parametrize("stream", [False, True])
def test_an_invented_call_is_made_again_as_text(
    default_model: Any, stream: bool, caplog: pytest.LogCaptureFixture,
) -> None:
    """A poem asked for with a weather tool offered: leaning towards the call, the model
    calls get_weather with a city it made up; the grounding check sends it back to text."""
    case = BY_ID["irrelevance-001"]
    with caplog.at_level(logging.INFO, logger="localtools"):
        reply = _chat(default_model, case, stream)
    assert any("no value of the call to get_weather" in r.getMessage() for r in caplog.records)
    assert not reply["tool_calls"], reply
    assert reply["content"] and reply["content"].strip()
    assert not reply["content"].lstrip().startswith("<tool_call>")


def _chat(model: Any, case: dict[str, Any], stream: bool) -> dict[str, Any]:
    """One `auto` request, as {content, tool_calls: [{name, arguments}]}, streamed or not."""
    kwargs = dict(tools=case["tools"], tool_choice="auto", temperature=0, max_tokens=96)
    if not stream:
        message = model.chat(case["messages"], **kwargs)["choices"][0]["message"]
        calls = [c["function"] for c in message.get("tool_calls") or []]
        return {"content": message.get("content"), "tool_calls": calls}
    content, calls = "", {}
    for chunk in model.chat(case["messages"], stream=True, **kwargs):
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            content += delta.get("content") or ""
            for tc in delta.get("tool_calls") or []:
                entry = calls.setdefault(tc["index"], {"name": "", "arguments": ""})
                fn = tc.get("function") or {}
                entry["name"] += fn.get("name") or ""
                entry["arguments"] += fn.get("arguments") or ""
    return {"content": content or None, "tool_calls": list(calls.values())}


def test_after_a_tool_result_auto_answers_in_text(default_model: Any) -> None:
    """Decide mode is for the turn that starts from the user: right after a tool result
    the call branch is not forced on the model (agent loops would call forever)."""
    case = WEATHER
    call = {"id": "call_1", "type": "function",
            "function": {"name": case["tools"][0]["function"]["name"], "arguments": "{}"}}
    messages = [*case["messages"], {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"}]
    reply = _chat(default_model, {**case, "messages": messages}, stream=False)
    assert not reply["tool_calls"], reply
    assert reply["content"] and reply["content"].strip()
