"""The recommendation as the report holds it, read back field by field on tables small enough to
work out by hand: ``recommend_measured`` and ``recommend_label_free`` whole, then what ``decide``
adds (the label-free check, the warnings, the calibration fields). Issue 24's mutation run over
recommend.py left 185 mutants alive because no test of its selection read these fields.

Every expected value is reasoned in the comments from the table: counts of right answers, the
binomial law of how often a resample draws one example, the rule's scores as given, and the
CBM arithmetic ``p(c | x) / mean_x p(c | x)``; none is copied from the code's output.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from promptsel import NEEDS_CLASS_LOGPROBS, SelectionContext, Selector, hookimpl
from promptsel.fute.method import FuteMethod
from promptsel.model.scoretable import ScoreTable
from promptsel.selection import recommend
from promptsel.selection.recommend import DEFAULT_RULES, decide
from promptsel.testing import registered
from tests.selection.test_recommend import table_from_predictions

LABELS = [1] * 10 + [0] * 10
#: Enough resamples that a share lands within 0.01 of its exact value and a percentile on its
#: exact quantile (the nearest competing probability mass is several standard errors away).
MANY = 20000
#: P(a resample of 20 misses one given example) = (19/20)^20.
MISS = (19 / 20) ** 20


def codes(out: dict) -> list[str]:
    return sorted(w["code"] for w in out["warnings"])


def one_of(out: dict, code: str) -> dict:
    (found,) = [w for w in out["warnings"] if w["code"] == code]
    return found


def three_prompts() -> ScoreTable:
    """p0 right on all 20, p1 answers c0 everywhere (10 right, collapsed), p2 wrong on input 0."""
    p2 = list(LABELS)
    p2[0] = 0
    return table_from_predictions([LABELS, [0] * 20, p2], LABELS)


# --- the measured recommendation, whole --------------------------------------------------------

def test_the_measured_recommendation_field_by_field():
    # p0 always right, p1 always wrong, p2 wrong on input 0 only. On a resample drawing input 0
    # k times (k ~ Binomial(20, 1/20)): p0 1, p1 0, p2 1 - k/20.
    p2 = list(LABELS)
    p2[0] = 0
    table = table_from_predictions([LABELS, [1 - y for y in LABELS], p2], LABELS)
    rec, stats = recommend.recommend_measured(table, resamples=MANY, seed=3)
    stability = rec.pop("stability")
    # p0 wins every resample but those that miss input 0 (chance MISS), which it ties with p2
    # and shares half: 1 - MISS / 2 = 0.821; that is under 0.9, so the cover takes p2 too.
    assert stability.pop("share") == pytest.approx(1 - MISS / 2, abs=0.01)
    assert stability == {"cover": ["p0", "p2"], "cover_level": 0.9, "estimated": True,
                         "how": "share of resamples of the examples in which this prompt measures best"}
    (alt,) = rec.pop("indistinguishable")
    # p0's lead over p2 is k/20: 0 in 35.8 % of resamples, at most 3/20 in 98.4 % (2/20: 92.5 %),
    # so its central 95 % interval is [0, 0.15]; it contains 0.
    assert alt.pop("lead") == pytest.approx(0.05) and alt.pop("performance") == pytest.approx(0.95)
    assert alt == {"prompt": "p2", "lead_interval": [0.0, pytest.approx(0.15)]}
    assert rec == {"prompt": "p0", "rule": "measured", "basis": "labels", "metric": "accuracy",
                   "performance": 1.0, "performance_interval": [1.0, 1.0], "expected_performance": 1.0, "tied": ["p0"],
                   "chance": 0.5, "level": 0.95, "resamples": MANY, "seed": 3, "label_free": None}
    # Per prompt: p0 and p1 answer each class 10 times (top class: the first of the tie, c0, at
    # 0.5); p2 answers c0 11 times. p2's accuracy 1 - k/20 has the central interval [0.85, 1].
    assert stats["p0"] == {"performance_interval": [1.0, 1.0], "lead_interval": None, "indistinguishable": False,
                           "pick_share": pytest.approx(1 - MISS / 2, abs=0.01), "top_class": "c0", "top_share": 0.5}
    assert stats["p1"] == {"performance_interval": [0.0, 0.0], "lead_interval": [1.0, 1.0], "indistinguishable": False,
                           "pick_share": 0.0, "top_class": "c0", "top_share": 0.5}
    assert stats["p2"] == {"performance_interval": [pytest.approx(0.85), 1.0], "lead_interval": [0.0, pytest.approx(0.15)],
                           "indistinguishable": True, "pick_share": pytest.approx(MISS / 2, abs=0.01),
                           "top_class": "c0", "top_share": 0.55}


def test_alternatives_come_best_first_and_an_equal_prompt_is_indistinguishable():
    # pA is wrong on input 0 (0.95), pB answers as p0 does (1.0, a tie: p0 is first in file
    # order). pB's lead interval is [0, 0], which contains 0: indistinguishable. Listed best
    # first, so pB before pA although the file has pA first.
    one_wrong = list(LABELS)
    one_wrong[0] = 0
    table = table_from_predictions([LABELS, one_wrong, LABELS], LABELS, ids=["p0", "pA", "pB"])
    rec, _ = recommend.recommend_measured(table, resamples=500)
    assert [a["prompt"] for a in rec["indistinguishable"]] == ["pB", "pA"]
    assert rec["indistinguishable"][0]["lead_interval"] == [0.0, 0.0] and rec["tied"] == ["p0", "pB"]


def test_the_level_sets_every_interval():
    # At 80 %: k (draws of input 0) has P(k <= 1) = 0.736 and P(k <= 2) = 0.925, so its 90th
    # percentile is 2 and p2's accuracy interval is [0.9, 1.0] (at 95 %: [0.85, 1.0]).
    rec, stats = recommend.recommend_measured(three_prompts(), resamples=MANY, level=0.8)
    assert rec["level"] == 0.8 and stats["p2"]["performance_interval"] == [pytest.approx(0.9), 1.0]
    assert rec["indistinguishable"][0]["lead_interval"] == [0.0, pytest.approx(0.1)]


def test_macro_f1_is_measured_resampled_and_judged_against_its_own_chance():
    rec, stats = recommend.recommend_measured(three_prompts(), metric="macro_f1", resamples=MANY)
    # p2 (one c1 input answered c0): c1 F1 = 18/19, c0 F1 = 20/21.
    (alt,) = rec["indistinguishable"]
    assert rec["metric"] == "macro_f1" and alt["prompt"] == "p2" and alt["performance"] == pytest.approx((18 / 19 + 20 / 21) / 2)
    # p1 answers c0 to all: c1's F1 is 0 and c0's is 2 n0 / (n0 + 20) for the n0 c0 inputs
    # drawn, so macro-F1 n0 / (n0 + 20); n0 ~ Binomial(20, 1/2) has 2.5 % and 97.5 %
    # quantiles 6 and 14 (P(n0 <= 5) = 0.021, P(n0 <= 6) = 0.058): [6/26, 14/34]. Accuracy
    # resamples would give [0.3, 0.7].
    assert stats["p1"]["performance_interval"] == [pytest.approx(6 / 26), pytest.approx(14 / 34)]
    # Chance: the majority rate for accuracy, 1 / classes for macro-F1 (15 of 20 in c1 here).
    skewed = table_from_predictions([[1] * 15 + [0] * 5], [1] * 15 + [0] * 5)
    assert recommend.recommend_measured(skewed, resamples=50)[0]["chance"] == 0.75
    assert recommend.recommend_measured(skewed, metric="macro_f1", resamples=50)[0]["chance"] == 0.5


def test_a_measured_recommendation_needs_labels():
    with pytest.raises(ValueError, match=r"^recommend_measured needs a table with labels\.$"):
        recommend.recommend_measured(table_from_predictions([LABELS], None))


def test_the_seed_and_the_picks_are_the_same_resamples():
    # Given picks are used as given (their count is the report's resamples); a seed draws them.
    table = three_prompts()
    picks = recommend.resample_indices(20, 300, 5)
    by_picks, _ = recommend.recommend_measured(table, picks=picks)
    by_seed, _ = recommend.recommend_measured(table, resamples=300, seed=5)
    assert by_picks["resamples"] == 300 and by_picks["performance_interval"] == by_seed["performance_interval"]
    assert by_picks["stability"] == by_seed["stability"]
    default, _ = recommend.recommend_measured(table)
    assert default["seed"] == 0 and default["resamples"] == 1000 and default == recommend.recommend_measured(table, seed=0)[0]


# --- the label-free recommendation, whole ------------------------------------------------------

def share_of_c1(table: ScoreTable) -> np.ndarray:
    """A rule: each prompt's share of c1 answers."""
    return table.predictions.mean(axis=1)


