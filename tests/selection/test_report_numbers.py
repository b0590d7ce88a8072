"""The report's numbers through the CLI, against values computed by hand on a small scores file.

Three prompts, four examples, two classes; gold labels [0, 0, 0, 1]. Predictions (argmax):
A [0, 0, 0, 0], B [0, 1, 0, 1], C [1, 1, 0, 1]. By hand:

* accuracy: A 3/4, B 3/4, C 2/4.
* macro F1: A: class 0 P 3/4 R 1 -> 6/7, class 1 -> 0; mean 3/7. B: class 0 P 1 R 2/3 -> 4/5,
  class 1 P 1/2 R 1 -> 2/3; mean 11/15. C: class 0 P 1 R 1/3 -> 1/2, class 1 P 1/3 R 1 -> 1/2;
  mean 1/2.
* SPELL's score is minus the mean perplexity exp(NLL): perplexities 4, 8, 2 give -4, -8, -2, so
  SPELL ranks C, A, B and chooses C.
* GlobalE is the entropy of the predicted-class frequencies: A 0, B ln 2, C H(1/4, 3/4); it
  ranks B, C, A and chooses B.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.command_line import run

LABELS = [0, 0, 0, 1]
PREDICTIONS = {"A": [0, 0, 0, 0], "B": [0, 1, 0, 1], "C": [1, 1, 0, 1]}
PERPLEXITY = {"A": 4.0, "B": 8.0, "C": 2.0}
PERF = {"accuracy": {"A": 0.75, "B": 0.75, "C": 0.5}, "macro_f1": {"A": 3 / 7, "B": 11 / 15, "C": 0.5}}
SPELL_RANKING, GLOBALE_RANKING = ["C", "A", "B"], ["B", "C", "A"]


def dcg(gains_in_rank_order: list[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains_in_rank_order))


def ndcg_by_hand(ranking: list[str], perf: dict[str, float], variant: str) -> float:
    lo, hi = min(perf.values()), max(perf.values())
    gain = {p: (v - lo) / (hi - lo) if variant == "minmax" else 2**v - 1 for p, v in perf.items()}
    ideal = dcg(sorted(gain.values(), reverse=True))
    if variant != "fute":
        return dcg([gain[p] for p in ranking]) / ideal
    # FUTE's code: prompts in true order (by performance, file order among equals); the prompt
    # at true position j receives the gain of the prompt at true position predicted_rank(j).
    true_order = sorted(perf, key=lambda p: -perf[p])
    return dcg([gain[true_order[ranking.index(p)]] for p in true_order]) / ideal


@pytest.fixture
def scores_file(tmp_path):
    path = tmp_path / "small.npz"
    probs = {0: [0.9, 0.1], 1: [0.1, 0.9]}
    lp = np.log([[probs[c] for c in PREDICTIONS[p]] for p in "ABC"])
    nll = np.log([[PERPLEXITY[p]] * 4 for p in "ABC"])
    np.savez(path, class_logprobs=lp, prompt_nll=nll, labels=LABELS, prompt_ids=list("ABC"), class_names=["neg", "pos"])
    return path


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
@pytest.mark.parametrize("variant", ["minmax", "raw", "fute"])
def test_report_numbers_by_hand(capsys, scores_file, metric, variant):
    code, out, err = run(capsys, "select", "--scores", str(scores_file), "--methods", "spell,globale",
                         "--metric", metric, "--ndcg", variant, "--json", "-q")
    assert code == 0, err
    report = json.loads(out)
    perf = PERF[metric]
    assert report["metric"] == metric and report["ndcg_variant"] == variant
    assert {p["id"]: p["performance"] for p in report["prompts"]} == pytest.approx(perf, abs=1e-12)
    best = max(perf.values())
    for method, ranking in (("spell", SPELL_RANKING), ("globale", GLOBALE_RANKING)):
        entry = report["methods"][method]
        chosen = ranking[0]
        assert entry["ranking"] == ranking and entry["chosen"] == chosen
        assert entry["performance"] == pytest.approx(perf[chosen], abs=1e-12)
        assert entry["rate"] == pytest.approx(perf[chosen] / best, abs=1e-12)  # over the best prompt, not the mean
        assert entry["ndcg"] == pytest.approx(ndcg_by_hand(ranking, perf, variant), abs=1e-9)
    oracle = max(perf, key=lambda p: (perf[p], -"ABC".index(p)))
    assert report["oracle"] == {"chosen": oracle, "performance": pytest.approx(best, abs=1e-12)}
    assert report["random"]["performance"] == pytest.approx(sum(perf.values()) / 3, abs=1e-12)


def test_the_three_ndcg_variants_differ_here():
    """So each parametrized case above tells the variants apart (a report ignoring --ndcg fails)."""
    for metric in PERF:
        values = [ndcg_by_hand(SPELL_RANKING, PERF[metric], v) for v in ("minmax", "raw", "fute")]
        assert len({round(v, 6) for v in values}) == 3, (metric, values)
    assert {p: round(v, 6) for p, v in PERF["accuracy"].items()} != {p: round(v, 6) for p, v in PERF["macro_f1"].items()}


def test_the_markdown_and_table_show_the_metric_and_variant(capsys, scores_file, tmp_path):
    md = tmp_path / "r.md"
    code, _, err = run(capsys, "select", "--scores", str(scores_file), "--methods", "spell", "--metric", "macro_f1",
                       "--ndcg", "fute", "-o", str(md))
    assert code == 0, err
    assert "macro_f1" in err and "NDCG (fute)" in err
    assert "metric macro_f1" in md.read_text()
