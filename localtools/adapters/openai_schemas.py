"""OpenAI request bodies as pydantic models, plus the checks types cannot express.

Validation happens in two steps: pydantic (strict types and ranges, so a
string is never silently taken as a number) and `check_chat_request`
(cross-field rules: tool results answer earlier calls, tool_choice names an
offered tool, …). Both report through AdapterError with OpenAI's `param` path,
e.g. `messages[2].tool_call_id`.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from localtools.adapters.errors import AdapterError, bad_request

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MESSAGE_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
TOOL_CHOICES = ("none", "auto", "required")
MAX_STOP = 4


class _Loose(BaseModel):
    """Strict types; unknown fields accepted (clients send many we do not use)."""

    model_config = ConfigDict(strict=True, extra="allow", populate_by_name=True)


class _Closed(BaseModel):
    """Strict types; unknown fields rejected (shapes OpenAI defines exactly)."""

    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)


# ---------------------------------------------------------------- messages


class ContentPart(_Loose):
    type: str
    text: str | None = None


class FunctionCallIn(_Loose):
    name: str
    arguments: str


class ToolCallIn(_Loose):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessage(_Loose):
    role: str
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    function_call: FunctionCallIn | None = None

    @field_validator("role")
    @classmethod
    def _known_role(cls, role: str) -> str:
        if role not in MESSAGE_ROLES:
            raise ValueError(f"unknown role {role!r}: expected one of {', '.join(MESSAGE_ROLES[:-1])}")
        return role


# ---------------------------------------------------------------- tools


class FunctionDef(_Closed):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDef(_Closed):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(_Loose):
    name: str


class NamedToolChoice(_Loose):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(_Loose):
    name: str | None = None
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


class ResponseFormat(_Loose):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(_Loose):
    include_usage: bool = False


# ---------------------------------------------------------------- requests


class _SamplingFields(_Loose):
    model: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    min_p: float | None = Field(default=None, ge=0, le=1)
    repeat_penalty: float | None = Field(default=None, gt=0)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    n: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, gt=0)


class ChatCompletionRequest(_SamplingFields):
    messages: list[ChatMessage]
    max_completion_tokens: int | None = Field(default=None, gt=0)
    tools: list[ToolDef] | None = None
    tool_choice: str | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    functions: list[FunctionDef] | None = None
    function_call: str | NamedFunction | None = None
    response_format: ResponseFormat | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)  # OpenAI's bounds


class CompletionRequest(_SamplingFields):
    prompt: str | list[str]
    echo: bool | None = None
    suffix: str | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)  # OpenAI's bounds for completions
    best_of: int | None = None


# ---------------------------------------------------------------- pydantic errors → AdapterError

_TYPE_TAGS = {"str", "int", "float", "bool", "none", "dict", "list"}


def _is_union_tag(part: str) -> bool:
    return "[" in part or part in _TYPE_TAGS or part[:1].isupper()


def param_path(loc: tuple[Any, ...]) -> str:
    """A pydantic location as OpenAI writes params: `messages[2].content[0].text`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not _is_union_tag(part):
            out += f".{part}" if out else part
    return out


_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
}


def _describe(error: ErrorDetails, param: str) -> str:
    kind = error["type"]
    if kind == "missing":
        return f"Missing required parameter: '{param}'."
    if kind == "extra_forbidden":
        return f"Unrecognized parameter: '{param}'."
    if kind in _TYPE_WORDS:
        got = type(error.get("input")).__name__
        got = {"NoneType": "null", "dict": "object", "list": "array", "str": "string"}.get(got, got)
        return f"Invalid type for '{param}': expected {_TYPE_WORDS[kind]}, but got {got}."
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return f"Invalid value for '{param}': {msg}."


def from_validation_error(exc: ValidationError) -> AdapterError:
    """The most specific error of a pydantic failure, as a 400 with its param."""
    errors = exc.errors(include_url=False)
    # union members each report; the deepest location is the one that says what is wrong
    error = max(errors, key=lambda e: len([p for p in e["loc"] if not (isinstance(p, str) and _is_union_tag(p))]))
    param = param_path(tuple(error["loc"]))
    return bad_request(_describe(error, param), param=param or None)


