"""``consensus``: a label-free rule that aggregates the rankings of the other label-free methods.

A prompt's consensus score is the mean of its standardized scores under MI, GlobalE, LocalE and
SPELL (SPELL only where the table has ``prompt_nll``), each run on the same ScoreTable. Both
choices were measured (``bench/bench_consensus.py``, bench/RESULTS.md "Label-free rules and
consensus") against Borda counts and Copeland's pairwise majority, and against member sets with
all three ZPS ensembles or one of them:

* ZPS is left out. On raw (uncalibrated) scores it is below a random ranking by NDCG in 6 of
  the 8 settings measured, and every member set that includes it did worse; its three
  ensembles are near-duplicates (identical on every quality-benchmark dataset), so keeping them
  would give one idea three votes. After calibration the picture turns: ZPS alone is
  then the best rule measured, and the recommendation's default rule switches to it
  (``promptsel.selection.recommend.DEFAULT_RULES``) rather than to a consensus containing it.
* Standardized scores (z-scores) rather than ranks: with these members they gave the best mean
  rate and NDCG rank of every rule measured on raw scores, single methods included.

Never members, by design:

* FUTE: it scores prompts from task embeddings trained on other data (U and the train split),
  not from this table, costs minutes where the baselines cost milliseconds, and its scores in
  the quality benchmark were broken (issue 10), so nothing measured supports giving it a vote.
* Self-Select: it asks the model about the prompts instead of scoring the inputs, depends on the
  order it shows them in, and needs a backend (``--scores`` runs could not use the rule).
* ``consensus`` itself.

Options (``-O consensus.KEY=VALUE``):

* ``members``: comma-separated method names (default ``DEFAULT_MEMBERS``; ZPS may be named).
  Only methods that read nothing but the ScoreTable can vote, so FUTE and Self-Select are
  refused, and so is ``consensus`` itself.
* ``aggregate``: ``zscore`` (default), ``borda`` or ``copeland``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from scipy.stats import rankdata

from promptsel import (
    NEEDS_CLASS_LOGPROBS,
    NEEDS_PROMPT_NLL,
    TABLE_ARRAYS,
    Selector,
    UsageError,
    tie_key,
)

if TYPE_CHECKING:
    from promptsel import ScoreTable, SelectionContext

#: The voters (see the module docstring for why ZPS is not one).
DEFAULT_MEMBERS = ("mi", "globale", "locale", "spell")
DEFAULT_AGGREGATION = "zscore"
AGGREGATIONS = ("zscore", "borda", "copeland")
#: Methods that may never vote (see the module docstring).
EXCLUDED = ("consensus", "self-select")


def unit_ranks(scores: np.ndarray) -> np.ndarray:
    """Ranks of ``scores`` scaled to [0, 1], 1 = highest; tied prompts share their mean rank
    (ties as ``promptsel.model.metrics`` sees them). One prompt: 1."""
    key = tie_key(scores)
    if key.size == 1:
        return np.ones(1)
    return (rankdata(key, method="average") - 1.0) / (key.size - 1)


def aggregate(member_scores: np.ndarray, how: str = DEFAULT_AGGREGATION) -> np.ndarray:
    """One consensus score per prompt from ``member_scores`` [M, P] (each row higher = better).

    * ``borda``: mean of the members' unit ranks (``unit_ranks``).
    * ``zscore``: mean of the members' standardized scores (a constant member adds 0).
    * ``copeland``: for each pair of prompts, the one more members rank higher wins 1 (a draw
      gives both 1/2); a prompt's score is its wins over P - 1. Kemeny's optimal ranking is
      NP-hard; Copeland is its usual pairwise-majority approximation.
    """
    scores = np.asarray(member_scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] == 0:
        raise ValueError(f"member_scores must be [members, prompts] with a member, got {scores.shape}.")
    n_prompts = scores.shape[1]
    if how == "borda":
        return np.mean([unit_ranks(row) for row in scores], axis=0)
    if how == "zscore":
        # Sorted sums make the mean and spread bitwise independent of the prompt order.
        out = np.zeros(n_prompts)
        for row in scores:
            key = tie_key(row)
            ordered = np.sort(key)
            spread = float(np.sqrt(np.sum(np.sort((ordered - ordered.mean()) ** 2)) / key.size))
            if spread > 0:
                out += (key - ordered.mean()) / spread
        return out / scores.shape[0]
    if how == "copeland":
        if n_prompts == 1:
            return np.ones(1)
        keys = np.array([tie_key(row) for row in scores])
        # prefer[i, j]: members ranking i above j, minus those ranking j above i.
        prefer = np.sign(keys[:, :, None] - keys[:, None, :]).sum(axis=0)
        wins = (prefer > 0).sum(axis=1) + 0.5 * ((prefer == 0).sum(axis=1) - 1)
        return wins / (n_prompts - 1)
    raise UsageError(f"Unknown consensus aggregation {how!r}.", hint=f"Use one of: {', '.join(AGGREGATIONS)}.")


def member_names(members: tuple[str, ...] | str | None, table: ScoreTable) -> list[str]:
    """The members that vote on ``table``: ``members`` (names, or a comma-separated text) or the
    defaults, less SPELL when the table has no ``prompt_nll``."""
    from promptsel import get_selector

    if isinstance(members, str):
        members = tuple(n.strip() for n in members.split(",") if n.strip())
    names = list(members or DEFAULT_MEMBERS)
    out = []
    for name in names:
        if name in EXCLUDED:
            raise UsageError(f"consensus cannot take {name!r} as a member.",
                             hint=f"Members are per-input label-free methods, e.g. {', '.join(DEFAULT_MEMBERS)}.")
        needs = get_selector(name).needs
        if not needs <= TABLE_ARRAYS:
            raise UsageError(f"consensus cannot take {name!r} as a member: it needs {', '.join(sorted(needs - TABLE_ARRAYS))}.")
        if NEEDS_PROMPT_NLL in needs and table.prompt_nll is None:
            continue  # SPELL without perplexities: the others still vote
        out.append(name)
    if not out:
        raise UsageError("consensus has no member that this scores table can feed.")
    return list(dict.fromkeys(out))


class Consensus(Selector):
    selector_id = "consensus"
    needs = frozenset({NEEDS_CLASS_LOGPROBS})
    description = "Mean standardized score under MI, GlobalE, LocalE and SPELL (label-free); options members, aggregate."
    #: Every member is a per-input statistic, so resampling the inputs and rerunning the
    #: members measures the stability of the consensus choice too.
    bootstrap: ClassVar[str | None] = None
    relative: ClassVar[str | None] = "a prompt's score depends on every other prompt (scores are standardized across the set)"

    @dataclass(frozen=True)
    class Options(Selector.Options):
        members: tuple[str, ...] = DEFAULT_MEMBERS
        aggregate: Literal["zscore", "borda", "copeland"] = DEFAULT_AGGREGATION

    def score(self, table: ScoreTable, context: SelectionContext) -> np.ndarray:
        from promptsel import get_selector

        how = self.options.aggregate
        names = member_names(self.options.members, table)
        rows = [np.asarray(get_selector(n)().score(table, context), dtype=np.float64) for n in names]
        return aggregate(np.array(rows), how)
