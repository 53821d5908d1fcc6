"""Llama 3.1's built-in tools: offered under their names, they reach Meta's template as
`builtin_tools` (listed after "Environment: ipython") and the model's
`<|python_tag|>NAME.call(...)` comes back as an OpenAI call."""

from __future__ import annotations

from localtools import parse_tool_calls
from localtools.dialects import detect, get_dialect
from localtools.prompting import build_prompt
from localtools.templating import ChatTemplate
from tests.conftest import SHARED_TEMPLATES

SEARCH = {"type": "function", "function": {"name": "brave_search", "description": "Web search",
          "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def _prompt(tools: list[dict]) -> str:
    source = (SHARED_TEMPLATES / "meta-llama-Llama-3.1-8B-Instruct.jinja").read_text()
    dialect = get_dialect(detect(source).dialect)
    assert dialect.name == "llama3"
    template = ChatTemplate(source, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    return build_prompt(template, dialect, [{"role": "user", "content": "Any news?"}], tools, "auto")


def test_builtin_tool_names_reach_the_template_as_builtin_tools() -> None:
    system = _prompt([SEARCH, WEATHER]).split("<|eot_id|>")[0]
    assert "Environment: ipython\nTools: brave_search\n" in system


def test_no_builtin_tools_line_without_them() -> None:
    assert "Tools: " not in _prompt([WEATHER]).split("<|eot_id|>")[0]


def test_builtin_call_parses_as_an_openai_call() -> None:
    msg = parse_tool_calls('<|python_tag|>brave_search.call(query="llama news")', "llama3", [SEARCH, WEATHER])
    assert [(c.name, c.arguments) for c in msg.tool_calls] == [("brave_search", {"query": "llama news"})]
    assert not msg.content