M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], body: Any) -> M:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise from_validation_error(exc) from None


# ---------------------------------------------------------------- cross-field checks


def _check_content(msg: ChatMessage, i: int, required: bool) -> None:
    if msg.content is None:
        if required:
            raise bad_request(
                f"Missing required parameter: 'messages[{i}].content' (a {msg.role} message needs content).",
                param=f"messages[{i}].content",
            )
        return
    if isinstance(msg.content, list):
        for j, part in enumerate(msg.content):
            where = f"messages[{i}].content[{j}]"
            if part.type != "text":
                raise bad_request(
                    f"Content part type {part.type!r} is not supported: this server takes text only "
                    "(parts of the form {\"type\": \"text\", \"text\": ...}).",
                    param=f"{where}.type",
                )
            if part.text is None:
                raise bad_request(f"Missing required parameter: '{where}.text'.", param=f"{where}.text")


def _check_messages(messages: list[ChatMessage]) -> None:
    if not messages:
        raise bad_request("'messages' must contain at least one message.", param="messages")
    call_ids: set[str] = set()
    for i, msg in enumerate(messages):
        role = msg.role
        if role in ("system", "developer", "user"):
            _check_content(msg, i, required=True)
        elif role == "assistant":
            has_calls = bool(msg.tool_calls) or msg.function_call is not None
            _check_content(msg, i, required=not has_calls)
            for j, call in enumerate(msg.tool_calls or []):
                where = f"messages[{i}].tool_calls[{j}].function.arguments"
                try:
                    json.loads(call.function.arguments or "{}")
                except ValueError:
                    raise bad_request(
                        f"'{where}' must be a JSON string (the arguments the model produced), "
                        f"got {call.function.arguments[:60]!r}.",
                        param=where,
                    ) from None
                call_ids.add(call.id)
        elif role == "tool":
            _check_content(msg, i, required=True)
            if not msg.tool_call_id:
                raise bad_request(
                    f"Missing required parameter: 'messages[{i}].tool_call_id' "
                    "(a tool message answers a call by its id).",
                    param=f"messages[{i}].tool_call_id",
                )
            if msg.tool_call_id not in call_ids:
                raise bad_request(
                    f"Invalid 'messages[{i}].tool_call_id': {msg.tool_call_id!r} answers no tool call "
                    "of an earlier assistant message.",
                    param=f"messages[{i}].tool_call_id",
                )
        elif role == "function":
            _check_content(msg, i, required=True)
            if not msg.name:
                raise bad_request(
                    f"Missing required parameter: 'messages[{i}].name' (a function message names its function).",
                    param=f"messages[{i}].name",
                )


def _check_parameters(params: dict[str, Any] | None, where: str) -> None:
    if params is None:
        return
    kind = params.get("type", "object")
    if kind != "object":
        raise bad_request(
            f"Invalid schema for '{where}': the parameters must be a JSON Schema of type 'object', got {kind!r}.",
            param=where,
        )
    _check_schema_keywords(params, where)


_SCHEMA_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}
_COUNT_KEYWORDS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_NUMBER_KEYWORDS = ("minimum", "maximum", "multipleOf")
_LIST_KEYWORDS = ("anyOf", "oneOf", "allOf")


def _keyword_error(keyword: str, wants: str, path: str) -> Exception:
    return bad_request(f"Invalid schema for '{path}': '{keyword}' must be {wants}.", param=f"{path}.{keyword}")


