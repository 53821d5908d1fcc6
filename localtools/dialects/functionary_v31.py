"""Functionary v3.1 (Llama 3.1 based): ``<function=NAME>{args}</function>``.

Code for the python tool comes raw after ``<|python_tag|>``.
"""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="functionary-v3.1",
    shape="tag_json",
    name_prefix="<function=",
    name_suffix=">",
    call_end="</function>",
    python_tag="<|python_tag|>",
)

DIALECT = register(
    SpecDialect(
        SPEC,
        Markers(all_of=("<function=", "<|start_header_id|>"), none_of=("<parameter=",)),
        "Functionary v3.1: <function=NAME>{args}</function>",
    )
)
DIALECT.priority = 280  # detection order: higher is tried first (see registry)
