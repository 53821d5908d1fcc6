"""Checking one reply of the function-calling eval against its case (no model, no HTTP).

A case (one JSON line of tests/data/tool_eval_cases.jsonl) holds the request
(`messages`, `tools`) and the calls a right answer makes (`expected`; empty for
the irrelevance category, where the right answer is text). A reply is right
when it makes exactly the expected calls, in any order: each with the expected
name and, for every expected argument, an equal value. "Equal" forgives what a
client would: case and runs of whitespace in strings, 5 vs 5.0 in numbers, and
an expected `{"one_of": [...]}` accepts any listed value, `{"unordered": [...]}`
a list in any order. Arguments the case does not mention may be present only if
the tool's schema allows them and does not require them (optional arguments the
model chose to fill).

A call is *malformed* when its arguments are not a JSON object, its name is not
an offered tool, or the arguments do not validate against the tool's schema;
the grammar of a well-behaved server makes these impossible, so they are counted
apart from merely wrong calls.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

CATEGORIES = ("simple", "multiple", "parallel", "irrelevance")


@dataclass
class Reply:
    """What a server answered: its calls as (name, arguments text), its text, or an HTTP error."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    content: str | None = None
    error: str | None = None  # the HTTP/API error, when the request failed
    finish_reason: str | None = None
    stream_problems: list[str] = field(default_factory=list)  # chunks breaking OpenAI's stream rules


@dataclass
class Verdict:
    correct: bool
    outcome: str  # correct | text | wrong_name | wrong_args | call_count | malformed | http_error | called
    malformed: int = 0  # malformed calls in the reply
    detail: str = ""


# ---------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------


def norm_text(text: str) -> str:
    """A string as compared: case-folded, whitespace runs collapsed, ends stripped."""
    return " ".join(text.split()).casefold()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def value_matches(expected: Any, actual: Any) -> bool:
    """Whether `actual` (an argument value the model wrote) equals `expected` (the case's)."""
    if isinstance(expected, dict) and set(expected) == {"one_of"}:
        return any(value_matches(option, actual) for option in expected["one_of"])
    if isinstance(expected, dict) and set(expected) == {"unordered"}:
        return isinstance(actual, list) and _multiset_match(expected["unordered"], actual)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if _is_number(expected):
        return _is_number(actual) and abs(float(expected) - float(actual)) <= 1e-9 * max(1.0, abs(float(expected)))
    if isinstance(expected, str):
        return isinstance(actual, str) and norm_text(expected) == norm_text(actual)
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(
            value_matches(e, a) for e, a in zip(expected, actual)
        )
    if isinstance(expected, dict):
        return isinstance(actual, dict) and set(expected) == set(actual) and all(
            value_matches(v, actual[k]) for k, v in expected.items()
        )
    return expected == actual


def _multiset_match(expected: list[Any], actual: list[Any]) -> bool:
    if len(expected) != len(actual):
        return False
    left = list(actual)
    for item in expected:
        for j, candidate in enumerate(left):
            if value_matches(item, candidate):
                del left[j]
                break
        else:
            return False
    return True


# ---------------------------------------------------------------------------
# calls
# ---------------------------------------------------------------------------