def test_the_label_free_recommendation_field_by_field():
    # p0 answers c1 to every input, p1 never, p2 to half: p0's share is 1 on every resample.
    table = table_from_predictions([[1] * 20, [0] * 20, [1, 0] * 10], None)
    rec, stats = recommend.recommend_label_free(table, "c1-share", share_of_c1(table), rescore=share_of_c1,
                                                resamples=50, level=0.8, seed=4)
    assert rec == {"prompt": "p0", "rule": "c1-share", "basis": "label-free", "metric": None, "performance": None,
                   "performance_interval": None, "expected_performance": None, "tied": ["p0"], "chance": None,
                   "level": 0.8, "resamples": 50, "seed": 4, "indistinguishable": [], "label_free": None,
                   "stability": {"share": 1.0, "cover": ["p0"], "cover_level": 0.9, "estimated": True,
                                 "how": "share of resamples of the inputs in which c1-share, rerun, picks this prompt"}}
    assert stats["p0"] == {"performance_interval": None, "lead_interval": None, "indistinguishable": None,
                           "pick_share": 1.0, "top_class": "c1", "top_share": 1.0}
    assert stats["p2"] == {"performance_interval": None, "lead_interval": None, "indistinguishable": None,
                           "pick_share": 0.0, "top_class": "c0", "top_share": 0.5}
    # Not rerun: no share, no cover, no resamples, and the reason (or "not estimated").
    rec, stats = recommend.recommend_label_free(table, "c1-share", share_of_c1(table), reason="it asks the model")
    assert rec["resamples"] == 0 and rec["seed"] == 0 and rec["level"] == 0.95
    assert rec["stability"] == {"share": None, "cover": [], "cover_level": 0.9, "estimated": False, "how": "it asks the model"}
    assert stats["p0"]["pick_share"] is None
    rec, _ = recommend.recommend_label_free(table, "c1-share", share_of_c1(table))
    assert rec["stability"]["how"] == "not estimated"


