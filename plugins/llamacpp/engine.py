"""The llama.cpp engine's lifecycle and the model's tokens.

Log-probs are computed from the model's raw logits (never from ``create_completion(echo=True)``):
the context is created with ``logits_all=False`` and each ``llama_decode`` asks for logits only at
the positions that are scored, which are then read with ``llama_get_logits[_ith]``. (In 0.3.36
``Llama.eval()`` with ``logits_all=False`` leaves ``Llama.scores`` all zeros, so that array is
never read.)

Tokenization: ``ids(text)`` is the model's BOS (only if its GGUF says ``add_bos_token``, and only
if the text does not already start with it) followed by the text's tokens, special tokens such as
``<|im_start|>`` parsed. A continuation's tokens are those of ``ids(prompt + continuation)`` after
``len(ids(prompt))`` when ``ids(prompt)`` is a prefix of it; otherwise (a token merges across the
boundary, e.g. a prompt ending in a space) the continuation is tokenized alone, without BOS.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promptsel import BackendError, TokenMemo, continuation_tokens, with_prefix


@contextlib.contextmanager
def model_params(**fields: Any):
    """While the block runs, llama-cpp-python's model parameters default to ``fields``.

    ``Llama`` builds its parameters from ``llama_model_default_params()`` and takes no argument
    for some of them (``use_extra_bufts`` in 0.3.36), so they are set where it reads them. Also
    used by the tests to start llama-cpp-python's own server with the same parameters."""
    import llama_cpp.llama_cpp as low

    original = low.llama_model_default_params

    def with_fields() -> Any:
        params = original()
        for name, value in fields.items():
            setattr(params, name, value)
        return params

    low.llama_model_default_params = with_fields
    try:
        yield
    finally:
        low.llama_model_default_params = original


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LlamaEngine:
    """The loaded model and its main context, created on first use and freed by ``close``; the
    model's tokens. The layers above keep their own state for the context through the hooks
    ``_on_load`` and ``_on_close``.

    The backend's constructor sets the settings read here (``path``, ``n_ctx``, ``n_threads``,
    ``n_batch``, ``n_gpu_layers``, ``seed``, ``repack``) and ``_llm = None``, ``_tokens``."""

    path: Path
    n_ctx: int
    n_threads: int
    n_batch: int
    n_gpu_layers: int
    seed: int
    repack: bool
    model_name: str
    _llm: Any
    _tokens: TokenMemo

    def _engine(self) -> Any:
        """The loaded model (loaded on first use, so a run answered from the cache never loads it)."""
        if self._llm is not None:
            return self._llm
        try:
            import llama_cpp
        except ImportError as exc:
            raise BackendError(
                "The llamacpp backend needs llama-cpp-python, which is not installed.",
                hint="Run: pip install 'promptsel[llamacpp]'",
            ) from exc
        try:
            # Repacked weights (llama.cpp's "extra buffer types": AMX tiles on Sapphire Rapids-class
            # CPUs) are off unless asked for: its AMX kernels killed the process in the first decode
            # on machines that report AMX (SIGILL here, SIGSEGV in CI; ggml-org/llama.cpp#20824).
            with model_params(use_extra_bufts=self.repack):
                llm = llama_cpp.Llama(
                    str(self.path), n_ctx=self.n_ctx, n_batch=self.n_batch, n_ubatch=self.n_batch,
                    n_threads=self.n_threads, n_threads_batch=self.n_threads, n_gpu_layers=self.n_gpu_layers,
                    seed=self.seed, logits_all=False, swa_full=True, verbose=False,
                )
        except Exception as exc:  # ValueError / RuntimeError from the loader
            raise BackendError(
                f"llama.cpp could not load {self.path}: {exc}",
                hint="Check that the file is a complete GGUF model that this llama-cpp-python version supports.",
            ) from exc
        self._lc = llama_cpp
        self._ctx = llm.ctx
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._n_vocab = int(llm.n_vocab())
        n_train = int(llama_cpp.llama_model_n_ctx_train(llm.model))
        self.n_ctx_train = n_train
        self._limit = min(int(llm.n_ctx()), n_train) if n_train > 0 else int(llm.n_ctx())
        bos = int(llm.token_bos())
        self._bos = (bos,) if bos >= 0 and llama_cpp.llama_vocab_get_add_bos(self._vocab) else ()
        # llama.cpp may shrink the batch (to n_ctx) and grow the context (to its padding): a decode
        # larger than its n_batch aborts the process, so chunks follow what the context reports.
        chunk = min(self.n_batch, int(llama_cpp.llama_n_batch(self._ctx)), int(llama_cpp.llama_n_ubatch(self._ctx)))
        self._chunk = chunk
        self._on_load()
        self._llm = llm
        return llm

    def _on_load(self) -> None:
        """Hook: the model and its main context were just loaded (``_llm`` is set after it)."""

    def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is None:
            return
        self._on_close()
        llm.close()

    def _on_close(self) -> None:
        """Hook: free what was made for the context, before the model is closed."""

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # --- tokens ---------------------------------------------------------------------------
    def _ids(self, text: str) -> tuple[int, ...]:
        """BOS (if the model adds one and the text lacks it) + the text's tokens, specials parsed."""
        return self._tokens.get(text, self._tokenize)

    def _tokenize(self, text: str) -> tuple[int, ...]:
        body = self._engine().tokenize(text.encode("utf-8"), add_bos=False, special=True)
        return with_prefix(body, self._bos)  # _engine() has set self._bos

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return [len(self._ids(t)) for t in texts]

    def _continuation_ids(self, prompt: str, prompt_ids: tuple[int, ...], continuation: str) -> tuple[int, ...]:
        return continuation_tokens(
            prompt_ids, self._ids(prompt + continuation),
            lambda: self._engine().tokenize(continuation.encode("utf-8"), add_bos=False, special=True),
        )

    def _check_fits(self, n: int) -> None:
        if n > self._limit:
            if n <= self.n_ctx_train:
                more = f"pass -M n_ctx={n} or more (the model was trained on {self.n_ctx_train} tokens)"
            else:
                more = f"use a model trained on longer texts (this one: {self.n_ctx_train} tokens)"
            raise BackendError(
                f"A text of {n} tokens does not fit llama.cpp's context of {self._limit} tokens ({self.model_name}).",
                hint=f"Shorten or truncate the inputs, or {more}.",
            )

    def _piece(self, token: int) -> bytes:
        """The token's text (control tokens give b""). 0.3.36's own detokenize has a fixed 32-byte
        buffer and slices it with the negative size llama.cpp returns for a longer piece; this grows it."""
        size = 64
        while True:
            buf = ctypes.create_string_buffer(size)
            n = self._lc.llama_token_to_piece(self._vocab, token, buf, size, 0, False)
            if n >= 0:
                return buf.raw[:n]
            size = -n
