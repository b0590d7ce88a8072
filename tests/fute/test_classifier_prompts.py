"""The variants the classifier benchmark builds from a prompt (``bench/lib/classifier_prompts.py``):
a flip changes exactly the hashed share of decisions, a temperature changes none, an inversion
all, and the choice of flipped texts does not depend on their order."""

from __future__ import annotations

import numpy as np
import pytest


def base(texts):
    # p(positive) from the text's length: a fixed, known prompt.
    return np.array([0.9 if len(t) % 2 else 0.2 for t in texts])


TEXTS = [f"sentence number {i}" + "!" * (i % 3) for i in range(2000)]


def test_a_flip_changes_the_hashed_share_and_nothing_else():
    from bench.lib.classifier_prompts import flipped, hashed_share

    chosen = hashed_share(TEXTS, 0.3, salt="x")
    # A uniform hash: 30 % of 2000 within 4 standard errors (sd = sqrt(2000 * 0.3 * 0.7) = 20.5).
    assert abs(chosen.sum() - 600) < 82
    out = flipped(base, 0.3, salt="x")(TEXTS)
    p = base(TEXTS)
    assert np.allclose(out[chosen], 1 - p[chosen]) and np.allclose(out[~chosen], p[~chosen])
    # The same texts in reverse order are flipped the same way.
    assert np.array_equal(hashed_share(TEXTS[::-1], 0.3, salt="x"), chosen[::-1])
    assert not np.array_equal(hashed_share(TEXTS, 0.3, salt="y"), chosen)


def test_temperature_keeps_decisions_and_moves_confidence():
    from bench.lib.classifier_prompts import tempered

    p = base(TEXTS)
    sharp, flat = tempered(base, 0.25)(TEXTS), tempered(base, 4.0)(TEXTS)
    assert np.array_equal(sharp > 0.5, p > 0.5) and np.array_equal(flat > 0.5, p > 0.5)
    # logit(0.9) = ln 9; at T = 4: sigmoid(ln 9 / 4) = 1 / (1 + 9 ** -0.25).
    assert flat[p == 0.9][0] == pytest.approx(1 / (1 + 9 ** -0.25))
    assert sharp[p == 0.9][0] == pytest.approx(1 / (1 + 9.0 ** -4))


def test_rules_and_constants():
    from bench.lib.classifier_prompts import constant, rule

    assert constant(0.7)(["a", "b"]).tolist() == [0.7, 0.7]
    assert rule(lambda t: "?" in t)(["why?", "no"]).tolist() == pytest.approx([0.8, 0.2])
