"""Batched generation in independent KV streams, and CoT follow-ups scored from them.

Prompts are generated ``n_parallel`` at a time in a second context whose KV cache is split into
independent streams (``kv_unified=false``), one per prompt. Each stream starts at its own cell 0
and a batch holds one token per stream, so every sequence sees exactly the kernels of
one-at-a-time decoding (a multi-token prompt, then one-token steps): the generated text is
bit-identical to generating each prompt alone, whatever else is in the batch. (In one unified
cache, a sequence whose cells do not start at cell 0 gets different numbers, up to ~0.5 nats
here; flash attention is placement-independent only below 64 tokens per decode.) llama.cpp puts
only streams with consecutive ids in one ubatch, so a sequence that finishes early swaps streams
with the last one still running (a copy of whole streams, cell for cell, through a spare stream):
a step is then one pass over the weights, not one per gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from promptsel import BackendError, ScoringMode

from .greedy import Greedy
from .numerics import checked_logprobs, chunks, common_prefix, logsumexp_rows
from .prefix import PrefixCache


class StreamContext:
    """The generation context and its batch (arrays written through numpy views)."""

    def __init__(self, ctx: Any, mem: Any, batch: Any, n: int, cells: int, size: int) -> None:
        self.ctx, self.mem, self.batch, self.n, self.cells = ctx, mem, batch, n, cells
        #: The tokens in each stream, and how many of them were evaluated as a scoring pass would.
        self.tokens: list[np.ndarray] = []
        self.exact: list[int] = []
        self.token = np.ctypeslib.as_array(batch.token, shape=(size,))
        self.pos = np.ctypeslib.as_array(batch.pos, shape=(size,))
        self.logits = np.ctypeslib.as_array(batch.logits, shape=(size,))


class StreamScheduler(PrefixCache):
    """The generation context's streams: which prompt runs where, and what each stream holds
    afterwards for the follow-ups that share its prompt. The backend's constructor sets
    ``_streams = None``."""

    _streams: StreamContext | None

    def _on_close(self) -> None:
        self._free_streams()
        super()._on_close()

    # --- generation -----------------------------------------------------------------------
    def _generate_streams(self, prompts: list[tuple[int, ...]], states: list[Greedy], cells: int) -> None:
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
                keep = max(min(same, n - 2), 0)  # evaluate >= 2 tokens: see .numerics
                if keep:
                    lc.llama_memory_seq_cp(st.mem, s - 1, s, -1, -1)
                    lc.llama_memory_seq_rm(st.mem, s, keep, -1)
            for a, b in chunks(n - keep, self._chunk):
                got = self._stream_decode(st, ids[keep + a : keep + b], range(keep + a, keep + b), [s] * (b - a),
                                          want_last=keep + b == n)
            checked_logprobs(got[-1], self.model_name)
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

    def _swap_streams(self, st: StreamContext, a: int, b: int) -> None:
        """Exchange the contents of KV streams ``a`` and ``b`` through the spare stream (llama.cpp
        copies a whole stream at the next decode, in the order asked)."""
        cp = self._lc.llama_memory_seq_cp
        cp(st.mem, a, st.n, -1, -1)
        cp(st.mem, b, a, -1, -1)
        cp(st.mem, st.n, b, -1, -1)

    # --- the generation context -----------------------------------------------------------
    def _stream_context(self, streams: int, cells: int) -> StreamContext:
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
        self._streams = StreamContext(ctx, lc.llama_get_memory(ctx), batch, streams, int(lc.llama_n_ctx_seq(ctx)), size)
        return self._streams

    def _stream_decode(self, st: StreamContext, tokens: Sequence[int], positions: Sequence[int], seqs: Sequence[int],
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

    # --- CoT follow-ups ---------------------------------------------------------------------
    def _stream_for(self, ids: tuple[int, ...], cells: int) -> tuple[int, int] | None:
        """The generation stream whose exact prefix of ``ids`` is longer than the main cache's, and
        that prefix's length. Only a stream's prompt counts: its generated tokens were decoded one at
        a time, which gives other numbers than evaluating them with the text after them."""
        st = self._streams
        if st is None or not self.prefix_reuse or cells > st.cells:
            return None
        arr = np.asarray(ids, dtype=np.int32)
        best, best_keep = None, common_prefix(self._kv[: self._kv_len], arr)
        for s, (tokens, exact) in enumerate(zip(st.tokens, st.exact)):
            keep = min(common_prefix(tokens, arr), exact)
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
        for a, b in chunks(n - keep, self._chunk):
            got = self._stream_decode(st, ids[keep + a : keep + b], range(keep + a, keep + b), [s] * (b - a),
                                      want_last=keep + b == n)
        first = checked_logprobs(got[-1], self.model_name)
        st.tokens[s], st.exact[s] = np.asarray(ids, dtype=np.int32), n
        values = np.empty(len(conts))
        for k, cont in enumerate(conts):
            total = float(first[cont[0]])
            if mode == "full" and len(cont) > 1:  # as _extra_logprobs: the prompt's last token again, then cont[:-1]
                lc.llama_memory_seq_rm(st.mem, s, n - 1, -1)
                m = len(cont)
                rows = np.array(self._stream_decode(st, (ids[-1], *cont[:-1]), range(n - 1, n - 1 + m), [s] * m,
                                                    want=[False] + [True] * (m - 1)))
                total += float((rows[np.arange(m - 1), cont[1:]].astype(np.float64) - logsumexp_rows(rows)).sum())
                st.exact[s] = n - 1
            values[k] = total
        return values