def test_a_label_free_seed_draws_the_same_resamples_as_its_picks():
    # Five prompts whose c1 shares are close: which wins varies from resample to resample.
    rng = np.random.default_rng(1)
    table = table_from_predictions(rng.integers(0, 2, size=(5, 20)), None)
    picks = recommend.resample_indices(20, 200, 0)
    by_picks, _ = recommend.recommend_label_free(table, "r", share_of_c1(table), rescore=share_of_c1, picks=picks)
    by_seed, _ = recommend.recommend_label_free(table, "r", share_of_c1(table), rescore=share_of_c1, resamples=200)
    other, _ = recommend.recommend_label_free(table, "r", share_of_c1(table), rescore=share_of_c1, resamples=200, seed=1)
    assert by_picks["stability"] == by_seed["stability"] and by_seed["seed"] == 0
    assert other["stability"]["share"] != by_seed["stability"]["share"]  # the seed matters here


# --- decide: the label-free check and the warnings ---------------------------------------------

def test_with_labels_the_rule_is_checked_against_the_measurement():
    table = three_prompts()
    # mi's scores as given here (not what MI would compute) point at p1; globale's tie p0 and p2.
    scores = {"mi": np.array([0.0, 5.0, 1.0]), "globale": np.array([1.0, 0.0, 1.0])}
    out = decide(table, scores, rule="mi", resamples=500)
    rec = out["recommendation"]
    assert rec["prompt"] == "p0" and rec["basis"] == "labels" and rec["rule"] == "measured"
    assert rec["metric"] == "accuracy" and rec["performance"] == 1.0  # accuracy is the default metric
    assert rec["seed"] == 0 and rec["resamples"] == 500
    # p1 is 10 of 20 right, 0.5 behind p0 on every resample (both always answer the c0
    # inputs alike and p1 misses every c1 input drawn, about 10): measurably worse.
    assert rec["label_free"] == {"rule": "mi", "prompt": "p1", "tied": ["p1"], "performance": 0.5, "rate": 0.5,
                                 "agrees": False}
    dis = one_of(out, "label_free_disagrees")
    assert dis["rule"] == "mi" and dis["prompts"] == ["p1"] and dis["lead_interval"][0] > 0
    # p1 answers c0 to every input: collapsed, on this uncalibrated table.
    col = one_of(out, "collapsed")
    assert col["prompts"] == [{"prompt": "p1", "class": "c0", "share": 1.0}] and col["recommended"] is False
    assert "before_calibration" not in col
    # globale's tie, with the measured mean over the tied prompts: (1 + 0.95) / 2.
    tie = one_of(out, "tied_top")
    assert tie["method"] == "globale" and tie["prompts"] == ["p0", "p2"] and tie["expected_performance"] == pytest.approx(0.975)
    # No calibration: recorded as none, no prior, no "calibrated" note; p0 at 1.0 cannot be
    # beaten by CBM, so no hint. p0 is best (alone or tied with p2) on every resample.
    assert rec["calibration"] == "none" and rec["calibration_prior"] is None
    assert codes(out) == ["collapsed", "label_free_disagrees", "tied_top"]
    assert set(out["prompt_stats"]) == {"p0", "p1", "p2"} and out["prompt_stats"]["p2"]["indistinguishable"] is True
    assert set(out["agreement"]["methods"]) == {"mi", "globale"}


