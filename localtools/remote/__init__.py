"""Tokens from engines in other processes: llama-server or vLLM over HTTP.

localtools keeps what it does in front of any engine (the model's template, tools in
its dialect, the grammar, parsing calls back into API shapes); these engines only
turn a prompt into text. Modules, one job each:

- `runtime`: `load_remote_runtime` (what `serve --engine-url` serves)
- `backend`: `RemoteBackend`, the `backends.GenerationBackend` over a pool
- `upstream`: the pool: kind detection, health checks, least-busy + prefix routing
- `llama_server`, `vllm`: one module per wire protocol
- `wire`: SSE lines, error replies, the end-of-stream record both protocols fill
"""

from localtools.remote.backend import RemoteBackend
from localtools.remote.runtime import load_remote_runtime
from localtools.remote.upstream import Upstream, UpstreamPool

__all__ = ["RemoteBackend", "Upstream", "UpstreamPool", "load_remote_runtime"]
