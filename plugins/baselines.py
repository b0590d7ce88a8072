"""Label-free prompt-selection baselines: MI, GlobalE, LocalE, ZPS and SPELL (methods.md §2).

Every score is computed from the ScoreTable alone, one score per prompt, higher is better.
Entropies are in nats with 0 log 0 = 0 and no epsilon. Classes use the table's one class
order throughout; FUTE's ZPS compares indices from two different orders for SA, which inverts
its ranking, and this module does not copy that.

Options (``-O ID.KEY=VALUE`` on the command line, ``Selector(**options)`` in Python):

* ``locale``: ``negate=true`` scores -LocalE, so the most confident prompt wins (Yang et al.'s
  MDL direction) instead of the most uncertain one (Lu et al., FUTE; the default).
* ``zps-log``, ``zps-prob``, ``zps-vote``: ``filter=false`` ensembles all prompts instead of
  only those the k-means confidence filter keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from scipy.special import entr

from promptsel import NEEDS_CLASS_LOGPROBS, NEEDS_PROMPT_NLL, CapabilityError, Selector

if TYPE_CHECKING:
    from promptsel import ScoreTable, SelectionContext



def entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy in nats over the last axis, 0 log 0 = 0."""
    return entr(probs).sum(axis=-1)


class MutualInformation(Selector):
    selector_id = "mi"
    needs = frozenset({NEEDS_CLASS_LOGPROBS})
    description = "Mutual information between input and predicted class (Sorensen et al. 2022)."

    def score(self, table: ScoreTable, context: SelectionContext) -> np.ndarray:
        probs = table.probs
        return entropy(probs.mean(axis=1)) - entropy(probs).mean(axis=1)


class GlobalEntropy(Selector):
    selector_id = "globale"
    needs = frozenset({NEEDS_CLASS_LOGPROBS})
    description = "Entropy of the histogram of predicted classes (GlobalE, Lu et al. 2022)."

    def score(self, table: ScoreTable, context: SelectionContext) -> np.ndarray:
        n_classes = table.class_logprobs.shape[-1]
        one_hot = table.predictions[..., None] == np.arange(n_classes)
        return entropy(one_hot.mean(axis=1))


class LocalEntropy(Selector):
    selector_id = "locale"
    needs = frozenset({NEEDS_CLASS_LOGPROBS})
    description = (
        "Mean entropy of each input's class distribution (LocalE, Lu et al. 2022); option negate."
    )

    @dataclass(frozen=True)
    class Options(Selector.Options):
        #: Score -LocalE: the most confident prompt wins (Yang et al.'s MDL direction).
        negate: bool = False

    def score(self, table: ScoreTable, context: SelectionContext) -> np.ndarray:
        local = entropy(table.probs).mean(axis=1)
        return -local if self.options.negate else local


class _ZeroLabelSelection(Selector):
    """ZPS (Liao et al. 2022): agreement of each prompt with the pseudo-labels of an ensemble."""

    needs = frozenset({NEEDS_CLASS_LOGPROBS})
    ensemble: ClassVar[str]
    relative = "a prompt's score depends on every other prompt (the pseudo-label ensemble)"

    @dataclass(frozen=True)
    class Options(Selector.Options):
        #: Ensemble only the prompts the 2-means confidence filter keeps (ZPS); false: all.
        filter: bool = True

    def score(self, table: ScoreTable, context: SelectionContext) -> np.ndarray:
        predictions = table.predictions
        if self.options.filter:
            kept = confident_prompts(table.probs)
        else:
            kept = np.ones(table.n_prompts, dtype=bool)
        pseudo_labels = self.class_scores(table, kept).argmax(axis=-1)
        # Every prompt is scored, also those the filter left out of the ensemble.
        return (predictions == pseudo_labels).mean(axis=1)

    def class_scores(self, table: ScoreTable, kept: np.ndarray) -> np.ndarray:
        """s(x, y) over the kept prompts, [N, C]; the pseudo-label is its argmax."""
        if self.ensemble == "vote":
            n_classes = table.class_logprobs.shape[-1]
            return (table.predictions[kept][..., None] == np.arange(n_classes)).sum(axis=0)
        values = table.class_logprobs if self.ensemble == "log" else table.probs
        # Summing in sorted order makes the mean bitwise independent of the prompt order, so a
        # near-tie between two classes cannot flip when the prompt file is reordered.
        return np.sort(values[kept], axis=0).mean(axis=0)


