"""The anytime-valid bounds and the best-prompt search of ``promptsel.model.sequential``.

Expected values come from the definitions (recomputed here in plain loops), from exact means of
populations built in the test, and from many seeded orders: never from the module's own output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from promptsel.model.sequential import BET_CAP, BestPromptSearch, PairBounds, search


def population(means: list[float], n: int, seed: int = 0) -> np.ndarray:
    """[P, n] right/wrong rows with exactly round(mean * n) right answers each, placed at random
    (rows independent of each other: the noisiest pairing)."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((len(means), n))
    for row, mean in zip(rows, means):
        row[rng.choice(n, round(mean * n), replace=False)] = 1
    return rows


def test_bounds_collapse_onto_the_exact_difference_once_every_input_is_read():
    scores = np.array([[1, 1, 0, 1], [0, 1, 0, 0], [1, 0, 1, 1]], dtype=float)
    bounds = PairBounds(3, 4, alpha=0.05)
    for x in range(4):
        bounds.update(scores[:, x])
    lower, upper = bounds.difference_bounds()
    # mu = 3/4, 1/4, 3/4
    assert lower[0, 1] == upper[0, 1] == pytest.approx(0.5)
    assert lower[1, 2] == upper[1, 2] == pytest.approx(-0.5)
    assert lower[2, 0] == upper[2, 0] == pytest.approx(0.0)


def test_one_pair_matches_the_formula_written_out():
    """WSR's predictable plug-in EB bound without replacement, step by step for one pair."""
    left = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1]
    right = [0, 0, 1, 0, 1, 0, 0, 1, 0, 0]
    n_total, alpha = 20, 0.1
    bounds = PairBounds(2, n_total, alpha=alpha)
    log_a = math.log(1 / alpha)
    s = num = den = pen = 0.0
    mhat, sq = 0.5, 0.25
    for t, (a, b) in enumerate(zip(left, right), start=1):
        bounds.update(np.array([a, b], dtype=float))
        x = (a - b + 1) / 2
        lam = min(math.sqrt(2 * log_a / (sq / t * t * math.log(1 + t))), BET_CAP)
        psi = (-math.log(1 - lam) - lam) / 4
        num += lam * (x + s / (n_total - t + 1))
        den += lam * n_total / (n_total - t + 1)
        pen += 4 * (x - mhat) ** 2 * psi
        s += x
        mhat = (0.5 + s) / (t + 1)
        sq += (x - mhat) ** 2
        lower, upper = bounds.difference_bounds()
        low = max(-1.0, 2 * (num - log_a - pen) / den - 1)
        high = min(1.0, 2 * (num + log_a + pen) / den - 1)
        assert lower[0, 1] == pytest.approx(low) and upper[0, 1] == pytest.approx(high)
        assert lower[1, 0] == pytest.approx(-high)


@pytest.mark.slow
def test_a_bound_checked_after_every_input_still_holds_where_a_fixed_n_bootstrap_does_not():
    """Optional stopping: over 300 random orders of one population, how often the true
    difference ever leaves the interval while it is checked after every round of 10 inputs.
    The anytime bound (each side at 2.5 %) stays within 5 %; the 95 % percentile bootstrap of
    the inputs read so far, valid at one fixed n, leaves it far more often."""
    scores = population([0.5, 0.5], 400)
    truth = scores[0].mean() - scores[1].mean()  # 0
    ever_out_anytime = ever_out_bootstrap = 0
    for seed in range(300):
        order = np.random.default_rng(seed).permutation(400)
        bounds = PairBounds(2, 400, alpha=0.025)
        rng = np.random.default_rng(seed)
        out_anytime = out_bootstrap = False
        for k, x in enumerate(order, start=1):
            bounds.update(scores[:, x])
            if k % 10:
                continue
            lower, upper = bounds.difference_bounds()
            out_anytime |= not lower[0, 1] <= truth <= upper[0, 1]
            d = scores[0, order[:k]] - scores[1, order[:k]]
            draws = rng.multinomial(k, [(d > 0).mean(), (d == 0).mean(), (d < 0).mean()], size=1000)
            low, high = np.percentile((draws[:, 0] - draws[:, 2]) / k, [2.5, 97.5])
            out_bootstrap |= not low <= truth <= high
        ever_out_anytime += out_anytime
        ever_out_bootstrap += out_bootstrap
    assert ever_out_anytime / 300 <= 0.05
    assert ever_out_bootstrap / 300 > 0.15


