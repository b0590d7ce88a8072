"""``select --adaptive``: score in seeded rounds and stop when the best prompt is known (issue 21).

The statistics are :mod:`promptsel.model.sequential`'s (anytime-valid confidence sequences on
every pair difference, elimination, the stopping rule); this module feeds them. The inputs are
read in a random order drawn from ``--seed`` (the order ``bench/bench_adaptive.py`` replays);
each round scores the next ``--round-size`` inputs on every prompt still in the running, from a
*source*: the saved table of ``--scores`` (a replay, served as if it were a model) or the
scorer and its cache (a live run, one ``build_score_table`` call per round, so the shared-prefix
plan, batched CoT and the cache work as in a full pass; a dropped CoT prompt generates nothing
more). The cells read are counted the same way in both, so a replay costs what a live run would.

What the report may claim after stopping on the data. A bootstrap over the inputs read is not a
valid interval once the reading stopped because of what it saw; the confidence sequences are:
each holds at every number of inputs at once, so also at the stopping time. The recommendation is
the search's leader; its indistinguishable set is the other survivors, with the confidence
sequence of the leader's lead over each (each side at ``1 - delta / (P - 1)``); each prompt's
accuracy interval is a confidence sequence too (each side at ``1 - delta / (2 P)``, so all P hold
at once with ``1 - delta`` and the leader's holds whichever prompt was chosen).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import UsageError
from ..model.progress import Plan, Progress
from ..model.scoretable import ScoreTable
from ..model.sequential import BestPromptSearch, Decision, PairBounds

#: Why the search stopped, for people (the report's ``stop_reason`` is the key).
STOP_REASONS = {
    "one_left": "every other prompt is surely worse than the recommended one",
    "within_epsilon": "the recommended prompt is surely within epsilon of every prompt still in the running",
    "exhausted": "every input was read: the accuracies are exact on this sample",
    "budget": "--max-inputs was reached before the best prompt was known: no guarantee",
}
#: What the confidence statement means, in the report and the README.
GUARANTEE = ("With probability at least 1 - delta over the order of the inputs, the recommended prompt's accuracy on "
             "the whole sample is at most epsilon below the best prompt's (anytime-valid confidence sequences: valid "
             "at the data-dependent stop, unlike a bootstrap of the inputs read). A stop on --max-inputs carries no "
             "such guarantee.")


def input_order(seed: int, n_inputs: int) -> np.ndarray:
    """The order the inputs are read in: a permutation from ``seed`` (as the benchmark draws it)."""
    return np.random.default_rng(seed).permutation(n_inputs)


class Source(Protocol):
    """Scores for some prompts on some inputs: ``class_logprobs`` [p, n, C] and ``prompt_nll``
    [p, n] (or None), for the prompt and input indices asked."""

    def score(self, prompts: np.ndarray, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...


class ReplaySource:
    """A saved table served as if it were a model (``select --scores FILE --adaptive``)."""

    def __init__(self, table: ScoreTable, path: object) -> None:
        self.table, self.path = table, path

    def score(self, prompts: np.ndarray, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        cells = np.ix_(prompts, inputs)
        if self.table.scored is not None and not self.table.scored[cells].all():
            raise UsageError(f"{self.path} lacks cells this adaptive replay reads: it was saved by an adaptive run with other "
                             "settings.", hint="Replay it with that run's --seed, --epsilon, --delta, --max-inputs and "
                             "--round-size (and --holdout and --baseline, if it had them).")
        nll = None if self.table.prompt_nll is None else self.table.prompt_nll[cells]
        return self.table.class_logprobs[cells], nll


class RowsSource:
    """A source restricted to some of its inputs (``--holdout``: the choosing part): input k here
    is input ``rows[k]`` of the source, so the held-out rows are never asked for."""

    def __init__(self, source: Source, rows: np.ndarray) -> None:
        self.source, self.rows = source, np.asarray(rows)

    def score(self, prompts: np.ndarray, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return self.source.score(prompts, self.rows[np.asarray(inputs)])


@dataclass
class Cost:
    """What the rounds asked the model for, summed over the rounds' plans (a live run)."""

    requests: int = 0
    cached: int = 0
    tokens: int = 0
    evaluate: int = 0
    generate: int = 0


