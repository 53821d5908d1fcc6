"""The `mcpServers` JSON that desktop assistants and editors share, read into ServerConfig.

    {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
                  "env": {"DEBUG": "1"}},
        "search": {"url": "http://127.0.0.1:8931/mcp", "headers": {"Authorization": "Bearer …"}}}}

An entry with `command` is started as a subprocess and spoken to over stdio;
one with `url` is a streamable-HTTP server. `"disabled": true` skips an entry,
`cwd` sets a stdio server's working directory. A malformed *entry* does not
spoil the file: it becomes that server's start-up failure (reported, the rest
go on); an unreadable or non-JSON *file* is an McpConfigError.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["McpConfigError", "ServerConfig", "default_config_path", "load_config", "parse_config", "load_configs"]

_HTTP_TYPES = ("http", "streamable-http", "streamable_http", "streamableHttp")


class McpConfigError(ValueError):
    """A config file that cannot be used at all (missing, not JSON, no mcpServers object)."""


@dataclass
class ServerConfig:
    """One server entry. `problem` is set when the entry itself is malformed."""

    name: str
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    source: str = ""
    problem: str | None = None

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"

    @property
    def where(self) -> str:
        """What the user would recognise: the URL or the command line."""
        if self.url:
            return self.url
        line = " ".join([self.command or "?", *self.args])
        return line if len(line) <= 80 else line[:79] + "…"


def default_config_path() -> Path:
    """`$XDG_CONFIG_HOME/localtools/mcp.json` (`~/.config/…` without it; `%APPDATA%` on Windows)."""
    base = os.environ.get("XDG_CONFIG_HOME")
    if not base and sys.platform == "win32" and os.environ.get("APPDATA"):
        base = os.environ["APPDATA"]
    root = Path(base) if base else Path.home() / ".config"
    return root / "localtools" / "mcp.json"


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of strings")
    return list(value)


def _string_map(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{what} must be an object of strings")
    out = {}
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise ValueError(f"{what}.{key} must be a string")
        out[key] = str(item)
    return out


def _entry(name: str, raw: Any, source: str) -> ServerConfig:
    config = ServerConfig(name=name, source=source)
    try:
        if not isinstance(raw, dict):
            raise ValueError("the entry must be an object")
        kind = raw.get("type") or raw.get("transport")
        if kind == "sse":
            raise ValueError("the legacy SSE transport is not supported; use the server's streamable-HTTP URL")
        has_command, has_url = "command" in raw, "url" in raw
        if has_command == has_url:
            raise ValueError('the entry needs either "command" (stdio) or "url" (streamable HTTP)')
        if has_url:
            if kind not in (None, *_HTTP_TYPES):
                raise ValueError(f"unknown type {kind!r} for a URL entry")
            if not isinstance(raw["url"], str) or not raw["url"].startswith(("http://", "https://")):
                raise ValueError('"url" must be an http:// or https:// URL')
            config.url = raw["url"]
            config.headers = _string_map(raw.get("headers", {}), "headers")
        else:
            if kind not in (None, "stdio"):
                raise ValueError(f"unknown type {kind!r} for a command entry")
            if not isinstance(raw["command"], str) or not raw["command"].strip():
                raise ValueError('"command" must be a non-empty string')
            config.command = raw["command"]
            config.args = _strings(raw.get("args", []), "args")
            config.env = _string_map(raw.get("env", {}), "env")
            cwd = raw.get("cwd")
            if cwd is not None and not isinstance(cwd, str):
                raise ValueError('"cwd" must be a string')
            config.cwd = cwd
    except ValueError as exc:
        config.problem = f"bad config entry in {source}: {exc}"
    return config


def parse_config(data: Any, source: str = "<config>") -> list[ServerConfig]:
    """The entries of an already-decoded config object, disabled ones left out."""
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
        raise McpConfigError(f"{source}: expected an object with an \"mcpServers\" object")
    entries = []
    for name, raw in data["mcpServers"].items():
        if isinstance(raw, dict) and raw.get("disabled") is True:
            continue
        entries.append(_entry(str(name), raw, source))
    return entries


def load_config(path: str | Path) -> list[ServerConfig]:
    """Read one config file."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise McpConfigError(f"cannot read MCP config {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise McpConfigError(f"MCP config {path} is not valid JSON: {exc}") from None
    return parse_config(data, str(path))


def load_configs(paths: list[Path], use_default: bool = True) -> list[ServerConfig]:
    """The default file (when it exists and `use_default`) then each of `paths`;
    a later entry with the same server name replaces an earlier one."""
    files: list[Path] = []
    default = default_config_path()
    if use_default and default.is_file():
        files.append(default)
    files += [Path(p) for p in paths]
    merged: dict[str, ServerConfig] = {}
    for path in files:
        for entry in load_config(path):
            merged.pop(entry.name, None)
            merged[entry.name] = entry
    return list(merged.values())
