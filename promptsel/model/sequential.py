"""Stopping when the best prompt is known: anytime-valid bounds and elimination (issue 21's core).

The evaluation inputs are read in a seeded random order, without replacement; after any number
of them, every prompt's per-input scores (1 if right, 0 if wrong: accuracy) so far are all the
procedure has seen. What it estimates is each prompt's mean over *all* N inputs, the number a
full evaluation reports, so once every input is read there is nothing left to estimate.

Bounds. For each pair of prompts (i, j), ``X = (s_i - s_j + 1) / 2`` lies in [0, 1], and its
mean over the N inputs is ``(mu_i - mu_j + 1) / 2``. :class:`PairBounds` keeps, for every pair,
the predictable plug-in empirical-Bernstein confidence sequence for sampling without replacement
(Waudby-Smith & Ramdas, "Estimating means of bounded random variables by betting", JRSS-B 2023,
and "Confidence sequences for sampling without replacement", NeurIPS 2020): with the t-th input
drawn at random from the N - t + 1 not yet read, its conditional mean is
``(N m - S_{t-1}) / (N - t + 1)``, and

    sum_i lam_i (X_i - m_i) - sum_i v_i psi(lam_i),   v_i = 4 (X_i - mhat_{i-1})^2,
    psi(lam) = (-log(1 - lam) - lam) / 4,   lam_i in [0, 1) chosen from the past only,

is the log of a nonnegative supermartingale, so by Ville's inequality it stays below
``log(1/a)`` at *every* t with probability at least 1 - a. Solved for m, that is a lower and an
upper bound valid at every t at once: they may be checked after every input and the reading
stopped whenever, and the bound at the stopping time is still a 1 - a bound. At t = N both
collapse onto the exact mean.

Elimination (:class:`BestPromptSearch`). A prompt is dropped when some other surviving prompt is
better with confidence (the lower bound of their difference is above 0). The search stops when
one prompt is left, when the leader (the best mean so far among the survivors) is within
``epsilon`` of every survivor (the lower bound of leader minus each survivor is above
``-epsilon``), or when the inputs run out (then the means are exact) or the budget does.

Why the answer is within epsilon of the best with probability at least 1 - delta. Let b be the
best prompt over the N inputs. Only the bounds of the P - 1 differences ``mu_q - mu_b`` matter:
b is dropped only if some lower bound of ``mu_q - mu_b`` is above 0, and a leader more than
epsilon below b passes the stopping rule only if the lower bound of ``mu_lead - mu_b`` is above
``-epsilon``; neither happens while those P - 1 lower bounds hold. Each is held at
``a = delta / (P - 1)`` (one side of its pair), so all hold at once with probability at least
1 - delta (a union bound over b's pairs, not over all P(P - 1)/2: the other pairs may fail
without making the answer wrong). A stop on the budget before the inputs run out carries no
such guarantee, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

#: Largest bet per input (WSR 2023 suggest 1/2 or 3/4): bigger bets shrink the bound faster on
#: few inputs and grow its variance term; on the UPS fixture 1/2 and 3/4 cost the same.
BET_CAP = 0.75

StopReason = Literal["one_left", "within_epsilon", "exhausted", "budget"]


class PairBounds:
    """Anytime-valid bounds on ``mu_i - mu_j`` for every pair i < j of ``n_prompts`` prompts,
    each side holding with probability at least ``1 - alpha`` over the whole reading.

    ``population`` is N, the number of inputs the order is drawn from without replacement.
    Feed each input's scores (in [0, 1]) with :meth:`update`; a pair with a NaN score (a prompt no
    longer read) keeps its state from before.
    """

    def __init__(self, n_prompts: int, population: int, alpha: float, cap: float = BET_CAP) -> None:
        if not 0 < alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        self.n_prompts, self.population = n_prompts, population
        self.first, self.second = np.triu_indices(n_prompts, 1)
        pairs = len(self.first)
        self.log_alpha = np.log(1 / alpha)
        self.cap = cap
        self.seen = np.zeros(pairs, dtype=np.int64)  # t, per pair
        self.total = np.zeros(pairs)  # S_t = sum X
        self.weighted = np.zeros(pairs)  # sum lam_i (X_i + S_{i-1} / (N - i + 1))
        self.weights = np.zeros(pairs)  # sum lam_i N / (N - i + 1)
        self.penalty = np.zeros(pairs)  # sum v_i psi(lam_i)
        self.mean_hat = np.full(pairs, 0.5)  # (1/2 + S_t) / (t + 1)
        self.square_sum = np.full(pairs, 0.25)  # 1/4 + sum (X_i - mhat_i)^2

    def update(self, scores: np.ndarray) -> None:
        scores = np.asarray(scores, dtype=np.float64)
        x = (scores[self.first] - scores[self.second] + 1) / 2
        live = ~np.isnan(x)
        x, t = x[live], self.seen[live] + 1
        if np.any(t > self.population):
            raise ValueError("more inputs than the population they are drawn from")
        variance = self.square_sum[live] / t
        # The bet: as large as the variance so far allows for a bound that keeps narrowing with
        # t (WSR 2023's t log(1 + t) schedule), never above the cap. Uses only the past.
        bet = np.minimum(np.sqrt(2 * self.log_alpha / (variance * t * np.log1p(t))), self.cap)
        psi = (-np.log1p(-bet) - bet) / 4
        left = self.population - t + 1
        self.weighted[live] += bet * (x + self.total[live] / left)
        self.weights[live] += bet * self.population / left
        self.penalty[live] += 4 * (x - self.mean_hat[live]) ** 2 * psi
        self.total[live] += x
        self.seen[live] = t
        mean_hat = (0.5 + self.total[live]) / (t + 1)
        self.square_sum[live] += (x - mean_hat) ** 2
        self.mean_hat[live] = mean_hat

    def difference_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``lower, upper`` [P, P]: bounds on ``mu_i - mu_j`` (antisymmetric; NaN on the diagonal
        and for pairs never read)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            low = (self.weighted - self.log_alpha - self.penalty) / self.weights
            high = (self.weighted + self.log_alpha + self.penalty) / self.weights
        exact = self.seen == self.population
        low = np.where(exact, self.total / self.population, low)
        high = np.where(exact, self.total / self.population, high)
        low, high = np.clip(2 * low - 1, -1, 1), np.clip(2 * high - 1, -1, 1)
        lower = np.full((self.n_prompts, self.n_prompts), np.nan)
        upper = lower.copy()
        lower[self.first, self.second], upper[self.first, self.second] = low, high
        lower[self.second, self.first], upper[self.second, self.first] = -high, -low
        return lower, upper


@dataclass(frozen=True)
class Decision:
    """Where the search stands: the leader, who survives, and why it stopped (None: go on)."""

    leader: int
    survivors: tuple[int, ...]
    reason: StopReason | None
    #: The lower bound of (leader - survivor) over the other survivors: the leader is at most
    #: ``-worst_gap`` below the best of them (with the search's confidence).
    worst_gap: float


class BestPromptSearch:
    """Fixed-confidence identification of a prompt within ``epsilon`` of the best (see the
    module docstring for the guarantee). Feed inputs in a random order with :meth:`observe`
    (scores of dropped prompts are ignored; pass NaN for them) and ask :meth:`decide` after each
    round."""

    def __init__(self, n_prompts: int, population: int, *, epsilon: float = 0.01, delta: float = 0.05,
                 budget: int | None = None, cap: float = BET_CAP) -> None:
        if n_prompts < 1:
            raise ValueError("no prompts to search")
        self.epsilon, self.delta = epsilon, delta
        self.population = population
        self.budget = population if budget is None else min(budget, population)
        self.alive = np.ones(n_prompts, dtype=bool)
        self.sums = np.zeros(n_prompts)
        self.read = 0
        self.cells = 0
        self.bounds = PairBounds(n_prompts, population, delta / max(n_prompts - 1, 1), cap)

    def observe(self, scores: np.ndarray) -> None:
        """One input's scores, [P] in [0, 1]; those of dropped prompts are not read."""
        scores = np.where(self.alive, np.asarray(scores, dtype=np.float64), np.nan)
        if np.isnan(scores[self.alive]).any():
            raise ValueError("every surviving prompt needs a score for this input")
        self.bounds.update(scores)
        self.sums[self.alive] += scores[self.alive]
        self.cells += int(self.alive.sum())
        self.read += 1

    def decide(self) -> Decision:
        """Drop what is surely worse, then say whether to stop."""
        lower, _ = self.bounds.difference_bounds()
        survivors = np.flatnonzero(self.alive)
        if len(survivors) > 1:
            sub = lower[np.ix_(survivors, survivors)]
            beaten = np.nanmax(np.where(np.isnan(sub), -np.inf, sub), axis=0) > 0  # some q: mu_q - mu_p > 0
            self.alive[survivors[beaten]] = False
            survivors = np.flatnonzero(self.alive)
        means = self.sums[survivors] / max(self.read, 1)
        leader = int(survivors[np.argmax(means)])
        others = survivors[survivors != leader]
        worst = float(lower[leader, others].min()) if len(others) else 0.0
        reason: StopReason | None = None
        if len(survivors) == 1:
            reason = "one_left"
        elif worst > -self.epsilon:
            reason = "within_epsilon"
        elif self.read >= self.population:
            reason = "exhausted"
        elif self.read >= self.budget:
            reason = "budget"
        return Decision(leader, tuple(int(s) for s in survivors), reason, worst)


def search(scores: np.ndarray, order: np.ndarray, *, epsilon: float = 0.01, delta: float = 0.05,
           budget: int | None = None, round_size: int = 1) -> tuple[Decision, int]:
    """Run :class:`BestPromptSearch` over a known score matrix [P, N] in ``order``, deciding after
    every ``round_size`` inputs; returns the decision and the cells read (a replay of a saved
    table counts what a live run would have scored)."""
    n_prompts, population = scores.shape
    state = BestPromptSearch(n_prompts, population, epsilon=epsilon, delta=delta, budget=budget)
    for k, x in enumerate(order, start=1):
        state.observe(scores[:, x])
        if k % round_size == 0 or k == len(order):
            decision = state.decide()
            if decision.reason is not None:
                return decision, state.cells
    return state.decide(), state.cells
