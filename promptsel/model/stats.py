"""The statistics the recommendation and the gate share: seeded resampling of the examples,
resampled tables, percentile intervals, shares of a choice over resamples, and the one rule
that says which methods can be rerun on resampled examples.

Resampling. ``resample_indices`` draws every resample at once from one seeded generator, so
the same seed gives the same resamples to the recommendation (``promptsel select``) and to the
gate (``promptsel lock``). With labels the bootstrap is paired: every prompt is scored on the
same resampled examples (``bootstrap_performance``). Without labels a method is rerun on
resampled tables (``rerun_draws``). Intervals are central percentile intervals
(``percentile_interval``), with no correction for the many comparisons.

Which methods can be rerun that way is a property of the method, read from its Selector class
(``bootstrap_reason``):

* per-input statistics (MI, GlobalE, LocalE, SPELL, consensus): yes.
* ZPS: its choice, yes. A prompt's score depends on the other prompts (the pseudo-label
  ensemble), but for a fixed prompt set it is still a function of the inputs alone, so
  resampling the inputs and rerunning the whole ensemble (its k-means filter included) is
  exactly the variation of its choice over samples. It says nothing about what editing
  *another* prompt would do, which is why the gate gives ZPS no per-prompt score interval
  (``relative`` on its class; ``per_prompt=True`` asks about it).
* A method whose score never reads the evaluation inputs (it scores prompts from task
  embeddings, or asks the model about the prompt texts): no, resampling the inputs cannot move
  its choice. It says why in ``bootstrap`` on its class; a method that needs a backend
  capability and says nothing is treated the same way.

Ties. When several prompts tie at the top of a ranking, the reported performance is the
expected performance of a uniformly random pick among them (their mean), the same averaging
over tied orders that NDCG uses; so reordering the prompt file cannot change a number.
Bootstrap shares split a tied resample equally among its tied prompts, and the stability of a
tied choice is the mean share of the tied prompts.

Held-out confirmation (``select --holdout``): ``stratified_split`` draws the held-out part,
``subset_table`` cuts a table to one part, and ``paired_intervals`` gives two prompts' intervals
and that of their difference on the held-out examples, from the same paired bootstrap.

Nothing here knows of plugins or reports: a method comes in as ``table -> scores``, and its
class only for the attributes the eligibility rule reads.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

import numpy as np

from . import metrics
from .data import largest_remainder
from .scoretable import TABLE_ARRAYS, ScoreTable

#: How many resamples and which central interval, unless a caller says otherwise (the gate's
#: lock records these; ``select --bootstrap`` changes the resamples of the recommendation).
RESAMPLES = 1000
LEVEL = 0.95
#: The stream of the seeded generator that draws ``--holdout``'s held-out part (apart from the
#: one that draws ``--limit``'s sample with the same seed).
HOLDOUT_STREAM = 1
#: The bootstrap shares the "cover" set of a stability must reach.
COVER_SHARE = 0.9

#: Why a method that asks the backend, and does not say why itself, is not rerun.
BACKEND_REASON = (
    "it asks the model about the prompts instead of scoring the evaluation inputs, so resampling "
    "the inputs cannot move its choice"
)


# --- which methods can be rerun ---------------------------------------------------------

class MethodTraits(Protocol):
    """What the eligibility rule reads of a method: the class attributes of a Selector."""

    @property
    def bootstrap(self) -> str | None: ...

    @property
    def relative(self) -> str | None: ...

    @property
    def needs(self) -> Collection[str]: ...


def bootstrap_reason(method: MethodTraits, *, per_prompt: bool = False) -> str | None:
    """Why rerunning ``method`` (a Selector class) on resampled examples estimates nothing
    (``None``: it does). ``per_prompt``: an interval of each prompt's own score is wanted (the
    gate), not only the variation of the choice (the recommendation); a method whose prompt
    scores depend on the other prompts then says why in ``relative``."""
    if method.bootstrap:  # the inputs never enter its score: it says why
        return str(method.bootstrap)
    if per_prompt and method.relative:
        return str(method.relative)
    if not set(method.needs) <= TABLE_ARRAYS:
        return BACKEND_REASON  # a plugin that asks the backend but did not say why
    return None  # a function of the table: rerun it on resampled inputs


# --- resampling -------------------------------------------------------------------------

def resample_indices(n: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """[resamples, n] example indices drawn with replacement, from one seeded generator."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(resamples, n))


def resample_weights(picks: np.ndarray, n: int) -> np.ndarray:
    """How often each example is drawn in each resample, [B, n]."""
    weights = np.zeros((picks.shape[0], n))
    for b, pick in enumerate(picks):
        weights[b] = np.bincount(pick, minlength=n)
    return weights


def resampled_table(table: ScoreTable, pick: np.ndarray) -> ScoreTable:
    """``table`` restricted to the examples ``pick`` (with repeats), labels dropped."""
    # A shallow copy with sliced arrays: the rows are already validated and normalised, and
    # rebuilding through ScoreTable() would renormalise them, half the cost of a rerun.
    sub = copy.copy(table)
    sub.class_logprobs = table.class_logprobs[:, pick]
    sub.prompt_nll = None if table.prompt_nll is None else table.prompt_nll[:, pick]
    sub.labels = None
    sub.sample_ids = [table.sample_ids[i] for i in pick]
    return sub


