"""Calibration: hand-computed cases for cc, pmi and cbm, and UPS's published CBM result on the
fixture (its repository's results file for MI with CBM on OPT-2.7B / SST-2)."""

from __future__ import annotations

import numpy as np
import pytest

from promptsel.errors import UsageError
from promptsel.model import metrics
from promptsel.model.scoretable import ScoreTable
from promptsel.selection.calibration import CONTENT_FREE, calibrate, priors, reference_inputs
from tests.shared_data import shared_path


def table(probs, **kw) -> ScoreTable:
    probs = np.asarray(probs, dtype=float)
    return ScoreTable(prompt_ids=[f"p{i}" for i in range(probs.shape[0])],
                      class_names=[f"c{i}" for i in range(probs.shape[-1])], class_logprobs=np.log(probs), **kw)


def probs_of(t: ScoreTable) -> np.ndarray:
    return np.exp(t.class_logprobs)


def test_contextual_calibration_by_hand():
    # p(y|x) = [.8, .2], content-free prior [.9, .1]: [.8/.9, .2/.1] = [.889, 2] -> [.3077, .6923].
    t = table([[[0.8, 0.2]]])
    ref = np.log([[[0.9, 0.1], [0.9, 0.1], [0.9, 0.1]]])
    np.testing.assert_allclose(probs_of(calibrate(t, "cc", ref))[0, 0], [0.8 / 0.9 / (0.8 / 0.9 + 2), 2 / (0.8 / 0.9 + 2)])
    # The prior is the mean of the references' distributions in probability space:
    # [.9,.1], [.7,.3], [.8,.2] average to [.8,.2], which divides [.8,.2] down to uniform.
    ref = np.log([[[0.9, 0.1], [0.7, 0.3], [0.8, 0.2]]])
    np.testing.assert_allclose(probs_of(calibrate(t, "cc", ref))[0, 0], [0.5, 0.5])


def test_references_need_not_be_normalised():
    t = table([[[0.8, 0.2]]])
    normalised = np.log([[[0.9, 0.1]]])
    raw = normalised + np.log(0.01)  # label-word log-probs before renormalisation
    np.testing.assert_allclose(calibrate(t, "pmi", raw).class_logprobs, calibrate(t, "pmi", normalised).class_logprobs)


def test_pmi_is_log_difference_renormalised():
    # log p(y|x) - log p(y|premise), renormalised: here [.6,.3,.1] / [.2,.3,.5] -> [3, 1, .2] / 4.2.
    t = table([[[0.6, 0.3, 0.1]]])
    ref = np.log([[[0.2, 0.3, 0.5]]])
    np.testing.assert_allclose(probs_of(calibrate(t, "pmi", ref))[0, 0], np.array([3, 1, 0.2]) / 4.2)
    # ... which is cc with the single empty reference.
    assert reference_inputs("pmi", ["text"]) == [{"text": ""}]


def test_cbm_by_hand():
    # Inputs [.8,.2] and [.6,.4]: mean [.7,.3]; [.8/.7, .2/.3] -> [.6316, .3684] and
    # [.6/.7, .4/.3] -> [.3913, .6087]; the second input's prediction flips.
    t = table([[[0.8, 0.2], [0.6, 0.4]]])
    got = probs_of(calibrate(t, "cbm"))[0]
    a = np.array([0.8 / 0.7, 0.2 / 0.3])
    b = np.array([0.6 / 0.7, 0.4 / 0.3])
    np.testing.assert_allclose(got, [a / a.sum(), b / b.sum()])
    np.testing.assert_allclose(priors(t, "cbm")[0], [0.7, 0.3])


def test_each_prompt_has_its_own_prior():
    t = table([[[0.8, 0.2]], [[0.8, 0.2]]])
    ref = np.log([[[0.8, 0.2]], [[0.5, 0.5]]])
    got = probs_of(calibrate(t, "pmi", ref))
    np.testing.assert_allclose(got[0, 0], [0.5, 0.5])
    np.testing.assert_allclose(got[1, 0], [0.8, 0.2])


