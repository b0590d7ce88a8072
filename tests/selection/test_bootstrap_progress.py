"""A label-free run reruns its rule on every resample; the progress it reports counts them
(issue 23: 25 s with nothing on the screen)."""

from __future__ import annotations

import numpy as np

from promptsel.model.progress import Progress
from promptsel.model.request import SelectRequest
from promptsel.selection.run import run_select


class Recorder(Progress):
    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []
        self.advanced = 0
        self.done_calls = 0

    def start(self, label: str, total: int) -> None:
        self.started.append((label, total))

    def advance(self, n: int = 1) -> None:
        self.advanced += n

    def done(self) -> None:
        self.done_calls += 1


def scores_file(tmp_path, labels: bool):
    rng = np.random.default_rng(3)
    extra = {"labels": rng.integers(0, 2, 40)} if labels else {}
    path = tmp_path / "s.npz"
    np.savez(path, class_logprobs=rng.normal(size=(4, 40, 2)), **extra)
    return path


def test_label_free_bootstrap_reports_one_step_per_resample(tmp_path):
    progress = Recorder()
    run_select(SelectRequest(scores=scores_file(tmp_path, labels=False), methods=["mi", "consensus"], bootstrap=30), progress=progress)
    stability = [s for s in progress.started if s[0].startswith("Stability of consensus")]
    assert stability == [("Stability of consensus: reruns on resampled inputs", 30)]
    assert progress.advanced == 30 and progress.done_calls >= 1


def test_a_labelled_run_reruns_nothing_and_shows_no_such_progress(tmp_path):
    progress = Recorder()
    run_select(SelectRequest(scores=scores_file(tmp_path, labels=True), methods=["mi", "consensus"], bootstrap=30), progress=progress)
    assert not [s for s in progress.started if s[0].startswith("Stability")]
