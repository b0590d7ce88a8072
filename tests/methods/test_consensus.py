"""consensus: hand-computed aggregations, its members, and an independent recomputation on the
UPS fixture. The selector contract (order invariance, determinism) runs in
tests/contracts/test_selector_contract.py, which picks up every registered method."""

from __future__ import annotations

import numpy as np
import pytest

from promptsel.errors import UsageError
from promptsel.model.scoretable import ScoreTable
from promptsel.plugins import registries
from promptsel.selector import SelectionContext
from promptsel_builtin.consensus import DEFAULT_MEMBERS, Consensus, aggregate, unit_ranks
from tests.shared_data import shared_path

CTX = SelectionContext()


def test_registered():
    assert registries().selectors.get("consensus") is Consensus
    assert Consensus.bootstrap is None  # its members are per-input statistics


def test_unit_ranks_average_ties():
    np.testing.assert_allclose(unit_ranks(np.array([10.0, 30, 20, 30])), [0, 5 / 6, 1 / 3, 5 / 6])
    np.testing.assert_allclose(unit_ranks(np.array([4.0])), [1.0])


def test_borda():
    # Opposite rankings cancel; a third member breaks the tie.
    np.testing.assert_allclose(aggregate(np.array([[3, 2, 1], [1, 2, 3]]), "borda"), [0.5, 0.5, 0.5])
    np.testing.assert_allclose(aggregate(np.array([[3, 2, 1], [1, 2, 3], [3, 1, 2]]), "borda"), [2 / 3, 1 / 3, 1 / 2])


def test_zscore():
    # Scale and shift do not matter: [1, 2, 3] and [10, 20, 30] both standardize to
    # [-sqrt(3/2), 0, sqrt(3/2)] (population standard deviation sqrt(2/3)).
    z = np.sqrt(1.5)
    np.testing.assert_allclose(aggregate(np.array([[1, 2, 3], [10, 20, 30]]), "zscore"), [-z, 0, z])
    # A constant member adds nothing.
    np.testing.assert_allclose(aggregate(np.array([[1, 2, 3], [5, 5, 5]]), "zscore"), [-z / 2, 0, z / 2])


def test_copeland():
    # Pairs: 0 beats 1 (two members of three) and 2 (two of three); 1 beats 2 (two of three).
    members = np.array([[3, 2, 1], [3, 1, 2], [1, 3, 2]])
    np.testing.assert_allclose(aggregate(members, "copeland"), [1.0, 0.5, 0.0])
    # A pairwise draw gives both half a win.
    np.testing.assert_allclose(aggregate(np.array([[2, 1], [1, 2]]), "copeland"), [0.5, 0.5])


def test_unknown_aggregation():
    with pytest.raises(UsageError, match="Unknown consensus aggregation"):
        aggregate(np.ones((2, 3)), "kemeny")
    with pytest.raises(UsageError, match="aggregate must be one of zscore, borda, copeland"):
        Consensus(aggregate="mean")


def table_with_nll(nll: bool = True) -> ScoreTable:
    rng = np.random.default_rng(0)
    return ScoreTable(prompt_ids=[f"p{i}" for i in range(4)], class_names=["a", "b"],
                      class_logprobs=rng.normal(size=(4, 30, 2)) * 2,
                      prompt_nll=rng.uniform(1, 4, (4, 30)) if nll else None)


def standardized(scores: np.ndarray) -> np.ndarray:
    return (scores - scores.mean()) / scores.std() if scores.std() > 0 else np.zeros_like(scores)


@pytest.mark.parametrize("nll", [True, False])
def test_default_is_mean_zscore_of_mi_globale_locale_spell(nll):
    table = table_with_nll(nll)
    names = [m for m in DEFAULT_MEMBERS if nll or m != "spell"]
    assert set(DEFAULT_MEMBERS) == {"mi", "globale", "locale", "spell"}
    want = np.mean([standardized(registries().selectors.get(m)().score(table, CTX)) for m in names], axis=0)
    np.testing.assert_allclose(Consensus().score(table, CTX), want, atol=1e-12)


def test_members_option():
    table = table_with_nll()
    mi = registries().selectors.get("mi")().score(table, CTX)
    zps = registries().selectors.get("zps-vote")().score(table, CTX)
    got = Consensus(members="mi, zps-vote").score(table, CTX)
    np.testing.assert_allclose(got, (standardized(mi) + standardized(zps)) / 2, atol=1e-12)
    for bad in ("consensus", "self-select", "fute-tupate"):
        with pytest.raises(UsageError, match="cannot take"):
            Consensus(members=f"mi,{bad}").score(table, CTX)
    with pytest.raises(UsageError, match="no member"):
        Consensus(members="spell").score(table_with_nll(False), CTX)


def test_fixture_choice_matches_an_independent_recomputation():
    # Prompts 00-12 of the UPS fixture, every member from its own formula (methods.md §2).
    with np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz")) as d:
        lp, p_xt = d["log_prob"][:13].astype(float), d["p_xt"][:13]
    table = ScoreTable(prompt_ids=[f"p{i}" for i in range(13)], class_names=["n", "p"], class_logprobs=lp,
                       prompt_nll=-np.log(p_xt))
    probs = np.exp(lp - np.logaddexp(lp[..., :1], lp[..., 1:]))

    def h(p):
        return -(p * np.log(np.where(p > 0, p, 1))).sum(-1)

    mi = h(probs.mean(1)) - h(probs).mean(1)
    hist = np.stack([(probs.argmax(-1) == c).mean(1) for c in (0, 1)], -1)
    globale = h(hist)
    locale = h(probs).mean(1)
    spell = -(1 / p_xt).mean(1)  # minus mean perplexity
    want = np.mean([standardized(s) for s in (mi, globale, locale, spell)], axis=0)
    got = Consensus().score(table, CTX)
    np.testing.assert_allclose(got, want, atol=1e-9)
    assert int(np.argmax(got)) == int(np.argmax(want))