def test_decide_measures_with_its_metric_and_seed():
    # Macro-F1 of p2 (one c1 input answered c0): c1 F1 = 18/19, c0 F1 = 20/21; globale's tie of p0
    # and p2 is then worth (1 + (18/19 + 20/21) / 2) / 2, not accuracy's 0.975.
    out = decide(three_prompts(), {"globale": np.array([1.0, 0.0, 1.0])}, rule="mi", metric="macro_f1", seed=2, resamples=300)
    assert out["recommendation"]["metric"] == "macro_f1" and out["recommendation"]["seed"] == 2
    assert decide(three_prompts(), {}, rule="mi", level=0.8, resamples=100)["recommendation"]["level"] == 0.8
    assert one_of(out, "tied_top")["expected_performance"] == pytest.approx((1 + (18 / 19 + 20 / 21) / 2) / 2, rel=1e-12)
    # The seed's resamples: the same twice, and those of recommend_measured with that seed.
    again = decide(three_prompts(), {}, rule="mi", seed=2, resamples=300)["recommendation"]
    measured, _ = recommend.recommend_measured(three_prompts(), resamples=300, seed=2)
    assert again["stability"] == measured["stability"] and again["indistinguishable"] == measured["indistinguishable"]


def test_a_rule_that_picks_an_indistinguishable_prompt_agrees():
    out = decide(three_prompts(), {"mi": np.array([0.0, 1.0, 5.0])}, rule="mi", resamples=500)
    lf = out["recommendation"]["label_free"]
    assert lf["prompt"] == "p2" and lf["agrees"] is True and lf["performance"] == 0.95
    assert codes(out) == ["collapsed"]


def test_the_default_rule_follows_the_calibration_and_is_run_when_absent():
    assert recommend.default_rule() == "consensus" and recommend.default_rule("an unknown one") == "consensus"
    for calibration in ("none", "cbm"):  # no scores for the rule: decide runs the registered method
        out = decide(three_prompts(), {}, calibration=calibration, resamples=200)
        assert out["recommendation"]["label_free"]["rule"] == DEFAULT_RULES[calibration]
        assert out["recommendation"]["calibration"] == calibration
        assert out["agreement"] is None  # no method ran in the report


