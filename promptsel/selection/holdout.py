"""``select --holdout FRACTION``: choose on one part of the examples, confirm on the other.

Choosing the best of many noisy estimates overstates the winner (the winner's curse), the more
so the more prompts compete. With ``--holdout``, a seeded, class-stratified share of the
examples is held out before anything is chosen; every method, the recommendation and every
number outside the report's ``holdout`` block read only the choosing part. The block then
measures, on the held-out examples alone:

* the chosen (recommended) prompt's performance, with its bootstrap interval;
* the baseline's: the best original prompt (one without a ``parent``) on the choosing part, or the
  prompt ``--baseline`` names, on the same examples, and the paired interval of the difference;
* ``optimism``: the chosen prompt's performance on the choosing part minus its held-out one, how
  much choosing overstated it.

A calibration is estimated on the choosing part and applied unchanged to the held-out part (a
prior learnt on held-out inputs would let them into the choice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UsageError
from ..model import metrics
from ..model.prompts import PromptSet
from ..model.scoretable import ScoreTable
from ..model.stats import LEVEL, paired_intervals, stratified_split, subset_table

CHOSEN_BY_BASELINE = {"best": "the best original (unexpanded) prompt on the choosing part", "named": "named with --baseline"}


@dataclass
class Split:
    """A table cut into its choosing and held-out parts."""

    fraction: float
    choosing: ScoreTable
    heldout: ScoreTable
    #: The choosing part's rows in the whole table (to cut the dataset the same way).
    choosing_rows: np.ndarray


def check_request(fraction: float | None, baseline: str | None, has_labels: bool | None, ids: Sequence[str] | None = None) -> None:
    """Before any scoring: ``--baseline`` needs ``--holdout`` and names a prompt of the run
    (``ids``, when known), and ``--holdout`` needs labels."""
    if baseline is not None and fraction is None:
        raise UsageError("--baseline names the prompt --holdout compares with; it means nothing without --holdout.",
                         hint="Add --holdout FRACTION, or leave --baseline out.")
    if baseline is not None and ids is not None and baseline not in ids:
        raise UsageError(f"--baseline {baseline!r} is not a prompt of this run.", hint=f"Its prompts include: {', '.join(ids[:8])}.")
    if fraction is not None and has_labels is False:
        raise UsageError("--holdout measures the chosen prompt on held-out labelled examples, and these examples have no labels.",
                         hint="Use a labelled split, or leave --holdout out.")


def split(table: ScoreTable, fraction: float, seed: int) -> Split:
    """The table's choosing and held-out parts (``stats.stratified_split``)."""
    if table.labels is None:
        check_request(fraction, None, False)
    assert table.labels is not None
    choosing, heldout = stratified_split(table.labels, fraction, seed)
    if len(choosing) == 0 or len(heldout) == 0:
        raise UsageError(f"--holdout {fraction} of {table.n_examples} examples leaves one part empty.",
                         hint="Use more examples or a fraction nearer 0.5.")
    return Split(fraction, subset_table(table, choosing), subset_table(table, heldout), choosing)


def heldout_predictions(table: ScoreTable, priors: np.ndarray | None) -> np.ndarray:
    """[P, N] predicted classes of the held-out table, with the choosing part's calibration priors
    [P, C] divided out (none: the raw argmax)."""
    if priors is None:
        return table.predictions
    return np.argmax(table.class_logprobs - np.log(np.asarray(priors))[:, None, :], axis=-1)


def holdout_report(part: Split, choosing_perf: np.ndarray, priors: np.ndarray | None, prompt_set: PromptSet | None, *,
                   chosen: str, baseline: str | None, metric: str, resamples: int, seed: int, level: float = LEVEL) -> dict[str, Any]:
    """The report's ``holdout`` block (the module docstring says what each number is)."""
    ids = part.choosing.prompt_ids
    check_request(part.fraction, baseline, True, ids)
    originals = [i for i, pid in enumerate(ids) if prompt_set is None or prompt_set.prompts[i].parent is None]
    if baseline is None:
        best, _ = metrics.choose(np.asarray(choosing_perf)[originals])
        baseline, how = ids[originals[best]], "best"
    else:
        how = "named"
    c, b = ids.index(chosen), ids.index(baseline)
    held = part.heldout
    assert held.labels is not None
    predictions = heldout_predictions(held, priors)[[c, b]]
    perf, intervals, difference = paired_intervals(predictions, held.labels, metric=metric, n_classes=len(held.class_names),
                                                   resamples=resamples, level=level, seed=seed)
    return {
        "fraction": part.fraction,
        "metric": metric,
        "n_choosing": part.choosing.n_examples,
        "n_heldout": held.n_examples,
        "heldout_ids": list(held.sample_ids),
        "chosen": chosen,
        "chosen_choosing": float(choosing_perf[c]),
        "chosen_heldout": float(perf[0]),
        "chosen_heldout_interval": [float(x) for x in intervals[0]],
        "baseline": {"prompt": baseline, "how": CHOSEN_BY_BASELINE[how], "choosing": float(choosing_perf[b]),
                     "heldout": float(perf[1]), "heldout_interval": [float(x) for x in intervals[1]]},
        "difference": float(perf[0] - perf[1]),
        "difference_interval": [float(x) for x in difference],
        "optimism": float(choosing_perf[c] - perf[0]),
        "level": level,
        "resamples": resamples,
        "seed": seed,
    }