def rerun_draws(table: ScoreTable, rescore: Callable[[ScoreTable], np.ndarray], picks: np.ndarray) -> np.ndarray:
    """A method's scores on every resample of the inputs, [B, P]."""
    return np.array([np.asarray(rescore(resampled_table(table, pick)), dtype=np.float64) for pick in picks])


def bootstrap_performance(
    predictions: np.ndarray, labels: np.ndarray, weights: np.ndarray, *,
    metric: str = "accuracy", n_classes: int | None = None,
) -> np.ndarray:
    """Each prompt's performance on each resample, [B, P], from predictions [P, N], labels [N]
    and resample weights [B, N] (``resample_weights``). Paired: every prompt is scored on the
    same resampled examples. A row of ones gives ``metrics.performance`` exactly.

    Macro-F1 per class is 2 TP / (2 TP + FP + FN) = 2 TP / (predicted + actual), 0 when the
    class is neither predicted nor present (sklearn's ``zero_division=0``), averaged over all
    ``n_classes`` classes as ``metrics.performance`` does.
    """
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    weights = np.asarray(weights, dtype=np.float64)
    totals = weights.sum(axis=1)  # [B]
    if metric == "accuracy":
        correct = (predictions == labels).astype(np.float64)  # [P, N]
        return (weights @ correct.T) / totals[:, None]
    if metric == "macro_f1":
        if n_classes is None:
            raise ValueError("macro_f1 needs n_classes.")
        f1 = np.zeros((weights.shape[0], predictions.shape[0]))
        for c in range(n_classes):
            actual = weights @ (labels == c).astype(np.float64)  # [B]
            predicted = weights @ (predictions == c).T.astype(np.float64)  # [B, P]
            hits = weights @ ((predictions == c) & (labels == c)).T.astype(np.float64)  # [B, P]
            denominator = predicted + actual[:, None]
            f1 += np.divide(2 * hits, denominator, out=np.zeros_like(hits), where=denominator > 0)
        return f1 / n_classes
    # Unknown metrics fail the same way metrics.performance does.
    return metrics.performance(predictions, labels, metric=metric, n_classes=n_classes)


