"""bench/bench_expand.py's "which axes mattered", on a table small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pytest

from bench.bench_expand import axis_spread


def _table(correct: list[list[int]], ids: list[str], unscored_after: int) -> dict:
    """[P, N] right/wrong -> a saved adaptive table: class 1 is right, every label is 1; inputs
    from ``unscored_after`` on are NaN for the last prompt (dropped early), so not common."""
    c = np.asarray(correct, dtype=float)
    lp = np.stack([1 - c, c], axis=-1)
    lp[-1, unscored_after:] = np.nan
    return {"class_logprobs": lp, "labels": np.ones(c.shape[1], dtype=int), "prompt_ids": np.asarray(ids)}


def test_value_means_are_read_on_the_common_inputs_and_the_shuffled_spread_judges_them():
    # Four inputs; the last variant was read on the first two only, so two inputs are common.
    # On them: v1 2/2, v2 2/2, v3 0/2, v4 0/2 (v4's wrong answers on inputs 3-4 are never read).
    ids = ["p", "p.v1", "p.v2", "p.v3", "p.v4"]
    table = _table([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], ids, unscored_after=2)
    prompts = [{"id": "p"}] + [{"id": i, "parent": "p", "axes": axes} for i, axes in zip(ids[1:], [
        {"labels": "good/bad", "casing": "upper"}, {"labels": "good/bad", "casing": "lower"},
        {"labels": "yes/no", "casing": "upper"}, {"labels": "yes/no", "casing": "n/a"}])]
    out = axis_spread(prompts, table)
    assert out["common_inputs"] == 2
    labels, casing = out["axes"]["labels"], out["axes"]["casing"]
    assert labels["values"] == {"good/bad": {"n": 2, "mean": 1.0}, "yes/no": {"n": 2, "mean": 0.0}}
    assert labels["spread"] == 1.0
    # casing: upper {1, 0} -> 0.5, lower {1} -> 1.0; "n/a" is left out
    assert casing["values"] == {"lower": {"n": 1, "mean": 1.0}, "upper": {"n": 2, "mean": 0.5}}
    assert casing["spread"] == 0.5
    # labels splits the variants perfectly: of the 4!/(2!2!) = 6 equally likely shuffles of its
    # values, 2 give a spread of 1 (this split and its mirror): p = (1 + 2000·2/6) / 2001 ≈ 1/3.
    assert labels["p"] == pytest.approx(1 / 3, abs=0.04)
    # casing's three variants: every shuffle puts one variant alone, spread 0.5 or 1: p near 1.
    assert casing["p"] > 0.9
