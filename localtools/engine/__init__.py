"""The inference engine: the only package that talks to llama.cpp (via llama-cpp-python).

It turns a prompt string into a stream of text pieces, reusing the KV cache across
prompts that share a prefix. Modules, one job each:

- `core`: `Engine` (load, tokenize, sequence slots, `start`/`step`/`release`, `generate`)
- `generation`: one generation's state machine (prompt chunks, sample, emit)
- `batch`: one step over every running generation (continuous batching)
- `kv_cache`: per-slot prefix reuse (the reproducibility rule) and saved states
- `sampling`: the sampler chain and the grammar sampler beside it
- `stops`: stop strings and lazy-grammar trigger search (pure Python)
- `logprobs`: each sampled token's logprob and alternatives (two calls from the decode loop)
- `fim`: fill-in-the-middle prompt tokens with the model's FIM tokens
- `embeddings`: pooled embeddings in a second llama context on the loaded model
- `vocab`: a GGUF's tokenizer without weights (for remote engines)
- `backend`: process-wide llama.cpp set-up, its log, stderr capture
- `types`, `errors`: the public data types and exceptions
"""

from localtools.engine.backend import baseline_llama, llama_cpp_version
from localtools.engine.core import Engine
from localtools.engine.errors import ContextLengthExceeded, EngineError, GrammarError
from localtools.engine.types import EngineConfig, GenerationStats, SamplingParams
from localtools.engine.vocab import Vocab
from localtools.gbnf import Grammar

__all__ = [
    "ContextLengthExceeded",
    "Engine",
    "EngineConfig",
    "EngineError",
    "GenerationStats",
    "Grammar",
    "GrammarError",
    "SamplingParams",
    "Vocab",
    "baseline_llama",
    "llama_cpp_version",
]
