"""The gate's per-prompt bootstrap (``promptsel.gate.bootstrap``) against its definition, with a
method whose score is a plain mean so every interval is a percentile of hand-made resample means:
the defaults (seed 0, 95 %), another level, the run's context handed to the method, and a
method without an interval skipped without ending the loop."""

from __future__ import annotations

import numpy as np
import pytest

from promptsel.gate.bootstrap import bootstrap_intervals
from promptsel.model.scoretable import ScoreTable
from promptsel.selector import SelectionContext

N = 12


class MeanOfFirstClass:
    """Each prompt's mean p(first class): its resampled interval is a percentile of means of the
    drawn rows. It also checks that it was handed the run's context, not none."""

    def __init__(self, context: SelectionContext) -> None:
        self.context = context

    def score(self, table: ScoreTable, context: SelectionContext | None) -> np.ndarray:
        assert context is self.context
        return np.exp(table.class_logprobs[:, :, 0]).mean(axis=1)


def table() -> tuple[ScoreTable, np.ndarray]:
    p0 = np.linspace(0.05, 0.95, N)
    p = np.stack([p0, p0[::-1] ** 2])  # two prompts with different rows
    lp = np.log(np.stack([p, 1 - p], axis=-1))
    return ScoreTable(prompt_ids=["a", "b"], class_names=["x", "y"], class_logprobs=lp), p


def by_hand(p: np.ndarray, seed: int, resamples: int, level: float) -> np.ndarray:
    picks = np.random.default_rng(seed).integers(0, N, size=(resamples, N))
    means = np.array([[row[pick].mean() for row in p] for pick in picks])  # [B, P]
    tail = (1 - level) / 2 * 100
    return np.stack([np.percentile(means, tail, axis=0), np.percentile(means, 100 - tail, axis=0)], axis=-1)


def test_the_defaults_are_1000_resamples_seeded_0_at_95_percent():
    t, p = table()
    context = SelectionContext()
    intervals, excluded = bootstrap_intervals(t, ["mi"], context, make=lambda name: MeanOfFirstClass(context))
    assert excluded == {}
    np.testing.assert_allclose(intervals["mi"], by_hand(p, seed=0, resamples=1000, level=0.95))


def test_another_level_and_seed_are_used_and_an_excluded_method_does_not_end_the_loop():
    t, p = table()
    context = SelectionContext()
    intervals, excluded = bootstrap_intervals(t, ["zps-log", "mi"], context, resamples=300, level=0.5, seed=4,
                                              make=lambda name: MeanOfFirstClass(context))
    assert set(excluded) == {"zps-log"} and set(intervals) == {"mi"}
    np.testing.assert_allclose(intervals["mi"], by_hand(p, seed=4, resamples=300, level=0.5))
    with pytest.raises(AssertionError):  # the check itself: a 95 % interval is not the 50 % one
        np.testing.assert_allclose(intervals["mi"], by_hand(p, seed=4, resamples=300, level=0.95))
