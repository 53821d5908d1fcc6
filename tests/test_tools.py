"""Python functions → OpenAI tool schemas, calling tools, and the built-in tools."""

from __future__ import annotations

import enum
import json
import os
import re
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Optional, Union

import jsonschema
import pytest

from localtools.chat.builtin_tools import calculate, current_datetime, default_tools, make_file_tools
from localtools.tools import (
    ToolFileError,
    ToolSchemaError,
    as_tool,
    call_tool,
    function_to_tool,
    tool_map,
    tools_from_file,
)

# ------------------------------------------------------------------ schema table


def f_basic(a: str, b: int, c: float, d: bool) -> str:
    """All basic types.

    Args:
        a: A string
        b: An integer
        c: A float
        d: A boolean
    """
    return ""


def f_defaults(city: str, days: int = 3, metric: bool = True) -> str:
    """Forecast.

    Args:
        city: The city
        days: Number of days
        metric: Metric units
    """
    return ""


def f_optional(name: Optional[str], count: int | None = None) -> str:
    """Optional arguments.

    Args:
        name: Maybe a name
        count: Maybe a count
    """
    return ""


def f_literal(unit: Literal["celsius", "fahrenheit"], level: Literal[1, 2, 3] = 1) -> str:
    """Literals.

    Args:
        unit: The unit
        level: The level
    """
    return ""


def f_literal_mixed(x: Literal["a", 1]) -> str:
    """Mixed literal.

    Args:
        x: Something
    """
    return ""


def f_lists(names: list[str], matrix: list[list[float]], anything: list) -> str:
    """Lists.

    Args:
        names: Names
        matrix: Rows of numbers
        anything: A bare list
    """
    return ""


def f_dicts(scores: dict[str, int], nested: dict[str, list[bool]], bare: dict) -> str:
    """Dicts.

    Args:
        scores: Score per name
        nested: Flags per name
        bare: A bare dict
    """
    return ""


def f_tuples(point: tuple[int, float], many: tuple[str, ...]) -> str:
    """Tuples.

    Args:
        point: x and y
        many: Any number of strings
    """
    return ""


def f_union_basic(value: Union[int, str], other: float | bool) -> str:
    """Basic unions become a type list.

    Args:
        value: An int or a string
        other: A number or a flag
    """
    return ""


def f_union_complex(value: Union[list[int], str, None]) -> str:
    """Complex unions become anyOf.

    Args:
        value: Numbers or text
    """
    return ""


def f_any(payload: Any) -> str:
    """Any value.

    Args:
        payload: Whatever
    """
    return ""


def f_choices(drink: str) -> str:
    """Choices in the docstring.

    Args:
        drink: The drink to make (choices: ["tea", "coffee"])
    """
    return ""


def f_typed_args(path: str, retries: int = 2) -> str:
    """Google style with types in the Args lines.

    Args:
        path (str): Where to look
        retries (int, optional): How many
            times to try again,
            at most.

    Returns:
        str: ignored.

    Raises:
        ValueError: ignored too.
    """
    return ""


def f_multiline_description(q: str) -> str:
    """Search the web
    for a query.

    Args:
        q: The query
    """
    return ""


def f_no_args() -> str:
    """Take no arguments at all."""
    return ""


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


def f_enum(color: Color) -> str:
    """Enum members.

    Args:
        color: A colour
    """
    return ""


def f_nested(records: list[dict[str, Union[int, str]]], meta: Optional[dict[str, list[str]]] = None) -> str:
    """Nested containers.

    Args:
        records: The records
        meta: Tags per key
    """
    return ""