def tools_by_name(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each offered tool's parameters schema, by name."""
    out = {}
    for tool in tools:
        fn = tool.get("function", tool)
        out[fn["name"]] = fn.get("parameters") or {"type": "object", "properties": {}}
    return out


def malformed_reason(name: str, arguments: str, schemas: dict[str, dict[str, Any]]) -> str | None:
    """Why this call is malformed (not JSON, unknown tool, schema violation), or None."""
    if name not in schemas:
        return f"unknown tool {name!r}"
    try:
        args = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return f"arguments are not JSON: {arguments[:80]!r}"
    if not isinstance(args, dict):
        return "arguments are not a JSON object"
    import jsonschema  # a test dependency; only the checker needs it

    try:
        jsonschema.validate(args, schemas[name])
    except jsonschema.ValidationError as exc:
        return f"arguments break the schema: {exc.message[:120]}"
    return None


def call_matches(expected: dict[str, Any], name: str, args: dict[str, Any], schema: dict[str, Any]) -> bool:
    """Whether a (well-formed) call is the expected one."""
    if name != expected["name"]:
        return False
    want = expected.get("arguments") or {}
    for key, value in want.items():
        if key not in args or not value_matches(value, args[key]):
            return False
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    extra = set(args) - set(want)
    return all(key in props and key not in required for key in extra)


def _assignment_exists(expected: list[dict[str, Any]], actual: list[tuple[str, dict[str, Any]]],
                       schemas: dict[str, dict[str, Any]]) -> bool:
    """A one-to-one pairing of expected and actual calls where each pair matches (any order)."""
    if not expected:
        return not actual
    first, rest = expected[0], expected[1:]
    for j, (name, args) in enumerate(actual):
        if call_matches(first, name, args, schemas.get(name, {})):
            if _assignment_exists(rest, actual[:j] + actual[j + 1:], schemas):
                return True
    return False


def check_reply(case: dict[str, Any], reply: Reply) -> Verdict:
    """The verdict on one reply to one case."""
    if reply.error is not None:
        return Verdict(False, "http_error", detail=reply.error[:200])
    schemas = tools_by_name(case["tools"])
    expected = case["expected"]
    problems = [malformed_reason(name, text, schemas) for name, text in reply.calls]
    bad = [p for p in problems if p]
    if bad:
        return Verdict(False, "malformed", malformed=len(bad), detail="; ".join(bad)[:300])
    calls = [(name, json.loads(text) if text.strip() else {}) for name, text in reply.calls]
    if not expected:
        if calls:
            return Verdict(False, "called", detail=", ".join(n for n, _ in calls))
        return Verdict(True, "correct")
    if not calls:
        return Verdict(False, "text", detail=(reply.content or "")[:120])
    if len(calls) != len(expected):
        return Verdict(False, "call_count", detail=f"{len(calls)} calls, {len(expected)} expected")
    if Counter(n for n, _ in calls) != Counter(e["name"] for e in expected):
        return Verdict(False, "wrong_name", detail=", ".join(n for n, _ in calls))
    if not _assignment_exists(expected, calls, schemas):
        return Verdict(False, "wrong_args", detail=json.dumps([a for _, a in calls], ensure_ascii=False)[:300])
    return Verdict(True, "correct")


def case_problems(case: dict[str, Any]) -> list[str]:
    """What is wrong with a case itself (used by the case-file test)."""
    problems = []
    if case.get("category") not in CATEGORIES:
        problems.append(f"unknown category {case.get('category')!r}")
    schemas = tools_by_name(case.get("tools") or [])
    if not schemas:
        problems.append("no tools")
    expected = case.get("expected")
    if not isinstance(expected, list):
        return problems + ["'expected' is not a list"]
    want_calls = {"simple": (1, 1), "multiple": (1, 1), "parallel": (2, 8), "irrelevance": (0, 0)}.get(case.get("category"), (0, 8))
    if not want_calls[0] <= len(expected) <= want_calls[1]:
        problems.append(f"{len(expected)} expected calls for category {case.get('category')}")
    if case.get("category") == "multiple" and len(schemas) < 3:
        problems.append("a 'multiple' case offers fewer than 3 tools")
    for call in expected:
        schema = schemas.get(call.get("name"))
        if schema is None:
            problems.append(f"expected call to {call.get('name')!r}, which is not offered")
            continue
        args = call.get("arguments") or {}
        missing = set(schema.get("required") or []) - set(args)
        if missing:
            problems.append(f"{call['name']}: expected arguments lack required {sorted(missing)}")
        for key in args:
            if key not in (schema.get("properties") or {}):
                problems.append(f"{call['name']}: expected argument {key!r} is not in the schema")
    return problems


def canonical_value(expected: Any) -> Any:
    """One concrete value an expected value accepts (the first of `one_of`)."""
    if isinstance(expected, dict) and set(expected) == {"one_of"}:
        return canonical_value(expected["one_of"][0])
    if isinstance(expected, dict) and set(expected) == {"unordered"}:
        return [canonical_value(v) for v in expected["unordered"]]
    if isinstance(expected, list):
        return [canonical_value(v) for v in expected]
    if isinstance(expected, dict):
        return {k: canonical_value(v) for k, v in expected.items()}
    return expected


def canonical_reply(case: dict[str, Any]) -> Reply:
    """The reply a perfect model would give (its calls, or a text answer)."""
    calls = [(c["name"], json.dumps(canonical_value(c.get("arguments") or {}))) for c in case["expected"]]
    return Reply(calls=calls, content=None if calls else "A text answer.")
