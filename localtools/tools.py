"""Python functions as OpenAI tools, described the way transformers' `get_json_schema` does.

A typed function with a Google-style docstring is enough to offer a tool to a model:
the signature gives the JSON Schema, the docstring gives the descriptions. Anything we
cannot describe faithfully is refused (ToolSchemaError), because a wrong schema makes
the model call the tool wrongly without anyone noticing.

Deliberate differences from transformers: `Optional[X]` parameters are not required
even without a default (calling fills them with None); `Args:` lines may carry a type
in parentheses (`x (int): ...`); `tuple[X, ...]` is an array of X; unknown classes are
refused instead of silently becoming `{"type": "object"}`; `Returns:` is ignored.
"""

from __future__ import annotations

import enum
import hashlib
import importlib.util
import inspect
import json
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_MAX_OUTPUT_CHARS",
    "cap_output",
    "ToolSchemaError",
    "ToolFileError",
    "function_to_tool",
    "tools_from_file",
    "as_tool",
    "tool_map",
    "call_tool",
]


class ToolSchemaError(ValueError):
    """A function (or tool dict) that cannot be described as a tool; names the culprit."""


class ToolFileError(Exception):
    """A tools file that cannot be imported."""


_BASIC: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
}
_SECTION = re.compile(
    r"^(Args|Arguments|Returns?|Yields?|Raises|Examples?|Notes?|Warnings?|See Also|Todo):\s*$",
    re.IGNORECASE,
)
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_CHOICES = re.compile(r"\(choices:\s*(.*?)\)\s*$", re.IGNORECASE | re.DOTALL)
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# ---------------------------------------------------------------- docstrings


def _split_docstring(doc: str) -> tuple[str, list[str] | None]:
    """(description, lines of the Args block or None). `doc` is already dedented."""
    lines = doc.splitlines()
    description: list[str] = []
    args: list[str] | None = None
    section: str | None = None
    for line in lines:
        header = _SECTION.match(line.strip()) if not line[:1].isspace() else None
        if header:
            section = header.group(1).lower()
            if section in ("args", "arguments"):
                args = [] if args is None else args
            continue
        if section is None:
            description.append(line)
        elif section in ("args", "arguments") and args is not None:
            args.append(line)
    return "\n".join(description).strip(), args


def _parse_args_block(lines: list[str]) -> dict[str, str]:
    """`name (type): text` entries; continuation lines join with single spaces."""
    content = [line for line in lines if line.strip()]
    if not content:
        return {}
    indent = min(len(line) - len(line.lstrip()) for line in content)
    parsed: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in content:
        own_indent = len(line) - len(line.lstrip())
        match = _ARG_LINE.match(line.strip()) if own_indent == indent else None
        if match:
            current = parsed.setdefault(match.group(1).lstrip("*"), [])
            if match.group(2).strip():
                current.append(match.group(2).strip())
        elif current is not None:
            current.append(line.strip())
    return {name: " ".join(words) for name, words in parsed.items()}


# ---------------------------------------------------------------- type hints


def _schema_for(hint: Any, where: str) -> dict[str, Any]:
    """JSON Schema for one type hint; `where` names the function and argument for errors."""
    if hint is Any:
        return {}
    if hint in _BASIC:
        return dict(_BASIC[hint])
    if hint is list:
        return {"type": "array"}
    if hint is dict:
        return {"type": "object"}
    if hint is tuple:
        return {"type": "array"}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _literal_schema([member.value for member in hint], where)

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return _union_schema(args, where)
    if origin is typing.Literal:
        return _literal_schema(list(args), where)
    if origin is list:
        return {"type": "array", "items": _schema_for(args[0], where)} if args else {"type": "array"}
    if origin is dict:
        out: dict[str, Any] = {"type": "object"}
        if args:
            if args[0] not in (str, Any):
                raise ToolSchemaError(f"{where}: JSON object keys are strings, not {args[0]!r}")
            out["additionalProperties"] = _schema_for(args[1], where)
        return out
    if origin is tuple:
        if not args:
            return {"type": "array"}
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _schema_for(args[0], where)}
        if Ellipsis in args:
            raise ToolSchemaError(f"{where}: unsupported tuple type {hint!r}")
        return {"type": "array", "prefixItems": [_schema_for(a, where) for a in args]}
    raise ToolSchemaError(
        f"{where}: cannot describe type {getattr(hint, '__name__', hint)!r} as JSON Schema "
        "(use str, int, float, bool, None, list, dict, tuple, Literal, Union, Any or an Enum)"
    )


