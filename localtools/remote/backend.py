"""`RemoteBackend`: the `backends.GenerationBackend` whose tokens come from upstream
engines over HTTP (llama-server, vLLM).

Each request runs on its own thread: tokenize here (the GGUF's vocabulary), pick an
upstream, stream its pieces into a `GenerationHandle` (the same handle the in-process
scheduler gives, so the service cannot tell them apart). An upstream that fails
before the first piece is marked down and the request is sent to the next one; once
pieces went out a retry would repeat text, so a failure then ends the stream with
`BackendUnavailable`, which every API turns into a clean error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from localtools.backends import BackendUnavailable
from localtools.engine import ContextLengthExceeded, GrammarError, SamplingParams
from localtools.remote import llama_server, vllm
from localtools.remote.upstream import LLAMA_SERVER, Upstream, UpstreamPool, token_bytes
from localtools.remote.wire import StreamEnd, UpstreamFailed
from localtools.scheduler import GenerationHandle, QueueFull

log = logging.getLogger("localtools.remote")


class RemoteBackend:
    """Generations served by a pool of upstream engines (one model)."""

    def __init__(self, pool: UpstreamPool, vocab: Any, n_ctx: int, max_queue: int = 64):
        self.pool = pool
        self.vocab = vocab  # engine.Vocab: tokenize_prompt, bos_token
        self.n_ctx = n_ctx
        self.max_queue = max_queue
        self._lock = threading.Lock()
        self._running: set[GenerationHandle] = set()
        self._closed = False

    # ---- GenerationBackend -------------------------------------------------

    def submit(self, prompt: str | list[int], params: SamplingParams) -> GenerationHandle:
        with self._lock:
            if self._closed:
                raise RuntimeError("backend is closed")
            waiting = len(self._running) - self.pool.capacity
            if waiting >= self.max_queue:
                raise QueueFull(waiting, 2.0)
            handle = GenerationHandle(prompt, params)
            self._running.add(handle)
        threading.Thread(target=self._serve, args=(handle,), name="localtools-remote", daemon=True).start()
        return handle

    def queue_depth(self) -> int:
        """Requests beyond what the healthy upstreams run at once (they wait upstream)."""
        with self._lock:
            return max(0, len(self._running) - self.pool.capacity)

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def close(self, cancel_running: bool = True, timeout: float | None = 30.0) -> None:
        """Cancel what runs (it stops at its next piece), wait a little, then drop the
        connections, which ends any request still waiting for its first token."""
        with self._lock:
            self._closed = True
            running = list(self._running)
        if cancel_running:
            for handle in running:
                handle.cancel()
        deadline = time.monotonic() + min(timeout if timeout is not None else 5.0, 5.0)
        for handle in running:
            handle.wait(max(0.0, deadline - time.monotonic()))
        self.pool.close()
        self.pool.client.close()

    # ---- one request ---------------------------------------------------------

    def _serve(self, handle: GenerationHandle) -> None:
        handle.started_at = time.monotonic()
        try:
            self._generate(handle)
        except BaseException as exc:  # delivered to the consumer, never lost
            if not isinstance(exc, (ContextLengthExceeded, GrammarError, ValueError, BackendUnavailable)):
                log.error("remote generation failed", exc_info=exc)
            handle._finish(exc)
        else:
            handle._finish()
        finally:
            with self._lock:
                self._running.discard(handle)

    def _generate(self, handle: GenerationHandle) -> None:
        prompt = handle.prompt  # text, or token ids already (fill-in-the-middle)
        tokens = self.vocab.tokenize_prompt(prompt) if isinstance(prompt, str) else list(prompt)
        stats = handle.stats
        stats.prompt_tokens = len(tokens)
        if not tokens:
            raise ValueError("empty prompt")
        if len(tokens) >= self.n_ctx:
            raise ContextLengthExceeded(len(tokens), self.n_ctx)
        key = token_bytes(tokens)
        tried: set[str] = set()
        errors: list[str] = []
        while True:
            picked = self.pool.acquire(key, tried)
            if picked is None:
                detail = "; ".join(errors) or "no upstream is healthy"
                raise BackendUnavailable(f"no upstream engine could serve the request ({detail})", 2.0)
            up, slot = picked
            end: list[StreamEnd] = []
            sent = 0
            try:
                stats.logprobs.clear()  # a retry starts over
                wanted = stats.logprobs if handle.params.logprobs is not None else None
                for piece in self._pieces(up, slot, handle.prompt, tokens, handle.params, end, wanted):
                    if handle.cancelled:  # closing the stream stops the upstream
                        stats.finish_reason = "cancelled"
                        stats.completion_tokens = sent  # one piece per token in both protocols
                        return
                    if not sent:
                        stats.first_token_seconds = time.monotonic() - (handle.started_at or 0.0)
                    sent += 1
                    handle._put(piece)
                self._record(handle, end[0] if end else StreamEnd(), sent)
                return
            except UpstreamFailed as exc:
                self.pool.mark_failed(up, str(exc))
                if sent:
                    raise BackendUnavailable(f"the upstream engine {up.url} failed mid-stream: {exc}") from None
                tried.add(up.url)
                errors.append(f"{up.url}: {exc}")
                log.warning("upstream %s failed before the first token (%s); trying another", up.url, exc)
            finally:
                self.pool.release(up, slot, end[0].slot if end else (None if up.kind != LLAMA_SERVER else -1), key)

    def _pieces(self, up: Upstream, slot: int, prompt: str | list[int], tokens: list[int], params: SamplingParams,
                end: list[StreamEnd], logprobs: list[Any] | None) -> Iterator[str]:
        """One attempt on one upstream, in its own protocol (logprobs: llama-server only;
        vLLM's come as token strings, not bytes, and are not asked for)."""
        n_ctx = min(self.n_ctx, up.n_ctx or self.n_ctx)
        room = n_ctx - len(tokens)
        max_tokens = room if params.max_tokens is None else max(0, min(params.max_tokens, room))
        client = self.pool.client
        if up.kind == LLAMA_SERVER:
            body = llama_server.request_body(tokens, params, slot, max_tokens)
            return llama_server.stream(client, up.url, body, n_ctx, end, logprobs, params.logprobs or 0)
        # vLLM tokenizes text itself: write the BOS the in-process engine would add
        bos = self.vocab.bos_token_id
        if isinstance(prompt, str) and tokens and tokens[0] == bos and not prompt.startswith(self.vocab.bos_token):
            prompt = self.vocab.bos_token + prompt
        body = vllm.request_body(up.model or "", prompt, params, max_tokens)
        return vllm.stream(client, up.url, body, len(tokens), n_ctx, end)

    def _record(self, handle: GenerationHandle, end: StreamEnd, pieces: int) -> None:
        """The upstream's counts into the handle's stats (ours where it gave none)."""
        stats = handle.stats
        stats.finish_reason = end.finish_reason
        stats.completion_tokens = end.completion_tokens if end.completion_tokens is not None else pieces
        if end.cached_tokens is not None:
            stats.cached_tokens = int(end.cached_tokens)
        stats.prompt_eval_tokens = (int(end.prompt_eval_tokens) if end.prompt_eval_tokens is not None
                                    else stats.prompt_tokens - stats.cached_tokens)
        if end.prompt_seconds is not None:
            stats.prompt_seconds = end.prompt_seconds
        if end.decode_seconds is not None:
            stats.decode_seconds = end.decode_seconds
