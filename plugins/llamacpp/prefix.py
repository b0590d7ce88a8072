"""The main context's KV cache: decodes that keep the prefix a new sequence shares with the last.

The backend remembers which tokens sit in the KV cache. A new sequence keeps the longest common
prefix, the cache entries after it are removed (``llama_memory_seq_rm``) and only the rest is
evaluated. promptsel sends requests prompt-major (one template, then all its inputs), so
instruction-first templates share long prefixes. Decodes are cut as :mod:`.numerics` says, so
the numbers are the same with and without reuse.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from promptsel import BackendError

from .engine import LlamaEngine
from .numerics import checked_logprobs, chunks


class PrefixCache(LlamaEngine):
    """Decoding in the main context (sequence 0), reusing what its KV cache already holds.

    The backend's constructor sets ``prefix_reuse`` and ``counters``."""

    prefix_reuse: bool
    counters: dict[str, int]

    def _on_load(self) -> None:
        super()._on_load()
        # One batch, reused; its arrays are written through numpy views (no per-token ctypes).
        batch = self._lc.llama_batch_init(self._chunk, 0, 1)
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

    def _on_close(self) -> None:
        self._lc.llama_batch_free(self._batch)
        self._batch = None
        super()._on_close()

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
        for a, b in chunks(n, self._chunk):
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
        keep = self._keep_prefix(ids, max(n - 2, 0))  # evaluate >= 2 tokens: see .numerics
        row = self._decode(ids[keep:], keep, out_from=n - 1)
        assert row is not None
        return checked_logprobs(row, self.model_name)
