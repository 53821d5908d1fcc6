"""A GGUF's tokenizer without its weights, for serving in front of a remote engine.

When tokens come from another process (llama-server, vLLM), localtools still renders
the chat template and counts tokens itself, so it needs the model's vocabulary, its
BOS/EOS text and its metadata, but not the weights: llama.cpp loads those with
`vocab_only`, in milliseconds and a few MB.
"""

from __future__ import annotations

import llama_cpp

from localtools.engine.backend import check_model_file, init_backend, log_mark, log_since
from localtools.engine.tokens import VocabTokenizer


class Vocab(VocabTokenizer):
    """The tokenizer of one GGUF (no context, no weights): tokenize as `Engine` does.

    `n_ctx` is the context window of the engine that serves the model; the remote
    runtime sets it from what the upstream reports.
    """

    def __init__(self, model_path: str, n_ctx: int = 0):
        check_model_file(model_path)
        init_backend(False)
        mparams = llama_cpp.llama_model_default_params()
        mparams.vocab_only = True
        mparams.n_gpu_layers = 0
        mark = log_mark()
        model = llama_cpp.llama_model_load_from_file(model_path.encode("utf-8"), mparams)
        if not model:
            raise ValueError(f"llama.cpp could not read the vocabulary of {model_path}: "
                             f"{log_since(mark)[-500:] or 'unknown error'}")
        self._model = model
        self.model_path = model_path
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(model))
        self.n_ctx = n_ctx or self.n_ctx_train
        self._read_special_tokens()

    def close(self) -> None:
        model, self._model = getattr(self, "_model", None), None
        if model:
            llama_cpp.llama_model_free(model)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