def test_a_calibrated_run_records_the_prior_and_judges_collapse_on_the_raw_table():
    raw = three_prompts()
    # The calibrated table: p1 no longer collapsed (it answers c1 to the first 5 inputs).
    calibrated = table_from_predictions([LABELS, [1] * 5 + [0] * 15, raw.predictions[2]], LABELS)
    priors = np.array([[0.3, 0.7], [0.6, 0.4], [0.5, 0.5]])
    out = decide(calibrated, {}, rule="mi", calibration="cbm", calibration_priors=priors, raw=raw, resamples=200)
    rec = out["recommendation"]
    assert rec["calibration"] == "cbm" and rec["prompt"] == "p0" and rec["calibration_prior"] == {"c0": 0.3, "c1": 0.7}
    col = one_of(out, "collapsed")
    assert col["prompts"][0]["prompt"] == "p1" and col["before_calibration"] == "cbm"
    cal = one_of(out, "calibrated")
    assert cal["calibration"] == "cbm" and cal["severity"] == "info"
    assert codes(out) == ["calibrated", "collapsed"]
    # Without the raw table the given one is judged, and the message names no calibration
    # before which it was judged; nor with a raw table and no calibration.
    assert "collapsed" not in codes(decide(calibrated, {}, rule="mi", calibration="cbm", resamples=200))
    col = one_of(decide(raw, {}, rule="mi", calibration="cbm", resamples=200), "collapsed")
    assert "before_calibration" not in col
    col = one_of(decide(raw, {}, rule="mi", raw=raw, resamples=200), "collapsed")
    assert "before_calibration" not in col


def biased_table() -> ScoreTable:
    """One prompt that leans on c0: p(c1) is 0.4 on the c1 inputs and 0.1 on the c0 inputs, so
    raw it answers c0 everywhere (accuracy 0.5: the share of c0 inputs drawn); CBM divides by the
    means, p(c1) 0.25 and p(c0) 0.75: 0.4/0.25 = 1.6 > 0.6/0.75 = 0.8 on c1 inputs and 0.1/0.25
    = 0.4 < 0.9/0.75 = 1.2 on c0 inputs, so calibrated it is right on all 20."""
    p1 = np.where(np.array(LABELS) == 1, 0.4, 0.1)
    probs = np.stack([1 - p1, p1], axis=-1)[None]
    return ScoreTable(prompt_ids=["lean"], class_names=["c0", "c1"], class_logprobs=np.log(probs), labels=np.array(LABELS))


def test_the_calibration_hint_is_given_only_to_an_uncalibrated_run():
    out = decide(biased_table(), {}, rule="mi", resamples=200)
    hint = one_of(out, "calibration_helps")
    # The raw interval is the share of c0 inputs in a resample of 20 (central 95 %: about
    # 0.3-0.7), well below the calibrated 1.0.
    raw = out["recommendation"]["performance_interval"]
    assert hint["prompt"] == "lean" and hint["performance"] == 1.0 and hint["raw_interval"] == raw and raw[1] < 0.8
    # A best at 0.5 on a balanced sample is chance, and it answers c0 to all 20 (it is the
    # recommended prompt, so the collapse warning says so).
    assert codes(out) == ["at_chance", "calibration_helps", "collapsed"]
    assert one_of(out, "collapsed")["recommended"] is True
    assert "calibration_helps" not in codes(decide(biased_table(), {}, rule="mi", calibration="cc", resamples=200))


# --- decide without labels ---------------------------------------------------------------------

