"""What a scoring pass will cost and how far it is: events for whoever shows progress.

The library never prints. It tells a :class:`Progress` what it is about to do (:class:`Plan`,
before the first backend call), what it has done (per sequence), and how long the rest should
take (:class:`Meter`, from the work done so far); the command line's ``RichProgress`` prints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

#: A generated token costs about this many evaluated prompt tokens (one token per sequence and
#: decode, even in a batch); only the time estimate before any generation has run uses it.
GENERATED_TOKEN_COST = 1.5
#: The first estimate of the whole pass waits for this much work (seconds and share of the total).
ESTIMATE_AFTER_SECONDS = 5.0
ESTIMATE_AFTER_SHARE = 0.002


def _clock() -> float:
    return time.perf_counter()


@dataclass(frozen=True)
class Plan:
    """The cost of a scoring pass, counted before it starts."""

    #: Requests to compute (label scores, SPELL sequences, CoT generations), after cache hits.
    sequences: int
    #: Requests answered by the result cache.
    cached: int
    #: Tokens of the texts to compute (CoT follow-ups: their first turn, the longest reasoning
    #: and the follow-up turn).
    tokens: int
    #: Tokens the backend will evaluate: ``tokens`` less the prefixes shared with the text before
    #: (for backends that reuse their KV cache), estimated from characters.
    evaluate: int
    #: Tokens to generate at most (CoT reasoning).
    generate: int
    #: ``True`` when token counts come from the model's tokenizer, ``False`` when estimated from characters.
    exact: bool = True
    #: Inputs (examples) the pass scores every prompt on.
    inputs: int = 0
    #: Prompts the pass scores (a large set of variants is told about ``--adaptive``).
    prompts: int = 0

    @property
    def work(self) -> float:
        """The pass's work in evaluated-token units."""
        return self.evaluate + GENERATED_TOKEN_COST * self.generate


class Progress:
    """Progress reporting without a terminal: a no-op. The CLI passes a rich-backed one.

    Every event but ``start``/``advance``/``done`` has a default, so older implementations keep working.
    """

    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def done(self) -> None:
        pass

    def plan(self, plan: Plan) -> None:
        """What the pass that follows will cost; called before its first backend call."""

    def estimate(self, seconds: float, remaining: float) -> None:
        """The expected duration of the whole pass and the time left, in seconds. Called after
        the first batches (once ``Meter`` has enough to go on), then after every batch."""

    def note(self, message: str) -> None:
        """A message for the person running promptsel (the library itself never prints)."""


class Meter:
    """Work done against the plan, and the time the rest should take at the rate seen so far."""

    def __init__(self, progress: Progress, work: float) -> None:
        self.progress = progress
        self.total = max(work, 1.0)
        self.done = 0.0
        self.began = _clock()

    def add(self, work: float) -> None:
        self.done += work
        elapsed = _clock() - self.began
        if self.done <= 0 or (elapsed < ESTIMATE_AFTER_SECONDS and self.done < ESTIMATE_AFTER_SHARE * self.total):
            return
        total = elapsed * max(self.total, self.done) / self.done
        self.progress.estimate(total, max(total - elapsed, 0.0))