def test_none_and_everything_else_unchanged():
    t = table([[[0.8, 0.2], [0.3, 0.7]]], prompt_nll=np.array([[1.0, 2.0]]), labels=np.array([0, 1]))
    assert calibrate(t, "none") is t
    before = t.class_logprobs.copy()
    out = calibrate(t, "cbm")
    assert out is not t and out.labels is t.labels and out.prompt_nll is t.prompt_nll
    np.testing.assert_array_equal(t.class_logprobs, before)  # the input table is untouched


def test_reference_inputs():
    assert reference_inputs("cc", ["premise", "hypothesis"]) == [
        {"premise": "N/A", "hypothesis": "N/A"}, {"premise": "", "hypothesis": ""}, {"premise": "[MASK]", "hypothesis": "[MASK]"}]
    assert CONTENT_FREE == ("N/A", "", "[MASK]")
    assert reference_inputs("cbm", ["text"]) == reference_inputs("none", ["text"]) == []


def test_bad_input():
    t = table([[[0.8, 0.2]]])
    with pytest.raises(UsageError, match="Unknown calibration"):
        calibrate(t, "platt")
    with pytest.raises(UsageError, match="needs the prompts' scores"):
        calibrate(t, "cc")
    with pytest.raises(UsageError, match=r"shape \[1, 3, 2\]"):
        calibrate(t, "cc", np.zeros((1, 1, 2)))
    with pytest.raises(UsageError, match="NaN"):
        calibrate(t, "pmi", np.full((1, 1, 2), np.nan))


@pytest.fixture(scope="module")
def ups_table():
    with np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz")) as d:
        return ScoreTable(prompt_ids=[str(p) for p in d["prompt"]], class_names=["negative", "positive"],
                          class_logprobs=d["log_prob"], labels=d["targets"])


def test_cbm_reproduces_ups_published_result(ups_table):
    # soheeyang/unified-prompt-selection, results/...opt-2.7b.../method=MI__...cali_type=cbm...json:
    # MI on CBM-calibrated probabilities selects prompt_02, whose accuracy is 0.5905963302752294
    # uncalibrated ("X") and 0.9185779816513762 = 801/872 calibrated ("A").
    from promptsel.selector import SelectionContext
    from promptsel_builtin.baselines import MutualInformation

    calibrated = calibrate(ups_table, "cbm")
    acc = metrics.performance(calibrated.predictions, calibrated.labels)
    before = metrics.performance(ups_table.predictions, ups_table.labels)
    assert before[2] == pytest.approx(0.5905963302752294, abs=1e-15)
    assert acc[2] == pytest.approx(0.9185779816513762, abs=1e-15)
    chosen, _ = metrics.choose(MutualInformation().score(calibrated, SelectionContext()))
    assert calibrated.prompt_ids[chosen] == "prompt_02"


@pytest.mark.option("select", "--calibrate", "--log-samples", "--scores")
def test_select_calibrates_before_the_methods_and_the_sample_log(capsys, tmp_path):
    """Through the command line: with ``--calibrate cbm`` every method reads the calibrated table
    and ``--log-samples`` writes calibrated probabilities, both computed here by hand:
    q(x) = p(x) / mean_x p(x), renormalised over the classes; MI = H(mean_x q) - mean_x H(q(x))."""
    import json

    from tests.command_line import run

    logprobs = np.log(np.array([
        [[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.7, 0.3]],  # prompt 0 leans to class 0
        [[0.5, 0.5], [0.2, 0.8], [0.3, 0.7], [0.4, 0.6]],
    ]))
    scores = tmp_path / "s.npz"
    np.savez(scores, class_logprobs=logprobs, labels=np.array([0, 1, 1, 0]))
    samples = tmp_path / "samples.jsonl"
    code, out, err = run(capsys, "select", "--scores", str(scores), "--calibrate", "cbm", "--methods", "mi",
                         "--log-samples", str(samples), "--json", "-q")
    assert code == 0, err
    p = np.exp(logprobs)
    q = p / p.mean(axis=1, keepdims=True)
    q /= q.sum(axis=2, keepdims=True)

    def entropy(v):
        return -(v * np.log(v)).sum(axis=-1)

    mi = entropy(q.mean(axis=1)) - entropy(q).mean(axis=1)
    report = json.loads(out)
    assert [e["scores"]["mi"] for e in report["prompts"]] == pytest.approx(mi)
    raw_mi = entropy(p.mean(axis=1)) - entropy(p).mean(axis=1)
    assert not np.allclose(mi, raw_mi)  # the check can tell the two orders apart
    lines = [json.loads(line) for line in samples.read_text().splitlines()]
    ids = [e["id"] for e in report["prompts"]]
    classes = list(lines[0]["predictions"][ids[0]]["probs"])
    logged = np.array([[[line["predictions"][pid]["probs"][c] for c in classes] for line in lines] for pid in ids])
    assert logged == pytest.approx(q)