def test_without_labels_a_given_rescorer_reruns_the_rule_and_its_tie_is_named_once():
    table = table_from_predictions([LABELS, [0] * 20, LABELS], None)
    flat = lambda t: [1, 0, 1]  # noqa: E731  ties p0 and p2 on every resample (a list of ints, as a plugin might)
    out = decide(table, {}, rule="mi", rescore=flat, resamples=100)
    rec = out["recommendation"]
    assert rec["basis"] == "label-free" and rec["rule"] == "mi" and rec["tied"] == ["p0", "p2"]
    assert rec["performance"] is None and rec["label_free"] is None and rec["resamples"] == 100 and rec["seed"] == 0
    # Each of the two tied prompts wins half of every resample: 0.5, the edge of "unstable".
    assert rec["stability"]["share"] == 0.5 and rec["stability"]["estimated"] is True
    tie = one_of(out, "tied_top")
    assert tie["method"] == "mi" and tie["prompts"] == ["p0", "p2"] and tie["expected_performance"] is None
    assert codes(out) == ["collapsed", "tied_top"]
    assert one_of(out, "collapsed")["recommended"] is False
    # The rule's level and seed reach the record; a collapsed pick is named as the recommended one.
    out = decide(table, {}, rule="mi", rescore=lambda t: [0.0, 1.0, 0.0], level=0.8, seed=3, resamples=100)
    rec = out["recommendation"]
    assert rec["prompt"] == "p1" and rec["level"] == 0.8 and rec["seed"] == 3
    assert one_of(out, "collapsed")["recommended"] is True
    # Calibrated without labels: collapse judged on the raw table, and said so.
    calibrated = table_from_predictions([LABELS, [1] * 5 + [0] * 15, LABELS], None)
    out = decide(calibrated, {}, rule="mi", rescore=flat, calibration="cbm", raw=table, resamples=100)
    assert one_of(out, "collapsed")["before_calibration"] == "cbm" and "calibrated" in codes(out)
    # The rule's scores in method_scores: still one tied_top warning, not two.
    out = decide(table, {"mi": np.array([1.0, 0.0, 1.0])}, rule="mi", rescore=flat, resamples=100)
    assert codes(out).count("tied_top") == 1


def test_without_labels_a_rule_that_cannot_be_rerun_needs_its_scores():
    table = table_from_predictions([LABELS, LABELS], None)
    with pytest.raises(ValueError, match="No scores for the rule 'fute-tupate'"):
        decide(table, {}, rule="fute-tupate")
    out = decide(table, {"fute-tupate": np.array([0.1, 0.9])}, rule="fute-tupate")
    rec = out["recommendation"]
    assert rec["prompt"] == "p1" and rec["stability"]["estimated"] is False and rec["resamples"] == 0
    assert rec["stability"]["how"] == FuteMethod.bootstrap  # the method's own reason
    assert codes(out) == ["stability_unknown"]


class ContextProbe(Selector):
    """Prefers p0 when the run's seed is 7, ties every prompt otherwise; warns when a section
    named ``probe`` says so."""

    selector_id = "context-probe"
    needs = frozenset({NEEDS_CLASS_LOGPROBS})
    description = "A test method that reads the run's context."

    def score(self, table, context):
        return np.array([1.0 if context.seed == 7 else 0.0] + [0.0] * (table.n_prompts - 1))

    @classmethod
    def report_warnings(cls, sections, method_id):
        return [{"code": "probe_said", "message": "the probe's section said so"}] if sections.get("probe") else []


@contextlib.contextmanager
def probe():
    class Plugin:
        @hookimpl
        def register_selectors(self, register, embedders):
            register(ContextProbe)

    with registered(Plugin(), name="context-probe"):
        yield


def test_decide_runs_the_rule_with_the_runs_context_and_collects_method_warnings():
    table = table_from_predictions([LABELS, [0] * 20, LABELS], None)  # p1 collapsed
    with probe():
        seeded = decide(table, {}, rule="context-probe", context=SelectionContext(seed=7), resamples=50)
        assert seeded["recommendation"]["tied"] == ["p0"] and seeded["recommendation"]["stability"]["share"] == 1.0
        assert decide(table, {}, rule="context-probe", resamples=50)["recommendation"]["tied"] == ["p0", "p1", "p2"]
        # Each method in method_scores adds its own warnings when the run's sections are given.
        scores = {"context-probe": np.array([1.0, 0.0, 0.0])}
        said = decide(table, scores, rule="context-probe", sections={"probe": True}, resamples=50)
        assert one_of(said, "probe_said")["message"] == "the probe's section said so"
        # Added to promptsel's own: p1's collapse, and the rule's instability (rerun without the
        # seed-7 context it ties all three prompts: each resample's pick is a third each).
        assert codes(said) == ["collapsed", "no_labels_unstable", "probe_said"]
        assert "probe_said" not in codes(decide(table, scores, rule="context-probe", resamples=50))
