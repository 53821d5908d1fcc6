"""Functionary v3.2 (medium/small v3.2, Llama-3 based).

The generation prompt ends in ``>>>``; the model writes a recipient, a newline,
then either text (recipient ``all``) or JSON arguments; ``>>>`` starts the next.
"""

from __future__ import annotations

from typing import Any

from localtools.dialects.functionary_schema import generate_schema_from_functions
from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="functionary-v3",
    shape="tag_json",
    name_prefix=">>>",
    name_suffix="\n",
    content_name="all",
)



class FunctionaryV3(SpecDialect):
    def assumed_prompt_tail(self) -> str:
        """The generation prompt ends in `>>>`: a bare reply starts at the recipient."""
        return SPEC.name_prefix

    def render_kwargs(self, tools: list[dict[str, Any]]) -> dict[str, Any]:
        return {"generate_schema_from_functions": generate_schema_from_functions}


DIALECT = register(
    FunctionaryV3(SPEC, Markers(all_of=(">>>all",)), "Functionary v3.2: >>>NAME\\n{args}, >>>all\\ntext")
)
DIALECT.priority = 420  # detection order: higher is tried first (see registry)
