"""The error cases issue 23 lists, each one actionable line before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.command_line import one_line_error, run


@pytest.fixture
def scores(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", class_logprobs=rng.normal(size=(3, 20, 2)), labels=rng.integers(0, 2, 20))
    (tmp_path / "report.json").write_text(json.dumps({"schema_version": 1, "prompts": []}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("argv", "needle"), [
    # numpy's advice to load pickled data unsafely is no help: say what the file is and what to use
    (["--scores", "report.json"], "it is JSON (a report?), not a .npz of arrays. --scores reads a .npz written by select --save-scores"),
    (["--scores", "s.npz", "--calibrate", "foo"], "'foo' is not one of 'none', 'cc', 'pmi', 'cbm'. See promptsel select -h."),
    # adding self-select to --methods would fail too: say it needs the model
    (["--scores", "s.npz", "--recommend", "self-select"], "--recommend self-select asks the model"),
    (["--scores", "s.npz", "-o", "/proc/report.md"], "Cannot write a report to /proc/report.md: /proc is not writable."),
    (["--scores", "s.npz", "--log-samples", "samples.csv"], "the sample log is JSON Lines. Name it samples.jsonl."),
])
def test_one_actionable_line(capsys, scores, argv, needle):
    code, _, err = run(capsys, "select", *argv, "--no-progress")
    assert code == 2
    assert needle in one_line_error(err)


def test_help_in_panels_without_a_bool_metavar(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = run(capsys, "select", "--help")
    assert code == 0
    panels = [line.split("─")[1].strip() for line in out.splitlines() if line.startswith("╭─")]
    assert {"Data", "Model", "Methods", "Output", "FUTE options"} <= set(panels)
    data = out[out.index("╭─ Data"):out.index("╭─", out.index("╭─ Data") + 1)]
    assert "--scores" in data and "--dataset" in data and "--json" not in data
    for command in (["select"], ["check"], ["embed"], ["diff"], ["cache", "clear"], ["plugins"], []):
        code, out, _ = run(capsys, *command, "--help")
        assert code == 0 and "<bool>" not in out, command


def test_probabilities_given_as_log_probs_are_refused(capsys, tmp_path):
    rng = np.random.default_rng(1)
    probs = rng.dirichlet([1, 1], size=(3, 20))
    np.savez(tmp_path / "p.npz", class_logprobs=probs)
    code, _, err = run(capsys, "select", "--scores", str(tmp_path / "p.npz"), "--no-progress")
    assert code == 2 and "holds probabilities" in one_line_error(err) and "np.log(probs)" in err
    np.savez(tmp_path / "lp.npz", class_logprobs=np.log(probs))  # the same, as log-probs: fine
    code, _, err = run(capsys, "select", "--scores", str(tmp_path / "lp.npz"), "--no-progress", "-q", "-m", "mi")
    assert code == 0, err
