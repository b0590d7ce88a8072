"""The recommendation: bootstrap intervals, indistinguishable prompts, stability, ties, warnings.

Expected values come from exact distributions computed by hand (or by enumerating every
bootstrap resample of a 6-example table), from sklearn, from a normal approximation, or from
the UPS fixture's own published accuracies; never from this module's output.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.special import log_softmax
from sklearn.metrics import f1_score

from promptsel.fute.method import FuteMethod
from promptsel.model import metrics
from promptsel.model.scoretable import ScoreTable
from promptsel.model.stats import (
    bootstrap_performance,
    chance_level,
    expected_choice,
    resample_indices,
    resample_weights,
)
from promptsel.selection import recommend
from promptsel.selection import warnings as report_warnings
from promptsel.selection.agreement import method_agreement
from tests.shared_data import shared_path

#: Enough resamples that percentiles land on the exact distribution's quantiles (the nearest
#: competing probability mass is several standard errors away in every case below).
MANY = 20000


def table_from_predictions(preds, labels, n_classes=2, prompt_nll=None, ids=None) -> ScoreTable:
    """A table whose argmax predictions are ``preds`` [P, N] (confidence 0.9)."""
    preds = np.asarray(preds)
    probs = np.full((*preds.shape, n_classes), 0.1 / (n_classes - 1))
    np.put_along_axis(probs, preds[..., None], 0.9, axis=-1)
    return ScoreTable(prompt_ids=ids or [f"p{i}" for i in range(preds.shape[0])],
                      class_names=[f"c{i}" for i in range(n_classes)], class_logprobs=np.log(probs),
                      prompt_nll=prompt_nll, labels=None if labels is None else np.asarray(labels))


# --- bootstrap with labels ------------------------------------------------------------------

LABELS6 = [1, 1, 1, 0, 0, 0]


def test_paired_bootstrap_matches_the_exact_binomial_quantiles():
    # A is always right, B answers 1 everywhere (right on half), C always wrong. On a resample,
    # B's accuracy and A's lead over B are both Binomial(6, 1/2) / 6: P(k <= 0) = 1/64 < 2.5 %
    # < P(k <= 1) = 7/64, so the 95 % interval is [1/6, 5/6] exactly.
    table = table_from_predictions([LABELS6, [1] * 6, [0, 0, 0, 1, 1, 1]], LABELS6)
    rec, stats = recommend.recommend_measured(table, resamples=MANY, seed=1)
    assert rec["prompt"] == "p0" and rec["performance"] == 1.0
    assert rec["performance_interval"] == [1.0, 1.0]
    assert stats["p1"]["performance_interval"] == pytest.approx([1 / 6, 5 / 6])
    assert stats["p2"]["performance_interval"] == [0.0, 0.0]
    assert stats["p1"]["lead_interval"] == pytest.approx([1 / 6, 5 / 6])
    assert stats["p2"]["lead_interval"] == [1.0, 1.0]
    assert rec["indistinguishable"] == []
    # A is best unless every draw comes from B's right half (1/64): then they tie, split 1/2.
    assert rec["stability"]["share"] == pytest.approx(1 - 1 / 128, abs=0.003)
    assert rec["chance"] == 0.5


def test_one_example_apart_is_indistinguishable():
    # B differs from A on one example: the lead is (draws of it) / 6, Binomial(6, 1/6) / 6.
    # P(0) = (5/6)^6 = 0.335 puts the lower end at 0; P(k >= 3) = 0.062 > 2.5 % > P(k >= 4)
    # = 0.0087 puts the upper end at 3/6.
    b = list(LABELS6)
    b[0] = 0
    table = table_from_predictions([LABELS6, b], LABELS6)
    rec, stats = recommend.recommend_measured(table, resamples=MANY, seed=2)
    assert [a["prompt"] for a in rec["indistinguishable"]] == ["p1"]
    alt = rec["indistinguishable"][0]
    assert alt["lead"] == pytest.approx(1 / 6)
    assert alt["lead_interval"] == pytest.approx([0.0, 0.5])
    assert stats["p1"]["indistinguishable"] is True


def test_bootstrap_is_paired():
    # Two prompts with the same predictions: their lead is exactly 0 on every resample (an
    # unpaired bootstrap would give a wide interval around 0).
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 40)
    preds = rng.integers(0, 2, 40)
    table = table_from_predictions([preds, preds, 1 - labels], labels)
    _rec, stats = recommend.recommend_measured(table, resamples=500)
    assert stats["p1"]["lead_interval"] == [0.0, 0.0]


def test_macro_f1_resamples_match_sklearn():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 30)
    preds = rng.integers(0, 3, (4, 30))
    picks = resample_indices(30, 25, seed=3)
    got = bootstrap_performance(preds, labels, resample_weights(picks, 30), metric="macro_f1", n_classes=3)
    for b, pick in enumerate(picks):
        want = [f1_score(labels[pick], row[pick], labels=[0, 1, 2], average="macro", zero_division=0) for row in preds]
        np.testing.assert_allclose(got[b], want, atol=1e-12)
    ones = bootstrap_performance(preds, labels, np.ones((1, 30)), metric="macro_f1", n_classes=3)
    np.testing.assert_allclose(ones[0], metrics.performance(preds, labels, "macro_f1", n_classes=3), atol=1e-12)


def test_seeded():
    table = table_from_predictions(np.random.default_rng(1).integers(0, 2, (3, 30)), np.random.default_rng(2).integers(0, 2, 30))
    a, _ = recommend.recommend_measured(table, resamples=200, seed=7)
    b, _ = recommend.recommend_measured(table, resamples=200, seed=7)
    c, _ = recommend.recommend_measured(table, resamples=200, seed=8)
    assert a == b
    assert a["performance_interval"] != c["performance_interval"] or a["stability"] != c["stability"]


# --- label-free stability -------------------------------------------------------------------

def exact_win_shares(stat: np.ndarray) -> np.ndarray:
    """Every bootstrap resample of N examples, enumerated as draw counts with multinomial
    probabilities; the winner by mean statistic, ties split. stat: [P, N]."""
    n_prompts, n = stat.shape
    shares = np.zeros(n_prompts)
    for counts in itertools.product(range(n + 1), repeat=n):
        if sum(counts) != n:
            continue
        prob = math.factorial(n) / math.prod(math.factorial(c) for c in counts) / n**n
        means = stat @ np.array(counts) / n
        best = np.flatnonzero(np.isclose(means, means.max()))
        shares[best] += prob / best.size
    return shares


def stat_table(stat) -> ScoreTable:
    # The rule below reads minus prompt_nll as a per-input statistic.
    stat = np.asarray(stat, dtype=float)
    return ScoreTable(prompt_ids=[f"p{i}" for i in range(stat.shape[0])], class_names=["a", "b"],
                      class_logprobs=np.zeros((*stat.shape, 2)), prompt_nll=-stat)


def mean_stat(table: ScoreTable) -> np.ndarray:
    return -table.prompt_nll.mean(axis=1)


@pytest.mark.parametrize("stat", [
    [[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]],  # A wins unless input 0 is missing: 1 - (5/6)^6 / 2
    [[1, 0, 0, 0, 0, 0], [0, 0.99, 0, 0, 0, 0], [0, 0, 0.45, 0, 0.45, 0]],
])
def test_stability_matches_exact_enumeration(stat):
    table = stat_table(stat)
    want = exact_win_shares(np.asarray(stat, dtype=float))
    scores = mean_stat(table)
    rec, stats = recommend.recommend_label_free(table, "rule", scores, rescore=mean_stat, resamples=MANY, seed=4)
    got = np.array([stats[p]["pick_share"] for p in table.prompt_ids])
    np.testing.assert_allclose(got, want, atol=0.01)
    assert rec["prompt"] == "p0"
    assert rec["stability"]["share"] == pytest.approx(want[0], abs=0.01)
    if len(stat) == 2:
        assert want[0] == pytest.approx(1 - (5 / 6) ** 6 / 2)
        assert rec["stability"]["cover"] == ["p0", "p1"]  # 0.83 alone is short of 90 %


def test_unstable_choice_warns_and_lists_the_cover():
    # Five prompts with the same per-input values in other orders (p0 nudged up to win on the
    # full sample): on a resample each is about equally likely to come out on top.
    rng = np.random.default_rng(0)
    base = rng.normal(size=30)
    stat = np.array([rng.permutation(base) for _ in range(5)])
    stat[0] += 1e-3
    table = stat_table(stat)
    rec, _ = recommend.recommend_label_free(table, "noise", mean_stat(table), rescore=mean_stat, resamples=400)
    assert rec["stability"]["share"] < report_warnings.UNSTABLE_SHARE
    (w,) = report_warnings.stability_warnings(rec)
    assert w["code"] == "no_labels_unstable" and w["cover"] == rec["stability"]["cover"]
    assert len(w["cover"]) >= 3


def test_measured_but_unstable_best():
    # Four prompts, each wrong on one different example of 10: a four-way tie, and by symmetry
    # each measures best in a quarter of the resamples.
    labels = [1] * 5 + [0] * 5
    preds = []
    for k in range(4):
        row = list(labels)
        row[k] = 1 - row[k]  # each wrong on a different example
        preds.append(row)
    table = table_from_predictions(preds, labels)
    rec, _ = recommend.recommend_measured(table, resamples=2000)
    assert rec["tied"] == ["p0", "p1", "p2", "p3"]
    assert rec["stability"]["share"] == pytest.approx(0.25, abs=0.03)
    (w,) = report_warnings.stability_warnings(rec)
    assert w["code"] == "labels_unstable" and len(w["cover"]) == 4


def test_no_rescore_says_why():
    table = stat_table([[1, 0], [0, 0]])
    rec, _stats = recommend.recommend_label_free(table, "fute-tupate", np.array([0.2, 0.1]), reason=FuteMethod.bootstrap)
    assert rec["stability"]["estimated"] is False and rec["stability"]["share"] is None
    assert "FUTE" in rec["stability"]["how"]
    (w,) = report_warnings.stability_warnings(rec)
    assert w["code"] == "stability_unknown" and w["severity"] == "info"


def test_stability_reasons():
    assert recommend.stability_reason("fute-tupate") == FuteMethod.bootstrap
    assert recommend.stability_reason("self-select") is not None  # asks the model, not the inputs
    for method in ("mi", "globale", "locale", "spell", "zps-log", "zps-prob", "zps-vote", "consensus"):
        assert recommend.stability_reason(method) is None, method


def test_a_declared_bootstrap_reason_wins(monkeypatch):
    from promptsel.plugins import registries

    cls = registries().selectors.get("mi")
    monkeypatch.setattr(cls, "bootstrap", "because I say so", raising=False)
    assert recommend.stability_reason("mi") == "because I say so"


# --- ties -----------------------------------------------------------------------------------

def test_expected_choice_averages_the_tied_prompts():
    choice = expected_choice(np.array([1.0, 3.0, 3.0, 2.0]), np.array([0.5, 0.6, 0.8, 0.9]))
    assert choice["tied"] == [1, 2]
    assert choice["performance"] == pytest.approx(0.7)
    assert choice["rate"] == pytest.approx(0.7 / 0.9)


def fixture_table(arrays, n: int, order=None) -> ScoreTable:
    order = np.arange(n) if order is None else order
    return ScoreTable(prompt_ids=[str(p) for p in arrays["prompt"][:n][order]], class_names=["negative", "positive"],
                      class_logprobs=arrays["log_prob"][:n][order], prompt_nll=-np.log(arrays["p_xt"][:n][order]),
                      labels=arrays["targets"])


@pytest.fixture(scope="module")
def ups():
    with np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz")) as data:
        return {key: data[key] for key in data.files}


def test_reordering_the_prompts_cannot_change_a_tied_methods_numbers(ups):
    # ZPS-Prob ties 5 prompts at the top of the 100 (accuracy 0.509-0.514; issue 11). Taking the
    # first of them in file order makes the reported performance depend on the file's order;
    # the expected performance over the tied prompts does not.
    from promptsel.selector import SelectionContext
    from promptsel_builtin.baselines import ZpsProb

    _, tied = metrics.choose(ZpsProb().score(fixture_table(ups, 100), SelectionContext()))
    acc = ups["accuracy"]
    orders = [np.random.default_rng(seed).permutation(100) for seed in range(4)]
    for front in (max(tied, key=lambda i: acc[i]), min(tied, key=lambda i: acc[i])):
        orders.append(np.array([front, *(i for i in range(100) if i != front)]))  # that tied prompt listed first
    seen_first, seen_expected, seen_ndcg = set(), set(), set()
    for order in orders:
        table = fixture_table(ups, 100, order)
        scores = ZpsProb().score(table, SelectionContext())
        perf = ups["accuracy"][order]
        first, tied = metrics.choose(scores)
        assert len(tied) == 5
        seen_first.add(round(float(perf[first]), 12))
        choice = expected_choice(scores, perf)
        seen_expected.add((round(choice["performance"], 12), round(choice["rate"], 12)))
        seen_ndcg.add(round(metrics.ndcg(scores, perf), 12))
    assert len(seen_first) > 1  # the old rule moves with the file order
    assert len(seen_expected) == 1 and len(seen_ndcg) == 1
    (expected, _), = seen_expected
    assert 0.509 <= expected <= 0.514


def test_tied_top_warning():
    ids = ["a", "b", "c", "d"]
    (w,) = report_warnings.tied_top_warnings(ids, {"m": np.array([1.0, 3, 3, 2]), "n": np.array([1.0, 2, 3, 4])},
                                       np.array([0.5, 0.6, 0.8, 0.9]))
    assert w["code"] == "tied_top" and w["method"] == "m" and w["prompts"] == ["b", "c"]
    assert w["expected_performance"] == pytest.approx(0.7)
    assert "0.700" in w["message"]


# --- warnings -------------------------------------------------------------------------------

def test_collapse_threshold_is_inclusive():
    labels = [0] * 10 + [1] * 10
    nineteen = [0] * 19 + [1]  # 95 %: collapsed
    eighteen = [0] * 18 + [1] * 2  # 90 %: not
    table = table_from_predictions([labels, nineteen, eighteen], labels)
    w = report_warnings.collapsed_warning(table, recommended="p1")
    assert [h["prompt"] for h in w["prompts"]] == ["p1"]
    assert w["prompts"][0] == {"prompt": "p1", "class": "c0", "share": 0.95}
    assert w["recommended"] is True
    assert report_warnings.collapsed_warning(table_from_predictions([labels, eighteen], labels)) is None


def test_at_chance():
    labels = [1] * 12 + [0] * 8  # majority rate 0.6
    near = list(labels)
    for i in range(0, 6):
        near[i] = 0  # 14/20 = 0.7 right: its interval reaches below 0.6
    table = table_from_predictions([near], labels)
    rec, _ = recommend.recommend_measured(table, resamples=500)
    assert rec["chance"] == 0.6
    w = report_warnings.at_chance_warning(rec)
    assert w["code"] == "at_chance" and w["chance"] == 0.6
    perfect, _ = recommend.recommend_measured(table_from_predictions([labels], labels), resamples=200)
    assert report_warnings.at_chance_warning(perfect) is None


def test_chance_level_for_macro_f1():
    # Guessing with the class frequencies gives each class F1 = its frequency: mean 1/C.
    assert chance_level(np.array([0, 0, 0, 1, 2]), 3, "macro_f1") == pytest.approx(1 / 3)
    assert chance_level(np.array([0, 0, 0, 1, 2]), 3, "accuracy") == pytest.approx(0.6)


def test_method_agreement():
    agreement = method_agreement({
        "a": np.array([3.0, 1, 2]), "b": np.array([3.0, 3, 1]), "c": np.array([1.0, 2, 3]),
    })
    same = np.array(agreement["same_choice"])
    # a picks prompt 0; b ties 0 and 1 (1/2 chance of 0); c picks 2.
    np.testing.assert_allclose(same, [[1, 0.5, 0], [0.5, 1, 0], [0, 0, 1]])
    assert agreement["spearman"][0][2] == pytest.approx(-0.5)


# --- real data: the UPS fixture ---------------------------------------------------------------

def test_fixture_with_labels(ups):
    from promptsel.plugins import registries
    from promptsel.selector import SelectionContext

    table = fixture_table(ups, 100)
    # One more prompt: prompt_05 with one correct answer made wrong, 1 example below the best.
    preds = table.predictions
    wrong = int(np.flatnonzero(preds[5] == table.labels)[0])
    near = log_softmax(table.class_logprobs[5].copy(), axis=-1)
    near[wrong] = near[wrong][::-1]
    table = ScoreTable(prompt_ids=[*table.prompt_ids, "prompt_05_minus_one"], class_names=table.class_names,
                       class_logprobs=np.concatenate([table.class_logprobs, near[None]]),
                       prompt_nll=np.concatenate([table.prompt_nll, table.prompt_nll[5:6]]), labels=table.labels)
    scores = {"consensus": registries().selectors.get("consensus")().score(table, SelectionContext())}
    out = recommend.decide(table, scores)
    rec = out["recommendation"]
    acc = np.append(ups["accuracy"], ups["accuracy"][5] - 1 / 872)
    assert rec["prompt"] == str(ups["prompt"][int(np.argmax(ups["accuracy"]))]) == "prompt_05"
    assert rec["performance"] == pytest.approx(acc.max())
    lo, hi = rec["performance_interval"]
    # The percentile interval of an accuracy on 872 examples is close to the normal one.
    half = 1.96 * math.sqrt(acc.max() * (1 - acc.max()) / 872)
    assert lo == pytest.approx(acc.max() - half, abs=0.005) and hi == pytest.approx(acc.max() + half, abs=0.005)
    close = {a["prompt"] for a in rec["indistinguishable"]}
    assert "prompt_05_minus_one" in close
    # Every prompt 5 points or more below the best is distinguishable from it.
    assert all(acc[i] > acc.max() - 0.05 for i, p in enumerate(table.prompt_ids) if p in close)
    codes = [w["code"] for w in out["warnings"]]
    assert "collapsed" in codes and "at_chance" not in codes
    # Without labels the consensus would pick a prompt far below the best (issue 11's point).
    assert "label_free_disagrees" in codes
    assert out["prompt_stats"]["prompt_05"]["lead_interval"] is None
    assert rec["calibration"] == "none"


def test_fixture_without_labels(ups):
    from promptsel.plugins import registries
    from promptsel.selector import SelectionContext

    labelled = fixture_table(ups, 13)
    table = ScoreTable(prompt_ids=labelled.prompt_ids, class_names=labelled.class_names,
                       class_logprobs=labelled.class_logprobs, prompt_nll=labelled.prompt_nll)
    ctx = SelectionContext()
    scores = {m: registries().selectors.get(m)().score(table, ctx) for m in ("mi", "zps-vote", "consensus")}
    prior = np.linspace(0.1, 0.9, 13)[:, None] * np.array([1.0, -1.0]) + np.array([0.0, 1.0])  # [13, 2], rows sum to 1
    out = recommend.decide(table, scores, rule="consensus", resamples=300, calibration="cbm", calibration_priors=prior)
    rec = out["recommendation"]
    assert rec["basis"] == "label-free" and rec["rule"] == "consensus"
    assert rec["prompt"] == table.prompt_ids[int(np.argmax(scores["consensus"]))]
    shares = [out["prompt_stats"][p]["pick_share"] for p in table.prompt_ids]
    assert sum(shares) == pytest.approx(1.0)
    assert rec["stability"]["share"] == pytest.approx(out["prompt_stats"][rec["prompt"]]["pick_share"])
    assert sum(out["prompt_stats"][p]["pick_share"] for p in rec["stability"]["cover"]) >= 0.9
    codes = [w["code"] for w in out["warnings"]]
    assert "tied_top" in codes  # ZPS-Vote ties prompt_01 and prompt_02
    assert codes[-1] == "calibrated"
    assert rec["performance"] is None and rec["indistinguishable"] == []
    i = table.prompt_ids.index(rec["prompt"])
    assert rec["calibration"] == "cbm"
    assert rec["calibration_prior"] == {"negative": pytest.approx(prior[i, 0]), "positive": pytest.approx(prior[i, 1])}


def test_calibrated_mi_reproduces_ups_choice(ups):
    # With CBM and no labels, MI picks prompt_02 on the fixture, the prompt UPS's released
    # results file reports for MI with CBM (801/872 calibrated). Collapse is judged on the raw
    # table: CBM rebalances prompt_00's answers on this sample, but it still ignores its input.
    from promptsel.selection.calibration import calibrate, priors

    labelled = fixture_table(ups, 100)
    table = ScoreTable(prompt_ids=labelled.prompt_ids, class_names=labelled.class_names,
                       class_logprobs=labelled.class_logprobs, prompt_nll=labelled.prompt_nll)
    calibrated = calibrate(table, "cbm")
    out = recommend.decide(calibrated, {}, rule="mi", resamples=100, calibration="cbm",
                           calibration_priors=priors(table, "cbm"), raw=table)
    rec = out["recommendation"]
    assert rec["rule"] == "mi" and rec["prompt"] == "prompt_02"
    assert sum(rec["calibration_prior"].values()) == pytest.approx(1.0)
    assert out["agreement"] is None
    (collapsed,) = [w for w in out["warnings"] if w["code"] == "collapsed"]
    assert "prompt_00" in [h["prompt"] for h in collapsed["prompts"]]
    assert report_warnings.collapsed_warning(calibrated) is None or len(report_warnings.collapsed_warning(calibrated)["prompts"]) < len(collapsed["prompts"])


def test_default_rule_follows_the_calibration():
    table = stat_table([[1, 0, 0], [0, 0, 0]])
    scores = {"consensus": np.array([1.0, 0.0]), "zps-log": np.array([0.0, 1.0])}
    for calibration, prompt in (("none", "p0"), ("cbm", "p1")):
        out = recommend.decide(table, scores, resamples=20, calibration=calibration,
                               rescore=lambda t, s=scores[recommend.default_rule(calibration)]: s)
        assert out["recommendation"]["rule"] == recommend.default_rule(calibration)
        assert out["recommendation"]["prompt"] == prompt


def test_calibration_hint(ups):
    # CBM lifts prompt_02 to 801/872 (UPS's published number), above the raw best's interval.
    rec, _ = recommend.recommend_measured(fixture_table(ups, 100), resamples=300)
    hint = report_warnings.calibration_hint(fixture_table(ups, 100), rec)
    assert hint["code"] == "calibration_helps" and hint["severity"] == "info"
    assert hint["prompt"] == "prompt_02" and hint["performance"] == pytest.approx(801 / 872)
    assert hint["performance"] > rec["performance_interval"][1]
    perfect = table_from_predictions([LABELS6, [1] * 6], LABELS6)
    rec, _ = recommend.recommend_measured(perfect, resamples=100)
    assert report_warnings.calibration_hint(perfect, rec) is None


# --- the levels and sides of the intervals, by exact binomial quantiles ------------------------

def test_lead_and_performance_intervals_are_the_central_95_percent_of_the_binomial():
    """A always right, B wrong on 10 of 27. A resample's lead of A over B is Binomial(27, 10/27)
    / 27: P(k <= 4) = 0.011 < 2.5 % < P(k <= 5) = 0.032 and P(k <= 14) = 0.962 < 97.5 % <
    P(k <= 15) = 0.984, so the lead interval is [5/27, 15/27] and B's accuracy [12/27, 22/27]
    (a one-sided or a 90 % interval would end elsewhere: at 90 %, P(k <= 5) < 5 % gives 6/27)."""
    labels = [1] * 14 + [0] * 13
    b = list(labels)
    for i in range(10):
        b[i] = 1 - b[i]
    rec, stats = recommend.recommend_measured(table_from_predictions([labels, b], labels), resamples=MANY, seed=3)
    assert rec["prompt"] == "p0" and rec["level"] == 0.95
    assert stats["p1"]["lead_interval"] == pytest.approx([5 / 27, 15 / 27])
    assert stats["p1"]["performance_interval"] == pytest.approx([12 / 27, 22 / 27])


def test_three_of_twenty_behind_is_indistinguishable_at_the_default_level_only():
    """C is wrong on 3 of the 20 inputs A gets right: a resample without any of them has
    probability 0.85^20 = 0.039, above 2.5 % (the lead interval reaches 0: indistinguishable)
    and below 5 % (a 90 % interval would not reach 0)."""
    labels = [1] * 10 + [0] * 10
    c = list(labels)
    for i in (0, 5, 12):
        c[i] = 1 - c[i]
    table = table_from_predictions([labels, c], labels)
    rec, stats = recommend.recommend_measured(table, resamples=MANY, seed=4)
    assert [a["prompt"] for a in rec["indistinguishable"]] == ["p1"] and stats["p1"]["lead_interval"][0] == 0.0
    rec90, stats90 = recommend.recommend_measured(table, resamples=MANY, seed=4, level=0.90)
    assert rec90["indistinguishable"] == [] and stats90["p1"]["lead_interval"][0] == pytest.approx(1 / 20)


def test_calibration_helps_only_above_the_whole_raw_interval():
    """One prompt always says class 0 (accuracy 1/2); divided by its mean prior (CBM: 0.75 and
    0.25) its probabilities 0.9, 0.8 | 0.7, 0.6 for class 0 become predictions 0, 0 | 1, 1, all
    right. 1.0 inside a raw interval [0.4, 1.0] is no hint; above [0.3, 0.75] it is."""
    p0 = np.array([0.9, 0.8, 0.7, 0.6])
    table = ScoreTable(prompt_ids=["p0"], class_names=["c0", "c1"],
                       class_logprobs=np.log(np.stack([p0, 1 - p0], axis=-1))[None], labels=np.array([0, 0, 1, 1]))
    inside = {"performance_interval": [0.4, 1.0], "metric": "accuracy"}
    assert report_warnings.calibration_hint(table, inside) is None
    above = {"performance_interval": [0.3, 0.75], "metric": "accuracy"}
    hint = report_warnings.calibration_hint(table, above)
    assert hint is not None and hint["code"] == "calibration_helps" and hint["performance"] == 1.0


def test_the_rescorer_hands_the_method_the_runs_context():
    """The label-free rule is rerun on resampled tables with the run's context (a method may read
    it: self-select its scorer, FUTE its run); without one, an empty context. A mutant that
    dropped the context survived tests/mutation/run.sh."""
    from promptsel import NEEDS_CLASS_LOGPROBS, SelectionContext, Selector, hookimpl
    from promptsel.testing import registered

    class Seeded(Selector):
        selector_id = "seed-probe"
        needs = frozenset({NEEDS_CLASS_LOGPROBS})
        description = "Scores every prompt with the context's seed."

        def score(self, table, context):
            return np.full(table.n_prompts, float(context.seed))

    class Plugin:
        @hookimpl
        def register_selectors(self, register, embedders):
            register(Seeded)

    lp = log_softmax(np.zeros((2, 3, 2)), axis=-1)
    table = ScoreTable(prompt_ids=["a", "b"], class_names=["x", "y"], class_logprobs=lp, prompt_nll=np.zeros((2, 3)),
                       labels=np.array([0, 1, 0]))
    with registered(Plugin(), name="seed-probe"):
        assert recommend.rescorer("seed-probe", SelectionContext(seed=7))(table).tolist() == [7.0, 7.0]
        assert recommend.rescorer("seed-probe")(table).tolist() == [0.0, 0.0]