def _check_schema_keywords(schema: dict[str, Any], where: str) -> None:
    """Keywords with values of the wrong kind (`"type": "strng"`, `"enum": "x"`,
    `"minLength": "3"`) are a client's mistake: a 400 naming the keyword, not a schema
    silently relaxed to "any JSON"."""
    stack: list[tuple[Any, str]] = [(schema, where)]
    while stack:
        node, path = stack.pop()
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        kinds = kind if isinstance(kind, list) else [kind]
        if kind is not None and not all(isinstance(k, str) and k in _SCHEMA_TYPES for k in kinds):
            raise _keyword_error("type", "one of " + ", ".join(sorted(_SCHEMA_TYPES)) + " (or a list of them)", path)
        if "enum" in node and not isinstance(node["enum"], list):
            raise _keyword_error("enum", "an array of allowed values", path)
        for key in _COUNT_KEYWORDS:
            value = node.get(key)
            if key in node and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise _keyword_error(key, "a non-negative integer", path)
        for key in _NUMBER_KEYWORDS + ("exclusiveMinimum", "exclusiveMaximum"):
            value = node.get(key)
            bool_ok = key.startswith("exclusive")  # draft 4 writes these as booleans
            if key in node and not (isinstance(value, (int, float)) and (bool_ok or not isinstance(value, bool))):
                raise _keyword_error(key, "a number", path)
        if "required" in node and not (isinstance(node["required"], list)
                                       and all(isinstance(r, str) for r in node["required"])):
            raise _keyword_error("required", "an array of property names", path)
        props = node.get("properties")
        if props is not None:
            if not isinstance(props, dict) or not all(isinstance(v, (dict, bool)) for v in props.values()):
                raise _keyword_error("properties", "an object mapping names to schemas", path)
            stack += [(sub, f"{path}.properties.{name}") for name, sub in props.items()]
        for key in _LIST_KEYWORDS:
            if key in node:
                if not isinstance(node[key], list) or not node[key]:
                    raise _keyword_error(key, "a non-empty array of schemas", path)
                stack += [(sub, f"{path}.{key}[{i}]") for i, sub in enumerate(node[key])]
        items = node.get("items")
        for i, sub in enumerate(items if isinstance(items, list) else [items]):
            stack.append((sub, f"{path}.items" + (f"[{i}]" if isinstance(items, list) else "")))
        for key in ("additionalProperties", "not"):
            stack.append((node.get(key), f"{path}.{key}"))
        for key in ("$defs", "definitions"):
            defs = node.get(key)
            if isinstance(defs, dict):
                stack += [(sub, f"{path}.{key}.{name}") for name, sub in defs.items()]


def _check_functions(functions: list[FunctionDef], prefix: str, suffix: str) -> None:
    seen: set[str] = set()
    for i, fn in enumerate(functions):
        where = f"{prefix}[{i}]{suffix}"
        if not TOOL_NAME.match(fn.name):
            raise bad_request(
                f"Invalid '{where}.name': {fn.name[:80]!r} must be 1 to 64 letters, digits, underscores or dashes.",
                param=f"{where}.name",
            )
        if fn.name in seen:
            raise bad_request(
                f"Invalid '{where}.name': the name {fn.name!r} is used by more than one tool.",
                param=f"{where}.name",
            )
        seen.add(fn.name)
        _check_parameters(fn.parameters, f"{where}.parameters")
        if fn.strict:
            check_strict_schema(fn.parameters or {"type": "object", "properties": {}}, f"{where}.parameters")


def check_strict_schema(schema: dict[str, Any], where: str) -> None:
    """`strict: true` promises output that matches the schema: refuse what the grammar cannot enforce."""
    from localtools.dialects.grammar import schema_gaps

    gaps = schema_gaps(schema)
    if gaps:
        raise bad_request(
            f"Invalid schema for '{where}' with strict=true: the output cannot be guaranteed to match it: "
            + "; ".join(gaps[:5])
            + ". Remove these keywords, or set strict to false to have them relaxed.",
            param=where,
            code="unsupported_schema",
        )


def _tool_choice_value(choice: str | NamedToolChoice | NamedFunction | None, param: str) -> str | dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise bad_request(
                f"Invalid value for '{param}': {choice!r}; expected 'none', 'auto', 'required' or "
                '{"type": "function", "function": {"name": ...}}.',
                param=param,
            )
        return choice
    name = choice.function.name if isinstance(choice, NamedToolChoice) else choice.name
    return {"type": "function", "function": {"name": name}}


