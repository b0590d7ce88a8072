"""What the tests of a method hand it: a random ScoreTable, and a selection context whose
scorer is the fake backend (a method that asks the model itself, as Self-Select does, reaches
it there)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from promptsel.backend import Backend
from promptsel.model.prompts import load_prompt_set
from promptsel.model.scoretable import ScoreTable
from promptsel.selector import SelectionContext

#: prompts, examples, classes of the random tables
P, N, C = 5, 40, 3


def make_table(rng: np.random.Generator) -> ScoreTable:
    logits = rng.normal(size=(P, N, C)) * rng.uniform(0.2, 3.0, size=(P, 1, 1))
    return ScoreTable(prompt_ids=[f"p{i}" for i in range(P)], class_names=["a", "b", "c"], class_logprobs=logits,
                      prompt_nll=rng.uniform(1, 5, size=(P, N)), labels=rng.integers(0, C, size=N))


def fake_context(folder: Path, backend: Backend) -> SelectionContext:
    """P prompts ``Variant i: {{text}}`` (ids p0..p4, classes a, b, c), scored by ``backend``
    with a cache in ``folder``."""
    from promptsel.selection.cache import Cache
    from promptsel.selection.scoring import Scorer

    body = "[defaults]\nchat = false\n" + "".join(
        f'[[prompt]]\nid = "p{i}"\ntemplate = "Variant {i}: {{{{text}}}}"\nanswer_choices = {{ a = ["x"], b = ["y"], c = ["z"] }}\n'
        for i in range(P)
    )
    (folder / "p.toml").write_text(body)
    ps = load_prompt_set(folder / "p.toml")
    return SelectionContext(prompt_set=ps, scorer=Scorer(backend, Cache(folder / "c.sqlite")), seed=0)
