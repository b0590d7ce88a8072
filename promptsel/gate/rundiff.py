"""``promptsel diff A B``: what changed between two runs on the same prompts.

Each side is a ``--save-scores`` file (or any ``--scores`` file) or a JSON report. Two score
files with labels are compared *paired*: examples are matched by sample id, and each prompt's
change in performance gets a paired bootstrap interval over the shared examples (the same
resampled examples score both runs, so what the two runs have in common cancels out). A JSON
report carries each prompt's performance and interval but not which examples each prompt got
right, so a diff that involves a report compares the summary numbers only and says so.

It works across models (the same prompt file run on two backends) and across commits (one
prompt file before and after an edit): prompts are matched by id, and prompts found on one side
only are listed as appeared or disappeared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from ..model import metrics
from ..model.scoretable import ScoreTable
from ..model.stats import (
    LEVEL,
    RESAMPLES,
    bootstrap_performance,
    percentile_interval,
    resample_indices,
    resample_weights,
)

SCHEMA_VERSION = 1
#: A prompt's verdict: its interval excludes 0 on one side, includes it, or nothing moved.
BETTER, WORSE, WITHIN, IDENTICAL = "better", "worse", "within noise", "identical"


@dataclass
class Side:
    """One run as the diff reads it."""

    path: Path
    kind: str  # "scores" or "report"
    prompt_ids: list[str]
    sample_ids: list[str]
    metric: str
    #: prompt id -> performance on the run's own examples (None without labels)
    performance: dict[str, float | None]
    intervals: dict[str, list[float] | None] = field(default_factory=dict)
    choice: str | None = None
    table: ScoreTable | None = None
    #: prompt id -> sha256 of its template (a report of a run with a prompt file; else empty)
    templates: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"path": str(self.path), "kind": self.kind, "prompts": len(self.prompt_ids), "examples": len(self.sample_ids),
                "labels": any(v is not None for v in self.performance.values()), "choice": self.choice}


def load_side(path: Path, metric: str = "accuracy") -> Side:
    """A run from a JSON report (by its ``.json`` suffix) or a scores file (anything else)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"Cannot compare {path}: no such file.", hint="Give two JSON reports (-o report.json) or two --save-scores files.")
    if path.suffix.lower() == ".json":
        return _from_report(path)
    table = ScoreTable.load(path)
    perf = None if table.labels is None else metrics.performance(table.predictions, table.labels, metric=metric,
                                                                   n_classes=len(table.class_names))
    choice = None if perf is None else table.prompt_ids[metrics.choose(perf)[0]]
    return Side(path, "scores", list(table.prompt_ids), list(table.sample_ids), metric,
                {p: None if perf is None else float(perf[i]) for i, p in enumerate(table.prompt_ids)}, choice=choice, table=table)


def _from_report(path: Path) -> Side:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"Cannot read {path} as a JSON report: {exc}.", hint="Write one with promptsel select -o report.json.") from None
    if not isinstance(report, dict) or not isinstance(report.get("prompts"), list):
        raise UsageError(f"{path} is not a promptsel JSON report (it has no prompts list).",
                         hint="Write one with promptsel select -o report.json.")
    prompts = report["prompts"]
    rec = report.get("recommendation") or {}
    choice = rec.get("prompt") or (report.get("oracle") or {}).get("chosen")
    dataset = report.get("dataset") or {}
    return Side(path, "report", [p["id"] for p in prompts], [str(s) for s in dataset.get("sample_ids") or []],
                report.get("metric") or "accuracy", {p["id"]: p.get("performance") for p in prompts},
                {p["id"]: p.get("performance_interval") for p in prompts}, choice=choice,
                templates={p["id"]: p["template_sha256"] for p in prompts if p.get("template_sha256")})


