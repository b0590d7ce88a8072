"""How good a prompt choice is, once labels are known (methods.md §1.8).

Pure functions of arrays: per-prompt performance, the chosen prompt and ranking from a
method's scores, the performance rate, NDCG in three variants with the expected NDCG of a
random ranking, and rank correlations.

Ties. Scores that agree to 12 significant digits are ties everywhere in this module
(:func:`tie_key`): summing the same numbers in another order (a permuted prompt file, another
BLAS) changes the last bits of a float, and that must not change which prompt wins. Rounding,
unlike a tolerance, is an equivalence relation, so ``choose``, ``ranking``, NDCG and the rank
correlations all see the same groups of tied prompts (the price: two values a few ulps apart
that straddle a rounding boundary are not tied, which is rare). Among tied prompts the one
listed first in the prompt file wins.
"""

from __future__ import annotations

import typing

import numpy as np
from scipy.stats import kendalltau, spearmanr
from sklearn.metrics import f1_score

from ..errors import UsageError
from .request import Metric, NdcgVariant

METRICS: tuple[str, ...] = typing.get_args(Metric)
NDCG_VARIANTS: tuple[str, ...] = typing.get_args(NdcgVariant)


def tie_key(scores: np.ndarray) -> np.ndarray:
    """``scores`` rounded to 12 significant digits; equal keys are ties."""
    values = _as_scores(scores)
    return np.array([float(f"{v:.11e}") for v in values], dtype=np.float64)


def performance(
    predictions: np.ndarray,
    labels: np.ndarray,
    metric: str = "accuracy",
    *,
    n_classes: int | None = None,
) -> np.ndarray:
    """Performance of each prompt, shape [P], from predictions [P, N] and gold labels [N].

    ``macro_f1`` averages F1 over all ``n_classes`` classes (sklearn, ``zero_division=0``). A
    class absent from the gold labels then scores 0 for every prompt, which scales every
    prompt's value by the same factor and so changes no ranking or rate.
    """
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    if predictions.ndim != 2 or labels.shape != predictions.shape[1:]:
        raise ValueError(
            f"predictions must be [P, N] and labels [N], got {predictions.shape} and {labels.shape}."
        )
    if metric == "accuracy":
        return (predictions == labels).mean(axis=1)
    if metric == "macro_f1":
        if n_classes is None:
            raise ValueError("macro_f1 needs n_classes.")
        classes = list(range(n_classes))
        return np.array(
            [
                f1_score(labels, row, labels=classes, average="macro", zero_division=0)
                for row in predictions
            ]
        )
    raise UsageError(f"Unknown metric {metric!r}.", hint=f"Use one of: {', '.join(METRICS)}.")


def choose(scores: np.ndarray) -> tuple[int, list[int]]:
    """The selected prompt (highest score, first in file order among ties) and all tied for it."""
    key = tie_key(scores)
    tied = np.flatnonzero(key == key.max()).tolist()
    return tied[0], tied


def ranking(scores: np.ndarray) -> list[int]:
    """Prompt indices from best to worst score; ties keep file order."""
    return np.argsort(-tie_key(scores), kind="stable").tolist()


def performance_rate(chosen_perf: float, perf: np.ndarray) -> float | None:
    """Performance of the chosen prompt over that of the best prompt (None if the best is 0)."""
    best = float(np.max(perf))
    return None if best == 0 else float(chosen_perf) / best


def ndcg(scores: np.ndarray, perf: np.ndarray, variant: str = "minmax") -> float | None:
    """NDCG of the ranking given by ``scores`` against per-prompt performance ``perf``.

    * ``minmax`` (default): relevance (perf - min) / (max - min), linear gain, log2 discount,
      full list, tied scores averaged over their orders; equals
      ``sklearn.metrics.ndcg_score([rel], [scores])``.
    * ``raw``: relevance = perf, gain 2**rel - 1, ties averaged as above.
    * ``fute``: the FUTE code's ``NDCGEvaluator.get_score``. Gain 2**perf - 1, but the gain of
      the prompt at *predicted* rank i is discounted by the *true* rank i (the inverse
      permutation), tied scores are broken in favour of the better prompt, prompts of equal
      performance keep file order, and constant scores give 0.

    None when every prompt performs the same: no ranking is better than another then.
    """
    key = tie_key(scores)
    gains = _gains(perf, variant)
    if gains is None:
        return None
    if key.shape != gains.shape:
        raise ValueError(
            f"scores and perf must have the same length, got {key.size} and {gains.size}."
        )
    if variant == "fute":
        dcg = _fute_dcg(key, np.asarray(perf, dtype=np.float64), gains)
    else:
        dcg = _tie_averaged_dcg(key, gains)
    return float(dcg / _ideal_dcg(gains))