def _union_schema(args: tuple[Any, ...], where: str) -> dict[str, Any]:
    nullable = type(None) in args
    subtypes = [_schema_for(a, where) for a in args if a is not type(None)]
    if len(subtypes) == 1:
        out = subtypes[0]
    elif all(set(s) == {"type"} and isinstance(s["type"], str) for s in subtypes):
        out = {"type": sorted({s["type"] for s in subtypes})}
    else:
        out = {"anyOf": subtypes}
    if nullable:
        out["nullable"] = True
    return out


_JSON_TYPE_OF = {str: "string", bool: "boolean", int: "integer", float: "number"}


def _literal_schema(values: list[Any], where: str) -> dict[str, Any]:
    kinds: set[str] = set()
    for value in values:
        if value is None:
            continue
        kind = _JSON_TYPE_OF.get(type(value))
        if kind is None:
            raise ToolSchemaError(f"{where}: literal {value!r} is not a JSON scalar")
        kinds.add(kind)
    out: dict[str, Any] = {}
    if kinds:
        out["type"] = kinds.pop() if len(kinds) == 1 else sorted(kinds)
    if None in values:
        out["nullable"] = True
    out["enum"] = list(values)
    return out


def _admits_none(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return type(None) in typing.get_args(hint)
    if origin is typing.Literal:
        return None in typing.get_args(hint)
    return hint is type(None) or hint is Any


# ---------------------------------------------------------------- functions


def _tool_name(fn: Callable[..., Any]) -> str:
    if inspect.isclass(fn):
        raise ToolSchemaError(f"{fn.__name__} is a class; a tool is a function or a method")
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise ToolSchemaError(f"{fn!r}: a tool needs a name of letters, digits, _ or - (got {name!r})")
    return name


def _parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    name = _tool_name(fn)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ToolSchemaError(f"function {name}: no inspectable signature ({exc})") from exc
    params = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            star = "*" if param.kind == param.VAR_POSITIONAL else "**"
            raise ToolSchemaError(
                f"function {name}: argument {star}{param.name} cannot be described; "
                "a tool takes named arguments only"
            )
        if param.kind == param.POSITIONAL_ONLY:
            raise ToolSchemaError(
                f"function {name}: argument {param.name} is positional-only; tools are called by keyword"
            )
        params.append(param)
    return params


def _type_hints(fn: Callable[..., Any], name: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception as exc:  # NameError from a string annotation, and friends
        raise ToolSchemaError(f"function {name}: cannot evaluate its type hints ({exc})") from exc


def function_to_tool(fn: Callable[..., Any]) -> dict[str, Any]:
    """The OpenAI tool dict for a typed function with a Google-style docstring."""
    name = _tool_name(fn)
    params = _parameters(fn)
    doc = inspect.getdoc(fn)
    if not doc or not doc.strip():
        raise ToolSchemaError(f"function {name} has no docstring; it is the tool's description")
    description, args_block = _split_docstring(doc)
    arg_docs = _parse_args_block(args_block or [])
    hints = _type_hints(fn, name)

    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in params:
        where = f"function {name}, argument {param.name}"
        if param.name not in hints:
            raise ToolSchemaError(f"{where}: missing type hint")
        if param.name not in arg_docs or not arg_docs[param.name]:
            raise ToolSchemaError(
                f"{where}: not described in the docstring's Args: section "
                f"(write `{param.name}: what it is`)"
            )
        schema = _schema_for(hints[param.name], where)
        text = arg_docs[param.name]
        choices = _CHOICES.search(text)
        if choices:
            try:
                values = json.loads(choices.group(1))
            except json.JSONDecodeError as exc:
                raise ToolSchemaError(
                    f"{where}: (choices: ...) must be a JSON list, e.g. [\"a\", \"b\"] ({exc.msg})"
                ) from exc
            if not isinstance(values, list) or not values:
                raise ToolSchemaError(f"{where}: (choices: ...) must be a non-empty JSON list")
            schema["enum"] = values
            text = text[: choices.start()].strip()
        schema["description"] = text
        properties[param.name] = schema
        if param.default is inspect.Parameter.empty and not _admits_none(hints[param.name]):
            required.append(param.name)

    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


def as_tool(x: Callable[..., Any] | Mapping[str, Any]) -> dict[str, Any]:
    """A function or an OpenAI tool dict (also a bare `{"name", "parameters"}` function
    dict), checked and returned as a fresh OpenAI tool dict."""
    if callable(x) and not isinstance(x, Mapping):
        return function_to_tool(x)
    if not isinstance(x, Mapping):
        raise ToolSchemaError(f"a tool is a function or a dict, not {type(x).__name__}")
    tool = json.loads(json.dumps(x))  # a deep copy that also proves it is JSON
    if "type" not in tool and "name" in tool:
        tool = {"type": "function", "function": tool}
    if tool.get("type") != "function":
        raise ToolSchemaError(f"tool type must be 'function', got {tool.get('type')!r}")
    function = tool.get("function")
    if not isinstance(function, dict):
        raise ToolSchemaError("tool needs a 'function' object")
    name = function.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise ToolSchemaError(f"tool name must be 1-64 letters, digits, _ or -, got {name!r}")
    if "description" in function and not isinstance(function["description"], str):
        raise ToolSchemaError(f"tool {name}: description must be a string")
    parameters = function.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, dict):
            raise ToolSchemaError(f"tool {name}: parameters must be a JSON Schema object")
        if parameters.get("type", "object") != "object":
            raise ToolSchemaError(f"tool {name}: parameters must have type 'object'")
        properties = parameters.get("properties", {})
        if not isinstance(properties, dict):
            raise ToolSchemaError(f"tool {name}: parameters.properties must be an object")
        required = parameters.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise ToolSchemaError(f"tool {name}: parameters.required must be a list of names")
    return tool


def tool_map(functions: list[Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Tool name → function, refusing two functions with one name."""
    out: dict[str, Callable[..., Any]] = {}
    for fn in functions:
        name = _tool_name(fn)
        if name in out:
            raise ToolSchemaError(f"two tools are named {name!r}")
        out[name] = fn
    return out


def tools_from_file(path: str | Path) -> list[Callable[..., Any]]:
    """Public functions defined in a `.py` file (not imported ones, not `_private`),
    in definition order; `__all__`, when present, narrows the list. Runs the file:
    it is the user's own code."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ToolFileError(f"tools file not found: {path}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    module_name = f"localtools_user_tools_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ToolFileError(f"cannot import {path}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and get_type_hints look it up
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise ToolFileError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    exported = getattr(module, "__all__", None)
    functions: list[Callable[..., Any]] = []
    for name, obj in vars(module).items():
        if name.startswith("_") or not inspect.isfunction(obj):
            continue
        if obj.__module__ != module_name:
            continue
        if exported is not None and name not in exported:
            continue
        functions.append(obj)
    return functions


DEFAULT_MAX_OUTPUT_CHARS = 8000


def cap_output(text: str, limit: int | None) -> str:
    """At most `limit` characters of a tool's result, saying so when cut (None: no cap).

    Tool output is untrusted input to the model and a context window is small:
    the note tells the model (and the user) that it is reading part of it."""
    if limit is None or len(text) <= limit:
        return text
    return text[:limit] + f"\n[output truncated: showing the first {limit} of {len(text)} characters]"


def _result_text(result: Any) -> str:
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(result)


def call_tool(fn: Callable[..., Any], arguments: Mapping[str, Any] | str | None) -> str:
    """Call a tool with the model's arguments and give the model a string back.

    Arguments may be the JSON string from `tool_calls[].function.arguments`. Results:
    a str as is, anything else as JSON (str() if not serialisable). Every failure,
    bad arguments included, becomes `"error: <message>"`, so a bad call is something
    the model can read and correct, never a crash.
    """
    try:
        if arguments is None or arguments == "":
            arguments = {}
        if isinstance(arguments, str):
            arguments = json.loads(arguments)
        if not isinstance(arguments, Mapping):
            return f"error: arguments must be a JSON object, got {type(arguments).__name__}"
        kwargs = dict(arguments)
        signature = inspect.signature(fn)
        accepts_any = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
        unknown = [k for k in kwargs if k not in signature.parameters]
        if unknown and not accepts_any:
            return f"error: unexpected argument(s): {', '.join(sorted(unknown))}"
        hints = typing.get_type_hints(fn) if not accepts_any else {}
        for param in signature.parameters.values():
            absent = param.name not in kwargs and param.default is inspect.Parameter.empty
            if absent and param.name in hints and _admits_none(hints[param.name]):
                kwargs[param.name] = None
        missing = [
            p.name
            for p in signature.parameters.values()
            if p.name not in kwargs
            and p.default is inspect.Parameter.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if missing:
            return f"error: missing required argument(s): {', '.join(missing)}"
        result = fn(**kwargs)
    except json.JSONDecodeError as exc:
        return f"error: arguments are not valid JSON ({exc.msg})"
    except (Exception, SystemExit) as exc:
        message = str(exc) or type(exc).__name__
        return f"error: {message}"
    return _result_text(result)
