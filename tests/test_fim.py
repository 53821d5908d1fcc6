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


# ---- the engine's view and the served endpoint (real model)


@pytest.fixture(scope="module")
def fim_engine(fim_model):
    from localtools.engine import Engine, EngineConfig

    engine = Engine(EngineConfig(model_path=str(fim_model), n_ctx=512))
    yield engine
    engine.close()


PREFIX = "def add(a, b):\n    <|im_start|>"
SUFFIX = "\n    return total\n"


def test_the_engine_finds_the_declared_tokens_and_lays_them_out(fim_engine, model_path):
    from localtools.engine import Engine, EngineConfig
    from localtools.engine.fim import fim_prompt_tokens, fim_tokens

    fim = fim_tokens(fim_engine)
    assert fim == FimTokens(**FIM_IDS)
    tokens = fim_prompt_tokens(fim_engine, PREFIX, SUFFIX, fim)
    text_tokens = lambda s: fim_engine.tokenize(s, add_bos=False, special=False)  # noqa: E731
    assert tokens == [7, *text_tokens(PREFIX), 8, *text_tokens(SUFFIX), 9]
    assert 1 not in tokens  # "<|im_start|>" in the client's code is text, not the control token
    plain = Engine(EngineConfig(model_path=str(model_path), n_ctx=256))
    try:
        assert fim_tokens(plain) is None  # SmolLM2 declares none, by key or by token text
    finally:
        plain.close()


def test_fim_through_the_openai_client(fim_model, fim_engine):
    from openai import OpenAI

    from localtools.engine import SamplingParams
    from localtools.engine.fim import fim_prompt_tokens, fim_tokens
    from tests.live_server import live_server

    tokens = fim_prompt_tokens(fim_engine, PREFIX, SUFFIX, fim_tokens(fim_engine))
    want = "".join(fim_engine.generate(tokens, SamplingParams(temperature=0.0, max_tokens=12)))
    with live_server(["--n-ctx", "512", "--alias", "coder"], model=str(fim_model)) as url:
        client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
        reply = client.completions.create(model="coder", prompt=PREFIX, suffix=SUFFIX, max_tokens=12, temperature=0)
        streamed = client.completions.create(model="coder", prompt=PREFIX, suffix=SUFFIX, max_tokens=12,
                                             temperature=0, stream=True)
        chunks = "".join(c.choices[0].text for c in streamed if c.choices)
    assert reply.usage.prompt_tokens == len(tokens)  # exactly the PSM prompt was evaluated
    assert want and reply.choices[0].text == want == chunks
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_suffix_on_a_model_without_fim_is_a_clear_400(model_path):
    from openai import BadRequestError, OpenAI

    from tests.live_server import live_server

    with live_server(["--n-ctx", "256"]) as url:
        client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
        with pytest.raises(BadRequestError) as err:
            client.completions.create(model="x", prompt="def f():", suffix="    return 1", max_tokens=4)
        plain = client.completions.create(model="x", prompt="def f():", suffix="", max_tokens=2)
    body = err.value.body
    assert body["param"] == "suffix" and body["code"] == "fim_not_supported"
    assert "fill-in-the-middle" in body["message"]
    assert plain.choices[0].finish_reason in ("stop", "length")  # an empty suffix is no FIM
