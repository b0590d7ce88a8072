"""The UPS fixture split into FUTE's U and an evaluation half (``bench/lib/ups_split.py``), the
``--scores`` file written from it, and the measures ``bench_fute_replay`` reports, checked against
counts and formulas computed here, not against the code's own output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.shared_data import shared_path


@pytest.fixture(scope="module")
def fixture():
    shared_path("fixtures", "ups_sst2_opt2.7b.npz")  # skips without the shared data
    from bench.lib.ups_split import load_fixture

    return load_fixture()


def test_the_split_halves_each_class_and_is_seeded(fixture):
    from bench.lib.ups_split import split_indices

    labels = fixture.labels
    # 872 sentences, 444 positive and 428 negative (the fixture's 0.5092 positive share).
    assert labels.size == 872 and int(labels.sum()) == 444
    u, ev = split_indices(labels, seed=0)
    assert np.intersect1d(u, ev).size == 0 and np.union1d(u, ev).size == 872
    assert int(labels[u].sum()) == 222 and int((labels[u] == 0).sum()) == 214
    assert int(labels[ev].sum()) == 222 and int((labels[ev] == 0).sum()) == 214
    again, _ = split_indices(labels, seed=0)
    other, _ = split_indices(labels, seed=1)
    assert np.array_equal(u, again) and not np.array_equal(u, other)


def test_the_scores_file_holds_the_evaluation_half_and_unlabelled_u(fixture, tmp_path):
    from bench.lib.ups_split import split_indices, write_split
    from promptsel.model.scoretable import ScoreTable

    path = tmp_path / "split.npz"
    write_split(path, seed=3, n_prompts=13, unlabeled_size=200)
    u_all, ev = split_indices(fixture.labels, seed=3)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    # U: texts and OPT's log-probs only, 200 of this split's U half, no label array for it.
    assert arrays["unlabeled_logprobs"].shape == (13, 200, 2) and arrays["unlabeled_text"].shape == (200,)
    positions = np.array([int(s.removeprefix("val-")) for s in arrays["unlabeled_ids"]])
    assert np.isin(positions, u_all).all() and not np.isin(positions, ev).any()
    texts = [json.loads(line)["text"] for line in shared_path("fixtures", "ups_sst2_opt2.7b_texts.jsonl").read_text().splitlines()]
    assert list(arrays["unlabeled_text"]) == [texts[i] for i in positions]
    # The only labels in the file are the evaluation half's.
    assert set(arrays) == {"class_logprobs", "prompt_nll", "labels", "prompt_ids", "class_names", "sample_ids",
                           "unlabeled_text", "unlabeled_logprobs", "unlabeled_ids"}
    assert arrays["labels"].shape == (436,)
    # Log-probs normalised over the two classes: p(neg) + p(pos) = 1, same argmax as the raw fixture.
    with np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz")) as raw:
        raw_lp = raw["log_prob"][:13][:, positions]
    assert np.allclose(np.exp(arrays["unlabeled_logprobs"]).sum(-1), 1.0)
    assert np.array_equal(arrays["unlabeled_logprobs"].argmax(-1), raw_lp.argmax(-1))
    # The evaluation half reads back as a score table with its gold labels.
    table = ScoreTable.load(path)
    assert table.n_prompts == 13 and table.n_examples == ev.size == 436
    assert np.array_equal(table.labels, fixture.labels[ev])
    assert table.prompt_ids[0] == "prompt_00" and table.class_names == ["negative", "positive"]


def test_random_and_ceiling_rows_follow_their_formulas():
    """Three prompts, four sentences: the random pick's rate is mean/max accuracy and its NDCG
    the mean min-max gain times the summed discounts over the ideal DCG; the ceiling is 1 on
    every resample that keeps the ranking."""
    from bench.bench_fute_replay import Bootstrap

    # Prompt accuracies 1, 0.5, 0.25 on labels [0, 1, 0, 1]: log-probs favouring each prediction.
    predictions = np.array([[0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]])
    logprobs = np.log(np.where(np.eye(2)[predictions] == 1, 0.9, 0.1))
    arrays = {"class_logprobs": logprobs, "prompt_nll": np.ones((3, 4)), "labels": np.array([0, 1, 0, 1]),
              "prompt_ids": np.array(["a", "b", "c"]), "class_names": np.array(["negative", "positive"]),
              "sample_ids": np.array(["s0", "s1", "s2", "s3"])}
    boot = Bootstrap(arrays, resamples=5, seed=0)
    assert boot.perf.tolist() == [1.0, 0.5, 0.25]
    random = boot.random()
    gains = np.array([1.0, 1 / 3, 0.0])  # min-max: (perf - 0.25) / 0.75
    discounts = 1 / np.log2([2, 3, 4])
    ideal = gains @ discounts
    assert random["rate"] == pytest.approx((1.0 + 0.5 + 0.25) / 3 / 1.0)
    assert random["ndcg"] == pytest.approx(gains.mean() * discounts.sum() / ideal)
    fixed = boot.fixed(np.array([0.0, 2.0, 1.0]))  # ranked b, c, a: the best prompt last
    assert fixed["rate"] == pytest.approx(0.5)
    assert fixed["ndcg"] == pytest.approx((gains[1] * discounts[0] + gains[2] * discounts[1] + gains[0] * discounts[2]) / ideal)
    assert fixed["spearman"] == pytest.approx(-0.5)  # ranks (1, 3, 2) against (3, 2, 1)
    # The true ranking against resamples: 1 on its own data, at most 1 on every resample.
    ceiling = boot.ceiling()
    assert 0 < ceiling["ndcg"] <= 1 and ceiling["ndcg_ci"][1] <= 1


def test_shards_cut_the_prompt_axis_only_and_together_hold_every_prompt_once(fixture):
    from bench.bench_fute_replay import shard_of
    from bench.lib.ups_split import split_arrays

    arrays = split_arrays(fixture.subset(13), 0)
    shards = [shard_of(arrays, (k, 4)) for k in range(4)]
    assert [list(s["prompt_ids"]) for s in shards][1] == [arrays["prompt_ids"][i] for i in (1, 5, 9)]
    assert sorted(p for s in shards for p in s["prompt_ids"]) == sorted(arrays["prompt_ids"])
    for s in shards:
        rows = [list(arrays["prompt_ids"]).index(p) for p in s["prompt_ids"]]
        for name in ("class_logprobs", "prompt_nll", "unlabeled_logprobs"):
            assert np.array_equal(s[name], arrays[name][rows]), name
        for name in ("labels", "unlabeled_text", "sample_ids", "class_names"):
            assert np.array_equal(s[name], arrays[name]), name
