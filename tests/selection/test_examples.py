"""The examples behind the choice (issue 23), against counts made directly from the fixture's
log-probs: where the recommended prompt and the runner-up answer differently, who is right
there, and the recommended prompt's confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest

from promptsel.model.request import SelectRequest
from promptsel.selection.run import run_select
from tests.shared_data import shared_path


def test_disagreements_and_confusion_match_a_direct_count(tmp_path):
    with np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz")) as d:
        lp, y, ids = d["log_prob"][:13], d["targets"], [str(x) for x in d["prompt"][:13]]
    path = tmp_path / "s.npz"
    np.savez(path, class_logprobs=lp, labels=y, prompt_ids=np.array(ids))
    report, _ = run_select(SelectRequest(scores=path, methods=["mi", "consensus"], bootstrap=50))
    found = report["examples"]
    pred = lp.argmax(-1)
    acc = (pred == y).mean(axis=1)
    best, runner = (int(i) for i in np.argsort(-acc)[:2])
    assert found["recommended"] == ids[best] == report["recommendation"]["prompt"]
    rival = found["rivals"][0]
    assert rival["prompt"] == ids[runner] and rival["role"] == "runner-up"
    apart = [n for n in range(len(y)) if pred[best, n] != pred[runner, n]]
    assert rival["disagree"] == len(apart)
    assert rival["recommended_right"] == sum(pred[best, n] == y[n] for n in apart)
    assert rival["rival_right"] == sum(pred[runner, n] == y[n] for n in apart)
    # Two classes: where they disagree exactly one of them is right.
    assert rival["recommended_right"] + rival["rival_right"] == len(apart)
    matrix = [[sum(1 for n in range(len(y)) if y[n] == g and pred[best, n] == p) for p in range(2)] for g in range(2)]
    assert found["confusion"]["matrix"] == matrix
    assert found["confusion"]["class_accuracy"] == [matrix[0][0] / sum(matrix[0]), matrix[1][1] / sum(matrix[1])]
    # The listed examples are the first disagreements, each with both prompts' answer and probability.
    assert [e["sample_id"] for e in found["examples"]] == [str(n) for n in apart[:20]]
    first = found["examples"][0]
    n = apart[0]
    assert first["gold"] == f"class_{y[n]}"
    p = np.exp(lp[best, n] - np.logaddexp.reduce(lp[best, n]))
    # (the fixture holds float32 log-probs; the table normalises them in float64)
    assert first["predictions"][ids[best]] == {"class": f"class_{pred[best, n]}", "probability": pytest.approx(float(p.max()), rel=1e-5)}


def test_collapse_under_calibration_says_it_was_judged_before(tmp_path):
    """prompt_00 and prompt_01 answer class_1 for 96 % and 97 % of the raw inputs; CBM rebalances
    them on this sample, so the warning counts the raw table and must say so."""
    with np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz")) as d:
        lp, y = d["log_prob"][:13], d["targets"]
    path = tmp_path / "s.npz"
    np.savez(path, class_logprobs=lp, labels=y)
    raw_share = (lp[0].argmax(-1) == 1).mean()
    assert raw_share >= 0.95
    for calibrate, said in (("cbm", True), ("none", False)):
        report, _ = run_select(SelectRequest(scores=path, methods=["mi"], bootstrap=50, calibrate=calibrate))
        (collapsed,) = [w for w in report["warnings"] if w["code"] == "collapsed"]
        assert ("before calibration (cbm)" in collapsed["message"]) is said
        assert f"prompt_00 (class_1 {raw_share:.0%})" in collapsed["message"]
