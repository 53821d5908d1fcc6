"""Sandboxed, bounded chat-template rendering: the real corpus, transformers' conventions,
and injection / resource-exhaustion payloads that must fail cleanly and fast."""

from __future__ import annotations

import collections
import json
import os
import time
from pathlib import Path

import pytest

from localtools.templating import ChatTemplate, TemplateError
from tests.conftest import SHARED_TEMPLATES, corpus_templates

CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Germany?"},
]

TEMPLATES = corpus_templates()
_OUTCOMES: dict[str, str] = {}


def _rel(path: Path) -> str:
    return str(path.relative_to(SHARED_TEMPLATES))


# ---- the corpus of real templates ---------------------------------------------


@pytest.mark.parametrize("path", TEMPLATES, ids=[_rel(p) for p in TEMPLATES])
def test_corpus_template_renders_or_fails_with_named_error(path: Path) -> None:
    name = _rel(path)
    try:
        template = ChatTemplate(path.read_text(), name=name, bos_token="<s>", eos_token="</s>")
        prompt = template.render(CONVERSATION, add_generation_prompt=True)
    except TemplateError as exc:
        assert name in str(exc)
        _OUTCOMES[name] = f"{exc.kind}: {exc.template_message}"
        return
    # a chat template shows the last user turn (a few corpus files only render tool prompts)
    _OUTCOMES[name] = "ok" if "And of Germany?" in prompt else "ok (no messages rendered)"


def test_corpus_summary() -> None:
    assert len(TEMPLATES) >= 100, "the shared template corpus is missing"
    missing = [_rel(p) for p in TEMPLATES if _rel(p) not in _OUTCOMES]
    if missing:
        pytest.skip("run together with the corpus tests for a summary")
    counts = collections.Counter(v.split(":")[0] for v in _OUTCOMES.values())
    print(f"\ncorpus: {len(_OUTCOMES)} templates: {dict(counts)}")
    for name, outcome in sorted(_OUTCOMES.items()):
        if outcome != "ok":
            print(f"  {name}: {outcome}")
    assert counts["ok"] >= 0.8 * len(TEMPLATES)


# ---- transformers' conventions -------------------------------------------------


def render(source: str, **kw) -> str:
    return ChatTemplate(source, name="t", bos_token="<s>", eos_token="</s>").render(
        kw.pop("messages", CONVERSATION), **kw
    )


def test_no_html_escaping_and_special_tokens():
    msgs = [{"role": "user", "content": 'a & <b> "c"'}]
    assert render("{{ bos_token }}{{ messages[0].content }}{{ eos_token }}", messages=msgs) == '<s>a & <b> "c"</s>'


def test_tojson_keeps_non_ascii_and_key_order():
    tools = [{"name": "météo", "z": 1, "a": {"é": "日本"}}]
    assert render("{{ tools[0] | tojson }}", tools=tools) == '{"name": "météo", "z": 1, "a": {"é": "日本"}}'
    assert render("{{ tools[0] | tojson(indent=2) }}", tools=tools) == json.dumps(tools[0], ensure_ascii=False, indent=2)
    assert render("{{ {'b': 1, 'a': 2} | tojson(separators=(',', ':')) }}") == '{"b":1,"a":2}'


def test_trim_and_lstrip_blocks():
    src = "{% for m in messages %}\n    {% if m.role == 'user' %}\n[{{ m.content }}]\n    {% endif %}\n{% endfor %}"
    assert render(src) == "[What is the capital of France?]\n[And of Germany?]\n"


def test_loop_controls():
    src = "{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}{{ m.role[0] }}{% if loop.index > 2 %}{% break %}{% endif %}{% endfor %}"
    assert render(src) == "ua"


def test_loop_helpers_still_work():
    src = "{% for m in messages %}{{ loop.index }}/{{ loop.length }}{{ '!' if loop.last }} {% endfor %}"
    assert render(src) == "1/4 2/4 3/4 4/4! "


def test_generation_tags_render_their_body():
    src = "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}<{{ m.content }}>{% endgeneration %}{% endif %}{% endfor %}"
    assert render(src) == "<Paris.>"


def test_raise_exception_message_and_line():
    src = "line one\n{% if messages[0].role == 'system' %}\n{{ raise_exception('System role not supported') }}\n{% endif %}"
    with pytest.raises(TemplateError) as info:
        ChatTemplate(src, name="tokenizer.chat_template").render(CONVERSATION)
    err = info.value
    assert err.kind == "raised" and err.template_message == "System role not supported"
    assert str(err) == "chat template 'tokenizer.chat_template' failed to render: System role not supported (line 3)"


