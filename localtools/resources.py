"""Where the files shipped beside the package are: `models.toml` and `chat_formats/`.

In a source checkout (and an editable install) they sit at the project root,
next to `localtools/`; a wheel installs them as data files under
`<prefix>/share/localtools/` (see `[tool.setuptools.data-files]`), so a
plain `pip install .` keeps the catalog and the bundled templates.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTALLED_DATA = Path(sysconfig.get_path("data")) / "share" / "localtools"


def bundled(name: str) -> Path:
    """The project-root copy where it exists, else the installed one."""
    local = PROJECT_ROOT / name
    if local.exists():
        return local
    installed = INSTALLED_DATA / name
    return installed if installed.exists() else local
