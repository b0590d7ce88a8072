"""Small tasks for tiny surrogates: the premise/hypothesis pairs, random soft targets, and an
MTE's training data built from them. Imports torch (through promptsel.surrogate): import it
after ``pytest.importorskip("torch")``."""

from __future__ import annotations

import numpy as np

from promptsel.surrogate import TaskData

PAIRS = [
    {"premise": "The movie was a delight from start to finish.", "hypothesis": "I laughed and cried."},
    {"premise": "The plot is thin and the acting is wooden.", "hypothesis": "good bad great"},
    {"premise": "A tedious mess.", "hypothesis": "The answer is positive."},
    {"premise": "I left wanting to see it again.", "hypothesis": "wonderful boring fine"},
    {"premise": "good", "hypothesis": "The acting is wooden and the movie was a tedious mess that never figures out what it wants."},
    {"premise": "The answer is negative.", "hypothesis": "terrible"},
]


def soft_targets(n: int, c: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(c), size=n)


def mte_data(n_repeat: int = 2, c: int = 3) -> TaskData:
    inputs = PAIRS * n_repeat
    return TaskData("mte", inputs, ("premise", "hypothesis"), c, targets=soft_targets(len(inputs), c))