def _params(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


SCHEMA_CASES = [
    (f_basic, "All basic types.", _params({
        "a": {"type": "string", "description": "A string"},
        "b": {"type": "integer", "description": "An integer"},
        "c": {"type": "number", "description": "A float"},
        "d": {"type": "boolean", "description": "A boolean"},
    }, ["a", "b", "c", "d"])),
    (f_defaults, "Forecast.", _params({
        "city": {"type": "string", "description": "The city"},
        "days": {"type": "integer", "description": "Number of days"},
        "metric": {"type": "boolean", "description": "Metric units"},
    }, ["city"])),
    (f_optional, "Optional arguments.", _params({
        "name": {"type": "string", "nullable": True, "description": "Maybe a name"},
        "count": {"type": "integer", "nullable": True, "description": "Maybe a count"},
    })),
    (f_literal, "Literals.", _params({
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "The unit"},
        "level": {"type": "integer", "enum": [1, 2, 3], "description": "The level"},
    }, ["unit"])),
    (f_literal_mixed, "Mixed literal.", _params({
        "x": {"type": ["integer", "string"], "enum": ["a", 1], "description": "Something"},
    }, ["x"])),
    (f_lists, "Lists.", _params({
        "names": {"type": "array", "items": {"type": "string"}, "description": "Names"},
        "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "number"}},
                   "description": "Rows of numbers"},
        "anything": {"type": "array", "description": "A bare list"},
    }, ["names", "matrix", "anything"])),
    (f_dicts, "Dicts.", _params({
        "scores": {"type": "object", "additionalProperties": {"type": "integer"},
                   "description": "Score per name"},
        "nested": {"type": "object",
                   "additionalProperties": {"type": "array", "items": {"type": "boolean"}},
                   "description": "Flags per name"},
        "bare": {"type": "object", "description": "A bare dict"},
    }, ["scores", "nested", "bare"])),
    (f_tuples, "Tuples.", _params({
        "point": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "number"}],
                  "description": "x and y"},
        "many": {"type": "array", "items": {"type": "string"}, "description": "Any number of strings"},
    }, ["point", "many"])),
    (f_union_basic, "Basic unions become a type list.", _params({
        "value": {"type": ["integer", "string"], "description": "An int or a string"},
        "other": {"type": ["boolean", "number"], "description": "A number or a flag"},
    }, ["value", "other"])),
    (f_union_complex, "Complex unions become anyOf.", _params({
        "value": {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "string"}],
                  "nullable": True, "description": "Numbers or text"},
    })),
    (f_any, "Any value.", _params({"payload": {"description": "Whatever"}})),
    (f_choices, "Choices in the docstring.", _params({
        "drink": {"type": "string", "enum": ["tea", "coffee"], "description": "The drink to make"},
    }, ["drink"])),
    (f_typed_args, "Google style with types in the Args lines.", _params({
        "path": {"type": "string", "description": "Where to look"},
        "retries": {"type": "integer", "description": "How many times to try again, at most."},
    }, ["path"])),
    (f_multiline_description, "Search the web\nfor a query.", _params({
        "q": {"type": "string", "description": "The query"},
    }, ["q"])),
    (f_no_args, "Take no arguments at all.", _params({})),
    (f_enum, "Enum members.", _params({
        "color": {"type": "string", "enum": ["red", "green"], "description": "A colour"},
    }, ["color"])),
    (f_nested, "Nested containers.", _params({
        "records": {"type": "array",
                    "items": {"type": "object", "additionalProperties": {"type": ["integer", "string"]}},
                    "description": "The records"},
        "meta": {"type": "object",
                 "additionalProperties": {"type": "array", "items": {"type": "string"}},
                 "nullable": True, "description": "Tags per key"},
    }, ["records"])),
]


@pytest.mark.parametrize(("fn", "description", "parameters"), SCHEMA_CASES, ids=lambda x: getattr(x, "__name__", ""))
def test_function_to_tool_exact_schema(fn, description, parameters):
    tool = function_to_tool(fn)
    assert tool == {
        "type": "function",
        "function": {"name": fn.__name__, "description": description, "parameters": parameters},
    }
    json.dumps(tool)  # it is plain JSON


def test_schemas_are_valid_json_schema():
    for fn, _, _ in SCHEMA_CASES:
        parameters = function_to_tool(fn)["function"]["parameters"]
        jsonschema.Draft202012Validator.check_schema(parameters)


def test_method_skips_self():
    class Service:
        def lookup(self, key: str) -> str:
            """Look a key up.

            Args:
                key: The key
            """
            return key.upper()

    tool = function_to_tool(Service().lookup)
    assert tool["function"]["name"] == "lookup"
    assert list(tool["function"]["parameters"]["properties"]) == ["key"]
    assert call_tool(Service().lookup, {"key": "ab"}) == "AB"


# ------------------------------------------------------------------ schema errors


def e_no_doc(a: int) -> int:
    return a


def e_no_hint(a, b: int) -> int:  # type: ignore[no-untyped-def]
    """Missing hint.

    Args:
        a: A
        b: B
    """
    return b


def e_undocumented(a: int, b: int) -> int:
    """Only a is documented.

    Args:
        a: A
    """
    return a


def e_varargs(*values: int) -> int:
    """Var args.

    Args:
        values: Values
    """
    return 0


def e_kwargs(a: int, **extra: str) -> int:
    """Var kwargs.

    Args:
        a: A
        extra: Extra
    """
    return a


class Custom:
    pass


def e_custom_class(thing: Custom) -> int:
    """A custom class.

    Args:
        thing: A thing
    """
    return 0