def diff_runs(a: Side, b: Side, *, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> dict[str, Any]:
    """The comparison of two runs as a plain dict (the JSON format; the other formats render it)."""
    if a.metric != b.metric:
        raise UsageError(f"{a.path} measures {a.metric} and {b.path} {b.metric}: the numbers cannot be compared.",
                         hint="Compare two runs of the same --metric.")
    shared = [p for p in a.prompt_ids if p in set(b.prompt_ids)]
    if not shared:
        raise UsageError(f"{a.path} and {b.path} have no prompt id in common.",
                         hint="diff compares runs of the same prompts (by id): the same prompt file on two models, or before and after an edit.")
    notes: list[str] = []
    paired = _paired(a, b, shared, resamples=resamples, level=level, seed=seed, notes=notes)
    rows = []
    for p in shared:
        row: dict[str, Any] = {"id": p, "a": a.performance.get(p), "b": b.performance.get(p), "a_interval": a.intervals.get(p),
                               "b_interval": b.intervals.get(p)}
        if paired is not None:
            row.update(paired[p])
        else:
            row["delta"] = None if row["a"] is None or row["b"] is None else row["b"] - row["a"]
            row["delta_interval"] = None
            row["verdict"] = None
        rows.append(row)
    changed = [r["id"] for r in rows if r.get("verdict") in (BETTER, WORSE)]
    # Across commits: the prompts whose template text changed under the same id (reports only).
    edited = [p for p in shared if p in a.templates and p in b.templates and a.templates[p] != b.templates[p]]
    appeared = [p for p in b.prompt_ids if p not in set(a.prompt_ids)]
    disappeared = [p for p in a.prompt_ids if p not in set(b.prompt_ids)]
    choice_changed = None if a.choice is None or b.choice is None else a.choice != b.choice
    rho, tau = _rank_correlation(rows)
    if paired is None and "report" in (a.kind, b.kind):
        notes.append("A JSON report holds each prompt's performance but not which examples it got right, so the deltas "
                     "are differences of summary numbers, without a paired interval; compare two --save-scores files for one.")
    same = all(r["verdict"] == IDENTICAL for r in rows) if paired is not None else all(r["delta"] == 0 for r in rows)
    no_change = same and not changed and not appeared and not disappeared and choice_changed is not True
    return {
        "schema_version": SCHEMA_VERSION, "kind": "promptsel diff",
        "a": a.summary(), "b": b.summary(), "metric": a.metric,
        "paired": paired is not None, "level": level, "resamples": resamples if paired is not None else None, "seed": seed,
        "examples": _example_overlap(a, b),
        "choice": {"a": a.choice, "b": b.choice, "changed": choice_changed},
        "rank_correlation": {"spearman": rho, "kendall": tau, "prompts": len(shared)},
        "appeared": appeared, "disappeared": disappeared, "edited": edited,
        "changed": changed, "no_change": no_change,
        "prompts": rows, "notes": notes,
    }


def _example_overlap(a: Side, b: Side) -> dict[str, int]:
    ids_b = set(b.sample_ids)
    shared = sum(1 for s in a.sample_ids if s in ids_b)
    return {"a": len(a.sample_ids), "b": len(b.sample_ids), "shared": shared}


def _paired(a: Side, b: Side, shared: list[str], *, resamples: int, level: float, seed: int,
            notes: list[str]) -> dict[str, dict[str, Any]] | None:
    """Per shared prompt: performance on the shared examples in each run, the change, its paired
    bootstrap interval, how many predictions changed, and the verdict. None when not possible."""
    ta, tb = a.table, b.table
    if ta is None or tb is None:
        return None
    where_b = {s: i for i, s in enumerate(tb.sample_ids)}
    ia = [i for i, s in enumerate(ta.sample_ids) if s in where_b]
    ib = [where_b[ta.sample_ids[i]] for i in ia]
    if not ia:
        raise UsageError(f"{a.path} and {b.path} share no sample id: they were not run on the same examples.",
                         hint="Save both with sample_ids (select --save-scores writes them).")
    if len(ia) < len(ta.sample_ids) or len(ib) < len(tb.sample_ids):
        notes.append(f"Compared on the {len(ia)} examples both runs hold (matched by sample id).")
    if ta.class_names != tb.class_names:
        raise UsageError(f"{a.path} has classes {', '.join(ta.class_names)} and {b.path} {', '.join(tb.class_names)}.",
                         hint="diff compares runs of the same task.")
    labels = _shared_labels(a, b, ia, ib)
    pa = ta.predictions[[ta.prompt_ids.index(p) for p in shared]][:, ia]
    pb = tb.predictions[[tb.prompt_ids.index(p) for p in shared]][:, ib]
    moved = (pa != pb).sum(axis=1)
    out: dict[str, dict[str, Any]] = {}
    if labels is None:
        notes.append("Neither run has labels: the diff counts changed predictions; without labels it cannot say better or worse.")
        for k, p in enumerate(shared):
            out[p] = {"changed_predictions": int(moved[k]), "shared_examples": len(ia), "delta": None, "delta_interval": None,
                      "verdict": IDENTICAL if moved[k] == 0 else None}
        return out
    n_classes = len(ta.class_names)
    weights = resample_weights(resample_indices(len(ia), resamples, seed), len(ia))
    # One set of resampled examples for both runs: the interval is of the paired difference.
    draws = bootstrap_performance(np.vstack([pa, pb]), labels, weights, metric=a.metric, n_classes=n_classes)
    delta_draws = draws[:, len(shared):] - draws[:, :len(shared)]
    intervals = percentile_interval(delta_draws, level)
    perf_a = metrics.performance(pa, labels, metric=a.metric, n_classes=n_classes)
    perf_b = metrics.performance(pb, labels, metric=a.metric, n_classes=n_classes)
    for k, p in enumerate(shared):
        lo, hi = (float(x) for x in intervals[k])
        if moved[k] == 0:
            verdict = IDENTICAL
        elif lo > 0:
            verdict = BETTER
        elif hi < 0:
            verdict = WORSE
        else:
            verdict = WITHIN
        out[p] = {"a_shared": float(perf_a[k]), "b_shared": float(perf_b[k]), "delta": float(perf_b[k] - perf_a[k]),
                  "delta_interval": [lo, hi], "changed_predictions": int(moved[k]), "shared_examples": len(ia), "verdict": verdict}
    return out


def _shared_labels(a: Side, b: Side, ia: list[int], ib: list[int]) -> np.ndarray | None:
    la = None if a.table is None or a.table.labels is None else a.table.labels[ia]
    lb = None if b.table is None or b.table.labels is None else b.table.labels[ib]
    if la is not None and lb is not None and not np.array_equal(la, lb):
        bad = int(np.flatnonzero(la != lb)[0])
        raise UsageError(f"{a.path} and {b.path} give example {a.table.sample_ids[ia[bad]]} different labels "  # type: ignore[union-attr]
                         f"({int(la[bad])} and {int(lb[bad])}).", hint="Compare runs on the same labelled data.")
    return la if la is not None else lb


def _rank_correlation(rows: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    """Spearman's rho and Kendall's tau-b of the prompts' performance in the two runs."""
    # Paired: the performance on the shared examples, so both rankings are of the same examples.
    pairs = [(r.get("a_shared", r["a"]), r.get("b_shared", r["b"])) for r in rows if r["a"] is not None and r["b"] is not None]
    if len(pairs) < 2:
        return None, None
    a, b = (np.array(x, dtype=float) for x in zip(*pairs))
    return metrics.rank_correlations(a, b)
