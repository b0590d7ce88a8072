"""FUTE's premise as a ladder, in the real setting, on the real default surrogate (all-MiniLM-L6-v2).

The "prompts" label U with one real labeller (the VADER lexicon's valence) made worse by known
amounts (hash-deterministic label flips f = 0, .15, .3, .45), its inverted twin, the labeller
with its threshold moved to 75 % positive, confident random labels and a constant at the DTE's
prior (bench/lib/premise.py). Their true order is known, so the expected ranking does not come
from the code: the score must fall with f, the inverted twin must score below 0 and the clean
labeller above, the clean labeller must beat confident random labels by 0.1, the marginal control
must move little, a DTE on permuted gold labels must not learn and must score every prompt inside
the null band, and two DTEs on disjoint halves of the train split must rank the eight prompts
alike (bench/lib/premise.py's ``checks``).

The ladder on the real surrogate is NOT asserted here (bench/RESULTS.md, "FUTE's premise as a
ladder"): with the paper's embedding, the prefix, it fails on every seed under every comparison,
at |U| 160 because the MTEs barely learn and at |U| 1000 because the prefix cannot tell a prompt
from its inverted twin (tests/embedders/test_tupate_and_taskemb.py shows why). The head's change,
each side less its permutation null (``-E tupate.head=only -E tupate.compare=null-both``), passed
on the three counted seeds at |U| 1000 with DTEs of 1000 sentences, but one run costs about two
hours on two cores, far beyond a test. Loosening the issue's thresholds (fixed in
``bench/lib/premise.py``'s ``checks`` before any run) until something passes would assert
nothing. What runs here: the ladder's known quality against the gold labels, the sharp
labeller, the DTE halves, the comparison of one part of the vectors, and the whole machinery on
a tiny surrogate.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.shared_data import shared_path

pytest.importorskip("torch")
pytest.importorskip("transformers")

SEED = 1


@pytest.mark.slow
def test_the_ladder_has_the_known_order_of_quality():
    """The ladder rests on these, measured against SST-2's gold labels (not on U, which has none):
    the clean lexicon agrees with the gold sentiment well above chance, each flip rung agrees
    less, the inverted twin below chance; the marginal control calls 75 % positive; the constant
    sits at the DTE sample's prior."""
    from bench.lib import premise

    data = shared_path("data")
    sample = premise.dte_samples(data, 1500, seed=0)["a"]
    texts, gold = [ex["text"] for ex in sample.examples], np.asarray(sample.labels)
    share = float(gold.mean())
    targets = premise.ladder_targets(texts, share)
    decided = targets["lexicon"][:, 1] != 0.5  # texts with no lexicon word stay at 0.5 on every rung

    def agreement(name: str) -> float:
        return float(((targets[name][decided, 1] > 0.5) == (gold[decided] == 1)).mean())

    clean = agreement("lexicon")
    assert clean > 0.65
    rungs = [agreement(p) for p in premise.FLIPS]
    assert rungs == sorted(rungs, reverse=True) and rungs[-1] < 0.56
    # A flipped text agrees exactly where the clean one disagrees: expected clean·(1 − f) + (1 − clean)·f.
    for name, f in premise.FLIPS.items():
        assert agreement(name) == pytest.approx(clean * (1 - f) + (1 - clean) * f, abs=0.03)
    assert agreement("inverted") == pytest.approx(1 - clean, abs=1e-9)
    np.testing.assert_allclose(targets["inverted"], targets["lexicon"][:, ::-1])
    assert np.mean(targets["lexicon75"][:, 1] > 0.5) == pytest.approx(0.75, abs=1 / len(texts))
    assert set(np.round(targets["random90"][:, 1], 6)) == {0.1, 0.9}
    np.testing.assert_allclose(targets["constant"][:, 1], share)
    # Flips depend on the text alone: the same text is flipped in every run, the sets nested.
    again = premise.ladder_targets(texts[::-1], share)
    np.testing.assert_array_equal(again["flip30"][::-1], targets["flip30"])
    flipped = {n: set(np.flatnonzero(targets[n][:, 1] != targets["lexicon"][:, 1])) for n in premise.FLIPS}
    assert flipped["flip15"] <= flipped["flip30"] <= flipped["flip45"]


