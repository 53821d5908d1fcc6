"""Functionary v3.2 (medium/small v3.2, Llama-3 based).

The generation prompt ends in ``>>>``; the model writes a recipient, a newline,
then either text (recipient ``all``) or JSON arguments; ``>>>`` starts the next.
"""

from __future__ import annotations

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

DIALECT = register(
    SpecDialect(SPEC, Markers(all_of=(">>>all",)), "Functionary v3.2: >>>NAME\\n{args}, >>>all\\ntext")
)
