"""Percentile bootstrap of label-free scores over the evaluation examples (for data without
labels: the interval a locked choice's score must stay within), with the statistics of
``promptsel.model.stats``: the recommendation's resamples, rerun and intervals."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..model.scoretable import ScoreTable
from ..model.stats import (
    LEVEL,
    RESAMPLES,
    bootstrap_reason,
    percentile_interval,
    rerun_draws,
    resample_indices,
)
from ..plugins import get_selector
from ..selector import SelectionContext, Selector


def bootstrap_intervals(
    table: ScoreTable, methods: list[str], context: SelectionContext, *,
    resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0,
    make: Callable[[str], Selector] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Percentile bootstrap of every prompt's score: resample the examples with replacement
    ``resamples`` times (the same resamples for every method, seeded), rescore, and take the
    central ``level`` interval. ``make(name)`` gives a method with the run's options (default:
    its default options). Returns {method: [P, 2] intervals} and {method: why excluded}: each
    method says itself why its prompts' scores get no interval (``stats.bootstrap_reason``)."""
    make = make or (lambda name: get_selector(name)())
    picks = resample_indices(table.n_examples, resamples, seed)
    intervals: dict[str, np.ndarray] = {}
    excluded: dict[str, str] = {}
    for method in methods:
        reason = bootstrap_reason(get_selector(method), per_prompt=True)
        if reason is not None:
            excluded[method] = reason
            continue
        selector = make(method)
        draws = rerun_draws(table, lambda sub, s=selector: s.score(sub, context), picks)
        intervals[method] = percentile_interval(draws, level)
    return intervals, excluded