def random_ndcg(perf: np.ndarray, variant: str = "minmax") -> float | None:
    """Exact expected NDCG of a uniformly random ranking of the prompts.

    Every prompt is equally likely at every rank, so E[DCG] = mean gain x sum of discounts.
    This holds for ``fute`` too: a uniformly random permutation has a uniformly random inverse,
    and a random ranking has no ties, so FUTE's swap of predicted and true ranks, its tie rule
    and its constant-score rule change nothing in expectation (``fute`` equals ``raw`` here).
    """
    gains = _gains(perf, variant)
    if gains is None:
        return None
    return float(gains.mean() * _discounts(gains.size).sum() / _ideal_dcg(gains))


def rank_correlations(scores: np.ndarray, perf: np.ndarray) -> tuple[float | None, float | None]:
    """Spearman's rho and Kendall's tau-b between scores and performance (None if undefined)."""
    key = tie_key(scores)
    perf = np.asarray(perf, dtype=np.float64)
    if np.unique(key).size < 2 or np.unique(perf).size < 2:
        return None, None  # a constant side has no ranking to correlate with
    rho = spearmanr(key, perf).statistic
    tau = kendalltau(key, perf).statistic  # tau-b is scipy's default
    return _none_if_nan(rho), _none_if_nan(tau)


def _as_scores(scores: np.ndarray) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"scores must be a non-empty 1-D array, got shape {values.shape}.")
    if np.isnan(values).any():
        raise ValueError("scores contain NaN.")
    return values


def _gains(perf: np.ndarray, variant: str) -> np.ndarray | None:
    perf = np.asarray(perf, dtype=np.float64)
    if variant not in NDCG_VARIANTS:
        raise UsageError(
            f"Unknown NDCG variant {variant!r}.", hint=f"Use one of: {', '.join(NDCG_VARIANTS)}."
        )
    lo, hi = perf.min(), perf.max()
    if lo == hi:
        return None
    if variant == "minmax":
        return (perf - lo) / (hi - lo)
    return np.exp2(perf) - 1.0


def _discounts(n: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, n + 2))


def _ideal_dcg(gains: np.ndarray) -> float:
    return float(np.sort(gains)[::-1] @ _discounts(gains.size))


def _tie_averaged_dcg(key: np.ndarray, gains: np.ndarray) -> float:
    # A group of k tied prompts occupies k consecutive ranks in some unknown order; averaged
    # over those orders each member earns the group's mean gain at each of the k discounts.
    discounts = _discounts(gains.size)
    dcg, start = 0.0, 0
    for value in np.unique(key)[::-1]:
        members = key == value
        stop = start + int(members.sum())
        dcg += gains[members].mean() * discounts[start:stop].sum()
        start = stop
    return dcg


def _fute_dcg(key: np.ndarray, perf: np.ndarray, gains: np.ndarray) -> float:
    if np.unique(key).size == 1:
        return 0.0
    # FUTE sorts prompts by performance (stable), then sorts those positions by score (stable,
    # so a tie goes to the better prompt) and gives true position j the gain found at true
    # position predicted_rank(j).
    true_order = np.argsort(-perf, kind="stable")
    by_score = np.argsort(-key[true_order], kind="stable")
    predicted_rank = np.empty_like(by_score)
    predicted_rank[by_score] = np.arange(by_score.size)
    sorted_gains = gains[true_order]
    return float(sorted_gains[predicted_rank] @ _discounts(gains.size))


def _none_if_nan(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