def percentile_interval(draws: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """Central percentile interval of ``draws`` along axis 0: shape draws.shape[1:] + (2,)."""
    tail = (1.0 - level) / 2 * 100
    return np.moveaxis(np.percentile(draws, [tail, 100 - tail], axis=0), 0, -1)


# --- a held-out part --------------------------------------------------------------------

def stratified_split(labels: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(choosing, held-out) example indices, each in increasing order: ``fraction`` of the
    examples held out, shared among the classes in proportion to their counts (largest
    remainders), drawn at random within each class by a generator seeded with ``seed``."""
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    quota = largest_remainder(counts, round(fraction * len(labels)))
    rng = np.random.default_rng([seed, HOLDOUT_STREAM])
    held = np.zeros(len(labels), dtype=bool)
    for c, k in enumerate(quota):
        held[rng.choice(np.flatnonzero(labels == c), size=k, replace=False)] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def subset_table(table: ScoreTable, rows: np.ndarray) -> ScoreTable:
    """``table`` restricted to the examples ``rows`` (labels kept, unlike a resample)."""
    sub = copy.copy(table)
    sub.class_logprobs = table.class_logprobs[:, rows]
    sub.prompt_nll = None if table.prompt_nll is None else table.prompt_nll[:, rows]
    sub.labels = None if table.labels is None else table.labels[rows]
    sub.sample_ids = [table.sample_ids[i] for i in rows]
    return sub


def paired_intervals(predictions: np.ndarray, labels: np.ndarray, *, metric: str = "accuracy",
                     n_classes: int, resamples: int = RESAMPLES, level: float = LEVEL,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the predictions [2, N] of two prompts on the same examples: each one's performance,
    its percentile interval [2, 2] and the interval of the first minus the second [2], from one
    paired bootstrap (every resample scores both on the same examples)."""
    predictions = np.asarray(predictions)
    n = predictions.shape[1]
    perf = metrics.performance(predictions, labels, metric=metric, n_classes=n_classes)
    draws = bootstrap_performance(predictions, labels, resample_weights(resample_indices(n, resamples, seed), n),
                                  metric=metric, n_classes=n_classes)
    return perf, percentile_interval(draws, level), percentile_interval(draws[:, 0] - draws[:, 1], level)


def fixed_ranking_ndcg(scores: np.ndarray, table: ScoreTable, *, metric: str = "accuracy", variant: str = "minmax",
                       resamples: int = RESAMPLES, seed: int = 0, level: float = LEVEL) -> dict[str, Any] | None:
    """NDCG of the ranking ``scores`` against the prompts' measured performance, with its central
    ``level`` interval over resamples of the evaluation examples; None without labels.

    Only for a ranking that the evaluation examples do not enter (FUTE's, from task
    embeddings): it stays fixed while the performance it is judged against is resampled, so
    the interval is the sample's uncertainty about the truth, not the method's own variation."""
    if table.labels is None:
        return None
    n_classes = len(table.class_names)
    perf = metrics.performance(table.predictions, table.labels, metric=metric, n_classes=n_classes)
    point = metrics.ndcg(scores, perf, variant=variant)
    weights = resample_weights(resample_indices(table.n_examples, resamples, seed), table.n_examples)
    draws = bootstrap_performance(table.predictions, table.labels, weights, metric=metric, n_classes=n_classes)
    values = np.array([np.nan if (v := metrics.ndcg(scores, row, variant=variant)) is None else v for row in draws])
    values = values[np.isfinite(values)]
    interval = None if point is None or not values.size else [float(x) for x in percentile_interval(values, level)]
    return {"ndcg": point, "ndcg_interval": interval, "level": level, "resamples": resamples, "seed": seed,
            "how": "the ranking held fixed, the evaluation examples resampled"}


# --- choices and ties -------------------------------------------------------------------

def expected_choice(scores: np.ndarray, perf: np.ndarray | None) -> dict[str, Any]:
    """A method's choice as the report states it, independent of the prompt order.

    ``chosen`` is the first of the prompts tied at the top (a name to show), ``tied`` all of
    them; ``performance`` is the mean performance over ``tied`` (what a uniformly random pick
    among them earns, the tie-averaging NDCG uses) and ``rate`` that over the best prompt's.
    Indices refer to the prompts' positions; performance fields are None without ``perf``.
    """
    chosen, tied = metrics.choose(scores)
    out: dict[str, Any] = {"chosen": chosen, "tied": tied, "performance": None, "rate": None}
    if perf is not None:
        perf = np.asarray(perf, dtype=np.float64)
        # Sorted before summing: the mean is then bitwise the same in any prompt order.
        expected = float(np.sort(perf[tied]).mean())
        out["performance"] = expected
        out["rate"] = metrics.performance_rate(expected, perf)
    return out


def win_shares(draws: np.ndarray) -> np.ndarray:
    """For score draws [B, P]: the share of draws each prompt wins, a tie split equally."""
    draws = np.atleast_2d(np.asarray(draws, dtype=np.float64))
    shares = np.zeros(draws.shape[1])
    for row in draws:
        _, tied = metrics.choose(row)
        shares[tied] += 1.0 / len(tied)
    return shares / draws.shape[0]


def choice_share(shares: np.ndarray, tied: Sequence[int]) -> float:
    """Stability of a choice that may be a tie: the mean share of the tied prompts, i.e. the
    chance that a resample's pick equals a random pick among the full sample's tied prompts
    (the share of the one prompt when there is no tie)."""
    return float(np.sort(np.asarray(shares)[list(tied)]).mean())


def cover_set(shares: np.ndarray, level: float = COVER_SHARE) -> list[int]:
    """The fewest prompts whose shares sum to at least ``level`` (largest shares first; among
    equal shares, file order)."""
    order = np.argsort(-np.asarray(shares), kind="stable")
    out, total = [], 0.0
    for i in order:
        if total >= level - 1e-12 or shares[i] <= 0:
            break
        out.append(int(i))
        total += float(shares[i])
    return out


# --- what ignoring the input earns ------------------------------------------------------

def chance_level(labels: np.ndarray, n_classes: int, metric: str = "accuracy") -> float:
    """What a predictor that ignores the input earns on this sample.

    Accuracy: the majority-class rate (always answering the majority class beats any random
    guessing). Macro-F1: 1 / n_classes, the expected macro-F1 of guessing with the sample's
    class frequencies (each class's F1 is then its frequency); a constant answer earns less.
    """
    if metric == "macro_f1":
        return 1.0 / n_classes
    counts = np.bincount(np.asarray(labels), minlength=n_classes)
    return float(counts.max() / counts.sum())


def class_shares(predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """Share of inputs each prompt assigns to each class, [P, C]."""
    predictions = np.asarray(predictions)
    return (predictions[..., None] == np.arange(n_classes)).mean(axis=1)


# --- a loss gain over a baseline, paired over rows --------------------------------------

def paired_gain(baseline: np.ndarray, model: np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0,
                level: float = LEVEL) -> tuple[float, float, float]:
    """The mean per-row gain ``baseline − model`` (losses of two predictors on the same rows)
    and its central ``level`` percentile interval over a bootstrap of the rows: (mean, low,
    high). Paired: each resample draws rows, and both losses of a drawn row come with it, so
    what the rows share (how hard each is) cancels. One row gives a zero-width interval."""
    gain = np.asarray(baseline, dtype=np.float64) - np.asarray(model, dtype=np.float64)
    if gain.ndim != 1 or gain.size == 0:
        raise ValueError("paired_gain needs two equal-length, non-empty 1-D loss arrays.")
    draws = gain[resample_indices(gain.size, resamples, seed)].mean(axis=1)
    low, high = percentile_interval(draws, level)
    return float(gain.mean()), float(low), float(high)
