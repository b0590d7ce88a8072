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

Batched generation: prompts are generated ``n_parallel`` at a time in a second context whose KV
cache is split into independent streams (``kv_unified=false``), one per prompt. Each stream starts
at its own cell 0 and a batch holds one token per stream, so every sequence sees exactly the
kernels of one-at-a-time decoding (a multi-token prompt, then one-token steps): the generated
text is bit-identical to generating each prompt alone, whatever else is in the batch. (In one
unified cache, a sequence whose cells do not start at cell 0 gets different numbers, up to
~0.5 nats here; flash attention is placement-independent only below 64 tokens per decode.)
llama.cpp puts only streams with consecutive ids in one ubatch, so a sequence that finishes early
swaps streams with the last one still running (a copy of whole streams, cell for cell, through a
spare stream): a step is then one pass over the weights, not one per gap.
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

from promptsel import (
    CONTINUATION_LOGPROBS,
    GENERATE,
    SEQUENCE_LOGPROBS,
    Backend,
    BackendError,
    ContinuationRequest,
    ScoringMode,
    TokenMemo,
    UsageError,
    continuation_tokens,
    default_model_path,
    file_fingerprint,
    option,
    with_prefix,
)

#: Default context size, capped at the model's training context. 8192 holds the longest IMDB
#: review (~3,300 tokens) with its template, or a CoT turn; for SmolLM2-135M its f16 KV cache
#: is 23 KB a token (189 MB at 8192).
DEFAULT_N_CTX = 8192
_TOKEN_CACHE_MAX = 8192
#: Prompts generated together (KV streams of the generation context).
DEFAULT_N_PARALLEL = 16
#: Room in a generation stream, after the prompt and the reasoning, for a CoT follow-up turn.
FOLLOW_UP_ROOM = 128


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


def _checked_logprobs(row: np.ndarray, model: str) -> np.ndarray:
    """log-softmax (float64) of one row of logits, refusing the all-zero and non-finite ones."""
    if not row.any():
        raise BackendError("llama.cpp returned all-zero logits; refusing to score with them.")
    x = row.astype(np.float64)
    m = x.max()
    lse = m + math.log(float(np.exp(x - m).sum()))
    if not math.isfinite(lse):
        raise BackendError(f"llama.cpp returned non-finite logits ({model}).")
    return x - lse


