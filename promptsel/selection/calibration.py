"""Calibration of a ScoreTable's class probabilities before any method reads them (``--calibrate``).

A prompt often prefers one label word whatever the input (Zhao et al. 2021, "Calibrate Before
Use"). Each option divides that prior out, per prompt, and renormalises over the classes:

* ``cc``, contextual calibration (Zhao et al. 2021): the prior is the prompt's class distribution
  on content-free inputs, every input field set to ``"N/A"``, ``""`` and ``"[MASK]"`` in turn,
  averaged in probability space: p_cal(y|x) ∝ p(y|x) / mean_r p(y|r).
* ``pmi``, domain-conditional PMI as Yang et al.'s UPS implements it (after Holtzman et al. 2021):
  the "domain premise" is the prompt rendered with empty inputs, and the score is
  log p(y|x) − log p(y|premise), renormalised. Mathematically this is ``cc`` with the single
  reference ``""``: dividing probabilities and subtracting log-probabilities differ only by a
  per-input constant, which renormalisation removes. It is kept as its own name because UPS
  reports it as one; it costs one extra scoring per prompt instead of three.
* ``cbm``, calibration by marginalisation (UPS): the prior is the prompt's mean class
  distribution over the evaluation inputs themselves, p_cal(y|x) ∝ p(y|x) / mean_x' p(y|x').
  It needs no extra text (it is computable from a ``--scores`` file), but it uses the whole
  sample, so one input's calibrated scores depend on the others.
* ``none``: the table as scored.

The scoring layer sends the extra texts: ``reference_inputs(kind, fields)`` gives the inputs to
render through every prompt exactly as the evaluation inputs are rendered (same template, chat
formatting, label words, aggregation; CoT prompts included), and the resulting class log-probs,
[P, R, C], go to ``calibrate``. Cache them like any scoring.

Normalisation: UPS offers ``mean`` (divide by the sum) and ``softmax`` (a softmax over the
calibrated *probabilities*, which flattens them towards uniform). Only the first is a
probability distribution proportional to p / prior, so that is what this module does; the
argmax, hence accuracy, is the same under both.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Sequence

import numpy as np
from scipy.special import log_softmax, logsumexp

from ..errors import UsageError
from ..model.request import Calibration
from ..model.scoretable import ScoreTable

CALIBRATIONS: tuple[str, ...] = typing.get_args(Calibration)
#: Zhao et al.'s content-free strings, in the order UPS scores them.
CONTENT_FREE = ("N/A", "", "[MASK]")
#: Which content-free strings each calibration needs (``cbm`` and ``none`` need none).
REFERENCES: dict[str, tuple[str, ...]] = {"none": (), "cbm": (), "cc": CONTENT_FREE, "pmi": ("",)}


def check(kind: str) -> str:
    if kind not in CALIBRATIONS:
        raise UsageError(f"Unknown calibration {kind!r}.", hint=f"Use one of: {', '.join(CALIBRATIONS)}.")
    return kind


def reference_inputs(kind: str, fields: Sequence[str]) -> list[dict[str, str]]:
    """The content-free inputs ``kind`` needs, as examples of the dataset's input ``fields``
    (every field set to the same string, as UPS does for multi-field tasks such as NLI).
    Render each through every prompt like an evaluation input and score its label words."""
    return [dict.fromkeys(fields, text) for text in REFERENCES[check(kind)]]


def calibrate(table: ScoreTable, kind: str, reference_logprobs: np.ndarray | None = None) -> ScoreTable:
    """A copy of ``table`` whose ``class_logprobs`` are calibrated by ``kind``.

    ``reference_logprobs`` [P, R, C]: each prompt's class log-probs on the ``R`` inputs of
    ``reference_inputs(kind, ...)``, in that order (normalised over classes or not: only their
    ratios across classes matter). Needed for ``cc`` and ``pmi``, ignored otherwise.
    Everything else in the table (perplexities, labels, ids) is unchanged.
    """
    kind = check(kind)
    lp = table.class_logprobs  # [P, N, C], normalised over C
    if kind == "none":
        return table
    if kind == "cbm":
        prior = logsumexp(lp, axis=1, keepdims=True) - np.log(lp.shape[1])  # log mean_x p(y|x)
    else:
        wanted = len(REFERENCES[kind])
        if reference_logprobs is None:
            raise UsageError(f"Calibration {kind!r} needs the prompts' scores on its content-free inputs.")
        ref = np.asarray(reference_logprobs, dtype=np.float64)
        if ref.shape != (lp.shape[0], wanted, lp.shape[2]):
            raise UsageError(
                f"Calibration {kind!r} needs reference log-probs of shape [{lp.shape[0]}, {wanted}, {lp.shape[2]}], got {ref.shape}."
            )
        if not np.all(np.isfinite(ref)):
            raise UsageError(f"Calibration {kind!r}: the reference log-probs have NaN or infinite values.")
        # Mean of the references' class distributions, in probability space (Zhao et al.).
        prior = logsumexp(log_softmax(ref, axis=-1), axis=1, keepdims=True) - np.log(wanted)
    out = copy.copy(table)
    out.class_logprobs = log_softmax(lp - prior, axis=-1)
    return out


def priors(table: ScoreTable, kind: str, reference_logprobs: np.ndarray | None = None) -> np.ndarray:
    """Each prompt's class prior that ``kind`` divides out, [P, C] (probabilities; uniform for
    ``none``). For the report: a prompt whose prior is far from uniform leaned on its label words."""
    kind = check(kind)
    n_prompts, _, n_classes = table.class_logprobs.shape
    if kind == "none":
        return np.full((n_prompts, n_classes), 1.0 / n_classes)
    if kind == "cbm":
        return np.exp(table.class_logprobs).mean(axis=1)
    if reference_logprobs is None:
        raise UsageError(f"Calibration {kind!r} needs the prompts' scores on its content-free inputs.")
    return np.exp(log_softmax(np.asarray(reference_logprobs, dtype=np.float64), axis=-1)).mean(axis=1)