def _naive_choice(scores: np.ndarray, order: np.ndarray, rounds: int, rng: np.random.Generator) -> int:
    """Stop when the leader's fixed-n 95 % percentile-bootstrap interval of its lead over every
    other prompt lies above 0, checked after every round; the bootstrap of a mean of paired
    differences in {-1, 0, 1} is drawn exactly as multinomial counts."""
    n_prompts, n = scores.shape
    for k in range(rounds, n + 1, rounds):
        seen = scores[:, order[:k]]
        lead = int(np.argmax(seen.mean(axis=1)))
        separated = True
        for q in range(n_prompts):
            if q != lead:
                d = seen[lead] - seen[q]
                draws = rng.multinomial(k, [(d > 0).mean(), (d == 0).mean(), (d < 0).mean()], size=1000)
                separated &= np.percentile((draws[:, 0] - draws[:, 2]) / k, 2.5) > 0
        if separated:
            return lead
    return int(np.argmax(scores.mean(axis=1)))


@pytest.mark.slow
def test_the_search_is_wrong_at_most_delta_of_the_time_and_the_naive_rule_is_not():
    """300 seeded orders of a population with known means (0.52 and 0.48, epsilon 0.01): the
    search's choice is more than epsilon below the best in at most delta of them; the naive rule
    (stop at the first round of 5 inputs where the fixed-n bootstrap interval separates) is
    wrong in more than delta of them."""
    scores = population([0.52, 0.48], 400)
    means = scores.mean(axis=1)
    epsilon, delta = 0.01, 0.05
    wrong = naive_wrong = 0
    for seed in range(300):
        order = np.random.default_rng(seed).permutation(400)
        decision, _ = search(scores, order, epsilon=epsilon, delta=delta, round_size=5)
        wrong += means.max() - means[decision.leader] > epsilon
        naive_wrong += means.max() - means[_naive_choice(scores, order, 5, np.random.default_rng(seed))] > epsilon
    assert wrong / 300 <= delta
    assert naive_wrong / 300 > delta


def test_a_clearly_better_prompt_is_found_early_and_a_tie_reads_everything():
    """The premise: the cost follows the gaps. One prompt far ahead is left alone after a
    fraction of the inputs; identical prompts are known to be within epsilon of each other only
    after nearly every input is read."""
    far = population([0.9, 0.5, 0.45, 0.3], 600)
    decision, cells = search(far, np.random.default_rng(1).permutation(600), epsilon=0.01, delta=0.05)
    assert decision.leader == 0 and decision.reason == "one_left"
    assert cells < 0.5 * far.size
    same = np.vstack([population([0.6], 300, seed=3)] * 3)
    decision, cells = search(same, np.random.default_rng(2).permutation(300), epsilon=0.01, delta=0.05)
    assert decision.reason in ("exhausted", "within_epsilon") and cells > 0.9 * same.size


def test_a_budget_stops_without_a_guarantee_and_says_so():
    scores = population([0.55, 0.5, 0.5], 500)
    decision, cells = search(scores, np.random.default_rng(0).permutation(500), budget=50)
    assert decision.reason == "budget" and cells == 3 * 50
    assert decision.worst_gap < -0.01  # the leader is not known to be within epsilon


def test_scores_of_dropped_prompts_are_not_read_but_survivors_need_one():
    state = BestPromptSearch(3, 10)
    state.alive[2] = False
    state.observe(np.array([1.0, 0.0, np.nan]))
    assert state.cells == 2
    with pytest.raises(ValueError, match="surviving prompt"):
        state.observe(np.array([1.0, np.nan, 0.0]))