def _common(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the common prefix of two token arrays."""
    m = min(len(a), len(b))
    same = a[:m] == b[:m]
    return m if bool(same.all()) else int(np.argmin(same))


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
    engines; greedy decoding ignores it), ``prefix_reuse`` (default true), ``n_parallel`` (prompts
    generated together, default 16; 1 generates one at a time; the text is the same either way).
    """

    backend_id = "llamacpp"
    capabilities: ClassVar[frozenset[str]] = frozenset({CONTINUATION_LOGPROBS, SEQUENCE_LOGPROBS, GENERATE})
    reuses_prefix: ClassVar[bool] = True
    #: One request per call: the progress bar moves, and the cache is written, per sequence.
    chunk_size = 1

    @dataclass(frozen=True)
    class Options(Backend.Options):
        # GPU kernels give different numbers from CPU ones; the other options do not change them
        # (n_parallel neither: each prompt decodes in its own KV stream, bit-identical to one at a time).
        n_ctx: int = option(DEFAULT_N_CTX, key=False, minimum=16)
        #: None: every usable core.
        n_threads: int | None = option(None, key=False, minimum=1)
        n_batch: int = option(512, key=False, minimum=8)
        n_gpu_layers: int = option(0, minimum=-1)
        seed: int = option(0, key=False, minimum=0)
        prefix_reuse: bool = option(True, key=False)
        n_parallel: int = option(DEFAULT_N_PARALLEL, key=False, minimum=1)

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        o = self.options
        self.path = self._resolve(model)
        self.n_ctx, self.n_threads, self.n_batch = o.n_ctx, o.n_threads or _cpu_count(), o.n_batch
        self.n_gpu_layers, self.seed, self.prefix_reuse = o.n_gpu_layers, o.seed, o.prefix_reuse
        self.n_parallel = self.generate_batch = o.n_parallel
        self._fingerprint: str | None = None
        self._llm: Any = None
        self._tokens = TokenMemo(_TOKEN_CACHE_MAX)
        self._streams: Any = None
        self._formatters: dict[bool, Any] = {}
        #: Work done: tokens of the sequences asked for, tokens evaluated (decoded), tokens generated.
        self.counters = {"requested": 0, "evaluated": 0, "generated": 0}

    @staticmethod
    def _resolve(model: str | None) -> Path:
        if model is None:
            return default_model_path()
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
            self._fingerprint = file_fingerprint(self.path)
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
        self._free_streams()
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
            self.counters["evaluated"] += k
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
        return _checked_logprobs(row, self.model_name)

    # --- text -----------------------------------------------------------------------------
    def render_chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self._chat_formatter(add_generation_prompt)(messages=[dict(m) for m in messages]).prompt

    def _chat_formatter(self, add_generation_prompt: bool) -> Any:
        """The chat template, compiled once per flag (compiling it takes ~2 ms, rendering ~0.1 ms)."""
        if add_generation_prompt in self._formatters:
            return self._formatters[add_generation_prompt]
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

        formatter = self._formatters[add_generation_prompt] = Jinja2ChatFormatter(
            template=template, eos_token=text(int(llm.token_eos())), bos_token=text(int(llm.token_bos())),
            add_generation_prompt=add_generation_prompt,
        )
        return formatter

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
            self.counters["requested"] += n + (sum(len(c) - 1 for c in conts) if mode == "full" else 0)
            stream = self._stream_for(prompt_ids, n + longest)
            if stream is not None:  # a CoT follow-up right after its reasoning: reuse the first turn
                out.append(self._stream_continuations(*stream, prompt_ids, conts, mode))
                continue
            first = self._last_row_logprobs(prompt_ids)
            values = np.empty(len(conts))
            for k, cont in enumerate(conts):
                total = float(first[cont[0]])
                if mode == "full" and len(cont) > 1:
                    total += float(self._extra_logprobs(prompt_ids, cont).sum())
                values[k] = total
            out.append(values)
        return out

    def _stream_for(self, ids: tuple[int, ...], cells: int) -> tuple[int, int] | None:
        """The generation stream whose exact prefix of ``ids`` is longer than the main cache's, and
        that prefix's length. Only a stream's prompt counts: its generated tokens were decoded one at
        a time, which gives other numbers than evaluating them with the text after them."""
        st = self._streams
        if st is None or not self.prefix_reuse or cells > st.cells:
            return None
        arr = np.asarray(ids, dtype=np.int32)
        best, best_keep = None, _common(self._kv[: self._kv_len], arr)
        for s, (tokens, exact) in enumerate(zip(st.tokens, st.exact)):
            keep = min(_common(tokens, arr), exact)
            if keep > best_keep:
                best, best_keep = s, keep
        return None if best is None else (best, best_keep)

    def _stream_continuations(self, s: int, keep: int, ids: tuple[int, ...], conts: list[tuple[int, ...]],
                              mode: ScoringMode) -> np.ndarray:
        """``continuation_logprobs`` for one request in generation stream ``s``, after its first ``keep``
        tokens: the same decodes as in the main cache (>= 2 tokens each), so the same numbers."""
        st, lc, n = self._streams, self._lc, len(ids)
        assert st is not None
        keep = max(min(keep, n - 2), 0)
        lc.llama_memory_seq_rm(st.mem, s, keep, -1)
        for a, b in _chunks(n - keep, self._chunk):
            got = self._stream_decode(st, ids[keep + a : keep + b], range(keep + a, keep + b), [s] * (b - a),
                                      want_last=keep + b == n)
        first = _checked_logprobs(got[-1], self.model_name)
        st.tokens[s], st.exact[s] = np.asarray(ids, dtype=np.int32), n
        values = np.empty(len(conts))
        for k, cont in enumerate(conts):
            total = float(first[cont[0]])
            if mode == "full" and len(cont) > 1:  # as _extra_logprobs: the prompt's last token again, then cont[:-1]
                lc.llama_memory_seq_rm(st.mem, s, n - 1, -1)
                m = len(cont)
                rows = np.array(self._stream_decode(st, (ids[-1], *cont[:-1]), range(n - 1, n - 1 + m), [s] * m,
                                                    want=[False] + [True] * (m - 1)))
                total += float((rows[np.arange(m - 1), cont[1:]].astype(np.float64) - _logsumexp_rows(rows)).sum())
                st.exact[s] = n - 1
            values[k] = total
        return values

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
            self.counters["requested"] += n
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
        end-of-generation token (EOS, end of turn) or at a stop string, which is cut off.

        Prompts go ``n_parallel`` at a time through independent KV streams (module notes): the text
        of each is the same as when it is generated alone."""
        self._engine()
        stops = tuple(s for s in (stop or []) if s)
        all_ids = []
        for prompt in prompts:
            ids = self._ids(prompt)
            if not ids:
                raise BackendError("An empty prompt cannot be continued (the model adds no BOS).")
            self._check_fits(len(ids))
            all_ids.append(ids)
        self.counters["requested"] += sum(map(len, all_ids))
        states = [_Greedy(len(ids), max_tokens, stops, self._limit) for ids in all_ids]
        # Streams hold a prompt, its generation and a follow-up turn (CoT); prompts too long for a
        # shared context go alone.
        cells = -(-(max(map(len, all_ids), default=0) + max_tokens + FOLLOW_UP_ROOM) // 256) * 256
        streams = min(self.n_parallel, len(prompts), self.n_ctx // max(cells, 1))
        if streams >= 2 and max_tokens > 1 and cells <= self._limit:
            for start in range(0, len(prompts), streams):  # fixed groups, in the order given
                self._generate_streams(all_ids[start : start + streams], states[start : start + streams], cells)
        else:
            for ids, state in zip(all_ids, states):
                self._generate_alone(ids, state)
        self.counters["generated"] += sum(g.step for g in states)
        return [g.text() for g in states]

    def _generate_alone(self, ids: tuple[int, ...], state: _Greedy) -> None:
        row: np.ndarray | None = self._last_row_logprobs(ids)
        while row is not None:
            token = state.feed(row, self)
            row = None if token is None else self._decode((token,), state.position, out_from=state.position)
        # The generated tokens were decoded one at a time, which gives other numbers than evaluating
        # them with the text after them (module notes): the next request (its CoT follow-up) may
        # keep the prompt only, as it does from a generation stream.
        self._keep_prefix(ids, len(ids))

    def _generate_streams(self, prompts: list[tuple[int, ...]], states: list[_Greedy], cells: int) -> None:
        """Generate each prompt in its own KV stream, one token per stream per decode."""
        st = self._stream_context(len(prompts), cells)
        lc = self._lc
        lc.llama_memory_clear(st.mem, True)
        st.tokens, st.exact = [], []
        rows: list[np.ndarray | None] = [None] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: prompts[i])
        for s, i in enumerate(order):  # stream s holds prompt i: multi-token chunks from its cell 0
            ids, n = prompts[i], len(prompts[i])
            keep = 0
            if s > 0:  # share the prefix of the prompt before (sorted): a copy of its stream, cut back
                before = prompts[order[s - 1]]
                same = next((k for k, (x, y) in enumerate(zip(before, ids)) if x != y), min(len(before), n))
                keep = max(min(same, n - 2), 0)  # evaluate >= 2 tokens: see the module notes
                if keep:
                    lc.llama_memory_seq_cp(st.mem, s - 1, s, -1, -1)
                    lc.llama_memory_seq_rm(st.mem, s, keep, -1)
            for a, b in _chunks(n - keep, self._chunk):
                got = self._stream_decode(st, ids[keep + a : keep + b], range(keep + a, keep + b), [s] * (b - a),
                                          want_last=keep + b == n)
            _checked_logprobs(got[-1], self.model_name)
            rows[s] = got[-1]
        states = [states[i] for i in order]
        fed: list[list[int]] = [[] for _ in states]
        # The unfinished sequences stay in streams 0..n-1, one ubatch (module notes): one that finishes
        # swaps places with the last one still running.
        while True:
            tokens = [None if row is None else state.feed(row, self) for state, row in zip(states, rows)]
            lo, hi = 0, len(states) - 1
            while True:
                while hi >= 0 and tokens[hi] is None:
                    hi -= 1
                while lo < hi and tokens[lo] is not None:
                    lo += 1
                if lo >= hi:
                    break
                self._swap_streams(st, lo, hi)
                for lst in (order, states, fed, tokens):
                    lst[lo], lst[hi] = lst[hi], lst[lo]
            if hi < 0:
                break
            running = range(hi + 1)
            got = self._stream_decode(st, [tokens[s] for s in running], [states[s].position for s in running], running)
            rows = [None] * len(states)
            for s, row in zip(running, got):
                rows[s] = row
                fed[s].append(tokens[s])
        # What each stream holds, for the CoT follow-ups that come next (exact: the prompt only).
        st.tokens = [np.asarray(prompts[i] + tuple(f), dtype=np.int32) for i, f in zip(order, fed)]
        st.exact = [len(prompts[i]) for i in order]

    def _swap_streams(self, st: _Streams, a: int, b: int) -> None:
        """Exchange the contents of KV streams ``a`` and ``b`` through the spare stream (llama.cpp
        copies a whole stream at the next decode, in the order asked)."""
        cp = self._lc.llama_memory_seq_cp
        cp(st.mem, a, st.n, -1, -1)
        cp(st.mem, b, a, -1, -1)
        cp(st.mem, st.n, b, -1, -1)

    def _stream_context(self, streams: int, cells: int) -> _Streams:
        """The generation context: ``streams`` independent KV streams of at least ``cells`` cells
        each, with the main context's settings otherwise (kept, and replaced when too small)."""
        st = self._streams
        if st is not None and st.n >= streams and st.cells >= cells:
            return st
        self._free_streams()
        lc, llm = self._lc, self._llm
        params = type(llm.context_params).from_buffer_copy(llm.context_params)
        # One stream more than asked: the spare that swaps go through (_swap_streams).
        params.n_seq_max, params.kv_unified, params.n_ctx = streams + 1, False, (streams + 1) * cells
        ctx = lc.llama_init_from_model(llm.model, params)
        if not ctx:
            raise BackendError(f"llama.cpp could not create a context of {streams} x {cells} tokens for generation.",
                               hint="Pass -M n_parallel=1 to generate one prompt at a time.")
        size = max(self._chunk, streams)
        batch = lc.llama_batch_init(size, 0, 1)
        np.ctypeslib.as_array(batch.n_seq_id, shape=(size,))[:] = 1
        self._streams = _Streams(ctx, lc.llama_get_memory(ctx), batch, streams, int(lc.llama_n_ctx_seq(ctx)), size)
        return self._streams

    def _stream_decode(self, st: _Streams, tokens: Sequence[int], positions: Sequence[int], seqs: Sequence[int],
                       want_last: bool = False, want: Sequence[bool] | None = None) -> list[np.ndarray]:
        """One decode in the generation context. Returns a copy of the logits of every token, of the
        last (``want_last``) or of those flagged in ``want``."""
        lc, k = self._lc, len(tokens)
        st.token[:k], st.pos[:k] = tokens, positions
        if want is None:
            want = [not want_last] * (k - 1) + [True]
        st.logits[:k] = want
        for i, s in enumerate(seqs):
            st.batch.seq_id[i][0] = s
        st.batch.n_tokens = k
        rc = lc.llama_decode(st.ctx, st.batch)
        if rc != 0:
            lc.llama_memory_clear(st.mem, True)
            st.tokens, st.exact = [], []
            raise BackendError(f"llama_decode failed with code {rc} ({self.model_name}).")
        self.counters["evaluated"] += k
        return [np.ctypeslib.as_array(lc.llama_get_logits_ith(st.ctx, i), shape=(self._n_vocab,)).copy()
                for i in range(k) if want[i]]

    def _free_streams(self) -> None:
        st, self._streams = self._streams, None
        if st is not None:
            self._lc.llama_batch_free(st.batch)
            self._lc.llama_free(st.ctx)


class _Streams:
    """The generation context and its batch (arrays written through numpy views)."""

    def __init__(self, ctx: Any, mem: Any, batch: Any, n: int, cells: int, size: int) -> None:
        self.ctx, self.mem, self.batch, self.n, self.cells = ctx, mem, batch, n, cells
        #: The tokens in each stream, and how many of them were evaluated as a scoring pass would.
        self.tokens: list[np.ndarray] = []
        self.exact: list[int] = []
        self.token = np.ctypeslib.as_array(batch.token, shape=(size,))
        self.pos = np.ctypeslib.as_array(batch.pos, shape=(size,))
        self.logits = np.ctypeslib.as_array(batch.logits, shape=(size,))


class _Greedy:
    """One prompt's greedy decoding, step by step: the same rules alone or in a batch."""

    def __init__(self, n: int, max_tokens: int, stops: tuple[str, ...], limit: int) -> None:
        self.n, self.max_tokens, self.stops, self.limit = n, max_tokens, stops, limit
        self.step = 0
        self.data = b""
        self.done = max_tokens <= 0

    @property
    def position(self) -> int:
        """Where the token returned by the last ``feed`` goes."""
        return self.n + self.step - 1

    def feed(self, row: np.ndarray, backend: LlamaCppBackend) -> int | None:
        """Take the next-token logits; return the token to decode next, or None when finished."""
        if self.done or self.n + self.step >= self.limit:
            self.done = True
            return None
        token = int(np.argmax(row))
        if backend._lc.llama_vocab_is_eog(backend._vocab, token):
            self.done = True
            return None
        self.data += backend._piece(token)
        self.step += 1
        stopped = bool(self.stops) and any(s in self.data.decode("utf-8", errors="ignore") for s in self.stops)
        self.done = stopped or self.step >= self.max_tokens
        return None if self.done else token

    def text(self) -> str:
        text = self.data.decode("utf-8", errors="ignore")
        cuts = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        return text[: min(cuts)] if cuts else text
