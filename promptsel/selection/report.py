"""The selection report: a versioned JSON-able dict of per-prompt and per-method results."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..model import metrics
from ..model.scoretable import ScoreTable

SCHEMA_VERSION = 1


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if not np.isfinite(x) else x


def evaluate(
    table: ScoreTable,
    method_scores: dict[str, np.ndarray],
    *,
    metric: str = "accuracy",
    ndcg_variant: str = "minmax",
) -> dict[str, Any]:
    """Per-prompt performance and, per method, its choice, rate, NDCG and rank correlations.

    Every field that needs labels is ``None`` when the table has none.
    """
    ids = table.prompt_ids
    perf = None
    if table.labels is not None:
        perf = metrics.performance(table.predictions, table.labels, metric=metric, n_classes=len(table.class_names))
    prompts = []
    for p, pid in enumerate(ids):
        prompts.append({
            "id": pid,
            "performance": _num(perf[p]) if perf is not None else None,
            "scores": {m: _num(s[p]) for m, s in method_scores.items()},
        })
    methods: dict[str, Any] = {}
    for m, scores in method_scores.items():
        chosen, tied = metrics.choose(scores)
        entry: dict[str, Any] = {
            "chosen": ids[chosen],
            "tied": [ids[i] for i in tied],
            "ranking": [ids[i] for i in metrics.ranking(scores)],
            "performance": None, "rate": None, "ndcg": None, "spearman": None, "kendall": None,
        }
        if perf is not None:
            spearman, kendall = metrics.rank_correlations(scores, perf)
            # Tied prompts: what a random pick among them earns (as NDCG averages tied orders),
            # so the order of the prompt file cannot change a reported number.
            expected = float(np.sort(perf[tied]).mean())
            entry.update(
                performance=_num(expected),
                rate=_num(metrics.performance_rate(expected, perf)),
                ndcg=_num(metrics.ndcg(scores, perf, variant=ndcg_variant)),
                spearman=_num(spearman),
                kendall=_num(kendall),
            )
        methods[m] = entry
    oracle: dict[str, Any] = {"chosen": None, "performance": None}
    random: dict[str, Any] = {"ndcg": None, "performance": None}
    if perf is not None:
        best, _ = metrics.choose(perf)
        oracle = {"chosen": ids[best], "performance": _num(perf[best])}
        random = {"ndcg": _num(metrics.random_ndcg(perf, variant=ndcg_variant)), "performance": _num(np.mean(perf))}
    return {"prompts": prompts, "methods": methods, "oracle": oracle, "random": random}
