"""Fill-in-the-middle: which GGUF keys declare FIM tokens, the PSM prompt layout, and
a copy of the default model with FIM ids set (scripts/gguf_set_template.set_metadata)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gguf
import pytest

from localtools.fim import FimTokens, fim_prompt
from localtools.gguf_meta import fim_token_ids, read_gguf_metadata, summarize

REPO = Path(__file__).resolve().parent.parent
# three control tokens of SmolLM2's vocabulary, standing in for a code model's FIM tokens
FIM_IDS = {"pre": 7, "suf": 8, "mid": 9}


def _script():
    spec = importlib.util.spec_from_file_location("gguf_set_template", REPO / "scripts" / "gguf_set_template.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def write_fim_model(model_path: Path, out: Path, old_keys: bool = False) -> Path:
    """A copy of the default model whose metadata declares FIM tokens."""
    keys = (
        {"pre": gguf.Keys.Tokenizer.PREFIX_ID, "suf": gguf.Keys.Tokenizer.SUFFIX_ID, "mid": gguf.Keys.Tokenizer.MIDDLE_ID}
        if old_keys
        else {"pre": gguf.Keys.Tokenizer.FIM_PRE_ID, "suf": gguf.Keys.Tokenizer.FIM_SUF_ID, "mid": gguf.Keys.Tokenizer.FIM_MID_ID}
    )
    _script().set_metadata(model_path, out, {keys[role]: tid for role, tid in FIM_IDS.items()})
    return out


@pytest.fixture(scope="module")
def fim_model(model_path, tmp_path_factory) -> Path:
    return write_fim_model(model_path, tmp_path_factory.mktemp("fim") / "smollm2-fim.gguf")


def test_the_default_model_declares_no_fim_tokens(model_path):
    assert fim_token_ids(read_gguf_metadata(model_path)) == {}
    assert summarize(read_gguf_metadata(model_path), model_path)["fim_tokens"] == {}


def test_the_copy_declares_them_and_keeps_everything_else(model_path, fim_model):
    before, after = read_gguf_metadata(model_path), read_gguf_metadata(fim_model)
    assert fim_token_ids(after) == FIM_IDS
    assert {k: v for k, v in after.items() if "fim_" not in k} == before
    # gguf's own reader sees uint32 values under llama.cpp's key names
    fields = gguf.GGUFReader(fim_model).fields
    field = fields[gguf.Keys.Tokenizer.FIM_SUF_ID]
    assert field.types == [gguf.GGUFValueType.UINT32] and field.parts[field.data[0]][0] == FIM_IDS["suf"]


def test_older_key_names_are_read_too(model_path, tmp_path):
    out = write_fim_model(model_path, tmp_path / "old.gguf", old_keys=True)
    assert fim_token_ids(read_gguf_metadata(out)) == FIM_IDS


def test_new_names_win_over_old_ones():
    meta = {"tokenizer.ggml.fim_pre_token_id": 5, "tokenizer.ggml.prefix_token_id": 9,
            "tokenizer.ggml.suffix_token_id": 6, "tokenizer.ggml.fim_rep_token_id": 11}
    assert fim_token_ids(meta) == {"pre": 5, "suf": 6, "rep": 11}


def test_fim_tokens_need_all_three_roles():
    assert FimTokens.from_ids({"pre": 1, "suf": 2, "mid": 3, "rep": 4}) == FimTokens(1, 2, 3)
    assert FimTokens.from_ids({"pre": 1, "suf": 2}) is None
    assert FimTokens.from_ids({"pre": 1, "suf": -1, "mid": 3}) is None


def test_psm_layout():
    fim = FimTokens(pre=100, suf=200, mid=300)
    assert fim_prompt([1, 2, 3], [4, 5], fim) == [100, 1, 2, 3, 200, 4, 5, 300]
    assert fim_prompt([1], [], fim, bos=7) == [7, 100, 1, 200, 300]
    assert fim_prompt([], [], fim, bos=-1) == [100, 200, 300]
