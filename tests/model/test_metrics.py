"""Hand-computed checks of promptsel.metrics (methods.md §1.8)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from promptsel.errors import UsageError
from promptsel.model import metrics

LOG2_3 = math.log2(3)
LOG2_5 = math.log2(5)


class TestPerformance:
    def test_accuracy(self):
        predictions = np.array([[0, 1, 1, 0], [1, 1, 1, 1]])
        labels = np.array([0, 1, 0, 0])
        # prompt 0 right on examples 0, 1, 3; prompt 1 only on example 1
        assert metrics.performance(predictions, labels).tolist() == [0.75, 0.25]

    def test_macro_f1_by_hand(self):
        predictions = np.array([[0, 1, 1, 1]])
        labels = np.array([0, 0, 1, 1])
        # class 0: tp 1, fp 0, fn 1 -> P 1, R 1/2, F1 2/3
        # class 1: tp 2, fp 1, fn 0 -> P 2/3, R 1, F1 4/5
        f1_0, f1_1 = 2 / 3, 4 / 5
        got = metrics.performance(predictions, labels, "macro_f1", n_classes=2)
        assert got[0] == pytest.approx((f1_0 + f1_1) / 2)
        # A third class that never occurs scores 0 and divides by 3 instead of 2.
        got3 = metrics.performance(predictions, labels, "macro_f1", n_classes=3)
        assert got3[0] == pytest.approx((f1_0 + f1_1) / 3)

    def test_macro_f1_needs_n_classes(self):
        with pytest.raises(ValueError, match="n_classes"):
            metrics.performance(np.zeros((1, 2), int), np.zeros(2, int), "macro_f1")

    def test_unknown_metric(self):
        with pytest.raises(UsageError, match="accuracy, macro_f1"):
            metrics.performance(np.zeros((1, 2), int), np.zeros(2, int), "f2")


class TestChooseAndRanking:
    def test_choose_first_of_tied(self):
        assert metrics.choose(np.array([0.2, 0.5, 0.5, 0.1])) == (1, [1, 2])

    def test_float_noise_is_a_tie(self):
        # 0.1 + 0.2 == 0.30000000000000004: equal to 12 significant digits, so file order wins.
        assert metrics.choose(np.array([0.3, 0.1 + 0.2])) == (0, [0, 1])
        assert metrics.ranking(np.array([0.1, 0.3, 0.1 + 0.2])) == [1, 2, 0]

    def test_real_difference_is_not_a_tie(self):
        assert metrics.choose(np.array([0.3, 0.3 + 1e-9])) == (1, [1])

    def test_ranking_descending_stable(self):
        assert metrics.ranking(np.array([0.2, 0.5, 0.5, 0.1, 0.5])) == [1, 2, 4, 0, 3]

    def test_nan_rejected(self):
        with pytest.raises(ValueError, match="NaN"):
            metrics.choose(np.array([0.1, np.nan]))


class TestRate:
    def test_rate(self):
        assert metrics.performance_rate(0.6, np.array([0.5, 0.6, 0.8])) == pytest.approx(0.75)

    def test_zero_best(self):
        assert metrics.performance_rate(0.0, np.zeros(3)) is None


def exp_gain(x):
    return 2**x - 1


class TestNdcg:
    # methods.md §1.8 worked example.
    perf = np.array([0.9, 0.8, 0.5, 0.4])
    scores = np.array([1.0, 3.0, 4.0, 2.0])

    def test_worked_example_raw_and_fute(self):
        # predicted order: prompt 2, 1, 3, 0
        assert metrics.ndcg(self.scores, self.perf, "raw") == pytest.approx(0.8428, abs=5e-5)
        assert metrics.ndcg(self.scores, self.perf, "fute") == pytest.approx(0.8333, abs=5e-5)

    def test_worked_example_raw_by_hand(self):
        g = exp_gain
        dcg = g(0.5) + g(0.8) / LOG2_3 + g(0.4) / 2 + g(0.9) / LOG2_5
        idcg = g(0.9) + g(0.8) / LOG2_3 + g(0.5) / 2 + g(0.4) / LOG2_5
        assert metrics.ndcg(self.scores, self.perf, "raw") == pytest.approx(dcg / idcg)

    def test_worked_example_fute_by_hand(self):
        # Predicted ranks by true rank: prompt 0 (true 1st) is predicted 4th, prompt 1 2nd,
        # prompt 2 1st, prompt 3 3rd. FUTE discounts the gain of the prompt whose TRUE rank is the
        # predicted rank: true position 1 gets the 4th-best gain, position 2 the 2nd, ...
        g = exp_gain
        dcg = g(0.4) + g(0.8) / LOG2_3 + g(0.9) / 2 + g(0.5) / LOG2_5
        idcg = g(0.9) + g(0.8) / LOG2_3 + g(0.5) / 2 + g(0.4) / LOG2_5
        assert metrics.ndcg(self.scores, self.perf, "fute") == pytest.approx(dcg / idcg)

    def test_worked_example_minmax_by_hand(self):
        # rel = (perf - 0.4) / 0.5 = [1, 0.8, 0.2, 0]; predicted order 2, 1, 3, 0
        dcg = 0.2 + 0.8 / LOG2_3 + 0 / 2 + 1 / LOG2_5
        idcg = 1 + 0.8 / LOG2_3 + 0.2 / 2 + 0 / LOG2_5
        assert metrics.ndcg(self.scores, self.perf) == pytest.approx(dcg / idcg)
        assert metrics.ndcg(self.scores, self.perf) == pytest.approx(0.70754, abs=5e-6)

    def test_ties_averaged_by_hand(self):
        perf = np.array([1.0, 0.0, 0.5])  # rel = perf
        scores = np.array([1.0, 1.0, 0.0])
        # prompts 0 and 1 share ranks 1-2: each earns their mean gain 0.5 at both discounts
        dcg = 0.5 * (1 + 1 / LOG2_3) + 0.5 / 2
        idcg = 1 + 0.5 / LOG2_3
        assert metrics.ndcg(scores, perf) == pytest.approx(dcg / idcg)

    def test_fute_breaks_ties_optimistically(self):
        # Tied prompts 0 and 1 are ordered better-first, so this ranking counts as ideal.
        perf = np.array([0.5, 0.9, 0.1])
        scores = np.array([1.0, 1.0, 0.0])
        assert metrics.ndcg(scores, perf, "fute") == pytest.approx(1.0)
        assert metrics.ndcg(scores, perf, "raw") < 1.0

    def test_constant_scores(self):
        perf = np.array([0.9, 0.8, 0.5, 0.4])
        flat = np.ones(4)
        assert metrics.ndcg(flat, perf, "fute") == 0.0
        # Averaged over every order, a constant score is exactly a random ranking.
        for variant in ("minmax", "raw"):
            assert metrics.ndcg(flat, perf, variant) == pytest.approx(
                metrics.random_ndcg(perf, variant)
            )

    @pytest.mark.parametrize("variant", metrics.NDCG_VARIANTS)
    def test_equal_performance_is_undefined(self, variant):
        perf = np.full(3, 0.7)
        assert metrics.ndcg(np.array([1.0, 2.0, 3.0]), perf, variant) is None
        assert metrics.random_ndcg(perf, variant) is None

    def test_perfect_and_worst(self):
        perf = np.array([0.6, 0.9, 0.3])
        assert metrics.ndcg(perf, perf) == pytest.approx(1.0)
        # worst order 2, 0, 1 with rel [0.5, 1, 0]: 0 + 0.5/log2 3 + 1/2
        assert metrics.ndcg(-perf, perf) == pytest.approx((0.5 / LOG2_3 + 0.5) / (1 + 0.5 / LOG2_3))

    def test_minmax_equals_sklearn(self):
        rng = np.random.default_rng(0)
        for case in range(300):
            n = int(rng.integers(2, 15))
            perf = rng.uniform(0.3, 0.9, n)
            scores = rng.normal(size=n)
            if case % 2:
                scores = np.round(scores, 0)  # many ties
            if perf.min() == perf.max():
                continue
            rel = (perf - perf.min()) / (perf.max() - perf.min())
            expected = ndcg_score([rel], [scores])
            assert metrics.ndcg(scores, perf, "minmax") == pytest.approx(expected, rel=1e-12)

    def test_raw_equals_sklearn_on_exponential_gains(self):
        # sklearn's gain is linear in y_true, so y_true = 2**perf - 1 gives the "raw" variant.
        rng = np.random.default_rng(1)
        for _ in range(100):
            perf = rng.uniform(0.3, 0.9, 8)
            scores = np.round(rng.normal(size=8), 0)
            expected = ndcg_score([exp_gain(perf)], [scores])
            assert metrics.ndcg(scores, perf, "raw") == pytest.approx(expected, rel=1e-12)

    def test_fute_is_standard_ndcg_of_inverse_permutation(self):
        rng = np.random.default_rng(2)
        for _ in range(200):
            n = int(rng.integers(2, 14))
            perf = rng.uniform(0.4, 0.9, n)
            scores = rng.normal(size=n)  # no ties
            gains_best_first = np.sort(exp_gain(perf))[::-1]
            true_rank = np.empty(n, int)
            true_rank[np.argsort(-perf)] = np.arange(n)
            # sigma[i] = true rank of the prompt predicted at rank i
            sigma = true_rank[np.argsort(-scores)]
            inverse = np.argsort(sigma)
            discounts = 1 / np.log2(np.arange(2, n + 2))
            expected = gains_best_first[inverse] @ discounts / (gains_best_first @ discounts)
            assert metrics.ndcg(scores, perf, "fute") == pytest.approx(expected, rel=1e-12)

    def test_unknown_variant(self):
        with pytest.raises(UsageError, match="minmax, raw, fute"):
            metrics.ndcg(np.ones(2), np.array([0.1, 0.2]), "std")


class TestRandomNdcg:
    @pytest.mark.parametrize("variant", metrics.NDCG_VARIANTS)
    def test_equals_mean_over_all_rankings(self, variant):
        perf = np.array([0.55, 0.9, 0.62, 0.71, 0.4])
        values = [
            metrics.ndcg(-np.array(order, dtype=float), perf, variant)
            for order in itertools.permutations(range(5))
        ]
        assert metrics.random_ndcg(perf, variant) == pytest.approx(np.mean(values), rel=1e-12)

    def test_by_hand(self):
        perf = np.array([0.0, 1.0])  # minmax rel = perf
        # either order, equally likely: (1 + 0) and (0 + 1/log2 3)
        assert metrics.random_ndcg(perf) == pytest.approx((1 + 1 / LOG2_3) / 2)


class TestRankCorrelations:
    def test_by_hand(self):
        scores = np.array([1.0, 2.0, 3.0, 4.0])
        perf = np.array([0.1, 0.3, 0.2, 0.4])
        rho, tau = metrics.rank_correlations(scores, perf)
        # one swapped pair: sum d^2 = 2 -> rho = 1 - 6*2/(4*15); 5 concordant, 1 discordant of 6
        assert rho == pytest.approx(1 - 12 / 60)
        assert tau == pytest.approx(4 / 6)

    def test_tau_b_with_ties(self):
        scores = np.array([1.0, 1.0, 2.0])
        perf = np.array([0.1, 0.2, 0.3])
        # pairs: (0,1) tied in scores only; (0,2), (1,2) concordant
        # tau-b = (2 - 0) / sqrt((3 - 1) * 3)
        assert metrics.rank_correlations(scores, perf)[1] == pytest.approx(2 / math.sqrt(6))

    def test_constant_is_none(self):
        assert metrics.rank_correlations(np.ones(3), np.array([0.1, 0.2, 0.3])) == (None, None)
        # a float-noise difference is a tie, so this is constant too
        assert metrics.rank_correlations(np.array([0.3, 0.1 + 0.2]), np.array([0.1, 0.2])) == (
            None,
            None,
        )
