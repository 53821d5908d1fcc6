"""A GGUF's tokenizer without its weights, for serving in front of a remote engine.

When tokens come from another process (llama-server, vLLM), localtools still renders
the chat template and counts tokens itself, so it needs the model's vocabulary, its
BOS/EOS text and its metadata, but not the weights: llama.cpp loads those with
`vocab_only`, in milliseconds and a few MB.
"""

from __future__ import annotations

import llama_cpp

from localtools.engine.backend import check_model_file, init_backend, log_mark, log_since


class Vocab:
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
        bos = llama_cpp.llama_vocab_bos(self._vocab)
        eos = llama_cpp.llama_vocab_eos(self._vocab)
        self.bos_token_id: int = bos
        self.eos_token_id: int = eos
        self.bos_token: str = self._token_text(bos) if bos >= 0 else ""
        self.eos_token: str = self._token_text(eos) if eos >= 0 else ""
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab)) and bos >= 0

    def _token_text(self, token: int) -> str:
        raw = llama_cpp.llama_vocab_get_text(self._vocab, token)
        return raw.decode("utf-8", errors="replace") if raw else ""

    def tokenize(self, text: str, add_bos: bool = False, special: bool = True) -> list[int]:
        """Text -> token ids, special-token text parsed (as `Engine.tokenize`)."""
        data = text.encode("utf-8")
        capacity = len(data) + 8
        arr = (llama_cpp.llama_token * capacity)()
        n = llama_cpp.llama_tokenize(self._vocab, data, len(data), arr, capacity, add_bos, special)
        if n < 0:
            capacity = -n
            arr = (llama_cpp.llama_token * capacity)()
            n = llama_cpp.llama_tokenize(self._vocab, data, len(data), arr, capacity, add_bos, special)
            if n < 0:
                raise ValueError(f"tokenization failed ({n}) for text of {len(data)} bytes")
        return list(arr[:n])

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def tokenize_prompt(self, prompt: str) -> list[int]:
        """The tokens the in-process engine would evaluate for `prompt` (BOS added only
        when the model asks for one and the text does not start with it)."""
        tokens = self.tokenize(prompt, add_bos=False, special=True)
        if self._add_bos and (not tokens or tokens[0] != self.bos_token_id):
            tokens.insert(0, self.bos_token_id)
        return tokens

    def close(self) -> None:
        model, self._model = getattr(self, "_model", None), None
        if model:
            llama_cpp.llama_model_free(model)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