def e_bad_choices(drink: str) -> str:
    """Single-quoted choices are not JSON.

    Args:
        drink: A drink (choices: ['tea', 'coffee'])
    """
    return drink


def e_int_keys(table: dict[int, str]) -> str:
    """JSON keys are strings.

    Args:
        table: A table
    """
    return ""


@pytest.mark.parametrize(
    ("fn", "pattern"),
    [
        (e_no_doc, r"e_no_doc has no docstring"),
        (e_no_hint, r"e_no_hint, argument a: missing type hint"),
        (e_undocumented, r"e_undocumented, argument b: not described"),
        (e_varargs, r"e_varargs: argument \*values"),
        (e_kwargs, r"e_kwargs: argument \*\*extra"),
        (e_custom_class, r"e_custom_class, argument thing: cannot describe type 'Custom'"),
        (e_bad_choices, r"e_bad_choices, argument drink: \(choices: \.\.\.\) must be a JSON list"),
        (e_int_keys, r"e_int_keys, argument table: JSON object keys are strings"),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_function_to_tool_refuses(fn, pattern):
    with pytest.raises(ToolSchemaError, match=pattern):
        function_to_tool(fn)


def test_lambda_and_partial_are_refused():
    import functools

    with pytest.raises(ToolSchemaError, match="name"):
        function_to_tool(lambda x: x)
    with pytest.raises(ToolSchemaError):
        function_to_tool(functools.partial(f_defaults, "Paris"))
    with pytest.raises(ToolSchemaError, match="Custom is a class"):
        function_to_tool(Custom)


# ------------------------------------------------------------------ as_tool / tool_map


def test_as_tool_accepts_function_and_dicts():
    assert as_tool(f_choices) == function_to_tool(f_choices)
    tool = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}}
    out = as_tool(tool)
    assert out == tool and out is not tool
    out["function"]["name"] = "changed"
    assert tool["function"]["name"] == "ping"  # a copy, not the caller's dict
    assert as_tool({"name": "ping"}) == {"type": "function", "function": {"name": "ping"}}


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [
        ({"type": "retrieval"}, "type must be 'function'"),
        ({"type": "function"}, "needs a 'function' object"),
        ({"type": "function", "function": {"name": "has space"}}, "tool name"),
        ({"type": "function", "function": {"name": "x" * 65}}, "tool name"),
        ({"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}, "type 'object'"),
        ({"type": "function", "function": {"name": "f", "parameters": {"required": "a"}}}, "required"),
        ({"type": "function", "function": {"name": "f", "description": 3}}, "description"),
        (42, "function or a dict"),
    ],
)
def test_as_tool_validates_dicts(bad, pattern):
    with pytest.raises(ToolSchemaError, match=pattern):
        as_tool(bad)


def test_tool_map_refuses_duplicate_names():
    assert tool_map([f_basic, f_choices]) == {"f_basic": f_basic, "f_choices": f_choices}
    with pytest.raises(ToolSchemaError, match="two tools are named 'f_basic'"):
        tool_map([f_basic, f_basic])


# ------------------------------------------------------------------ call_tool


def add(a: int, b: int = 1) -> int:
    """Add.

    Args:
        a: First
        b: Second
    """
    return a + b


def greet(name: Optional[str]) -> str:
    """Greet.

    Args:
        name: Who
    """
    return f"hello {name or 'stranger'}"


def info(city: str) -> dict[str, Any]:
    """Info.

    Args:
        city: The city
    """
    return {"city": city, "temp": 21.5, "tags": ["sunny"], "unicode": "é"}


def boom(message: str) -> str:
    """Fail.

    Args:
        message: The error
    """
    raise RuntimeError(message)


def quits(code: int) -> str:
    """Exit the process (it must not).

    Args:
        code: Exit code
    """
    raise SystemExit(code)


def test_call_tool_results():
    assert call_tool(add, {"a": 2, "b": 3}) == "5"
    assert call_tool(add, '{"a": 2}') == "3"  # arguments as the JSON string OpenAI sends
    assert call_tool(greet, {}) == "hello stranger"  # Optional without default gets None
    assert call_tool(greet, {"name": "Ada"}) == "hello Ada"
    assert json.loads(call_tool(info, {"city": "Paris"})) == {
        "city": "Paris", "temp": 21.5, "tags": ["sunny"], "unicode": "é"}
    assert "é" in call_tool(info, {"city": "x"})  # not \u-escaped
    assert call_tool(lambda: None, {}) == "null"
    assert call_tool(lambda: {3}, {}) == "{3}"  # not JSON-serialisable: str()


def test_call_tool_errors_become_strings():
    assert call_tool(boom, {"message": "disk on fire"}) == "error: disk on fire"
    assert call_tool(quits, {"code": 3}) == "error: 3"
    assert call_tool(add, {"a": 1, "c": 2}) == "error: unexpected argument(s): c"
    assert call_tool(add, {}) == "error: missing required argument(s): a"
    assert call_tool(add, "{not json").startswith("error: arguments are not valid JSON")
    assert call_tool(add, "[1, 2]") == "error: arguments must be a JSON object, got list"
    assert call_tool(add, {"a": "x"}).startswith("error: ")


# ------------------------------------------------------------------ tools_from_file


def test_tools_from_file(tmp_path: Path):
    helper = tmp_path / "helper_mod_for_tools.py"
    helper.write_text("def imported_helper(x: int) -> int:\n    '''H.\n\n    Args:\n        x: X\n    '''\n    return x\n")
    source = tmp_path / "my_tools.py"
    source.write_text(textwrap.dedent('''
        import sys, os
        from os.path import join
        from typing import Optional
        sys.path.insert(0, os.path.dirname(__file__))
        from helper_mod_for_tools import imported_helper

        def shout(text: str) -> str:
            """Shout.

            Args:
                text: What to shout
            """
            return text.upper()

        def _private(x: int) -> int:
            return x

        class NotAFunction:
            pass

        def count(items: list[str], limit: Optional[int] = None) -> int:
            """Count items.

            Args:
                items: The items
                limit: Stop here
            """
            return len(items[:limit])
    '''))
    functions = tools_from_file(source)
    assert [f.__name__ for f in functions] == ["shout", "count"]
    shout, count = functions
    assert call_tool(shout, {"text": "hi"}) == "HI"
    assert call_tool(count, {"items": ["a", "b", "c"], "limit": 2}) == "2"
    assert function_to_tool(count)["function"]["parameters"]["required"] == ["items"]


def test_tools_from_file_respects_all(tmp_path: Path):
    source = tmp_path / "with_all.py"
    source.write_text(
        "__all__ = ['b']\n"
        "def a() -> int:\n    '''A.'''\n    return 1\n"
        "def b() -> int:\n    '''B.'''\n    return 2\n"
    )
    assert [f.__name__ for f in tools_from_file(source)] == ["b"]


def test_tools_from_file_errors(tmp_path: Path):
    with pytest.raises(ToolFileError, match="not found"):
        tools_from_file(tmp_path / "missing.py")
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    with pytest.raises(ToolFileError, match="SyntaxError"):
        tools_from_file(broken)
    raising = tmp_path / "raising.py"
    raising.write_text("raise RuntimeError('nope')\n")
    with pytest.raises(ToolFileError, match="RuntimeError: nope"):
        tools_from_file(raising)


# ------------------------------------------------------------------ built-in tools


def test_builtin_tools_have_schemas():
    tools = [function_to_tool(f) for f in default_tools(".")]
    assert [t["function"]["name"] for t in tools] == ["current_datetime", "calculate", "list_files", "read_file"]
    by_name = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    assert by_name["calculate"]["required"] == ["expression"]
    assert "required" not in by_name["current_datetime"]
    assert by_name["read_file"]["required"] == ["path"]
    assert by_name["read_file"]["properties"]["max_bytes"]["type"] == "integer"


def test_current_datetime():
    text = call_tool(current_datetime, {"timezone": "Asia/Tokyo"})
    stamp = datetime.fromisoformat(text.split(" ")[0])
    assert stamp.utcoffset().total_seconds() == 9 * 3600
    assert abs((stamp - datetime.now(stamp.tzinfo)).total_seconds()) < 60
    assert datetime.fromisoformat(current_datetime().split(" ")[0]).utcoffset().total_seconds() == 0
    assert call_tool(current_datetime, {"timezone": "Mars/Olympus"}).startswith("error: unknown time zone")
    assert call_tool(current_datetime, {"timezone": "../../etc/passwd"}).startswith("error: unknown time zone")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("(2 + 3) * 4", 20),
        ("7 // 2", 3),
        ("7 % 4", 3),
        ("2 ** 10", 1024),
        ("-3 ** 2", -9),
        ("+4 - -1", 5),
        ("1 / 4", 0.25),
        ("sqrt(16) + abs(-2)", 6.0),
        ("round(pi, 2)", 3.14),
        ("max(1, 5, 3) - min(4, 2)", 3),
        ("log(e)", 1.0),
        ("floor(2.7) + ceil(2.1)", 5),
        ("1e3 + 0.5", 1000.5),
    ],
)
def test_calculate(expression, expected):
    result = calculate(expression)
    assert result == pytest.approx(expected)
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('echo hi')", "not allowed"),
        ("().__class__.__bases__", "not allowed"),
        ("open('/etc/passwd')", "not allowed"),
        ("x + 1", "not allowed"),
        ("sqrt.__call__(4)", "not allowed"),
        ("[1, 2]", "not allowed"),
        ("lambda: 1", "not allowed"),
        ("'a' * 3", "only numbers"),
        ("True + 1", "only numbers"),
        ("sqrt(x=4)", "not allowed"),
        ("max(*[1, 2])", "not allowed"),
        ("9 ** 9 ** 9", "too large"),
        ("2 ** 100000", "too large"),
        ("10 ** 1000 * 10 ** 1000 * 10 ** 1000 * 10 ** 1000 * 10 ** 1000", "too large"),
        ("round(1, -10 ** 9)", "ndigits"),
        ("1.5 ** 100000", "too large"),
        ("1e308 * 10", "not a finite number"),
        ("(-8) ** 0.5", "not a real number"),
        ("1 / 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("sqrt(-1)", "sqrt"),
        ("1 +", "not a valid expression"),
        ("1" + "+1" * 300, "longer than"),
    ],
)
def test_calculate_refuses(expression, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        calculate(expression)
    assert call_tool(calculate, {"expression": expression}).startswith("error: ")


@pytest.fixture()
def shared(tmp_path: Path) -> Path:
    root = tmp_path / "shared"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "note.txt").write_text("inside note\n")
    (root / "hello.txt").write_text("hello world\n")
    (root / "big.bin").write_bytes(b"x" * 5000)
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    (root / "escape_link").symlink_to(secret)
    (root / "dir_link").symlink_to(tmp_path)
    (root / "inner_link").symlink_to(root / "hello.txt")
    return root


