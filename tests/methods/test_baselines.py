"""Formula checks for the baseline selectors (methods.md §2) and the SST-2 regression fixture (§4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from promptsel.errors import CapabilityError, UsageError
from promptsel.model import metrics
from promptsel.model.scoretable import ScoreTable
from promptsel.selector import NEEDS_CLASS_LOGPROBS, NEEDS_PROMPT_NLL, SelectionContext
from promptsel_builtin.baselines import (
    SELECTORS,
    GlobalEntropy,
    LocalEntropy,
    MutualInformation,
    Spell,
    ZpsLog,
    ZpsProb,
    ZpsVote,
    confident_prompts,
)
from tests.shared_data import shared_path

CTX = SelectionContext()
LN2 = math.log(2)


def H(*p):
    """Entropy in nats, written out: the reference the selectors are checked against."""
    return -sum(q * math.log(q) for q in p if q > 0)


def binary_table(p_class1, prompt_nll=None):
    """A two-class table from p(class 1) per [prompt][example]."""
    p1 = np.asarray(p_class1, dtype=float)
    probs = np.stack([1 - p1, p1], axis=-1)
    return ScoreTable(
        prompt_ids=[f"p{i}" for i in range(p1.shape[0])],
        class_names=["negative", "positive"],
        class_logprobs=np.log(probs),
        prompt_nll=prompt_nll,
    )


def test_registers_every_method():
    from promptsel.plugins import registries  # the real entry-point path

    registered = {e.name: e.target for e in registries().selectors if e.target in SELECTORS}
    assert list(registered.values()) == list(SELECTORS)
    assert set(registered) == {
        "mi",
        "globale",
        "locale",
        "zps-log",
        "zps-prob",
        "zps-vote",
        "spell",
    }
    for cls in registered.values():
        assert cls.description and "\n" not in cls.description
        expected = {NEEDS_PROMPT_NLL} if cls is Spell else {NEEDS_CLASS_LOGPROBS}
        assert cls.needs == expected


def test_mutual_information():
    table = binary_table(
        [
            [0.5, 0.5],  # marginal (.5,.5), each row (.5,.5): MI = ln2 - ln2 = 0
            [0.9, 0.1],  # marginal (.5,.5), rows H(.9,.1): MI = ln2 - 0.325083 = 0.368064
            [0.8, 0.6],  # marginal (.7,.3): MI = H(.7,.3) - (H(.8,.2) + H(.6,.4)) / 2 = 0.024138
        ]
    )
    expected = [0.0, LN2 - H(0.9, 0.1), H(0.7, 0.3) - (H(0.8, 0.2) + H(0.6, 0.4)) / 2]
    np.testing.assert_allclose(MutualInformation().score(table, CTX), expected, atol=1e-12)
    assert expected[1] == pytest.approx(0.368064, abs=1e-6)


def test_global_entropy():
    table = binary_table(
        [
            [0.7, 0.8, 0.3, 0.1],  # predicts 1, 1, 0, 0 -> histogram (.5,.5) -> ln 2
            [0.6, 0.2, 0.3, 0.4],  # 1, 0, 0, 0 -> (.75,.25) -> 0.562335
            [0.9, 0.6, 0.7, 0.8],  # all 1 -> (0, 1) -> 0 (0 log 0 = 0, no NaN)
            [0.5, 0.5, 0.5, 0.9],  # exact ties go to class 0: 0, 0, 0, 1 -> (.75,.25)
        ]
    )
    expected = [LN2, H(0.75, 0.25), 0.0, H(0.75, 0.25)]
    np.testing.assert_allclose(GlobalEntropy().score(table, CTX), expected, atol=1e-12)


def test_global_entropy_three_classes():
    probs = np.array([[[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.1, 0.1, 0.8]]])
    table = ScoreTable(["p0"], ["a", "b", "c"], np.log(probs))
    # predictions 0, 1, 2, 2 -> histogram (.25, .25, .5) = 1.039721 nats
    assert GlobalEntropy().score(table, CTX)[0] == pytest.approx(H(0.25, 0.25, 0.5))


def test_local_entropy_and_negate():
    table = binary_table(
        [
            [0.5, 0.9],  # (ln2 + H(.9,.1)) / 2 = 0.509115
            [0.9, 0.1],  # H(.9,.1) = 0.325083
        ]
    )
    local = [(LN2 + H(0.9, 0.1)) / 2, H(0.9, 0.1)]
    np.testing.assert_allclose(LocalEntropy().score(table, CTX), local, atol=1e-12)
    np.testing.assert_allclose(
        LocalEntropy(negate=True).score(table, CTX), [-v for v in local], atol=1e-12
    )
    np.testing.assert_allclose(
        LocalEntropy(negate="true").score(table, CTX), [-v for v in local], atol=1e-12
    )
    np.testing.assert_allclose(LocalEntropy(negate="false").score(table, CTX), local, atol=1e-12)
    with pytest.raises(UsageError, match="negate"):
        LocalEntropy(negate="maybe").score(table, CTX)


# p(class 1) for 3 prompts x 4 examples, chosen so the three ZPS ensembles disagree.
#   example 0: [.6, .6, .05]  mean p1 .417 -> 0 | mean log: p1 -1.339, p0 -0.628 -> 0 | votes 1,1,0 -> 1
#   example 1: [.9, .9, .01]  mean p1 .603 -> 1 | mean log: p1 -1.605, p0 -1.538 -> 0 | votes 1,1,0 -> 1
#   example 2: [.45,.45,.99]  mean p1 .630 -> 1 | mean log: p1 -0.536, p0 -1.934 -> 1 | votes 0,0,1 -> 0
#   example 3: [.2, .3, .1]   everything -> 0
# Predictions: prompts 0 and 1 -> 1,1,0,0; prompt 2 -> 0,0,1,0.
ZPS_CASE = [[0.6, 0.9, 0.45, 0.2], [0.6, 0.9, 0.45, 0.3], [0.05, 0.01, 0.99, 0.1]]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (ZpsLog, [0.25, 0.25, 1.0]),  # pseudo-labels 0,0,1,0
        (ZpsProb, [0.5, 0.5, 0.75]),  # pseudo-labels 0,1,1,0
        (ZpsVote, [1.0, 1.0, 0.25]),  # pseudo-labels 1,1,0,0
    ],
)
def test_zps_ensembles_without_filter(selector, expected):
    table = binary_table(ZPS_CASE)
    assert selector(filter=False).score(table, CTX).tolist() == expected


def test_zps_vote_tie_goes_to_lowest_class():
    # example 0: one vote each -> class 0; example 1: both vote 0. Pseudo-labels 0, 0.
    table = binary_table([[0.8, 0.3], [0.2, 0.3]])
    assert ZpsVote(filter=False).score(table, CTX).tolist() == [0.5, 1.0]


# Two confident prompts (mean |p1 - p0| = .9, .8) and three unsure ones (.1, .2, .15).
# 2-means keeps the confident pair; their vote gives pseudo-labels 1, 0, while all five
# prompts together vote 0, 1 (three against two).
FILTER_CASE = [[0.95, 0.05], [0.9, 0.1], [0.45, 0.55], [0.4, 0.6], [0.45, 0.6]]


def test_zps_filter_keeps_confident_cluster():
    table = binary_table(FILTER_CASE)
    assert confident_prompts(table.probs).tolist() == [True, True, False, False, False]
    # Every prompt is scored, kept or not.
    assert ZpsVote().score(table, CTX).tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert ZpsProb().score(table, CTX).tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert ZpsVote(filter=False).score(table, CTX).tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]


def test_exact_two_means_matches_sklearn_kmeans():
    # The filter's exact 1-D 2-means against scikit-learn's KMeans (as FUTE's code calls it) on
    # random confidences of every shape the filter meets: few or many prompts, clumps, outliers.
    from sklearn.cluster import KMeans

    from promptsel_builtin.baselines import two_means_split

    rng = np.random.default_rng(0)
    same = ties = stuck = 0
    for trial in range(200):
        n = int(rng.integers(2, 40))
        kind = trial % 3
        x = rng.uniform(0, 1, n) if kind == 0 else rng.beta(0.3, 2, n) if kind == 1 else np.round(rng.uniform(0, 1, n), 1)
        x = np.sort(x)
        if np.unique(x).size < 2:
            continue
        km = KMeans(n_clusters=2, random_state=0, n_init=10).fit(x[:, None])
        want = km.labels_ == km.cluster_centers_[:, 0].argmax()
        got = np.arange(n) >= two_means_split(x)

        def sse(upper, x=x):
            return sum(((x[m] - x[m].mean()) ** 2).sum() for m in (upper, ~upper))

        assert sse(got) <= sse(want) + 1e-12, x  # never worse than KMeans
        if got.tolist() == want.tolist():
            same += 1
        elif sse(got) < sse(want) - 1e-12:
            stuck += 1  # KMeans stopped at a local optimum despite its 10 restarts
        else:
            ties += 1  # two splits tie exactly (the rounded values make some)
    assert same >= 180, (same, ties, stuck)


def test_zps_filter_keeps_all_without_two_distinct_confidences():
    same = binary_table([[0.7, 0.3], [0.3, 0.7], [0.7, 0.7]])  # every confidence is 0.4
    assert confident_prompts(same.probs).all()
    assert confident_prompts(binary_table([[0.9, 0.2]]).probs).tolist() == [True]


def test_zps_is_invariant_to_prompt_order():
    rng = np.random.default_rng(0)
    p1 = rng.uniform(0.05, 0.95, size=(9, 30))
    perm = rng.permutation(9)
    for selector in (ZpsLog(), ZpsProb(), ZpsVote()):
        scores = selector.score(binary_table(p1), CTX)
        assert np.array_equal(selector.score(binary_table(p1[perm]), CTX), scores[perm])


def test_spell_averages_perplexities_not_their_logs():
    nll = np.log([[1.0, 9.0], [4.0, 4.0]])
    # mean PPL: prompt 0 (1 + 9) / 2 = 5, prompt 1 4 -> prompt 1 wins.
    # (Averaging log-PPL would prefer prompt 0: geometric mean 3 < 4.)
    table = binary_table([[0.5, 0.5], [0.5, 0.5]], prompt_nll=nll)
    np.testing.assert_allclose(Spell().score(table, CTX), [-5.0, -4.0])


def test_spell_without_prompt_nll():
    with pytest.raises(CapabilityError, match="prompt_nll"):
        Spell().score(binary_table([[0.5, 0.5]]), CTX)


# ---------------------------------------------------------------------------------------------
# methods.md §4: Yang et al.'s released OPT-2.7B scores on SST-2 validation (872 examples).

N_EXAMPLES = 872


@pytest.fixture(scope="module")
def fixture_arrays():
    with np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz")) as data:
        return {key: data[key] for key in data.files}


def fixture_table(arrays, n_prompts):
    return ScoreTable(
        prompt_ids=[str(p) for p in arrays["prompt"][:n_prompts]],
        class_names=["negative", "positive"],
        class_logprobs=arrays["log_prob"][:n_prompts],
        prompt_nll=-np.log(arrays["p_xt"][:n_prompts]),
        labels=arrays["targets"],
    )


FIXTURE_METHODS = {
    "MI": MutualInformation(),
    "GlobalE": GlobalEntropy(),
    "LocalE": LocalEntropy(),
    "SPELL": Spell(),
    "ZPS-Log": ZpsLog(),
    "ZPS-Prob": ZpsProb(),
    "ZPS-Vote": ZpsVote(),
    "ZPS-Log no filter": ZpsLog(filter=False),
    "ZPS-Prob no filter": ZpsProb(filter=False),
    "ZPS-Vote no filter": ZpsVote(filter=False),
}

# Selected accuracy as methods.md §4 prints it. GlobalE's 0.801 and 0.770 are not 3-decimal
# roundings of any accuracy on 872 examples (698/872 = 0.80046, 699/872 = 0.80161;
# 671/872 = 0.76950, 672/872 = 0.77064): they look like 0.80046 and 0.76950 rounded twice
# (via 0.8005 and 0.7695). The check below asks for the achievable accuracy nearest to the
# printed value, and for an exact 3-decimal match everywhere else.
PRINTED_SELECTED = {
    13: {"MI": 0.591, "GlobalE": 0.801, "LocalE": 0.734, "SPELL": 0.734,
         "ZPS-Log": 0.540, "ZPS-Prob": 0.540, "ZPS-Vote": 0.540},
    100: {"MI": 0.591, "GlobalE": 0.770, "LocalE": 0.592, "SPELL": 0.626,
          "ZPS-Log": 0.540, "ZPS-Prob": 0.514, "ZPS-Vote": 0.509,
          "ZPS-Log no filter": 0.717, "ZPS-Prob no filter": 0.717, "ZPS-Vote no filter": 0.717},
}  # fmt: skip
DOUBLE_ROUNDED = {"GlobalE"}


def test_fixture_accuracy_matches_predictions(fixture_arrays):
    table = fixture_table(fixture_arrays, 100)
    acc = metrics.performance(table.predictions, table.labels)
    np.testing.assert_allclose(acc, fixture_arrays["accuracy"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_prompts", [13, 100])
def test_fixture_random_and_oracle(fixture_arrays, n_prompts):
    acc = fixture_arrays["accuracy"][:n_prompts]
    if n_prompts == 13:
        assert (round(acc.mean(), 3), round(acc.max(), 3)) == (0.682, 0.867)
    else:
        assert (round(acc.mean(), 3), round(acc.max(), 3)) == (0.641, 0.867)
        assert round(acc.mean() / acc.max(), 3) == 0.740
        assert round(metrics.random_ndcg(acc, "raw"), 3) == 0.936


@pytest.mark.parametrize(
    ("n_prompts", "method"), [(n, m) for n, table in PRINTED_SELECTED.items() for m in table]
)
def test_fixture_selected_accuracy(fixture_arrays, n_prompts, method):
    printed = PRINTED_SELECTED[n_prompts][method]
    table = fixture_table(fixture_arrays, n_prompts)
    acc = fixture_arrays["accuracy"][:n_prompts]
    chosen, _ = metrics.choose(FIXTURE_METHODS[method].score(table, CTX))
    assert acc[chosen] == pytest.approx(round(printed * N_EXAMPLES) / N_EXAMPLES, abs=1e-12)
    if method not in DOUBLE_ROUNDED:
        assert round(acc[chosen], 3) == printed


def test_fixture_kmeans_keeps_18_of_100(fixture_arrays):
    assert confident_prompts(fixture_table(fixture_arrays, 100).probs).sum() == 18


# methods.md §4 "rate" and "NDCG (std)" columns for all 100 prompts. "NDCG (std)" is the "raw"
# variant: relevance = accuracy, gain 2**acc - 1, log2 discount, full list.
PRINTED_RATE_NDCG = {
    "MI": (0.681, 0.963),
    "GlobalE": (0.888, 0.981),
    "LocalE": (0.683, 0.943),
    "SPELL": (0.722, 0.921),
    "ZPS-Log": (0.62, 0.90),
    "ZPS-Prob": (0.59, 0.90),
    "ZPS-Vote": (0.59, 0.90),
}


@pytest.mark.parametrize("method", list(PRINTED_RATE_NDCG))
def test_fixture_rate_and_ndcg(fixture_arrays, method):
    rate_printed, ndcg_printed = PRINTED_RATE_NDCG[method]
    digits = 2 if method.startswith("ZPS") else 3
    table = fixture_table(fixture_arrays, 100)
    acc = fixture_arrays["accuracy"]
    scores = FIXTURE_METHODS[method].score(table, CTX)
    chosen, _ = metrics.choose(scores)
    assert round(metrics.performance_rate(acc[chosen], acc), digits) == rate_printed
    got = metrics.ndcg(scores, acc, "raw")
    if method == "GlobalE":
        # GlobalE ties 11 prompts' scores (equal prediction histograms). Averaged over tied
        # orders its NDCG is 0.98042; methods.md's 0.981 is what breaking those ties in file
        # order gives (0.98069). Within one unit of the last printed digit:
        assert got == pytest.approx(ndcg_printed, abs=1e-3)
    else:
        assert round(got, digits) == ndcg_printed


def test_fixture_zps_without_filter(fixture_arrays):
    table = fixture_table(fixture_arrays, 100)
    acc = fixture_arrays["accuracy"]
    for method in ("ZPS-Log no filter", "ZPS-Prob no filter", "ZPS-Vote no filter"):
        scores = FIXTURE_METHODS[method].score(table, CTX)
        chosen, _ = metrics.choose(scores)
        assert round(metrics.performance_rate(acc[chosen], acc), 3) == 0.827
        # printed as the range 0.954-0.963 over the three ensembles
        assert 0.954 - 5e-4 <= metrics.ndcg(scores, acc, "raw") <= 0.963 + 5e-4


def test_fixture_scores_invariant_to_prompt_order(fixture_arrays):
    table = fixture_table(fixture_arrays, 100)
    perm = np.random.default_rng(3).permutation(100)
    shuffled = fixture_table(
        {**fixture_arrays, **{k: fixture_arrays[k][perm] for k in ("log_prob", "p_xt", "prompt")}},
        100,
    )
    for selector in FIXTURE_METHODS.values():
        # Bitwise equal: a last-bit difference could already flip a near-tie between prompts.
        assert np.array_equal(selector.score(shuffled, CTX), selector.score(table, CTX)[perm])


# ---------------------------------------------------------------------------------------------
# Mutants that survived tests/mutation/run.sh (tests/mutation/RESULTS.md), killed here.

def test_zps_filter_splits_two_distinct_confidences():
    # confidences 0.8 and 0.2: two values are enough to split, and the upper one is kept
    assert confident_prompts(binary_table([[0.9, 0.1], [0.6, 0.4]]).probs).tolist() == [True, False]


def test_zps_filter_keeps_a_boolean_mask_that_indexes_the_ensemble():
    same = binary_table([[0.7, 0.3], [0.3, 0.7], [0.7, 0.7]])  # every confidence is 0.4
    mask = confident_prompts(same.probs)
    assert mask.dtype == bool
    np.testing.assert_array_equal(ZpsVote().score(same, CTX), ZpsVote(filter=False).score(same, CTX))


def test_zps_confidence_is_top_one_minus_top_two_with_three_classes():
    # top-1 minus top-2: A 0.8 - 0.1 = 0.7, B and C 0.55 - 0.45 = 0.1 -> only A is kept
    # (the two smallest, 0.1 - 0.1 = 0 against 0.45 - 0.0, would keep B and C instead)
    a, b = [0.1, 0.1, 0.8], [0.0, 0.45, 0.55]
    probs = np.array([[a, a], [b, b], [b, b]])
    assert confident_prompts(probs).tolist() == [True, False, False]


def test_zps_vote_counts_every_class_with_fewer_inputs_than_classes():
    # two inputs, three classes; both prompts predict class 2 on both: the vote's pseudo-label
    # is class 2, so both agree with it everywhere
    p = [[0.1, 0.1, 0.8], [0.2, 0.1, 0.7]]
    lp = np.log(np.array([p, p]))
    table = ScoreTable(prompt_ids=["a", "b"], class_names=["x", "y", "z"], class_logprobs=lp, prompt_nll=np.zeros((2, 2)),
                       labels=np.array([2, 2]))
    assert ZpsVote(filter=False).score(table, CTX).tolist() == [1.0, 1.0]
    assert GlobalEntropy().score(table, CTX).tolist() == [0.0, 0.0]
    # GlobalE counts all three classes too: predictions 0 then 2 spread evenly over two of them
    split = np.log(np.array([[[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]]]))
    table = ScoreTable(prompt_ids=["c"], class_names=["x", "y", "z"], class_logprobs=split, prompt_nll=np.zeros((1, 2)))
    assert GlobalEntropy().score(table, CTX) == pytest.approx([math.log(2)])


def test_spell_without_prompt_nll_says_what_to_do():
    with pytest.raises(CapabilityError) as exc:
        Spell().score(binary_table([[0.5, 0.5]]), CTX)
    assert exc.value.message == "SPELL needs prompt_nll, the per-token NLL of each instantiated prompt."
    assert exc.value.hint == "Score with a backend that gives sequence log-probs, or add prompt_nll to the scores file."
