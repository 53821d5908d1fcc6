"""Command R / R+ (tool_use template): ``Action:\\n```json\\n[{"tool_name", "parameters"}]\\n```` ``."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="command-r",
    shape="json",
    section_start="Action:\n```json\n",
    section_end="\n```",
    array=True,
    name_key="tool_name",
    args_keys=("parameters",),
)

DIALECT = register(
    SpecDialect(
        SPEC,
        Markers(all_of=("Action:", "```json", "tool_name"), none_of=("<|START_ACTION|>",)),
        "Command R+: Action: ```json [{tool_name, parameters}]```",
    )
)
DIALECT.priority = 210  # detection order: higher is tried first (see registry)
