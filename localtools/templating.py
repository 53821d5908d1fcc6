"""Sandboxed, bounded Jinja for Hugging Face chat templates.

A chat template comes from the model file, so it is untrusted code (llama-cpp-python's
CVE-2024-34359 was template injection from a GGUF). Templates render in Jinja's
`ImmutableSandboxedEnvironment` with the globals and filters transformers provides, and
every render is bounded in time and output size: a template that loops forever, builds
huge strings or recurses without end fails with `TemplateError`, as does any attempt to
reach Python internals.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import jinja2
import jinja2.ext
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Namespace

__all__ = ["ChatTemplate", "TemplateError"]


class TemplateError(Exception):
    """A chat template failed to compile or render; the message names the template.

    `kind`: "syntax", "raised" (the template's own raise_exception), "unsafe",
    "timeout", "too_large" or "error". `template_message` is the bare cause.
    """

    def __init__(self, message: str, *, template_name: str = "", kind: str = "error",
                 template_message: str = "", lineno: int | None = None):
        super().__init__(message)
        self.template_name = template_name
        self.kind = kind
        self.template_message = template_message or message
        self.lineno = lineno


class _Raised(jinja2.TemplateError):
    """raise_exception() from inside a template."""


class _Limit(jinja2.TemplateError):
    """A render exceeded its time or size budget."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


# --------------------------------------------------------------------------
# Per-render budget (thread-local: one ChatTemplate may render in several threads)
# --------------------------------------------------------------------------

_budget = threading.local()


def _check_time() -> None:
    deadline = getattr(_budget, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise _Limit(f"rendering took longer than {_budget.timeout:g}s", "timeout")


def _max_size() -> int:
    return getattr(_budget, "max_chars", 2_000_000)


def _check_size(value: Any) -> Any:
    if isinstance(value, (str, list, tuple, dict, bytes)) and len(value) > _max_size():
        raise _Limit(f"a value grew beyond {_max_size()} items/characters", "too_large")
    return value


def _check_int(n: Any, what: str) -> None:
    if isinstance(n, int) and not isinstance(n, bool) and abs(n) > _max_size():
        raise _Limit(f"{what} of {n} is too large", "too_large")


_FORMAT_WIDTH = re.compile(r"(\d{7,})")  # a width/precision of a million or more


def _check_format_string(fmt: Any) -> None:
    if isinstance(fmt, str) and _FORMAT_WIDTH.search(fmt):
        raise _Limit("format width too large", "too_large")


# --------------------------------------------------------------------------
# Globals and filters as transformers defines them (chat_template_utils.py)
# --------------------------------------------------------------------------


def _raise_exception(message: Any) -> None:
    raise _Raised(str(message))


def _strftime_now(fmt: str) -> str:
    _check_format_string(fmt)
    return datetime.now().strftime(str(fmt))


def _tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    _check_int(indent, "tojson indent")
    if isinstance(indent, str) and len(indent) > 64:
        raise _Limit("tojson indent too large", "too_large")
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _bounded_range(*args: Any) -> Iterator[int]:
    """`range` whose length is capped and which checks the deadline as it goes."""
    for a in args:
        if not isinstance(a, int):
            raise TypeError(f"range() integer expected, got {type(a).__name__}")
    r = range(*args)
    if len(r) > _max_size():
        raise _Limit(f"range of {len(r)} items is too large", "too_large")
    return _ticking(r)


def _ticking(items: Iterable[Any]) -> Iterator[Any]:
    for i, item in enumerate(items):
        if not i & 63:
            _check_time()
        yield item


class _BoundedNamespace(Namespace):
    """`namespace()` whose attributes cannot hold oversized values (blocks doubling loops)."""

    def __setitem__(self, name: str, value: Any) -> None:
        _check_time()
        _check_size(value)
        super().__setitem__(name, value)


# filters whose numeric arguments are sizes to allocate
_SIZE_FILTERS = {"center", "indent", "wordwrap", "truncate", "batch", "slice", "filesizeformat"}


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_time()
        if name in _SIZE_FILTERS:
            for a in (*args, *kwargs.values()):
                _check_int(a, f"'{name}' argument")
        elif name == "format":
            for a in args:
                _check_format_string(a)
                _check_int(a, "format argument")
        elif name == "replace":
            _precheck_replace(*[a for a in args if isinstance(a, str)][-3:])
        return _check_size(func(*args, **kwargs))

    return guarded


def _precheck_replace(*strs: str) -> None:
    if len(strs) == 3:
        s, old, new = strs
        grow = (s.count(old) if old else len(s) + 1) * max(len(new) - len(old), 0)
        if len(s) + grow > _max_size():
            raise _Limit("replace() result too large", "too_large")


_PADDING_METHODS = {"ljust", "rjust", "center", "zfill", "expandtabs"}
_FORMAT_METHODS = {"format", "format_map"}


# --------------------------------------------------------------------------
# The environment
# --------------------------------------------------------------------------


class _GenerationTag(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}` (transformers' assistant-mask markers): render the body."""

    tags = {"generation"}

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body).set_lineno(lineno)


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus time/size checks on every call, attribute and item access,
    `*`/`**`/`+`/`%` operators, `~` concatenation and for-loop iteration."""

    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def __init__(self) -> None:
        super().__init__(
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[_GenerationTag, jinja2.ext.loopcontrols],
        )
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}
        self.filters["tojson"] = _guard_filter("tojson", _tojson)
        self.globals.pop("lipsum", None)  # unbounded text generator, never used by chat templates
        self.globals["range"] = _bounded_range
        self.globals["namespace"] = _BoundedNamespace
        self.globals["raise_exception"] = _raise_exception
        self.globals["strftime_now"] = _strftime_now

    # -- rewrite the parsed template: bounded loops and concatenation --

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(
                nodes.EnvironmentAttribute("bounded_iter"), [loop.iter], [], None, None
            ).set_lineno(loop.lineno)
        for concat in list(tree.find_all(nodes.Concat)):
            parts = nodes.List(concat.nodes, lineno=concat.lineno)
            call = nodes.Call(nodes.EnvironmentAttribute("bounded_concat"), [parts], [], None, None)
            call.set_lineno(concat.lineno)
            # Concat has a single field; turn it into the call in place
            concat.nodes = [call]
        return tree

    @staticmethod
    def bounded_iter(items: Any) -> Any:
        _check_time()
        if isinstance(items, (str, list, tuple, dict, range)):
            _check_size(items) if not isinstance(items, range) else None
        return _ticking(items) if not isinstance(items, jinja2.Undefined) else items

    @staticmethod
    def bounded_concat(parts: list[Any]) -> str:
        _check_time()
        out = [str(p) for p in parts]
        if sum(map(len, out)) > _max_size():
            raise _Limit(f"a string grew beyond {_max_size()} characters", "too_large")
        return "".join(out)

    # -- sandbox hooks --

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def getattr(self, obj: Any, attribute: str) -> Any:
        _check_time()
        if attribute.startswith("__"):
            raise SecurityError(f"access to attribute {attribute!r} is not allowed")
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _check_time()
        if isinstance(argument, str) and argument.startswith("__") and not (
            isinstance(obj, dict) and argument in obj
        ):
            raise SecurityError(f"access to attribute {argument!r} is not allowed")
        return super().getitem(obj, argument)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _check_time()
        target = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(target, "__self__", None)
        method = getattr(target, "__name__", "")
        if isinstance(owner, str):
            if method in _PADDING_METHODS:
                for a in (*args, *kwargs.values()):
                    _check_int(a, f"{method}() width")
            elif method in _FORMAT_METHODS:
                _check_format_string(owner)
                for a in (*args, *kwargs.values()):
                    _check_int(a, "format argument")
            elif method == "replace" and len(args) >= 2:
                _precheck_replace(owner, str(args[0]), str(args[1]))
        return _check_size(ImmutableSandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_time()
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
                    if len(seq) * max(n, 0) > _max_size():
                        raise _Limit("repeated sequence too large", "too_large")
            if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > 100_000:
                raise _Limit("integer too large", "too_large")
        elif operator == "**":
            if _is_int(left) and _is_int(right) and abs(left) > 1 and right > 0:
                if right > 100_000 or left.bit_length() * right > 100_000:
                    raise _Limit("power too large", "too_large")
        elif operator == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                if len(left) + len(right) > _max_size():
                    raise _Limit("concatenation too large", "too_large")
        elif operator == "%" and isinstance(left, str):
            _check_format_string(left)
            for a in right if isinstance(right, tuple) else (right,):
                _check_int(a, "format argument")
        return super().call_binop(context, operator, left, right)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


# --------------------------------------------------------------------------
# ChatTemplate
# --------------------------------------------------------------------------


class ChatTemplate:
    """A compiled, sandboxed Hugging Face chat template."""

    def __init__(self, source: str, name: str = "chat template", bos_token: str = "",
                 eos_token: str = "", max_output_chars: int = 2_000_000, timeout_s: float = 5.0):
        self.source = source
        self.name = name
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.max_output_chars = max_output_chars
        self.timeout_s = timeout_s
        self._env = _BoundedEnvironment()
        try:
            self._template = self._env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"chat template {name!r} has a syntax error: {exc.message} (line {exc.lineno})",
                template_name=name, kind="syntax", template_message=str(exc.message), lineno=exc.lineno,
            ) from None
        except RecursionError:
            raise TemplateError(f"chat template {name!r} is nested too deeply to compile",
                                template_name=name, kind="syntax") from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"chat template {name!r} failed to compile: {exc}",
                                template_name=name, kind="syntax", template_message=str(exc)) from None

    def __repr__(self) -> str:
        return f"ChatTemplate(name={self.name!r}, {len(self.source)} chars)"

    def render(self, messages: list[dict], tools: list[dict] | None = None,
               add_generation_prompt: bool = True, documents: list[dict] | None = None,
               **kwargs: Any) -> str:
        """Render the conversation; raises TemplateError (never another exception type)."""
        variables = {"bos_token": self.bos_token, "eos_token": self.eos_token, **kwargs}
        variables.update(messages=messages, tools=tools, documents=documents,
                         add_generation_prompt=add_generation_prompt)
        saved = (getattr(_budget, "deadline", None), getattr(_budget, "max_chars", None),
                 getattr(_budget, "timeout", None))
        _budget.deadline = time.monotonic() + self.timeout_s
        _budget.max_chars = self.max_output_chars
        _budget.timeout = self.timeout_s
        try:
            out: list[str] = []
            size = 0
            for chunk in self._template.generate(**variables):
                size += len(chunk)
                if size > self.max_output_chars:
                    raise _Limit(f"output exceeded {self.max_output_chars} characters", "too_large")
                out.append(chunk)
                _check_time()
            return "".join(out)
        except _Raised as exc:
            raise self._error(exc, "raised", str(exc)) from None
        except _Limit as exc:
            raise self._error(exc, exc.kind, str(exc)) from None
        except SecurityError as exc:
            raise self._error(exc, "unsafe", f"unsafe template: {exc}") from None
        except RecursionError as exc:
            raise self._error(exc, "too_large", "recursion too deep") from None
        except MemoryError as exc:
            raise self._error(exc, "too_large", "out of memory") from None
        except Exception as exc:  # jinja2 errors and Python errors raised by template expressions
            message = exc.message if isinstance(exc, jinja2.TemplateError) and exc.message else str(exc)
            raise self._error(exc, "error", f"{type(exc).__name__}: {message}" if not isinstance(
                exc, jinja2.TemplateError) else message) from None
        finally:
            _budget.deadline, _budget.max_chars, _budget.timeout = saved

    def _error(self, exc: BaseException, kind: str, message: str) -> TemplateError:
        lineno = _template_line(exc)
        where = f" (line {lineno})" if lineno else ""
        return TemplateError(
            f"chat template {self.name!r} failed to render: {message}{where}",
            template_name=self.name, kind=kind, template_message=message, lineno=lineno,
        )


def _template_line(exc: BaseException) -> int | None:
    """The template line an exception came from (Jinja maps frames to '<template>')."""
    lineno = getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            lineno = tb.tb_lineno
        tb = tb.tb_next
    return lineno