def test_file_tools_read_and_list(shared: Path):
    list_files, read_file = make_file_tools(shared)
    assert list_files() == ["big.bin", "dir_link", "docs/", "escape_link", "hello.txt", "inner_link"]
    assert list_files("docs") == ["note.txt"]
    assert read_file("hello.txt") == "hello world\n"
    assert read_file("docs/note.txt") == "inside note\n"
    assert read_file("./docs/note.txt") == "inside note\n"
    assert read_file(str(shared / "hello.txt")) == "hello world\n"  # absolute, but inside
    assert read_file("inner_link") == "hello world\n"  # a symlink that stays inside
    truncated = read_file("big.bin", max_bytes=100)
    assert truncated.startswith("x" * 100) and "truncated at 100 bytes" in truncated
    assert json.loads(call_tool(list_files, {"path": "docs"})) == ["note.txt"]


@pytest.mark.parametrize(
    ("tool", "path", "message"),
    [
        ("read_file", "../secret.txt", "'..' is not allowed"),
        ("read_file", "docs/../../secret.txt", "'..' is not allowed"),
        ("read_file", "/etc/passwd", "outside the allowed directory"),
        ("read_file", "escape_link", "outside the allowed directory"),
        ("read_file", "dir_link/secret.txt", "outside the allowed directory"),
        ("read_file", "docs", "not a file"),
        ("read_file", "missing.txt", "not a file"),
        ("read_file", "hello.txt\x00.png", "invalid path"),
        ("list_files", "..", "'..' is not allowed"),
        ("list_files", "/", "outside the allowed directory"),
        ("list_files", "dir_link", "outside the allowed directory"),
        ("list_files", "hello.txt", "not a folder"),
    ],
)
def test_file_tools_refuse_escapes(shared: Path, tool, path, message):
    tools = {f.__name__: f for f in make_file_tools(shared)}
    with pytest.raises(ValueError, match=re.escape(message)):
        tools[tool](path)
    assert call_tool(tools[tool], {"path": path}).startswith("error: ")


def test_file_tools_root_must_be_a_directory(tmp_path: Path):
    with pytest.raises(ValueError, match="not a directory"):
        make_file_tools(tmp_path / "nope")


def test_file_tools_root_given_through_a_symlink(shared: Path, tmp_path: Path):
    alias = tmp_path / "alias"
    alias.symlink_to(shared)
    list_files, read_file = make_file_tools(alias)
    assert read_file("hello.txt") == "hello world\n"
    with pytest.raises(ValueError, match="outside"):
        read_file(os.fspath(tmp_path / "secret.txt"))
