"""``select --adaptive --holdout FRACTION``: search on one part of the examples, confirm on the other.

The examples are split before anything is scored, by the split ``--holdout`` uses without
``--adaptive`` (``holdout.split_rows``: seeded, class-stratified), so one seed gives the same
two parts with and without ``--adaptive``. The adaptive rounds read the choosing part only (its
own seeded order, its cells); the held-out rows are never asked for until the search has stopped.
Then only two prompts are scored on the held-out part: the chosen one (the search's leader) and
the baseline (``--baseline``, or the best original prompt, one without a ``parent``, by its
accuracy over the inputs the search read it on), in one pass through the scorer and its cache,
or from the saved table in a replay. Those cells are counted with the rounds' cells.

The ``holdout`` block is then what a run without ``--adaptive`` reports, computed on those
held-out cells. Its ``optimism`` (the chosen prompt's accuracy on the inputs the search read,
minus its held-out accuracy) mixes two effects: the winner's curse, and the adaptive stop (the
search stops when the leader looks surely best, which tends to be when it has been lucky).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model.scoretable import ScoreTable
from .adaptive import Outcome
from .holdout import check_request, choose_baseline, comparison

#: What the ``optimism`` of an adaptive run measures (the report's ``holdout.optimism_meaning``).
OPTIMISM_MEANING = ("the chosen prompt's accuracy on the inputs the search read minus its held-out accuracy: the winner's "
                    "curse and the adaptive stop together (the search stops when the leader looks surely best)")


@dataclass
class Sample:
    """The whole sample, both parts: what the report and a saved table name."""

    ids: list[str]
    classes: list[str]
    labels: np.ndarray
    sample_ids: list[str]


@dataclass
class Confirmed:
    """The held-out pass: its report block and the cells it scored."""

    block: dict[str, Any]
    #: The prompts scored on the held-out part (the chosen one, then the baseline if another).
    prompts: list[int]
    rows: np.ndarray
    class_logprobs: np.ndarray  # [len(prompts), len(rows), C]
    prompt_nll: np.ndarray | None

    @property
    def cells(self) -> int:
        return len(self.prompts) * len(self.rows)


def confirm(source: Any, outcome: Outcome, sample: Sample, rows: np.ndarray, *, prompt_set: Any, fraction: float,
            baseline: str | None, resamples: int, seed: int) -> Confirmed:
    """Score the chosen prompt and the baseline on the held-out ``rows`` of the whole sample
    (``source`` serves the whole sample) and compare them there."""
    ids = sample.ids
    check_request(fraction, baseline, True, ids)
    chosen = outcome.decision.leader
    base_id, how = choose_baseline(ids, outcome.means, prompt_set, baseline)
    base = ids.index(base_id)
    how = "best_read" if how == "best" else how  # each prompt's accuracy is over its own inputs
    prompts = [chosen] if base == chosen else [chosen, base]
    lp, nll = source.score(np.asarray(prompts), rows)
    lp = np.asarray(lp, dtype=np.float64)
    held = ScoreTable(prompt_ids=[ids[p] for p in prompts], class_names=sample.classes, class_logprobs=lp,
                      labels=sample.labels[rows], sample_ids=[sample.sample_ids[i] for i in rows])
    predictions = held.predictions[[0, prompts.index(base)]]
    block = comparison(fraction, int(outcome.scored.shape[1]), held, predictions,
                       chosen=(ids[chosen], float(outcome.means[chosen])), baseline=(base_id, how, float(outcome.means[base])),
                       metric="accuracy", resamples=resamples, seed=seed)
    block["optimism_meaning"] = OPTIMISM_MEANING
    return Confirmed(block, prompts, np.asarray(rows), lp, None if nll is None else np.asarray(nll, dtype=np.float64))


def whole_table(read: ScoreTable, confirmed: Confirmed, choosing: np.ndarray, sample: Sample) -> ScoreTable:
    """Every cell the run scored, on the whole sample (``--save-scores``): the rounds' cells on the
    choosing rows and the held-out pass's, NaN elsewhere, so that a replay with the same settings
    reads exactly these."""
    n_prompts, n_classes = read.n_prompts, len(read.class_names)
    n = len(sample.sample_ids)
    lp = np.zeros((n_prompts, n, n_classes))
    scored = np.zeros((n_prompts, n), dtype=bool)
    lp[:, choosing], scored[:, choosing] = read.class_logprobs, read.scored
    held = np.ix_(confirmed.prompts, confirmed.rows)
    lp[held], scored[held] = confirmed.class_logprobs, True
    nll = None
    if read.prompt_nll is not None and confirmed.prompt_nll is not None:
        nll = np.zeros((n_prompts, n))
        nll[:, choosing], nll[held] = read.prompt_nll, confirmed.prompt_nll
    return ScoreTable(prompt_ids=read.prompt_ids, class_names=read.class_names, class_logprobs=lp, prompt_nll=nll,
                      labels=sample.labels, sample_ids=list(sample.sample_ids), scored=scored)
