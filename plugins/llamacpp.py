"""The ``llamacpp`` backend: any GGUF model through llama-cpp-python, in process.

Log-probs are computed here from the model's raw logits (never from ``create_completion(echo=True)``):
the context is created with ``logits_all=False`` and each ``llama_decode`` asks for logits only at
the positions that are scored, which are then read with ``llama_get_logits[_ith]``. (In 0.3.36
``Llama.eval()`` with ``logits_all=False`` leaves ``Llama.scores`` all zeros, so that array is
never read.)

Tokenization: ``ids(text)`` is the model's BOS (only if its GGUF says ``add_bos_token``, and only
if the text does not already start with it) followed by the text's tokens, special tokens such as
``<|im_start|>`` parsed. A continuation's tokens are those of ``ids(prompt + continuation)`` after
``len(ids(prompt))`` when ``ids(prompt)`` is a prefix of it; otherwise (a token merges across the
boundary, e.g. a prompt ending in a space) the continuation is tokenized alone, without BOS.

KV prefix reuse: the backend remembers which tokens sit in the KV cache. A new sequence keeps the
longest common prefix, the cache entries after it are removed (``llama_memory_seq_rm``) and only
the rest is evaluated. promptsel sends requests prompt-major (one template, then all its inputs),
so instruction-first templates share long prefixes.

Numerics: llama.cpp computes a one-token batch with different kernels than a batch of two or more
(with the Q4_1 default model the two differ by up to ~0.2 nats on likely tokens). So no scoring
decode here ever evaluates a single token: at least the prompt's last two tokens are evaluated,
a multi-token continuation is evaluated together with the prompt's last token, and chunks are cut
so that none has one token. Then results are bit-identical with and without prefix reuse and do
not depend on what was scored before. (Greedy generation decodes one token at a time; only its
argmax matters.)
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from promptsel.assets import models
from promptsel.backend import (
    CONTINUATION_LOGPROBS,
    GENERATE,
    SEQUENCE_LOGPROBS,
    Backend,
    ContinuationRequest,
    ScoringMode,
    TokenMemo,
    continuation_tokens,
    with_prefix,
)
from promptsel.errors import BackendError, UsageError
from promptsel.options import option

#: Default context size, capped at the model's training context. 8192 holds the longest IMDB
#: review (~3,300 tokens) with its template, or a CoT turn; for SmolLM2-135M its f16 KV cache
#: is 23 KB a token (189 MB at 8192).
DEFAULT_N_CTX = 8192
_TOKEN_CACHE_MAX = 8192


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    """[start, end) pieces of at most ``size`` tokens, none of one token unless n == 1."""
    pieces = list(itertools.pairwise([*range(0, n, size), n]))
    if len(pieces) > 1 and pieces[-1][1] - pieces[-1][0] == 1:
        (a, b), (_, d) = pieces[-2], pieces[-1]
        pieces[-2:] = [(a, b - 1), (b - 1, d)]
    return pieces


def _logsumexp_rows(rows: np.ndarray) -> np.ndarray:
    """log Σ exp over the last axis of float32 rows; the sum is accumulated in float64."""
    m = rows.max(axis=-1, keepdims=True)
    s = np.exp(rows - m).sum(axis=-1, dtype=np.float64)
    return m[..., 0].astype(np.float64) + np.log(s)


class LlamaCppBackend(Backend):
    """A GGUF model in llama.cpp. ``model=None`` is the embedded default (SmolLM2-135M-Instruct).

    Options: ``n_ctx`` (default 8192, capped at the model's training context), ``n_threads``
    (default: every usable core), ``n_batch`` (tokens per decode, default 512), ``n_gpu_layers``
    (layers offloaded by a GPU build of llama.cpp; default 0), ``seed`` (kept for sampling
    engines; greedy decoding ignores it), ``prefix_reuse`` (default true).
    """

    backend_id = "llamacpp"
    capabilities: ClassVar[frozenset[str]] = frozenset({CONTINUATION_LOGPROBS, SEQUENCE_LOGPROBS, GENERATE})

    @dataclass(frozen=True)
    class Options(Backend.Options):
        # GPU kernels give different numbers from CPU ones; the other options do not change them.
        n_ctx: int = option(DEFAULT_N_CTX, key=False, minimum=16)
        #: None: every usable core.
        n_threads: int | None = option(None, key=False, minimum=1)
        n_batch: int = option(512, key=False, minimum=8)
        n_gpu_layers: int = option(0, minimum=-1)
        seed: int = option(0, key=False, minimum=0)
        prefix_reuse: bool = option(True, key=False)

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        o = self.options
        self.path = self._resolve(model)
        self.n_ctx, self.n_threads, self.n_batch = o.n_ctx, o.n_threads or _cpu_count(), o.n_batch
        self.n_gpu_layers, self.seed, self.prefix_reuse = o.n_gpu_layers, o.seed, o.prefix_reuse
        self._fingerprint: str | None = None
        self._llm: Any = None
        self._tokens = TokenMemo(_TOKEN_CACHE_MAX)

    @staticmethod
    def _resolve(model: str | None) -> Path:
        if model is None:
            return models.default_model_path()
        path = Path(model).expanduser()
        if not path.is_file():
            raise BackendError(
                f"GGUF model file not found: {path}.",
                hint="Pass the path of a .gguf file with --model, or leave --model out for the default model.",
            )
        return path

    # --- identity -------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.path.stem if self.path.suffix == ".gguf" else self.path.name

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = models.file_fingerprint(self.path)
        return self._fingerprint

    def versions(self) -> dict[str, str]:
        try:
            return {"llama-cpp-python": metadata.version("llama-cpp-python")}
        except metadata.PackageNotFoundError:
            return {}

    # --- engine ---------------------------------------------------------------------------
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
        # One batch, reused; its arrays are written through numpy views (no per-token ctypes).
        batch = llama_cpp.llama_batch_init(self._chunk, 0, 1)
        self._batch = batch
        self._b_token = np.ctypeslib.as_array(batch.token, shape=(self._chunk,))
        self._b_pos = np.ctypeslib.as_array(batch.pos, shape=(self._chunk,))
        self._b_logits = np.ctypeslib.as_array(batch.logits, shape=(self._chunk,))
        np.ctypeslib.as_array(batch.n_seq_id, shape=(self._chunk,))[:] = 1
        for i in range(self._chunk):
            batch.seq_id[i][0] = 0
        # The tokens in the KV cache (_kv[:_kv_len]) and the known log p(_kv[i+1] | _kv[:i+1]) (NaN:
        # not computed), kept so that sequence_logprobs can reuse rows of a shared prefix.
        self._kv = np.zeros(self._limit + 1, dtype=np.int32)
        self._kv_len = 0
        self._known = np.full(self._limit + 1, np.nan)
        self._clear()
        self._llm = llm
        return llm

    def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is None:
            return
        self._lc.llama_batch_free(self._batch)
        self._batch = None
        llm.close()

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

    # --- the KV cache and decoding -------------------------------------------------------------
    def _keep_prefix(self, ids: Sequence[int], limit: int) -> int:
        """Keep the KV cache's common prefix with ``ids`` (at most ``limit`` tokens); drop the rest."""
        keep = 0
        if self.prefix_reuse and self._kv_len:
            m = min(self._kv_len, len(ids), limit)
            if m > 0:
                same = self._kv[:m] == np.asarray(ids[:m], dtype=np.int32)
                keep = m if bool(same.all()) else int(np.argmin(same))
        if keep < self._kv_len:
            if not self._lc.llama_memory_seq_rm(self._mem, 0, keep, -1):
                # Some memories (recurrent models) cannot drop a suffix: start over.
                self._clear()
                return 0
            self._kv_len = keep
        return keep

    def _clear(self) -> None:
        self._lc.llama_memory_clear(self._mem, True)
        self._kv_len = 0
        self._known[:] = np.nan

    def _decode(self, ids: Sequence[int], start: int, out_from: int, out_to: int | None = None,
                on_rows: Callable[[int, np.ndarray], None] | None = None) -> np.ndarray | None:
        """Evaluate ``ids`` at positions ``start...`` after the ``start`` tokens kept in the cache.

        Logits are requested only for positions in [out_from, out_to); ``on_rows(position, rows)``
        sees each decode's rows (a view into llama.cpp's buffer, valid until the next decode).
        Returns a copy of the row of the last token when it was requested.
        """
        lc, n, last = self._lc, len(ids), None
        end = start + n if out_to is None else out_to
        arr = np.asarray(ids, dtype=np.int32)
        # _known[i] holds log p(_kv[i+1] | _kv[:i+1]) for the token array's content (also past
        # _kv_len). Writing a different token at position j voids every entry that depends on it.
        same = self._kv[start : start + n] == arr
        if not same.all():
            self._known[max(start + int(np.argmin(same)) - 1, 0) :] = np.nan
        for a, b in _chunks(n, self._chunk):
            k = b - a
            positions = np.arange(start + a, start + b, dtype=np.int32)
            flags = (positions >= out_from) & (positions < end)
            self._b_token[:k] = arr[a:b]
            self._b_pos[:k] = positions
            self._b_logits[:k] = flags
            self._batch.n_tokens = k
            rc = lc.llama_decode(self._ctx, self._batch)
            if rc != 0:
                self._clear()
                raise BackendError(f"llama_decode failed with code {rc} ({self.model_name}).")
            self._kv[start + a : start + b] = arr[a:b]
            self._kv_len = start + b
            n_out = int(flags.sum())
            if n_out:
                rows = np.ctypeslib.as_array(lc.llama_get_logits(self._ctx), shape=(n_out, self._n_vocab))
                if on_rows is not None:
                    on_rows(int(positions[flags][0]), rows)
                if b == n and flags[-1]:
                    last = rows[-1].copy()
        return last

    def _last_row_logprobs(self, ids: tuple[int, ...]) -> np.ndarray:
        """log-softmax (float64) of the next-token logits after ``ids``; the cache then holds ``ids``."""
        n = len(ids)
        keep = self._keep_prefix(ids, max(n - 2, 0))  # evaluate >= 2 tokens: see the module notes
        row = self._decode(ids[keep:], keep, out_from=n - 1)
        assert row is not None
        if not row.any():
            raise BackendError("llama.cpp returned all-zero logits; refusing to score with them.")
        x = row.astype(np.float64)
        m = x.max()
        lse = m + math.log(float(np.exp(x - m).sum()))
        if not math.isfinite(lse):
            raise BackendError(f"llama.cpp returned non-finite logits ({self.model_name}).")
        return x - lse

    # --- text -----------------------------------------------------------------------------
    def render_chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
        llm = self._engine()
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise BackendError(
                f"{self.model_name} has no chat template (tokenizer.chat_template) in its GGUF metadata.",
                hint="Use a prompt set with raw (non-chat) prompts for this model, or a chat model.",
            )
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def text(token: int) -> str:
            return llm._model.token_get_text(token) if token >= 0 else ""

        formatter = Jinja2ChatFormatter(
            template=template, eos_token=text(int(llm.token_eos())), bos_token=text(int(llm.token_bos())),
            add_generation_prompt=add_generation_prompt,
        )
        return formatter(messages=[dict(m) for m in messages]).prompt

    # --- scoring --------------------------------------------------------------------------
    def continuation_logprobs(self, requests: Sequence[ContinuationRequest], mode: ScoringMode = "full") -> list[np.ndarray]:
        if mode not in ("full", "first_token"):
            raise UsageError(f"Unknown scoring mode {mode!r}; use 'full' or 'first_token'.")
        self._engine()
        out = []
        for req in requests:
            prompt_ids = self._ids(req.prompt)
            n = len(prompt_ids)
            if n == 0:
                raise BackendError("An empty prompt has no next-token distribution to score (the model adds no BOS).")
            conts = [self._continuation_ids(req.prompt, prompt_ids, c) for c in req.continuations]
            longest = max((len(c) for c in conts), default=1)
            self._check_fits(n + (longest - 1 if mode == "full" else 0))
            first = self._last_row_logprobs(prompt_ids)
            values = np.empty(len(conts))
            for k, cont in enumerate(conts):
                total = float(first[cont[0]])
                if mode == "full" and len(cont) > 1:
                    total += float(self._extra_logprobs(prompt_ids, cont).sum())
                values[k] = total
            out.append(values)
        return out

    def _extra_logprobs(self, prompt_ids: tuple[int, ...], cont: tuple[int, ...]) -> np.ndarray:
        """log p(cont[j] | prompt, cont[:j]) for j >= 1, evaluating the prompt's last token again
        together with cont[:-1] (never a one-token batch); the cache then holds prompt + cont[:-1]."""
        n = len(prompt_ids)
        keep = self._keep_prefix(prompt_ids, n - 1)
        if keep < n - 1:  # the prompt was dropped (a memory that cannot remove a suffix)
            self._decode(prompt_ids[keep : n - 1], keep, out_from=n + len(cont))
        targets = np.asarray(cont[1:], dtype=np.int64)
        got: list[np.ndarray] = []

        def take(pos: int, rows: np.ndarray) -> None:
            idx = np.arange(pos - n, pos - n + len(rows))
            got.append(rows[np.arange(len(rows)), targets[idx]].astype(np.float64) - _logsumexp_rows(rows))

        self._decode((prompt_ids[-1], *cont[:-1]), n - 1, out_from=n, on_rows=take)
        return np.concatenate(got)

    def sequence_logprobs(self, texts: Sequence[str]) -> list[np.ndarray]:
        """log p(t_i | t_<i) for i = 1 ... len-1 over the token ids ``t`` of each text.

        ``t`` starts with the model's BOS when its tokenizer adds one (then the text's first token
        is scored, conditioned on BOS); when it adds none (SmolLM2), ``t_0`` is the text's first
        token and has no log-prob. So a text of ``n`` ids gives ``n - 1`` values (none for n < 2).
        """
        self._engine()
        out = []
        for text in texts:
            ids = self._ids(text)
            n = len(ids)
            if n < 2:
                out.append(np.zeros(0))
                continue
            self._check_fits(n)
            arr = np.asarray(ids, dtype=np.int32)
            # Rows whose log-prob is already known from an earlier decode of the same prefix.
            common = 0
            if self.prefix_reuse and self._kv_len:
                m = min(self._kv_len, n)
                same = self._kv[:m] == arr[:m]
                common = m if bool(same.all()) else int(np.argmin(same))
            r = max(min(common - 1, n - 1), 0)
            unknown = np.flatnonzero(np.isnan(self._known[:r]))
            if len(unknown):
                r = int(unknown[0])
            if r < n - 1:
                keep = self._keep_prefix(ids, r)
                known = self._known

                def store(pos: int, rows: np.ndarray, arr: np.ndarray = arr, known: np.ndarray = known) -> None:
                    k = len(rows)
                    targets = arr[pos + 1 : pos + 1 + k]
                    known[pos : pos + k] = rows[np.arange(k), targets].astype(np.float64) - _logsumexp_rows(rows)

                # Row n-1 is not needed, but evaluating the last token too keeps it in the cache
                # for the next request and every decode at two tokens or more.
                self._decode(ids[keep:], keep, out_from=keep, out_to=n - 1, on_rows=store)
            values = self._known[: n - 1].copy()
            if not np.isfinite(values).all():
                raise BackendError(f"llama.cpp returned non-finite logits ({self.model_name}).")
            out.append(values)
        return out

    def generate(self, prompts: Sequence[str], *, max_tokens: int, stop: Sequence[str] | None = None) -> list[str]:
        """Greedy (argmax) continuation of each prompt, at most ``max_tokens`` tokens; stops at an
        end-of-generation token (EOS, end of turn) or at a stop string, which is cut off."""
        self._engine()
        lc = self._lc
        stops = [s for s in (stop or []) if s]
        out = []
        for prompt in prompts:
            ids = self._ids(prompt)
            n = len(ids)
            if n == 0:
                raise BackendError("An empty prompt cannot be continued (the model adds no BOS).")
            self._check_fits(n)
            row: np.ndarray | None = self._last_row_logprobs(ids)
            data = b""
            for step in range(max_tokens):
                if row is None or n + step >= self._limit:
                    break
                token = int(np.argmax(row))
                if lc.llama_vocab_is_eog(self._vocab, token):
                    break
                data += self._piece(token)
                if stops and any(s in data.decode("utf-8", errors="ignore") for s in stops):
                    break
                if step + 1 < max_tokens:
                    row = self._decode((token,), n + step, out_from=n + step)  # argmax only
            text = data.decode("utf-8", errors="ignore")
            cuts = [i for i in (text.find(s) for s in stops) if i >= 0]
            out.append(text[: min(cuts)] if cuts else text)
        return out
