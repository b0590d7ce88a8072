"""The selection report: a versioned JSON-able dict, and its Markdown rendering."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import metrics
from .scoretable import ScoreTable

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
            entry.update(
                performance=_num(perf[chosen]),
                rate=_num(metrics.performance_rate(perf[chosen], perf)),
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


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def to_markdown(report: dict[str, Any]) -> str:
    """A Markdown report (for pull-request comments and docs)."""
    ds, be = report["dataset"], report["backend"]
    methods = list(report["methods"])
    lines = [
        f"# promptsel: {ds['name']} ({ds['split']}, n={ds['n']})",
        "",
        f"Backend `{be['name']}`, model `{be['model']}`; metric {report['metric']}; seed {report['seed']}.",
        "",
        "## Prompts",
        "",
        "| prompt | " + " | ".join(methods) + " | performance |",
        "|---|" + "---|" * len(methods) + "---|",
    ]
    ranks = {m: {pid: i + 1 for i, pid in enumerate(report["methods"][m]["ranking"])} for m in methods}
    for p in report["prompts"]:
        cells = [f"{_fmt(p['scores'].get(m), 4)} (#{ranks[m][p['id']]})" for m in methods]
        lines.append(f"| {p['id']} | " + " | ".join(cells) + f" | {_fmt(p['performance'])} |")
    lines += ["", "## Choice per method", "", "| method | chosen | performance | rate | NDCG | Spearman | Kendall |", "|---|---|---|---|---|---|---|"]
    for m, e in report["methods"].items():
        tied = f" (tied: {', '.join(e['tied'])})" if len(e["tied"]) > 1 else ""
        lines.append(
            f"| {m} | {e['chosen']}{tied} | {_fmt(e['performance'])} | {_fmt(e['rate'])} | {_fmt(e['ndcg'])} "
            f"| {_fmt(e['spearman'])} | {_fmt(e['kendall'])} |"
        )
    if report["oracle"]["chosen"] is not None:
        lines += [
            "",
            f"Oracle: {report['oracle']['chosen']} ({_fmt(report['oracle']['performance'])}). "
            f"Random ranking: expected NDCG {_fmt(report['random']['ndcg'])}, expected performance {_fmt(report['random']['performance'])}.",
        ]
    return "\n".join(lines) + "\n"
