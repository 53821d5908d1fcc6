"""GGUF metadata without loading the model, checked against the `gguf` package's own
reader; and scripts/gguf_set_template.py, which rewrites a GGUF's chat template."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

from localtools.gguf_meta import (
    FILE_TYPES,
    GGML_TYPES,
    GGUFArray,
    read_array_items,
    read_gguf_layout,
    read_gguf_metadata,
    summarize,
)

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "gguf_set_template.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("gguf_set_template", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


set_chat_template = _load_script().set_chat_template


def _field_value(field: gguf.ReaderField):
    """A scalar/string value from gguf's reader (its own decoding, independent of ours)."""
    if field.types[0] == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    if field.types[0] == gguf.GGUFValueType.ARRAY:
        return None
    return field.parts[field.data[0]][0].item()


# ---- the default model ---------------------------------------------------------


def test_default_model_metadata(model_path):
    meta = read_gguf_metadata(model_path)
    assert meta["general.architecture"] == "llama"
    assert meta["llama.context_length"] == 8192
    assert meta["tokenizer.ggml.bos_token_id"] == 1
    tokens = meta["tokenizer.ggml.tokens"]
    assert isinstance(tokens, GGUFArray) and tokens.count == 49152 and tokens.element_type == "string"
    assert meta["general.languages"] == ["en"]  # small arrays are read in full
    assert "<|im_start|>" in meta["tokenizer.chat_template"]


