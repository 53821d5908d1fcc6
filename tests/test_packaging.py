"""A non-editable install keeps the catalog and the bundled chat templates: the
wheel carries them as data files and `localtools.resources` finds them there."""

from __future__ import annotations

import glob
from pathlib import Path

from localtools import resources
from localtools.resources import PROJECT_ROOT

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]


def test_every_shipped_file_is_declared_as_wheel_data() -> None:
    data_files = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    declared = {
        Path(target) / Path(path).name
        for target, patterns in data_files.items()
        for pattern in patterns
        for path in glob.glob(str(PROJECT_ROOT / pattern))
    }
    shipped = {Path("share/localtools/models.toml")} | {
        Path("share/localtools/chat_formats") / p.name for p in (PROJECT_ROOT / "chat_formats").iterdir() if p.is_file()
    }
    assert shipped <= declared, sorted(map(str, shipped - declared))


def test_installed_copy_is_used_where_the_checkout_has_none(tmp_path: Path, monkeypatch) -> None:
    checkout, installed = tmp_path / "site-packages", tmp_path / "share" / "localtools"
    checkout.mkdir()
    (installed / "chat_formats").mkdir(parents=True)
    (installed / "models.toml").write_text("[models]\n")
    monkeypatch.setattr(resources, "PROJECT_ROOT", checkout)
    monkeypatch.setattr(resources, "INSTALLED_DATA", installed)
    assert resources.bundled("models.toml") == installed / "models.toml"
    assert resources.bundled("chat_formats") == installed / "chat_formats"
    (checkout / "models.toml").write_text("[models]\n")  # a checkout's own copy wins
    assert resources.bundled("models.toml") == checkout / "models.toml"