def test_the_sharp_labeller_decides_as_the_soft_one_but_surely():
    """``targets="sharp"`` changes how sure the lexicon is, never what it says: 0.5 + 0.45·tanh(x)
    for a text whose summed valence is x (VADER's lexicon: "great" 3.1, "awful" -2.0), against
    0.5 + 0.4·x/√(x² + 15); a text with no lexicon word stays at 0.5; every rung keeps its side."""
    from bench.lib import premise

    texts = ["a great film", "awful", "the table"]
    x = np.array([premise.raw_valence(t) for t in texts])
    np.testing.assert_allclose(x, [3.1, -2.0, 0.0])
    sharp = premise.ladder_targets(texts, 0.5, "sharp")
    soft = premise.ladder_targets(texts, 0.5)
    np.testing.assert_allclose(sharp["lexicon"][:, 1], 0.5 + 0.45 * np.tanh([3.1, -2.0, 0.0]))
    np.testing.assert_allclose(soft["lexicon"][:, 1], 0.5 + 0.4 * np.array([3.1, -2.0, 0.0]) / np.sqrt(np.square([3.1, -2.0, 0.0]) + 15))
    assert sharp["lexicon"][0, 1] > 0.94 and soft["lexicon"][0, 1] < 0.82
    for name in premise.PROMPTS:
        np.testing.assert_array_equal(np.sign(sharp[name][:, 1] - 0.5), np.sign(soft[name][:, 1] - 0.5))
    with pytest.raises(ValueError, match="targets"):
        premise.ladder_targets(texts, 0.5, "loud")


@pytest.mark.slow
def test_the_dte_halves_are_disjoint_and_the_null_keeps_the_label_mix():
    from bench.lib import premise

    samples = premise.dte_samples(shared_path("data"), 240, seed=SEED)
    a, b, null = samples["a"], samples["b"], samples["null"]
    assert not {x["text"] for x in a.examples} & {x["text"] for x in b.examples}
    assert [x["text"] for x in null.examples] == [x["text"] for x in a.examples]
    assert sorted(null.labels) == sorted(a.labels) and (null.labels != a.labels).mean() > 0.3


def test_a_part_of_the_vectors_is_compared_alone():
    """``change@head`` and ``change@prefix`` read only the last ``Ladder.head`` coordinates or
    the others: vectors built by hand so that the lexicon and its inverted twin share the prefix
    part and have opposite head parts."""
    from bench.lib import premise

    base = {"prefix": np.array([1.0, 0.0, 0.0]), "head": np.array([0.0, 1.0])}
    vectors = {f"{k}:{p}": np.array([0.0, 0.0, 1.0, 1.0, 0.0]) for k in ("mte", "null") for p in premise.PROMPTS}
    vectors.update({f"dte:{d}": np.concatenate([base["prefix"], base["head"]]) for d in premise.DTES})
    vectors["mte:lexicon"] = np.array([1.0, 1.0, 0.0, 0.0, 2.0])
    vectors["mte:inverted"] = np.array([1.0, 1.0, 0.0, 0.0, -2.0])
    ladder = premise.Ladder(vectors, {}, np.zeros(5), {}, 0.0, 0, head=2)
    head, prefix, whole = (premise.similarities(ladder, c) for c in ("change@head", "change@prefix", "change"))
    assert head["lexicon"] == pytest.approx(1.0) and head["inverted"] == pytest.approx(-1.0)
    assert prefix["lexicon"] == prefix["inverted"] == pytest.approx(1 / np.sqrt(2))
    # the whole vector: (1 + 2) / (sqrt(6) sqrt(2)) against (1 - 2) / (sqrt(6) sqrt(2))
    assert whole["lexicon"] == pytest.approx(3 / np.sqrt(12)) and whole["inverted"] == pytest.approx(-1 / np.sqrt(12))
    with pytest.raises(ValueError, match="no head"):
        premise.similarities(premise.Ladder(vectors, {}, np.zeros(5), {}, 0.0, 0), "change@head")


