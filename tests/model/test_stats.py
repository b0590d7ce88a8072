"""The statistics the recommendation and the gate share: one resampling stream, one rule for
which methods can be rerun on resampled examples."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from promptsel.gate.bootstrap import bootstrap_intervals
from promptsel.model.scoretable import ScoreTable
from promptsel.model.stats import (
    BACKEND_REASON,
    bootstrap_reason,
    percentile_interval,
    rerun_draws,
    resample_indices,
    resampled_table,
)
from promptsel.selection.recommend import rescorer
from promptsel.selector import SelectionContext


def traits(bootstrap=None, relative=None, needs=("class_logprobs",)):
    return SimpleNamespace(bootstrap=bootstrap, relative=relative, needs=frozenset(needs))


@pytest.mark.parametrize(("method", "choice", "per_prompt"), [
    (traits(), None, None),  # a per-input statistic: rerun it, intervals and all
    (traits(needs=("prompt_nll",)), None, None),
    (traits(relative="depends on the set"), None, "depends on the set"),  # ZPS: its choice, not a prompt's score
    (traits(bootstrap="never reads the inputs", relative="depends on the set"), "never reads the inputs", "never reads the inputs"),
    (traits(needs=("continuation_logprobs",)), BACKEND_REASON, BACKEND_REASON),  # asks the model, says nothing
    (traits(bootstrap="asks about the prompts", needs=("continuation_logprobs",)), "asks about the prompts", "asks about the prompts"),
])
def test_one_eligibility_rule_for_the_choice_and_for_per_prompt_intervals(method, choice, per_prompt):
    assert bootstrap_reason(method) == choice
    assert bootstrap_reason(method, per_prompt=True) == per_prompt


def test_the_resampling_stream_is_numpys_seeded_integers():
    # The lock records intervals from this stream: another draw order would change every one.
    expected = np.random.default_rng(5).integers(0, 7, size=(4, 7))
    assert np.array_equal(resample_indices(7, 4, seed=5), expected)


def test_a_resampled_table_repeats_the_drawn_examples_and_drops_labels():
    lp = np.log(np.array([[[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]]))
    table = ScoreTable(prompt_ids=["p"], class_names=["a", "b"], class_logprobs=lp, prompt_nll=np.array([[1.0, 2.0, 3.0]]),
                       labels=np.array([0, 1, 1]), sample_ids=["x", "y", "z"])
    sub = resampled_table(table, np.array([2, 2, 0]))
    assert sub.sample_ids == ["z", "z", "x"] and sub.labels is None
    assert sub.prompt_nll.tolist() == [[3.0, 3.0, 1.0]]
    np.testing.assert_allclose(np.exp(sub.class_logprobs[0]), [[0.6, 0.4], [0.6, 0.4], [0.9, 0.1]])
    assert table.labels is not None and table.sample_ids == ["x", "y", "z"]  # the original is untouched


def test_the_gate_and_the_recommendation_rerun_on_the_same_resamples():
    rng = np.random.default_rng(0)
    table = ScoreTable(prompt_ids=["a", "b", "c"], class_names=["x", "y"], class_logprobs=rng.normal(size=(3, 15, 2)))
    intervals, excluded = bootstrap_intervals(table, ["mi", "zps-log"], SelectionContext(), resamples=200, seed=3)
    by_hand = percentile_interval(rerun_draws(table, rescorer("mi"), resample_indices(15, 200, seed=3)))
    assert np.array_equal(intervals["mi"], by_hand)
    assert set(excluded) == {"zps-log"}  # relative: no per-prompt interval, though its choice is rerun


def _two_prompts(correct_a: range, correct_b: range, n: int = 100) -> ScoreTable:
    """Two prompts on ``n`` examples of class 0, each right exactly on its own rows."""
    lp = np.full((2, n, 2), np.log(0.1))
    lp[:, :, 1] = np.log(0.9)
    for p, rows in enumerate((correct_a, correct_b)):
        lp[p, list(rows)] = np.log([0.9, 0.1])
    return ScoreTable(["a", "b"], ["x", "y"], lp, labels=np.zeros(n, dtype=int))


def test_fixed_ranking_ndcg_interval_by_hand():
    from promptsel.model.stats import fixed_ranking_ndcg

    # Two prompts, minmax relevance: the better one first gives NDCG 1, second 1/log2(3).
    swapped = 1 / np.log2(3)
    clear = fixed_ranking_ndcg(np.array([1.0, 0.0]), _two_prompts(range(90), range(10)), resamples=300)
    assert clear["ndcg"] == 1.0 and clear["ndcg_interval"] == [1.0, 1.0]
    wrong = fixed_ranking_ndcg(np.array([0.0, 1.0]), _two_prompts(range(90), range(10)), resamples=300)
    assert wrong["ndcg"] == pytest.approx(swapped) and wrong["ndcg_interval"] == pytest.approx([swapped, swapped])
    # 52 against 48 right, on disjoint rows: b measures at least as well as a in a third of the
    # resamples (a normal approximation: P(Z > 4 / sqrt(100)) ~ 0.34), far above the 2.5 % tail.
    close = fixed_ranking_ndcg(np.array([1.0, 0.0]), _two_prompts(range(52), range(52, 100)), resamples=1000)
    assert close["ndcg"] == 1.0 and close["ndcg_interval"] == pytest.approx([swapped, 1.0])
    unlabeled = _two_prompts(range(52), range(52, 100))
    unlabeled.labels = None
    assert fixed_ranking_ndcg(np.array([1.0, 0.0]), unlabeled) is None


def test_paired_gain_is_the_mean_row_gain_with_a_bootstrap_interval():
    from promptsel.model.stats import paired_gain

    # Two rows with gains 1 and 2: a resample's mean is 1, 1.5 or 2 with chances 1/4, 1/2, 1/4,
    # so the central 95 % interval is [1, 2] and the mean 1.5.
    assert paired_gain(np.array([2.0, 3.0]), np.array([1.0, 1.0]), resamples=4000) == pytest.approx((1.5, 1.0, 2.0))
    # Paired: a shift every row shares cancels, whatever its size.
    base = np.array([0.7, 0.9, 0.4, 1.3])
    assert paired_gain(base + 5.0, base + 4.9) == pytest.approx((0.1, 0.1, 0.1))
    # Gains of both signs: the interval reaches below 0 (the rule "learned" reads).
    mean, low, high = paired_gain(np.array([1.0, 0.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.0, 0.5]), seed=3)
    assert mean == pytest.approx(0.125) and low < 0 < high
    with pytest.raises(ValueError):
        paired_gain(np.array([]), np.array([]))


# -- mutants that survived tests/mutation/run.sh (tests/mutation/RESULTS.md), killed here --------

def test_a_method_of_exactly_the_tables_arrays_is_rerun():
    from promptsel.model.scoretable import TABLE_ARRAYS

    traits = SimpleNamespace(bootstrap=None, relative=None, needs=frozenset(TABLE_ARRAYS))
    assert bootstrap_reason(traits) is None
    assert bootstrap_reason(SimpleNamespace(bootstrap=None, relative=None, needs=frozenset({*TABLE_ARRAYS, "generate"}))) == BACKEND_REASON


def test_bootstrap_performance_measures_accuracy_by_default():
    from promptsel.model.stats import bootstrap_performance

    # two prompts on four inputs; one resample is the sample itself, one counts the first input 3x
    predictions = np.array([[0, 1, 1, 0], [1, 1, 1, 1]])
    labels = np.array([0, 1, 0, 0])
    weights = np.array([[1, 1, 1, 1], [3, 1, 0, 0]], dtype=float)
    # prompt 0: right on inputs 0, 1, 3 -> 3/4; on the second resample 3 + 1 of 4 -> 1
    # prompt 1: right on input 1 only -> 1/4; on the second resample 1 of 4 -> 1/4
    np.testing.assert_allclose(bootstrap_performance(predictions, labels, weights), [[0.75, 0.25], [1.0, 0.25]])


def test_a_choice_without_performances_says_so_with_none():
    from promptsel.model.stats import expected_choice

    assert expected_choice(np.array([0.1, 0.3, 0.3]), None) == {"chosen": 1, "tied": [1, 2], "performance": None, "rate": None}


@pytest.mark.parametrize(("shares", "level", "want"), [
    ([0.35, 0.05, 0.6], 0.9, [2, 0]),          # 0.6 + 0.35 reach 0.9: the third is not needed
    ([0.5, 0.25, 0.25], 0.75, [0, 1]),         # reached exactly (dyadic sums are exact)
    ([0.5, 0.0, 0.0], 0.9, [0]),               # never reached: prompts that never win stay out
    ([0.3, 0.3, 0.3, 0.1], 0.8, [0, 1, 2]),    # the shares add up
    ([0.25, 0.25, 0.25, 0.25], 0.5, [0, 1]),   # equal shares: file order
])
def test_cover_set_is_the_fewest_prompts_reaching_the_level(shares, level, want):
    from promptsel.model.stats import cover_set

    assert cover_set(np.array(shares), level) == want


def test_percentile_interval_is_central_along_the_first_axis():
    # 1001 draws 0, 0.001, ..., 1: the central 90 % runs from the 5th to the 95th percentile
    draws = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(percentile_interval(draws, 0.9), [0.05, 0.95], atol=1e-12)
    # draws [B, 2, 3]: one interval per cell, the pair last
    cube = np.stack([draws * k for k in range(6)], axis=-1).reshape(1001, 2, 3)
    got = percentile_interval(cube, 0.9)
    assert got.shape == (2, 3, 2)
    np.testing.assert_allclose(got[1, 2], [0.05 * 5, 0.95 * 5], atol=1e-12)


def test_bootstrap_performance_refuses_an_unknown_metric_as_performance_does():
    from promptsel.model import metrics
    from promptsel.model.stats import bootstrap_performance

    predictions, labels = np.array([[0, 1]]), np.array([0, 1])
    with pytest.raises(Exception) as direct:
        metrics.performance(predictions, labels, metric="auc", n_classes=2)
    with pytest.raises(type(direct.value)) as resampled:
        bootstrap_performance(predictions, labels, np.ones((3, 2)), metric="auc", n_classes=2)
    assert str(resampled.value) == str(direct.value)


def test_resampling_is_seeded_with_0_by_default():
    assert np.array_equal(resample_indices(9, 20), resample_indices(9, 20, seed=0))
    assert not np.array_equal(resample_indices(9, 20), resample_indices(9, 20, seed=1))