def test_priors_are_uniform_without_calibration_and_the_references_mean_distribution_with_cc():
    """The priors the report shows, by hand: ``none`` 1/C for every prompt and class; ``cc`` the
    mean over the content-free inputs of each one's class distribution (its log-probs need not
    be normalised: only the ratios across classes count). Mutation testing found them unchecked."""
    lp = np.log(np.full((2, 4, 3), 1 / 3))
    t = ScoreTable(prompt_ids=["a", "b"], class_names=["x", "y", "z"], class_logprobs=lp, prompt_nll=np.zeros((2, 4)),
                   labels=np.zeros(4, dtype=int))
    np.testing.assert_array_equal(priors(t, "none"), np.full((2, 3), 1 / 3))
    # prompt a: references (1, 1, 2)/4, (2, 1, 1)/4 and (1, 0, 3)/4 (given as unnormalised 2x, 3x, 1x)
    # prompt b: (1, 2, 1)/4 three times
    probs = np.array([[[2, 2, 4], [6, 3, 3], [1, 1e-300, 3]], [[1, 2, 1], [1, 2, 1], [1, 2, 1]]], dtype=float)
    want = np.array([[(1 / 4 + 2 / 4 + 1 / 4) / 3, (1 / 4 + 1 / 4 + 0) / 3, (2 / 4 + 1 / 4 + 3 / 4) / 3],
                     [1 / 4, 2 / 4, 1 / 4]])
    np.testing.assert_allclose(priors(t, "cc", np.log(probs)), want, atol=1e-12)
    with pytest.raises(UsageError, match="'pmi' needs the prompts' scores on its content-free inputs"):
        priors(t, "pmi")


def test_cc_reads_unnormalised_references_by_their_ratios_and_names_a_wrong_shape():
    """``calibrate`` with references given unnormalised: each reference input's class ratios
    count, not its scale (mutation testing found the per-input normalisation unchecked)."""
    t = table([[[0.5, 0.5], [0.8, 0.2]]])
    # three references (cc): (1, 1)/2 given x4, (3, 1)/4 given x1, (1, 3)/4 given x100 -> prior
    # ((1/2 + 3/4 + 1/4)/3, (1/2 + 1/4 + 3/4)/3) = (1/2, 1/2): uniform, the table is unchanged
    ref = np.log(np.array([[[4, 4], [0.75, 0.25], [25, 75]]], dtype=float))
    np.testing.assert_allclose(probs_of(calibrate(t, "cc", ref))[0], [[0.5, 0.5], [0.8, 0.2]], atol=1e-12)
    # (3, 1)/4 three times at three scales: prior (3/4, 1/4); [.5/.75, .5/.25] -> [1/4, 3/4]
    ref = np.log(np.array([[[3, 1], [30, 10], [0.3, 0.1]]], dtype=float))
    np.testing.assert_allclose(probs_of(calibrate(t, "cc", ref))[0][0], [0.25, 0.75], atol=1e-12)
    # 1 prompt, 2 inputs, 2 classes: the shape asked for names the prompts' count, not the inputs'
    with pytest.raises(UsageError) as exc:
        calibrate(table([[[0.5, 0.5], [0.8, 0.2]], [[0.5, 0.5], [0.8, 0.2]], [[0.5, 0.5], [0.8, 0.2]]]), "pmi", np.zeros((2, 1, 2)))
    assert exc.value.message == "Calibration 'pmi' needs reference log-probs of shape [3, 1, 2], got (2, 1, 2)."


def test_an_unknown_calibration_lists_the_known_ones():
    from promptsel.selection.calibration import check

    with pytest.raises(UsageError) as exc:
        check("platt")
    assert exc.value.message == "Unknown calibration 'platt'." and exc.value.hint == "Use one of: none, cc, pmi, cbm."