def test_variables_and_kwargs_reach_the_template():
    src = "{{ add_generation_prompt }}|{{ tools|length }}|{{ documents[0].title }}|{{ enable_thinking }}"
    out = render(src, tools=[{}, {}], documents=[{"title": "D"}], add_generation_prompt=False, enable_thinking=True)
    assert out == "False|2|D|True"
    assert render("{{ tools is none }}") == "True"


def test_strftime_now():
    assert render("{{ strftime_now('%Y') }}") == time.strftime("%Y")


def test_namespace_and_range_still_work():
    src = "{% set ns = namespace(n=0) %}{% for i in range(1, 4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"
    assert render(src) == "6"
    assert render("{{ 'ab' * 3 }}{{ 2 ** 10 }}{{ '%05d' % 42 }}{{ '{:>4}'.format('x') }}") == "ababab1024" + "00042" + "   x"


def test_syntax_error_at_construction():
    with pytest.raises(TemplateError) as info:
        ChatTemplate("{% for m in messages %}{{ m }", name="broken.jinja")
    assert info.value.kind == "syntax"
    assert "broken.jinja" in str(info.value) and "line 1" in str(info.value)


def test_runtime_errors_are_template_errors():
    for src in ("{{ messages[10].content }}", "{{ 1 / 0 }}", "{{ undefined_thing.attr }}", "{% include 'x.jinja' %}"):
        with pytest.raises(TemplateError) as info:
            ChatTemplate(src, name="bad.jinja").render(CONVERSATION)
        assert "'bad.jinja'" in str(info.value)


# ---- injection & exhaustion payloads --------------------------------------------

MARKER = "/tmp/localtools-template-pwned"

PAYLOADS = {
    "subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "cycler-popen": "{{ cycler.__init__.__globals__.os.popen('touch " + MARKER + "').read() }}",
    "joiner-globals": "{{ joiner.__init__.__globals__.os.system('touch " + MARKER + "') }}",
    "namespace-globals": "{{ namespace.__init__.__globals__ }}",
    "template-reference": "{{ self._TemplateReference__context }}",
    "lipsum-globals": "{{ lipsum.__globals__ }}",
    "request-globals": "{{ request.application.__globals__ }}",
    "attr-filter": "{{ ''|attr('__class__') }}",
    "getitem-dunder": "{{ messages['__class__'] }}",
    "raise-globals": "{{ raise_exception.__globals__['__builtins__'] }}",
    "list-append": "{% set x = [] %}{{ x.append(1) }}",
    "huge-range": "{% for i in range(10**9) %}{% endfor %}",
    "nested-ranges": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "nested-string-loops": "{% set s = 'a' * 100000 %}{% for c in s %}{% for d in s %}{% endfor %}{% endfor %}",
    "string-times-huge": "{{ 'x' * 10**10 }}",
    "recursive-macro": "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "doubling-concat": "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "doubling-plus": "{% set ns = namespace(s=['x']) %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "padding": "{{ 'x'.ljust(10**10) }}",
    "center-filter": "{{ 'x'|center(10**10) }}",
    "format-width": "{{ '{:>999999999}'.format(1) }}",
    "percent-width": "{{ '%999999999d' % 1 }}",
    "replace-blowup": "{% set s = 'a' * 1000000 %}{{ s.replace('a', s) }}",
    "bigint-squaring": "{% set ns = namespace(x=3) %}{% for i in range(64) %}{% set ns.x = ns.x * ns.x %}{% endfor %}",
    "huge-output": "{% for i in range(1000000) %}xxxxxxxxxx{% endfor %}",
    "recursive-loop": "{% for m in messages recursive %}{{ loop([m]) }}{% endfor %}",
}


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_payload_is_refused_quickly_and_harmlessly(name: str) -> None:
    if os.path.exists(MARKER):
        os.remove(MARKER)
    template = ChatTemplate(PAYLOADS[name], name=f"payload-{name}", timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(TemplateError) as info:
        template.render(CONVERSATION)
    assert time.monotonic() - started < 2.5
    assert f"payload-{name}" in str(info.value)
    assert not os.path.exists(MARKER)


def test_unsafe_access_says_unsafe():
    with pytest.raises(TemplateError) as info:
        ChatTemplate(PAYLOADS["cycler-popen"], name="evil").render(CONVERSATION)
    assert info.value.kind == "unsafe" and "unsafe template" in str(info.value)


def test_output_limit_is_configurable():
    template = ChatTemplate("{% for m in messages %}{{ m.content }}{% endfor %}", max_output_chars=20)
    with pytest.raises(TemplateError) as info:
        template.render(CONVERSATION)
    assert info.value.kind == "too_large"
    assert ChatTemplate("{{ messages|length }}", max_output_chars=20).render(CONVERSATION) == "4"
