"""One contract for every registered method (scikit-learn's common-checks idea).

Known exceptions are declared with their reason instead of being skipped silently.
"""

from __future__ import annotations

import numpy as np
import pytest

from promptsel.model.scoretable import ScoreTable
from promptsel.plugins import registries
from tests.method_inputs import P, fake_context, make_table

#: method -> check -> why it is expected to fail
EXPECTED_FAILURES = {
    "self-select": {
        "order_invariant": "the LLM sees the candidates in an order; the seeded permutations are drawn over file positions",
    },
}
#: Every FUTE method (one per embedder): it scores from task embeddings it trains on the run's
#: inputs (a dataset's train split, the unlabeled corpus through the backend), never from a
#: table alone. Its own checks are in tests/fute/ (test_pipeline.py, test_premise.py).
FUTE_FAILURES = {check: "FUTE needs a run's inputs (a dataset and U), not a bare ScoreTable"
                 for check in ("finite_and_deterministic", "order_invariant")}


def methods() -> list[str]:
    from promptsel import plugins

    plugins.reset()
    names = registries().selectors.names()
    plugins.reset()
    return names


@pytest.fixture
def context(tmp_path, fake_backend_plugin):
    return fake_context(tmp_path, fake_backend_plugin())


def cases(check: str) -> list:
    """Every method, those expected to fail ``check`` marked ``xfail(strict=True)``: the check
    still runs, and one that starts passing fails the run (XPASS) until its entry is removed."""
    from promptsel import plugins
    from promptsel.fute.method import FuteMethod

    out = []
    for method in methods():
        declared = FUTE_FAILURES if issubclass(registries().selectors.get(method), FuteMethod) else EXPECTED_FAILURES.get(method, {})
        reason = declared.get(check)
        out.append(pytest.param(method, marks=pytest.mark.xfail(strict=True, reason=reason)) if reason else method)
    plugins.reset()
    return out


@pytest.mark.parametrize("method", cases("finite_and_deterministic"))
def test_one_finite_score_per_prompt_and_deterministic(method, context):
    table = make_table(np.random.default_rng(1))
    cls = registries().selectors.get(method)
    first = np.asarray(cls().score(table, context), dtype=float)
    assert first.shape == (P,)
    assert np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, np.asarray(cls().score(table, context), dtype=float))
    assert cls.description and cls.needs


@pytest.mark.parametrize("method", cases("order_invariant"))
def test_scores_do_not_depend_on_prompt_order(method, context):
    rng = np.random.default_rng(2)
    table = make_table(rng)
    perm = rng.permutation(P)
    # Build the permuted table from the same raw arrays (normalising twice shifts the last bits).
    permuted = ScoreTable(prompt_ids=[table.prompt_ids[i] for i in perm], class_names=table.class_names,
                          class_logprobs=table.class_logprobs[perm], prompt_nll=table.prompt_nll[perm], labels=table.labels)
    table = ScoreTable(prompt_ids=table.prompt_ids, class_names=table.class_names, class_logprobs=table.class_logprobs,
                       prompt_nll=table.prompt_nll, labels=table.labels)
    cls = registries().selectors.get(method)
    np.testing.assert_allclose(cls().score(permuted, context), cls().score(table, context)[perm], rtol=1e-9, atol=1e-12)