def resolve_tools(req: ChatCompletionRequest) -> tuple[list[dict[str, Any]] | None, str | dict[str, Any] | None]:
    """Validated tools and tool_choice as plain OpenAI dicts (legacy `functions` mapped)."""
    if req.functions is not None and req.tools is not None:
        raise bad_request("Send either 'tools' or the legacy 'functions', not both.", param="functions")
    if req.functions is not None:
        _check_functions(req.functions, "functions", "")
        tools: list[dict[str, Any]] | None = [
            {"type": "function", "function": f.model_dump(exclude_none=True)} for f in req.functions
        ]
        choice_param = "function_call"
        if req.tool_choice is not None:
            raise bad_request("With legacy 'functions', use 'function_call', not 'tool_choice'.", param="tool_choice")
        choice = _tool_choice_value(req.function_call, choice_param)
        if choice == "required":
            raise bad_request("Invalid value for 'function_call': 'required' is not a legacy choice.", param=choice_param)
    else:
        if req.function_call is not None:
            raise bad_request("'function_call' needs the legacy 'functions'; use 'tool_choice' with 'tools'.",
                              param="function_call")
        tools = None
        if req.tools is not None:
            _check_functions([t.function for t in req.tools], "tools", ".function")
            tools = [t.model_dump(exclude_none=True) for t in req.tools]
        choice_param = "tool_choice"
        choice = _tool_choice_value(req.tool_choice, choice_param)

    if not tools:
        if choice not in (None, "none"):
            raise bad_request(
                f"Invalid value for '{choice_param}': {choice_param} is only allowed when tools are specified.",
                param=choice_param,
            )
        return None, None
    if isinstance(choice, dict):
        name = choice["function"]["name"]
        offered = [t["function"]["name"] for t in tools]
        if name not in offered:
            raise bad_request(
                f"Invalid value for '{choice_param}': no tool named {name!r} was offered "
                f"(offered: {', '.join(offered)}).",
                param=choice_param,
            )
    return tools, choice


def check_common(req: _SamplingFields) -> None:
    if req.n is not None and req.n > 1:
        raise bad_request("n > 1 is not supported: this server returns one choice per request; "
                          "send several requests instead.", param="n")
    if isinstance(req.stop, list) and len(req.stop) > MAX_STOP:
        raise bad_request(f"Invalid value for 'stop': at most {MAX_STOP} stop sequences, got {len(req.stop)}.",
                          param="stop")
    if req.stream_options is not None and not req.stream:
        raise bad_request("'stream_options' is only allowed when 'stream' is true.", param="stream_options")


def check_chat_request(req: ChatCompletionRequest) -> None:
    """Cross-field rules that pydantic types cannot express (raises AdapterError)."""
    check_common(req)
    _check_messages(req.messages)
    if req.top_logprobs is not None and not req.logprobs:
        raise bad_request("'top_logprobs' needs 'logprobs': true.", param="top_logprobs")
    fmt = req.response_format
    if fmt is not None and fmt.type == "json_schema" and fmt.json_schema is None:
        raise bad_request(
            "Missing required parameter: 'response_format.json_schema' (with response_format type 'json_schema').",
            param="response_format.json_schema",
        )
    if fmt is not None and fmt.type == "json_schema" and fmt.json_schema is not None and fmt.json_schema.strict:
        check_strict_schema(fmt.json_schema.schema_, "response_format.json_schema.schema")


def check_completion_request(req: CompletionRequest) -> None:
    check_common(req)
    if isinstance(req.prompt, list) and len(req.prompt) != 1:
        raise bad_request("Send exactly one prompt per request ('prompt' as a string).", param="prompt")
    if req.echo:
        raise bad_request("echo is not supported by this server.", param="echo")
    if req.best_of is not None and req.best_of > 1:
        raise bad_request("best_of > 1 is not supported by this server.", param="best_of")


def chat_messages(req: ChatCompletionRequest) -> list[dict[str, Any]]:
    """Messages as plain dicts for the prompt builder (content always present)."""
    out = []
    for msg in req.messages:
        data = msg.model_dump(exclude_none=True, by_alias=True)
        data["content"] = msg.model_dump()["content"]
        out.append(data)
    return out


def stop_list(stop: str | list[str] | None) -> list[str]:
    if stop is None:
        return []
    items = [stop] if isinstance(stop, str) else stop
    return [s for s in items if s]


def response_format_dict(req: ChatCompletionRequest) -> dict[str, Any] | None:
    if req.response_format is None:
        return None
    return req.response_format.model_dump(exclude_none=True, by_alias=True)