def test_agrees_with_the_gguf_package(model_path):
    ours = read_gguf_metadata(model_path)
    reader = gguf.GGUFReader(model_path)
    theirs = {k: f for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    assert set(ours) == set(theirs)
    for key, field in theirs.items():
        value = _field_value(field)
        if value is None:  # an array
            assert len(ours[key]) == len(field.data), key
        elif isinstance(value, float):
            assert ours[key] == pytest.approx(value), key
        else:
            assert ours[key] == value, key
    layout = read_gguf_layout(model_path)
    assert len(layout.tensors) == len(reader.tensors)
    assert layout.data_offset == reader.data_offset
    for ours_t, theirs_t in zip(layout.tensors, reader.tensors):
        assert ours_t.name == theirs_t.name
        assert ours_t.ggml_type == int(theirs_t.tensor_type)


def test_summary_of_the_default_model(model_path):
    summary = summarize(read_gguf_metadata(model_path), model_path)
    assert summary["architecture"] == "llama"
    assert summary["parameters"] == "135M"
    assert 130_000_000 < summary["parameter_count"] < 140_000_000
    assert summary["context_length"] == 8192
    assert summary["quantization"] == "Q4_1"
    assert summary["vocab_size"] == 49152
    assert summary["file_size"] == model_path.stat().st_size
    assert summary["special_tokens"]["bos"] == {"id": 1, "text": "<|im_start|>"}
    assert summary["special_tokens"]["eos"] == {"id": 2, "text": "<|im_end|>"}
    assert list(summary["chat_templates"]) == ["default"]


def test_read_array_items(model_path):
    tokens = read_gguf_metadata(model_path)["tokenizer.ggml.tokens"]
    reader = gguf.GGUFReader(model_path)
    field = reader.fields["tokenizer.ggml.tokens"]
    expect = {i: bytes(field.parts[field.data[i]]).decode() for i in (0, 1, 2, 500, 49151)}
    assert read_array_items(model_path, tokens, set(expect) | {49152, -1}) == expect


def test_type_tables_match_the_gguf_package():
    for ft in gguf.LlamaFileType:
        if ft.name != "GUESSED":
            assert FILE_TYPES[ft.value] == ft.name.removeprefix("MOSTLY_").removeprefix("ALL_"), ft
    for qt in gguf.GGMLQuantizationType:
        assert GGML_TYPES[qt.value] == qt.name


# ---- bad files -------------------------------------------------------------------


def test_not_gguf_and_truncated(tmp_path, model_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(ValueError, match="not a GGUF"):
        read_gguf_metadata(junk)
    tiny = tmp_path / "tiny.gguf"
    tiny.write_bytes(b"GG")
    with pytest.raises(ValueError):
        read_gguf_metadata(tiny)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(model_path.read_bytes()[:5000])
    with pytest.raises(ValueError, match="truncated"):
        read_gguf_metadata(cut)
    with pytest.raises(FileNotFoundError):
        read_gguf_metadata(tmp_path / "missing.gguf")


# ---- files written with the gguf package ------------------------------------------


def _write_tiny(path: Path, endian=gguf.GGUFEndian.LITTLE) -> None:
    writer = gguf.GGUFWriter(str(path), "tinyarch", endianess=endian)
    writer.add_name("Tiny Test")
    writer.add_context_length(256)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"tok{i}" for i in range(100)])
    writer.add_bos_token_id(7)
    writer.add_eos_token_id(99)
    writer.add_chat_template("{{ messages }}")
    writer.add_string("tokenizer.chat_template.tool_use", "{{ tools }}")
    dtype = np.float16
    writer.add_tensor("w1", np.zeros((8, 16), dtype=dtype))
    writer.add_tensor("w2", np.zeros((4, 16), dtype=dtype))
    writer.add_tensor("norm", np.zeros((16,), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.mark.parametrize("endian", [gguf.GGUFEndian.LITTLE, gguf.GGUFEndian.BIG])
def test_summary_computes_what_the_file_does_not_say(tmp_path, endian):
    path = tmp_path / "tiny.gguf"
    _write_tiny(path, endian)
    summary = summarize(read_gguf_metadata(path), path)
    assert summary["architecture"] == "tinyarch" and summary["name"] == "Tiny Test"
    assert summary["parameter_count"] == 8 * 16 + 4 * 16 + 16
    assert summary["parameters"] == "208"
    assert summary["context_length"] == 256
    assert summary["quantization"] == "F16"  # no general.file_type: from the weight tensors
    assert summary["vocab_size"] == 100
    assert summary["special_tokens"]["bos"] == {"id": 7, "text": "tok7"}
    assert summary["special_tokens"]["eos"] == {"id": 99, "text": "tok99"}
    assert summary["chat_templates"] == {"default": "{{ messages }}", "tool_use": "{{ tools }}"}


# ---- rewriting the chat template -----------------------------------------------------

NEW_TEMPLATE = "{% for m in messages %}<<{{ m.role }}>> {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<<assistant>> {% endif %}"


@pytest.fixture(scope="module")
def rewritten(model_path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gguf") / "rewritten.gguf"
    set_chat_template(model_path, out, NEW_TEMPLATE)
    return out


def test_set_chat_template_replaces_only_the_template(model_path, rewritten):
    old, new = read_gguf_metadata(model_path), read_gguf_metadata(rewritten)
    assert new["tokenizer.chat_template"] == NEW_TEMPLATE
    assert {k: repr(v) for k, v in old.items() if k != "tokenizer.chat_template"} == {
        k: repr(v) for k, v in new.items() if k != "tokenizer.chat_template"
    }
    reader_old, reader_new = gguf.GGUFReader(model_path), gguf.GGUFReader(rewritten)
    assert _field_value(reader_new.fields["tokenizer.chat_template"]) == NEW_TEMPLATE
    for a, b in zip(reader_old.tensors, reader_new.tensors):
        assert a.name == b.name and a.tensor_type == b.tensor_type
        assert np.array_equal(np.asarray(a.data), np.asarray(b.data))


def test_set_chat_template_adds_and_removes(model_path, tmp_path):
    without = tmp_path / "without.gguf"
    set_chat_template(model_path, without, None)
    assert "tokenizer.chat_template" not in read_gguf_metadata(without)
    added = tmp_path / "added.gguf"
    set_chat_template(without, added, "{{ 'x' }}", key="tokenizer.chat_template.tool_use")
    assert summarize(read_gguf_metadata(added), added)["chat_templates"] == {"tool_use": "{{ 'x' }}"}
    with pytest.raises(ValueError):
        set_chat_template(added, added, "y")


@pytest.mark.e2e
def test_llama_cpp_loads_the_rewritten_model(rewritten):
    from localtools.engine import Engine, EngineConfig, SamplingParams

    engine = Engine(EngineConfig(model_path=str(rewritten), n_ctx=256))
    try:
        assert engine.chat_templates() == {"default": NEW_TEMPLATE}
        text = "".join(engine.generate("<<user>> Hi\n<<assistant>> ", SamplingParams(max_tokens=4, temperature=0)))
        assert text
    finally:
        engine.close()


def test_script_command_line(model_path, tmp_path):
    template = tmp_path / "t.jinja"
    template.write_text("{{ 'cli' }}")
    out = tmp_path / "cli.gguf"
    result = subprocess.run([sys.executable, str(SCRIPT), str(model_path), str(out), str(template)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert read_gguf_metadata(out)["tokenizer.chat_template"] == "{{ 'cli' }}"
    bad = subprocess.run([sys.executable, str(SCRIPT), str(template), str(tmp_path / "x.gguf"), str(template)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "not a GGUF" in bad.stderr
