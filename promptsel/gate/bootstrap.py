"""Percentile bootstrap of label-free scores over the evaluation examples (for data without
labels: the interval a locked choice's score must stay within)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..model.scoretable import ScoreTable
from ..plugins import registries
from ..selector import SelectionContext, Selector

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_LEVEL = 0.95


def no_bootstrap_reason(method: str) -> str | None:
    """Why a method's score gets no interval over examples (``None``: it gets one); each
    method says so itself, in its ``bootstrap`` or ``relative`` class attribute."""
    cls = registries().selectors.get(method)
    return cls.bootstrap or cls.relative


def bootstrap_intervals(
    table: ScoreTable, methods: list[str], context: SelectionContext, *,
    resamples: int = BOOTSTRAP_RESAMPLES, level: float = BOOTSTRAP_LEVEL, seed: int = 0,
    make: Callable[[str], Selector] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Percentile bootstrap of every prompt's score: resample the examples with replacement
    ``resamples`` times (the same resamples for every method, seeded), rescore, and take the
    central ``level`` interval. ``make(name)`` gives a method with the run's options (default:
    its default options). Returns {method: [P, 2] intervals} and {method: why excluded}."""
    make = make or (lambda name: registries().selectors.get(name)())
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, table.n_examples, size=(resamples, table.n_examples))
    intervals: dict[str, np.ndarray] = {}
    excluded: dict[str, str] = {}
    for method in methods:
        reason = no_bootstrap_reason(method)
        if reason is not None:
            excluded[method] = reason
            continue
        selector = make(method)
        draws = np.empty((resamples, table.n_prompts))
        for b, pick in enumerate(picks):
            sub = ScoreTable(
                prompt_ids=table.prompt_ids, class_names=table.class_names,
                class_logprobs=table.class_logprobs[:, pick],
                prompt_nll=None if table.prompt_nll is None else table.prompt_nll[:, pick],
                sample_ids=[table.sample_ids[i] for i in pick],
            )
            draws[b] = selector.score(sub, context)
        tail = (1.0 - level) / 2 * 100
        intervals[method] = np.percentile(draws, [tail, 100 - tail], axis=0).T
    return intervals, excluded
