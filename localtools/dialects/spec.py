"""Declarative description of a tool-call dialect.

Most model families write calls in one of three shapes (see docs/ARCHITECTURE.md):

* ``json``     — the call is a JSON object with a name key and an arguments
                 key (Hermes ``<tool_call>{…}</tool_call>``, Mistral
                 ``[TOOL_CALLS][{…}]``, Llama 3 bare ``{"name", "parameters"}``);
* ``tag_json`` — markers carry the name, the arguments are JSON
                 (``<function=NAME>{…}</function>``, ``>>>NAME\\n{…}``);
* ``tagged``   — each argument sits in its own markers
                 (``<parameter=K>V</parameter>``, ``<arg_key>K</arg_key>``);
* ``python``   — the calls are Python call syntax, ``[f(a=1), g()]`` (LFM2,
                 Llama 3.2/4 pythonic, ToolACE, Olmo 3), held until complete.

A `DialectSpec` says which shape and which markers. From it, one generic
engine derives the streaming parser, the whole-text parse, the grammar and
the text of calls in history. Specs are plain data: they can come from a
dialect module, from ``models.toml`` or from template analysis.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Shape = Literal["json", "tag_json", "tagged", "python"]
SHAPES = ("json", "tag_json", "tagged", "python")


@dataclass(frozen=True)
class ReasoningSpec:
    start: str = "<think>"
    end: str = "</think>"


@dataclass(frozen=True)
class DialectSpec:
    name: str
    shape: Shape

    # -- where the calls are -----------------------------------------------------
    section_start: str = ""  # opens the block of all calls, e.g. "[TOOL_CALLS]"
    section_end: str = ""  # closes it
    call_start: str = ""  # opens each call, e.g. "<tool_call>\n"
    call_end: str = ""  # closes each call, e.g. "\n</tool_call>"
    call_sep: str = ""  # canonical text between two calls (rendering/grammar)
    array: bool = False  # json shape: the calls are elements of one JSON array
    alt_sections: tuple[tuple[str, str], ...] = ()  # other (start, end) section markers the parser accepts

    # -- json shape ----------------------------------------------------------------
    name_key: str = "name"
    args_keys: tuple[str, ...] = ("arguments", "parameters")
    id_key: str = ""  # a key carrying the call id (Mistral "id")
    name_is_key: bool = False  # {"NAME": {args}}
    extra_fields: tuple[tuple[str, str], ...] = ()  # constant fields written before the name, e.g. (("type","function"),)
    bare_json: bool = False  # no marker at all: a call is a JSON object at the very start of the output

    # -- tag shapes ------------------------------------------------------------------
    name_prefix: str = ""  # before the function name, e.g. "<function="
    name_suffix: str = ""  # after it, e.g. ">"; "{name}" in it repeats the name (Muse '<|message|><invoke name="{name}">')
    id_prefix: str = ""  # e.g. "[CALL_ID]" (after the name)
    id_first: bool = False  # the call id comes right after call_start, before name_prefix (Solar Open)
    args_start: str = ""  # before the arguments, e.g. "[ARGS]" or "```json\n"
    args_end: str = ""  # after the arguments, e.g. "\n```"
    args_string_quote: str = ""  # tag shapes: arguments in bare-key syntax, strings in this token (Gemma 4 '<|"|>')
    json_in_section: bool = False  # tag_json: accept a JSON object/array form too after the section start
    header_skip: int = 0  # tag shapes: up to this many chars of header (channel, attributes) before args_start
    id_format: str = ""  # the call id from what was written, e.g. "functions.{name}:{id}" (Kimi)

    # -- tagged arguments ----------------------------------------------------------
    arg_name_prefix: str = ""  # e.g. "<parameter="
    arg_name_suffix: str = ""  # e.g. ">\n"
    arg_value_prefix: str = ""  # e.g. "<arg_value>"
    arg_value_suffix: str = ""  # e.g. "\n</parameter>\n"
    arg_flag_sep: str = ""  # between key and a flag: "true"/"string" = raw string, else JSON (DSML '" string="', Kimi K3 '" type="')

    # -- text and reasoning -----------------------------------------------------------
    content_name: str = ""  # a pseudo-recipient meaning "text to the user" (functionary "all")
    strip_markers: tuple[str, ...] = ()  # wrappers dropped from content, e.g. "<|START_RESPONSE|>"
    reasoning: ReasoningSpec | None = None

    # -- model-specific extras --------------------------------------------------------
    id_pattern: str = ""  # regex a call id must match (Mistral: ^[a-zA-Z0-9]{9}$)
    python_tag: str = ""  # marker introducing raw code for a `python`/`code_interpreter` tool
    stops: tuple[str, ...] = ()  # extra stop strings

    # ---------------------------------------------------------------------------------
    @property
    def trigger(self) -> str:
        """The marker whose appearance means 'calls begin here'."""
        if self.section_start:
            return self.section_start
        if self.call_start:
            return self.call_start
        if self.shape != "json":
            return self.name_prefix
        return ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: v for k, v in data.items() if v not in ("", (), False, None) or k in ("name", "shape")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DialectSpec:
        """Build from plain data (models.toml, JSON); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown dialect spec keys: {', '.join(sorted(unknown))}")
        values = dict(data)
        if isinstance(values.get("reasoning"), dict):
            values["reasoning"] = ReasoningSpec(**values["reasoning"])
        for key in ("args_keys", "stops", "strip_markers"):
            if key in values and isinstance(values[key], list):
                values[key] = tuple(values[key])
        for key in ("extra_fields", "alt_sections"):
            if key in values:
                values[key] = tuple(tuple(x) for x in values[key])
        if values.get("shape") not in SHAPES:
            raise ValueError(f"dialect spec 'shape' must be one of {', '.join(SHAPES)}")
        return cls(**values)


_ = field  # re-exported for dialect modules that build specs
