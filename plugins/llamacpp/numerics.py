"""How decodes are cut, and the arithmetic on llama.cpp's logits.

llama.cpp computes a one-token batch with different kernels than a batch of two or more (with the
Q4_1 default model the two differ by up to ~0.2 nats on likely tokens). So no scoring decode ever
evaluates a single token: at least the prompt's last two tokens are evaluated, a multi-token
continuation is evaluated together with the prompt's last token, and chunks are cut so that none
has one token (:func:`chunks`). Then results are bit-identical with and without prefix reuse and
do not depend on what was scored before. (Greedy generation decodes one token at a time; only its
argmax matters.)
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from promptsel import BackendError


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    """[start, end) pieces of at most ``size`` tokens, none of one token unless n == 1."""
    pieces = list(itertools.pairwise([*range(0, n, size), n]))
    if len(pieces) > 1 and pieces[-1][1] - pieces[-1][0] == 1:
        (a, b), (_, d) = pieces[-2], pieces[-1]
        pieces[-2:] = [(a, b - 1), (b - 1, d)]
    return pieces


def checked_logprobs(row: np.ndarray, model: str) -> np.ndarray:
    """log-softmax (float64) of one row of logits, refusing the all-zero and non-finite ones."""
    if not row.any():
        raise BackendError("llama.cpp returned all-zero logits; refusing to score with them.")
    x = row.astype(np.float64)
    m = x.max()
    lse = m + math.log(float(np.exp(x - m).sum()))
    if not math.isfinite(lse):
        raise BackendError(f"llama.cpp returned non-finite logits ({model}).")
    return x - lse


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the common prefix of two token arrays."""
    m = min(len(a), len(b))
    same = a[:m] == b[:m]
    return m if bool(same.all()) else int(np.argmin(same))


def logsumexp_rows(rows: np.ndarray) -> np.ndarray:
    """log Σ exp over the last axis of float32 rows; the sum is accumulated in float64."""
    m = rows.max(axis=-1, keepdims=True)
    s = np.exp(rows - m).sum(axis=-1, dtype=np.float64)
    return m[..., 0].astype(np.float64) + np.log(s)
