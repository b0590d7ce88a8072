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

CHOSEN_BY_BASELINE = {"best": "the best original (unexpanded) prompt on the choosing part", "named": "named with --baseline",
                      "best_read": "the best original (unexpanded) prompt on the choosing inputs the search read it on"}


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


def split_rows(labels: np.ndarray | None, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(choosing, held-out) rows of examples with these labels (``stats.stratified_split``), or a
    one-line error when there are no labels or a part would be empty. ``--holdout`` cuts a
    table and an adaptive run its dataset with this, so one seed gives the same parts in both."""
    if labels is None:
        check_request(fraction, None, False)
    assert labels is not None
    choosing, heldout = stratified_split(labels, fraction, seed)
    if len(choosing) == 0 or len(heldout) == 0:
        raise UsageError(f"--holdout {fraction} of {len(labels)} examples leaves one part empty.",
                         hint="Use more examples or a fraction nearer 0.5.")
    return choosing, heldout


def split(table: ScoreTable, fraction: float, seed: int) -> Split:
    """The table's choosing and held-out parts (:func:`split_rows`)."""
    choosing, heldout = split_rows(table.labels, fraction, seed)
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
    baseline, how = choose_baseline(ids, choosing_perf, prompt_set, baseline)
    c, b = ids.index(chosen), ids.index(baseline)
    held = part.heldout
    return comparison(part.fraction, part.choosing.n_examples, held, heldout_predictions(held, priors)[[c, b]],
                      chosen=(chosen, float(choosing_perf[c])), baseline=(baseline, how, float(choosing_perf[b])),
                      metric=metric, resamples=resamples, seed=seed, level=level)


def choose_baseline(ids: Sequence[str], choosing_perf: Sequence[float], prompt_set: PromptSet | None,
                    baseline: str | None) -> tuple[str, str]:
    """(the baseline's id, how it was chosen): ``baseline`` if named, else the original prompt
    (one without a ``parent``) with the best choosing-part performance (a named one is checked by
    the caller, ``check_request``)."""
    if baseline is not None:
        return baseline, "named"
    originals = [i for i in range(len(ids)) if prompt_set is None or prompt_set.prompts[i].parent is None]
    best, _ = metrics.choose(np.asarray(choosing_perf, dtype=float)[originals])
    return ids[originals[best]], "best"


def comparison(fraction: float, n_choosing: int, held: ScoreTable, predictions: np.ndarray, *, chosen: tuple[str, float],
               baseline: tuple[str, str, float], metric: str, resamples: int, seed: int, level: float = LEVEL) -> dict[str, Any]:
    """The ``holdout`` block from the held-out predictions [2, n] of the chosen prompt and the
    baseline; ``chosen`` is (id, choosing-part performance), ``baseline`` (id, how, choosing-part
    performance)."""
    assert held.labels is not None
    perf, intervals, difference = paired_intervals(predictions, held.labels, metric=metric, n_classes=len(held.class_names),
                                                   resamples=resamples, level=level, seed=seed)
    (chosen_id, chosen_choosing), (baseline_id, how, baseline_choosing) = chosen, baseline
    return {
        "fraction": fraction,
        "metric": metric,
        "n_choosing": n_choosing,
        "n_heldout": held.n_examples,
        "heldout_ids": list(held.sample_ids),
        "chosen": chosen_id,
        "chosen_choosing": chosen_choosing,
        "chosen_heldout": float(perf[0]),
        "chosen_heldout_interval": [float(x) for x in intervals[0]],
        "baseline": {"prompt": baseline_id, "how": CHOSEN_BY_BASELINE[how], "choosing": baseline_choosing,
                     "heldout": float(perf[1]), "heldout_interval": [float(x) for x in intervals[1]]},
        "difference": float(perf[0] - perf[1]),
        "difference_interval": [float(x) for x in difference],
        "optimism": float(chosen_choosing - perf[0]),
        "level": level,
        "resamples": resamples,
        "seed": seed,
    }
