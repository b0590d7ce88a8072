"""The run record in the JSON report, and ``--log-samples``: what ran, when, from which revision,
and what every prompt predicted for every example."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime

import numpy as np
from scipy.special import softmax

from promptsel.selection.record import redact_url_credentials
from tests.command_line import run
from tests.paths import ROOT
from tests.shared_data import shared_path


def test_the_report_records_time_command_and_revision(capsys, tmp_path):
    d = np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz"))
    scores = tmp_path / "s.npz"
    np.savez(scores, class_logprobs=d["log_prob"][:3], labels=d["targets"])
    code, out, err = run(capsys, "select", "--scores", str(scores), "--methods", "mi", "--json", "-q")
    assert code == 0, err
    record = json.loads(out)["run"]
    assert datetime.fromisoformat(record["timestamp"]).tzinfo is not None
    assert record["command"] == f"promptsel select --scores {scores} --methods mi --json -q"
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a checkout: the record names its commit
        assert record["promptsel_revision"]["commit"] == head.stdout.strip()
    else:
        assert record["promptsel_revision"] is None


def test_credentials_in_a_url_never_reach_the_record():
    assert redact_url_credentials("select -M base_url=https://user:s3cret@gpu:8000/v1 -M x=1") == (
        "select -M base_url=https://***@gpu:8000/v1 -M x=1")
    assert redact_url_credentials("http://gpu:8000/v1") == "http://gpu:8000/v1"


def test_log_samples_writes_each_prompts_prediction_for_each_example(capsys, tmp_path):
    d = np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz"))
    scores = tmp_path / "s.npz"
    np.savez(scores, class_logprobs=d["log_prob"][:4], labels=d["targets"], prompt_ids=d["prompt"][:4],
             class_names=np.array(["negative", "positive"]))
    log = tmp_path / "logs" / "samples.jsonl"
    code, _, err = run(capsys, "select", "--scores", str(scores), "--methods", "mi", "--log-samples", str(log), "-q")
    assert code == 0, err
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == len(d["targets"])
    for n in (0, 17, len(lines) - 1):  # the probabilities are the fixture's log-probs, normalised here independently
        line = lines[n]
        assert line["id"] == str(n) and line["input"] is None
        assert line["label"] == ["negative", "positive"][int(d["targets"][n])]
        for p, pid in enumerate(d["prompt"][:4]):
            expected = softmax(d["log_prob"][p, n].astype(np.float64))
            got = line["predictions"][str(pid)]
            np.testing.assert_allclose([got["probs"]["negative"], got["probs"]["positive"]], expected, rtol=1e-9)
            assert got["class"] == ["negative", "positive"][int(np.argmax(expected))]


def test_sample_log_carries_a_correct_flag_and_the_input_hash(capsys, tmp_path):
    """lm-eval's per-sample fields: whether each prompt's answer is the gold label, and a hash
    of the example (of its input as canonical JSON; none from a scores file, which has no text)."""
    import hashlib

    d = np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz"))
    scores = tmp_path / "s.npz"
    np.savez(scores, class_logprobs=d["log_prob"][:3], labels=d["targets"], prompt_ids=d["prompt"][:3])
    log = tmp_path / "samples.jsonl"
    code, _, err = run(capsys, "select", "--scores", str(scores), "--methods", "mi", "--log-samples", str(log), "-q")
    assert code == 0, err
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    for n in (0, 5, 400):
        for p, pid in enumerate(d["prompt"][:3]):
            right = int(np.argmax(d["log_prob"][p, n])) == int(d["targets"][n])
            assert lines[n]["predictions"][str(pid)]["correct"] is right
        assert lines[n]["input_sha256"] is None
    from promptsel.model.data import Dataset
    from promptsel.model.scoretable import ScoreTable
    from promptsel.selection.samples import sample_lines

    table = ScoreTable(prompt_ids=["a"], class_names=["no", "yes"], class_logprobs=np.log([[[0.2, 0.8]]]), sample_ids=["x"])
    data = Dataset(name="t", split="test", fields=("text",), classes=("no", "yes"), examples=[{"text": "héllo"}], ids=["x"], source="t")
    (line,) = sample_lines(table, data)
    assert line["predictions"]["a"]["correct"] is None  # no labels
    assert line["input_sha256"] == hashlib.sha256('{"text": "héllo"}'.encode()).hexdigest()


def test_sample_log_must_be_named_jsonl(capsys, tmp_path):
    from tests.command_line import one_line_error

    d = np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz"))
    scores = tmp_path / "s.npz"
    np.savez(scores, class_logprobs=d["log_prob"][:2], labels=d["targets"])
    code, _, err = run(capsys, "select", "--scores", str(scores), "--log-samples", str(tmp_path / "samples.csv"), "-q")
    assert code == 2 and "Name it samples.jsonl" in one_line_error(err)
    assert not (tmp_path / "samples.csv").exists()
