"""Mistral: ``[TOOL_CALLS][{"name", "arguments", "id"}]`` (7B v0.3, Nemo) and
``[TOOL_CALLS]NAME[CALL_ID]ID[ARGS]{…}`` / ``[TOOL_CALLS]NAME[ARGS]{…}``
(Small 3.2, Devstral, Ministral). Both forms parse; ids are 9 alphanumerics.
"""

from __future__ import annotations

import hashlib
import secrets
import string

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

_ALNUM = string.ascii_letters + string.digits

SPEC = DialectSpec(
    name="mistral",
    shape="tag_json",
    call_start="[TOOL_CALLS]",
    id_prefix="[CALL_ID]",
    args_start="[ARGS]",
    json_in_section=True,
    id_key="id",
    args_keys=("arguments", "parameters"),
    id_pattern=r"[A-Za-z0-9]{9}",
    reasoning=ReasoningSpec("[THINK]", "[/THINK]"),
)


def mistral_id(source: str | None = None) -> str:
    """A 9-character alphanumeric id; stable for a given source id."""
    if source is None:
        return "".join(secrets.choice(_ALNUM) for _ in range(9))
    if len(source) == 9 and source.isalnum():
        return source
    digest = hashlib.sha256(source.encode()).digest()
    return "".join(_ALNUM[b % len(_ALNUM)] for b in digest[:9])


# The older templates (7B v0.3, Nemo) write a JSON array; grammar and history
# rendering follow the template's variant, the parser accepts both.
ARRAY_SPEC = DialectSpec(
    name="mistral",
    shape="json",
    section_start="[TOOL_CALLS]",
    array=True,
    id_key="id",
    args_keys=("arguments",),
    id_pattern=r"[A-Za-z0-9]{9}",
)


class MistralDialect(SpecDialect):
    def for_template(self, template: str) -> MistralDialect:
        if "[ARGS]" in template:
            return self
        variant = MistralDialect(self.spec, self.markers, self.summary)
        variant.render_spec = ARRAY_SPEC
        return variant

    def new_call_id(self, index: int) -> str | None:
        return mistral_id()

    def map_call_id(self, call_id: str) -> str:
        return mistral_id(call_id)


DIALECT = register(
    MistralDialect(SPEC, Markers(all_of=("[TOOL_CALLS]",)), "Mistral: [TOOL_CALLS] JSON array or NAME[ARGS]{args}")
)
DIALECT.priority = 270  # detection order: higher is tried first (see registry)