def confident_prompts(probs: np.ndarray) -> np.ndarray:
    """ZPS's filter: 2-means on each prompt's mean top-1 minus top-2 class probability; keep
    the prompts in the cluster with the larger centroid. Returns a boolean mask [P]."""
    top_two = np.sort(probs, axis=-1)[..., -2:]
    confidence = (top_two[..., 1] - top_two[..., 0]).mean(axis=1)
    if np.unique(confidence).size < 2:
        # Nothing to separate: keep every prompt, as Yang et al. do when clustering fails.
        return np.ones(confidence.size, dtype=bool)
    # Cluster the sorted values so the result cannot depend on the order of the prompts.
    order = np.argsort(confidence, kind="stable")
    keep = np.empty(confidence.size, dtype=bool)
    keep[order] = np.arange(confidence.size) >= two_means_split(confidence[order])
    return keep


def two_means_split(values: np.ndarray) -> int:
    """Exact 2-means of sorted 1-D ``values`` (at least two distinct): the index where the upper
    cluster starts. In one dimension the optimal clusters are a split of the sorted values, so
    scanning every split for the least within-cluster sum of squares finds the optimum that
    ``KMeans(n_clusters=2, n_init=10)`` (FUTE's and Yang et al.'s call) searches for with restarts
    and occasionally misses (4 of 200 random cases in the tests), and is a thousand times faster
    (the recommendation's bootstrap reruns ZPS a thousand times). Equal values never split."""
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    left = np.arange(1, n)  # size of the lower cluster for each split
    total, squares = np.cumsum(x), np.cumsum(x * x)
    low_sum, low_sq = total[:-1], squares[:-1]
    high_sum, high_sq = total[-1] - low_sum, squares[-1] - low_sq
    cost = (low_sq - low_sum**2 / left) + (high_sq - high_sum**2 / (n - left))
    cost[x[:-1] == x[1:]] = np.inf
    return int(np.argmin(cost)) + 1


class ZpsLog(_ZeroLabelSelection):
    selector_id = "zps-log"
    ensemble = "log"
    description = "Agreement with pseudo-labels from mean log-probs of confident prompts (ZPS, Liao et al. 2022)."


class ZpsProb(_ZeroLabelSelection):
    selector_id = "zps-prob"
    ensemble = "prob"
    description = "Agreement with pseudo-labels from mean probabilities of confident prompts (ZPS, Liao et al. 2022)."


class ZpsVote(_ZeroLabelSelection):
    selector_id = "zps-vote"
    ensemble = "vote"
    description = "Agreement with pseudo-labels from a majority vote of confident prompts (ZPS, Liao et al. 2022)."


class Spell(Selector):
    selector_id = "spell"
    needs = frozenset({NEEDS_PROMPT_NLL})
    description = (
        "Minus the mean perplexity of the prompt filled with each input (SPELL, Gonen et al. 2023)."
    )

    def score(self, table: ScoreTable, context: SelectionContext) -> np.ndarray:
        if table.prompt_nll is None:
            raise CapabilityError(
                "SPELL needs prompt_nll, the per-token NLL of each instantiated prompt.",
                hint="Score with a backend that gives sequence log-probs, or add prompt_nll to the scores file.",
            )
        # Average the perplexities themselves, not their logs (Gonen et al.; methods.md §2.5).
        return -np.exp(table.prompt_nll).mean(axis=1)


#: Every selector of this module, in the order ``promptsel methods`` lists them.
SELECTORS: tuple[type[Selector], ...] = (
    MutualInformation,
    GlobalEntropy,
    LocalEntropy,
    ZpsLog,
    ZpsProb,
    ZpsVote,
    Spell,
)