class RoundProgress(Progress):
    """The run's progress for one round at a time: every round's plan adds to :class:`Cost` and
    none is shown (a plan line per round is noise; the run states its worst and expected case).
    ``title`` names the pass instead of its round number (the held-out pass of ``--holdout``)."""

    def __init__(self, inner: Progress, cost: Cost, title: str | None = None) -> None:
        self.inner, self.cost, self.round, self.title = inner, cost, 0, title

    def plan(self, plan: Plan) -> None:
        c = self.cost
        c.requests, c.cached, c.tokens = c.requests + plan.sequences, c.cached + plan.cached, c.tokens + plan.tokens
        c.evaluate, c.generate = c.evaluate + plan.evaluate, c.generate + plan.generate

    def start(self, label: str, total: int) -> None:
        self.inner.start(f"{self.title or f'Round {self.round}'}: {label[0].lower()}{label[1:]}", total)

    def advance(self, n: int = 1) -> None:
        self.inner.advance(n)

    def done(self) -> None:
        self.inner.done()

    def note(self, message: str) -> None:
        self.inner.note(message)


class LiveSource:
    """The scorer and its cache, one ``build_score_table`` pass per round on the round's inputs
    and the surviving prompts."""

    def __init__(self, inputs: Any, progress: RoundProgress) -> None:
        self.inputs, self.progress = inputs, progress

    def score(self, prompts: np.ndarray, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        from .scoring import build_score_table

        run = self.inputs
        prompt_set = dataclasses.replace(run.prompt_set, prompts=[run.prompt_set.prompts[int(p)] for p in prompts])
        dataset = run.dataset
        sub = dataclasses.replace(dataset, examples=[dataset.examples[int(x)] for x in inputs],
                                  ids=[dataset.ids[int(x)] for x in inputs], n_total=dataset.n_total)
        scorer = run.scorer
        shown, scorer.progress = scorer.progress, self.progress
        self.progress.round += 1
        try:
            table = build_score_table(prompt_set, sub, scorer, run.request.scoring, need_nll=run.needs_prompt_nll)
        finally:
            scorer.progress = shown
        return table.class_logprobs, table.prompt_nll


@dataclass
class Outcome:
    """An adaptive run: the decision, what was read, and the bounds the report states."""

    decision: Decision
    order: np.ndarray
    class_logprobs: np.ndarray  # [P, N, C], NaN where not scored
    prompt_nll: np.ndarray | None
    scored: np.ndarray  # [P, N] bool
    rounds: int
    #: Inputs read on every prompt (the first ``common`` of ``order``): what label-free methods read.
    common: int
    #: Prompt index -> the round after which it was dropped.
    dropped: dict[int, int]
    correct: np.ndarray  # [P] right answers on the inputs each prompt read
    #: [P, 2] anytime-valid bounds on each prompt's accuracy over the whole sample.
    accuracy_bounds: np.ndarray
    #: [P, 2] the confidence sequence of the leader's lead over each prompt (NaN for the leader).
    lead_bounds: np.ndarray
    expected_cells: int | None = None
    cost: Cost | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def read(self) -> np.ndarray:
        """[P] inputs each prompt was scored on."""
        return self.scored.sum(axis=1)

    @property
    def cells(self) -> int:
        return int(self.scored.sum())

    @property
    def means(self) -> np.ndarray:
        return self.correct / np.maximum(self.read, 1)


def expected_cells(first: np.ndarray, alive: np.ndarray, *, epsilon: float, delta: float, limit: int) -> int:
    """A rough expected cost, from the first round's right answers ``first`` [P, r]: each prompt
    still in the running is read until its measured gap to the leader (or epsilon, if larger)
    exceeds an empirical-Bernstein half-width, ``sqrt(2 v log((P - 1) / delta) / t)`` with v the
    paired variance so far, and the leader as long as its closest rival; a dropped prompt cost
    the first round. At most ``limit`` inputs each. Printed before the rest of the work; the run
    itself follows the data, not this."""
    n_prompts, r = first.shape
    means = first.mean(axis=1)
    lead = int(np.argmax(np.where(alive, means, -np.inf)))
    log_term = math.log(max(n_prompts - 1, 1) / delta)
    need = np.full(n_prompts, float(r))
    for k in np.flatnonzero(alive):
        if k != lead:
            variance = max(float((first[lead] - first[k]).var()), 1 / r)
            gap = max(float(means[lead] - means[k]), epsilon)
            need[k] = limit if gap <= 0 else min(limit, max(r, 2 * variance * log_term / gap**2))
    rivals = np.delete(need, lead)[np.delete(alive, lead)]
    need[lead] = rivals.max() if len(rivals) else r
    return int(need.sum())


def run_adaptive(source: Source, labels: np.ndarray, n_prompts: int, n_classes: int, *, seed: int, epsilon: float,
                 delta: float, max_inputs: int | None, round_size: int,
                 note: Callable[[int, int], None] | None = None) -> Outcome:
    """The rounds: read ``round_size`` inputs of the seeded order on every surviving prompt, feed
    the search, let it drop what is surely worse, until it stops. ``note(expected, read)`` hears the
    expected cells after the first round and the cells it read."""
    n_inputs = len(labels)
    order = input_order(seed, n_inputs)
    search = BestPromptSearch(n_prompts, n_inputs, epsilon=epsilon, delta=delta, budget=max_inputs)
    # Each prompt's accuracy against a constant 0: X = (s + 1) / 2 has mean (mu + 1) / 2. Both
    # sides of all P at 1 - delta / (2 P): together they hold with probability 1 - delta.
    accuracy = PairBounds(n_prompts + 1, n_inputs, delta / (2 * n_prompts))
    class_lp = np.full((n_prompts, n_inputs, n_classes), np.nan)
    nll: np.ndarray | None = None
    scored = np.zeros((n_prompts, n_inputs), dtype=bool)
    correct = np.zeros(n_prompts)
    dropped: dict[int, int] = {}
    rounds, common = 0, 0
    expected = None
    while True:
        alive = np.flatnonzero(search.alive)
        batch = order[search.read: min(search.read + round_size, search.budget)]
        lp, round_nll = source.score(alive, batch)
        lp = np.asarray(lp, dtype=np.float64)
        class_lp[np.ix_(alive, batch)] = lp
        if round_nll is not None:
            nll = np.full((n_prompts, n_inputs), np.nan) if nll is None else nll
            nll[np.ix_(alive, batch)] = round_nll
        scored[np.ix_(alive, batch)] = True
        right = (lp.argmax(axis=-1) == labels[batch][None, :]).astype(np.float64)  # [alive, batch]
        correct[alive] += right.sum(axis=1)
        if len(alive) == n_prompts:
            common += len(batch)
        for k in range(len(batch)):
            scores = np.full(n_prompts, np.nan)
            scores[alive] = right[:, k]
            search.observe(scores)
            accuracy.update(np.append(scores, 0.0))
        rounds += 1
        decision = search.decide()
        for p in alive[~search.alive[alive]]:
            dropped[int(p)] = rounds
        if rounds == 1 and decision.reason is None:
            expected = expected_cells(right, search.alive, epsilon=epsilon, delta=delta, limit=search.budget)
            if note is not None:
                note(expected, search.cells)
        if decision.reason is not None:
            break
    low, high = accuracy.difference_bounds()
    accuracy_bounds = np.stack([low[:n_prompts, n_prompts], high[:n_prompts, n_prompts]], axis=1)
    lower, upper = search.bounds.difference_bounds()
    lead_bounds = np.stack([lower[decision.leader], upper[decision.leader]], axis=1)
    return Outcome(decision=decision, order=order, class_logprobs=class_lp, prompt_nll=nll, scored=scored, rounds=rounds,
                   common=common, dropped=dropped, correct=correct, accuracy_bounds=accuracy_bounds,
                   lead_bounds=lead_bounds, expected_cells=expected,
                   settings={"epsilon": epsilon, "delta": delta, "max_inputs": max_inputs, "round_size": round_size})
