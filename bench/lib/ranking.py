"""How well a method's scores rank prompts whose accuracy is known: NDCG, rate and Spearman on
the evaluation examples, and their 95 % bootstrap intervals over those examples
(``bench_fute_replay``, ``bench_fute_classifiers``)."""

from __future__ import annotations

from typing import Any

import numpy as np

MEASURES = ("ndcg", "rate", "spearman")


def measures(scores: np.ndarray, perf: np.ndarray) -> dict[str, float | None]:
    """NDCG (min-max relevance, ties averaged), rate (tie-expected accuracy of the choice over the
    best prompt's) and Spearman of ``scores`` with ``perf``."""
    from promptsel.model import metrics
    from promptsel.model.stats import expected_choice

    rho, _ = metrics.rank_correlations(scores, perf)
    return {"ndcg": metrics.ndcg(scores, perf, "minmax"), "rate": expected_choice(scores, perf)["rate"], "spearman": rho}


def summarise(point: dict[str, float | None], draws: list[dict[str, float | None]]) -> dict[str, Any]:
    """Each measure's value on the whole evaluation set and its 95 % bootstrap interval."""
    out: dict[str, Any] = {}
    for m in MEASURES:
        values = np.array([d[m] for d in draws if d[m] is not None], dtype=float)
        out[m] = point[m]
        out[m + "_ci"] = [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))] if values.size else None
    return out


def accuracy_draws(correct: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Each prompt's accuracy on ``resamples`` bootstrap resamples of the examples, [B, P], from
    ``correct`` [P, N] (1 where the prompt is right); every prompt on the same resample."""
    from promptsel.model.stats import resample_indices, resample_weights

    n = correct.shape[1]
    weights = resample_weights(resample_indices(n, resamples, seed=seed), n)
    return weights @ correct.T.astype(float) / n


def fixed(scores: np.ndarray, perf: np.ndarray, perf_draws: np.ndarray) -> dict[str, Any]:
    """Scores that do not read the evaluation examples, against the accuracies and their draws."""
    return summarise(measures(scores, perf), [measures(scores, p) for p in perf_draws])


def random_pick(perf: np.ndarray, perf_draws: np.ndarray) -> dict[str, Any]:
    """A uniformly random pick: its expected NDCG and rate (exact); no Spearman (0 in expectation,
    shown as a dash rather than as a measured 0)."""
    from promptsel.model import metrics

    def one(p: np.ndarray) -> dict[str, float | None]:
        return {"ndcg": metrics.random_ndcg(p, "minmax"), "rate": float(p.mean() / p.max()), "spearman": None}

    return summarise(one(perf), [one(p) for p in perf_draws])


def cell(values: list[dict[str, Any]], m: str) -> str:
    """A measure over several runs (splits, seeds): the mean of their values, their range, and the
    mean of their bootstrap bounds."""
    points = [v[m] for v in values if v.get(m) is not None]
    cis = [v[m + "_ci"] for v in values if v.get(m + "_ci")]
    if not points:
        return "–"
    text = f"{np.mean(points):.3f}"
    if len(points) > 1:
        text += f" ({min(points):.3f}–{max(points):.3f})"
    if cis:
        text += f" [{np.mean([c[0] for c in cis]):.3f}, {np.mean([c[1] for c in cis]):.3f}]"
    return text