def test_one_adjacent_swap_of_the_rungs_passes_the_order_check_and_two_do_not():
    """Spearman ≥ 0.8 over four rungs allows one adjacent swap (1 − 6·2/60 = 0.8), which
    floating point computes as 0.7999999999999999: vectors built so each score is a chosen cosine."""
    from bench.lib import premise

    def ladder(scores: dict[str, float]) -> premise.Ladder:
        vectors = {f"dte:{d}": np.array([1.0, 0.0]) for d in premise.DTES}
        for p in premise.PROMPTS:
            s = scores.get(p, 0.0)
            vectors[f"mte:{p}"] = vectors[f"null:{p}"] = np.array([s, np.sqrt(1 - s * s)])
        return premise.Ladder(vectors, {"dte:null": {"learned": False}}, np.zeros(2), {}, 0.0, 0)

    one = premise.checks(ladder({"lexicon": 0.5, "flip15": 0.6, "flip30": 0.3, "flip45": 0.1}), "change")
    assert one["scores"]["flip15"] == pytest.approx(0.6) and one["order"]["spearman"] == pytest.approx(0.8)
    assert one["order"]["ok"]
    two = premise.checks(ladder({"lexicon": 0.5, "flip15": 0.6, "flip30": 0.1, "flip45": 0.3}), "change")
    assert two["order"]["spearman"] == pytest.approx(0.6) and not two["order"]["ok"]


@pytest.mark.slow
def test_the_ladder_machinery_on_a_tiny_surrogate(tiny_surrogates):
    """The ladder's plumbing, cheaply (a random tiny BERT: the scores mean nothing): every
    embedding is trained once (the constant prompt's targets permuted are themselves, so its null
    is the same embedding and scores exactly 0 under the null comparison), the raw comparison is
    the change shifted by the start, and the benchmark renders every prompt and check."""
    from bench import bench_fute_ladder
    from bench.lib import premise
    from promptsel.surrogate import Surrogate
    from promptsel_builtin import tupate
    from promptsel_builtin.embedders import TuPaTE

    surrogate = Surrogate(str(tiny_surrogates["encoder"]), max_length=32)
    embedder = TuPaTE(mte_epochs=1, dte_epochs=1, prefix_len=2)
    start = tupate.start(embedder.options.as_dict(), surrogate, SEED)
    ladder = premise.run(embedder, surrogate, data_dir=shared_path("data"), u_size=40, dte_size=40, seed=SEED, start=start)
    assert ladder is not None and ladder.computed == len(premise.DTES) + 2 * len(premise.PROMPTS) - 1
    np.testing.assert_array_equal(ladder.vectors["null:constant"], ladder.vectors["mte:constant"])
    assert premise.similarities(ladder, "null")["constant"] == 0.0
    v = ladder.vectors
    raw = premise.similarities(ladder, "raw-change")["lexicon"]
    m, d = v["mte:lexicon"] + start, v["dte:a"] + start
    assert raw == pytest.approx(float(m @ d / (np.linalg.norm(m) * np.linalg.norm(d))))
    result = premise.checks(ladder, "null")
    assert set(result) >= {"order", "inverted", "random", "marginal", "null_dte", "halves", "margin"}
    assert result["margin"] == pytest.approx(result["scores"]["lexicon"] - max(result["scores"][p] for p in premise.OFF_TASK))
    run = {"setting": {}, "seed": SEED, "seconds": ladder.seconds, "computed": ladder.computed, "mix": ladder.mix,
           "training": ladder.training, "passed": {}, "results": {}}
    for c in bench_fute_ladder.COMPARISONS:
        run["results"][c] = bench_fute_ladder._plain(premise.checks(ladder, c))
        run["passed"][c] = premise.passed(run["results"][c])
    text = bench_fute_ladder.render({"created": "now", "surrogate": "tiny", "u_size": 40, "dte_size": 40, "max_length": 32,
                                     "prompts": list(premise.PROMPTS), "runs": [run, {**run, "seed": SEED + 1}]})
    assert all(p in text for p in premise.PROMPTS) and all(f"| {c} |" in text for c in bench_fute_ladder.COMPARISONS)
