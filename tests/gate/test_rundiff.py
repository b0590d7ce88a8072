"""``promptsel diff``'s library (``promptsel.gate.rundiff``) on tables small enough to work out
by hand: which examples pair up, each prompt's change and its paired interval (recomputed here
from the resamples' definition: the share of improved examples drawn less the share of worsened
ones), the verdicts, the rank correlation, and every refusal. The command line's tests
(tests/cli/test_diff.py) run the same code on the real fixture; these pin its arithmetic."""

from __future__ import annotations

import json

import numpy as np
import pytest

from promptsel.errors import UsageError
from promptsel.gate.rundiff import (
    BETTER,
    IDENTICAL,
    SCHEMA_VERSION,
    WITHIN,
    WORSE,
    diff_runs,
    load_side,
)

N = 10
LABELS = [0, 1] * 5
#: prompt -> the examples (of s0..s9) it gets wrong, in run A and in run B
WRONG = {
    "better": ({6, 7, 8, 9}, set()),  # 0.6 -> 1.0: four examples turn right
    "same": ({8, 9}, {8, 9}),  # 0.8 both
    "worse": (set(), {6, 7, 8, 9}),  # 1.0 -> 0.6
    "swap": ({3, 8, 9}, {0, 8, 9}),  # 0.7 both: one turns right, one turns wrong
}


def logprobs(wrong: set[int], labels: list[int], extra_wrong: bool) -> np.ndarray:
    """[N(+1), 2] log-probs whose argmax is the label except on ``wrong`` (0.9 against 0.1)."""
    rows = []
    for i, y in enumerate(labels):
        right = i not in wrong and not (extra_wrong and i == len(labels) - 1)
        pred = y if right else 1 - y
        rows.append([np.log(0.9), np.log(0.1)] if pred == 0 else [np.log(0.1), np.log(0.9)])
    return np.array(rows)


def save_run(path, side: int, *, labels: bool = True, order=None, prompts=None, classes=("neg", "pos"),
             label_override=None) -> None:
    """Run A (side 0) or B (side 1) as a --save-scores file. Each run also holds one example the
    other lacks (``a-only``/``b-only``), which every prompt gets wrong but one ("better" in A,
    "worse" in B): counted, it would move every number below and the prompts' order."""
    order = list(range(N)) if order is None else order
    ys = [LABELS[i] for i in order] + [0]
    sample_ids = [f"s{i}" for i in order] + ["a-only" if side == 0 else "b-only"]
    prompts = prompts or list(WRONG)
    extra_right = "better" if side == 0 else "worse"
    lp = np.stack([logprobs({order.index(i) for i in WRONG[p][side]}, ys, extra_wrong=p != extra_right) for p in prompts])
    if label_override:
        for sid, y in label_override.items():
            ys[sample_ids.index(sid)] = y
    arrays = {"class_logprobs": lp, "prompt_ids": np.array(prompts), "class_names": np.array(list(classes)),
              "sample_ids": np.array(sample_ids)}
    if labels:
        arrays["labels"] = np.array(ys)
    np.savez(path, **arrays)


@pytest.fixture
def ab(tmp_path):
    """Run A in example order s0..s9, run B with its examples reversed: pairing is by id."""
    save_run(tmp_path / "a.npz", 0)
    save_run(tmp_path / "b.npz", 1, order=list(range(N))[::-1])
    return tmp_path / "a.npz", tmp_path / "b.npz"


def paired_interval(improved: set[int], worsened: set[int], seed: int = 0, resamples: int = 1000,
                    level: float = 0.95) -> list[float]:
    """The paired bootstrap of accuracy's change by its definition: each resample draws 10 of the
    shared examples with replacement (the seeded generator's integers, s0..s9 in run A's order);
    the change is (draws of improved examples - draws of worsened ones) / 10; the central ``level``."""
    picks = np.random.default_rng(seed).integers(0, N, size=(resamples, N))
    change = np.array([(sum(int(i in improved) for i in pick) - sum(int(i in worsened) for i in pick)) / N for pick in picks])
    tail = (1 - level) / 2 * 100
    return [float(np.percentile(change, tail)), float(np.percentile(change, 100 - tail))]


def test_prompts_are_paired_by_sample_id_on_the_shared_examples_with_hand_worked_changes(ab):
    a, b = (load_side(p) for p in ab)
    result = diff_runs(a, b)
    assert result["schema_version"] == SCHEMA_VERSION and result["kind"] == "promptsel diff"
    assert result["paired"] is True and result["resamples"] == 1000 and result["level"] == 0.95 and result["seed"] == 0
    assert result["examples"] == {"a": 11, "b": 11, "shared": 10}
    assert result["notes"] == ["Compared on the 10 examples both runs hold (matched by sample id)."]
    rows = {r["id"]: r for r in result["prompts"]}
    assert [r["id"] for r in result["prompts"]] == list(WRONG)
    expected = {"better": (0.6, 1.0, 4, BETTER), "same": (0.8, 0.8, 0, IDENTICAL),
                "worse": (1.0, 0.6, 4, WORSE), "swap": (0.7, 0.7, 2, WITHIN)}
    for p, (pa, pb, moved, verdict) in expected.items():
        row = rows[p]
        assert row["a_shared"] == pytest.approx(pa) and row["b_shared"] == pytest.approx(pb), p
        assert row["delta"] == pytest.approx(pb - pa) and row["changed_predictions"] == moved, p
        assert row["shared_examples"] == 10 and row["verdict"] == verdict, p
        # Each run's own performance counts its extra example too: 11 examples.
        assert row["a"] == pytest.approx((pa * 10 + (p == "better")) / 11), p
        assert row["b"] == pytest.approx((pb * 10 + (p == "worse")) / 11), p
        assert row["a_interval"] is None and row["b_interval"] is None
    assert rows["better"]["delta_interval"] == pytest.approx(paired_interval({6, 7, 8, 9}, set()))
    assert rows["worse"]["delta_interval"] == pytest.approx(paired_interval(set(), {6, 7, 8, 9}))
    assert rows["swap"]["delta_interval"] == pytest.approx(paired_interval({3}, {0}))
    assert rows["same"]["delta_interval"] == [0.0, 0.0]
    # P(no improved example among 10 draws) = 0.6^10 = 0.006 < 2.5 %: the interval excludes 0.
    assert rows["better"]["delta_interval"][0] > 0 and rows["worse"]["delta_interval"][1] < 0
    assert result["changed"] == ["better", "worse"] and result["no_change"] is False
    assert result["appeared"] == [] and result["disappeared"] == [] and result["edited"] == []
    assert result["choice"] == {"a": "worse", "b": "better", "changed": True}
    # On the shared examples (the runs' own 11 would tie better with swap in A and worse with swap
    # in B): A (0.6, 0.8, 1.0, 0.7), B (1.0, 0.8, 0.6, 0.7); ranks (1, 3, 4, 2) and (4, 3, 1, 2):
    # sum d^2 = 18, rho = 1 - 6*18/(4*15) = -0.8; of the six pairs one is concordant (same, swap)
    # and five discordant: tau = -4/6.
    assert result["rank_correlation"]["spearman"] == pytest.approx(-0.8)
    assert result["rank_correlation"]["kendall"] == pytest.approx(-2 / 3)
    assert result["rank_correlation"]["prompts"] == 4
    assert result["a"] == {"path": str(ab[0]), "kind": "scores", "prompts": 4, "examples": 11, "labels": True, "choice": "worse"}
    assert result["b"]["choice"] == "better" and result["b"]["examples"] == 11


def test_another_seed_or_level_changes_the_interval_as_the_definition_says(ab):
    a, b = (load_side(p) for p in ab)
    result = diff_runs(a, b, seed=3, resamples=50, level=0.5)
    row = {r["id"]: r for r in result["prompts"]}["swap"]
    assert row["delta_interval"] == pytest.approx(paired_interval({3}, {0}, seed=3, resamples=50, level=0.5))
    assert result["seed"] == 3 and result["resamples"] == 50 and result["level"] == 0.5


def test_the_seed_decides_the_resamples_where_few_of_them_make_the_interval(ab):
    """With 7 resamples at 90 % the interval interpolates between single draws, so each seed
    gives its own (seeds 3 and 4: [0.30, 0.61] and [0.30, 0.64] for "better")."""
    a, b = (load_side(p) for p in ab)

    def hand(seed: int) -> list[float]:
        return paired_interval({6, 7, 8, 9}, set(), seed=seed, resamples=7, level=0.9)

    assert hand(3) != pytest.approx(hand(4))
    for seed in (3, 4):
        row = {r["id"]: r for r in diff_runs(a, b, seed=seed, resamples=7, level=0.9)["prompts"]}["better"]
        assert row["delta_interval"] == pytest.approx(hand(seed)), seed


def test_macro_f1_is_paired_over_every_class_of_the_task(tmp_path):
    """Three classes, the third never predicted nor present: macro-F1 averages it in as 0.
    Labels 0,1,0,1,0,1,0,1; A wrong on examples 4 and 7 (F1 0.75 for classes 0 and 1), B right
    everywhere: (0.75 + 0.75 + 0) / 3 = 0.5 against (1 + 1 + 0) / 3 = 2/3."""
    labels = np.array([0, 1] * 4)
    for name, preds in (("a.npz", [0, 1, 0, 1, 1, 1, 0, 0]), ("b.npz", list(labels))):
        probs = np.full((1, 8, 3), 0.1)
        probs[0, np.arange(8), preds] = 0.8
        np.savez(tmp_path / name, class_logprobs=np.log(probs), labels=labels, prompt_ids=np.array(["p"]),
                 class_names=np.array(["neg", "pos", "neu"]))
    result = diff_runs(load_side(tmp_path / "a.npz", metric="macro_f1"), load_side(tmp_path / "b.npz", metric="macro_f1"))
    (row,) = result["prompts"]
    assert result["metric"] == "macro_f1"
    assert row["a_shared"] == pytest.approx(0.5) and row["b_shared"] == pytest.approx(2 / 3) and row["delta"] == pytest.approx(1 / 6)
    assert row["a"] == pytest.approx(0.5) and row["changed_predictions"] == 2
    # The interval by its definition: macro-F1 over the three classes (sklearn's, zero_division=0)
    # of each run on the same resampled examples, B less A, central 95 %.
    from sklearn.metrics import f1_score

    pa, pb = np.array([0, 1, 0, 1, 1, 1, 0, 0]), labels
    picks = np.random.default_rng(0).integers(0, 8, size=(1000, 8))
    change = [f1_score(labels[k], pb[k], labels=[0, 1, 2], average="macro", zero_division=0)
              - f1_score(labels[k], pa[k], labels=[0, 1, 2], average="macro", zero_division=0) for k in picks]
    assert row["delta_interval"] == pytest.approx([np.percentile(change, 2.5), np.percentile(change, 97.5)])


def test_an_interval_that_touches_zero_is_within_noise(tmp_path, monkeypatch):
    """One example of ten turns right (or wrong): 0.9^10 = 0.35 of the resamples never draw it,
    so the interval's lower (upper) end is exactly 0, and that is not a measurable change."""
    monkeypatch.setitem(WRONG, "up", ({9}, set()))
    monkeypatch.setitem(WRONG, "down", (set(), {9}))
    save_run(tmp_path / "a.npz", 0, prompts=["up", "down"])
    save_run(tmp_path / "b.npz", 1, prompts=["up", "down"])
    rows = {r["id"]: r for r in diff_runs(load_side(tmp_path / "a.npz"), load_side(tmp_path / "b.npz"))["prompts"]}
    assert rows["up"]["delta_interval"][0] == 0 and rows["up"]["verdict"] == WITHIN
    assert rows["down"]["delta_interval"][1] == 0 and rows["down"]["verdict"] == WITHIN


def test_predictions_that_moved_both_ways_are_a_change_though_accuracy_is_equal(tmp_path):
    save_run(tmp_path / "a.npz", 0, prompts=["swap", "same"])
    save_run(tmp_path / "b.npz", 1, prompts=["swap", "same"])
    result = diff_runs(load_side(tmp_path / "a.npz"), load_side(tmp_path / "b.npz"))
    assert [r["delta"] for r in result["prompts"]] == [0, 0] and result["changed"] == []
    assert result["no_change"] is False  # swap's two predictions moved


def test_a_run_against_itself_is_no_change(ab):
    side = load_side(ab[0])
    result = diff_runs(side, load_side(ab[0]))
    assert result["no_change"] is True and result["changed"] == [] and result["notes"] == []
    assert all(r["verdict"] == IDENTICAL and r["delta"] == 0 and r["changed_predictions"] == 0 for r in result["prompts"])
    assert result["examples"] == {"a": 11, "b": 11, "shared": 11} and result["choice"]["changed"] is False


def test_the_labels_of_one_run_serve_both_and_neither_gives_counts_only(tmp_path):
    save_run(tmp_path / "a.npz", 0)
    save_run(tmp_path / "b.npz", 1, labels=False)
    save_run(tmp_path / "a0.npz", 0, labels=False)
    one = diff_runs(load_side(tmp_path / "a.npz"), load_side(tmp_path / "b.npz"))
    other = diff_runs(load_side(tmp_path / "b.npz"), load_side(tmp_path / "a.npz"))
    for result, sign in ((one, 1), (other, -1)):
        rows = {r["id"]: r for r in result["prompts"]}
        assert rows["better"]["delta"] == pytest.approx(sign * 0.4) and rows["worse"]["delta"] == pytest.approx(-sign * 0.4)
        assert rows["better"]["verdict"] == (BETTER if sign > 0 else WORSE)
    assert one["b"]["labels"] is False and one["b"]["choice"] is None and one["choice"]["changed"] is None
    assert one["rank_correlation"] == {"spearman": None, "kendall": None, "prompts": 4}  # B has no performance
    blind = diff_runs(load_side(tmp_path / "a0.npz"), load_side(tmp_path / "b.npz"))
    rows = {r["id"]: r for r in blind["prompts"]}
    assert {p: r["changed_predictions"] for p, r in rows.items()} == {"better": 4, "same": 0, "worse": 4, "swap": 2}
    assert {p: r["verdict"] for p, r in rows.items()} == {"better": None, "same": IDENTICAL, "worse": None, "swap": None}
    assert all(r["delta"] is None and r["delta_interval"] is None and r["shared_examples"] == 10 for r in rows.values())
    assert blind["notes"][-1].startswith("Neither run has labels") and blind["changed"] == []
    assert blind["no_change"] is False  # predictions moved, though nobody can say which way


def test_prompts_on_one_side_are_listed_and_only_shared_ones_compared(tmp_path):
    save_run(tmp_path / "a.npz", 0, prompts=["better", "same", "worse"])
    save_run(tmp_path / "b.npz", 1, prompts=["swap", "same", "better"])
    result = diff_runs(load_side(tmp_path / "a.npz"), load_side(tmp_path / "b.npz"))
    assert [r["id"] for r in result["prompts"]] == ["better", "same"]  # in A's order
    assert result["appeared"] == ["swap"] and result["disappeared"] == ["worse"]
    assert result["rank_correlation"]["prompts"] == 2


@pytest.mark.parametrize("change, message, hint", [
    ({"label_override": {"s4": 1}}, r"give example s4 different labels \(0 and 1\)\.", "Compare runs on the same labelled data."),
    ({"classes": ("negative", "positive")}, r"has classes neg, pos and .*b\.npz negative, positive\.", "diff compares runs of the same task."),
])
def test_runs_of_other_labels_or_classes_say_why(tmp_path, change, message, hint):
    save_run(tmp_path / "a.npz", 0)
    save_run(tmp_path / "b.npz", 1, **change)
    with pytest.raises(UsageError, match=message) as err:
        diff_runs(load_side(tmp_path / "a.npz"), load_side(tmp_path / "b.npz"))
    assert err.value.hint == hint


def test_extra_examples_on_one_side_only_are_said_to_be_left_out(tmp_path):
    save_run(tmp_path / "a.npz", 0)  # s0..s9 and a-only
    np.savez(tmp_path / "b.npz", **{k: (v[:N] if k in ("labels", "sample_ids") else v[:, :N] if k == "class_logprobs" else v)
                                    for k, v in np.load(tmp_path / "a.npz").items()})  # s0..s9 only
    for x, y in (("a", "b"), ("b", "a")):
        result = diff_runs(load_side(tmp_path / f"{x}.npz"), load_side(tmp_path / f"{y}.npz"))
        assert result["notes"] == ["Compared on the 10 examples both runs hold (matched by sample id)."]
        assert result["no_change"] is True  # the shared examples are the same predictions


def test_runs_on_other_examples_or_metrics_are_refused(tmp_path, ab):
    np.savez(tmp_path / "c.npz", class_logprobs=np.log(np.full((1, 3, 2), 0.5)), prompt_ids=np.array(["same"]),
             sample_ids=np.array(["x", "y", "z"]))
    np.savez(tmp_path / "d.npz", class_logprobs=np.log(np.full((1, 3, 2), 0.5)), prompt_ids=np.array(["nothing"]))
    with pytest.raises(UsageError, match="have no prompt id in common") as err:
        diff_runs(load_side(ab[0]), load_side(tmp_path / "d.npz"))
    assert err.value.hint == ("diff compares runs of the same prompts (by id): the same prompt file on two models, "
                              "or before and after an edit.")
    with pytest.raises(UsageError, match="share no sample id") as err:
        diff_runs(load_side(ab[0]), load_side(tmp_path / "c.npz"))
    assert err.value.hint == "Save both with sample_ids (select --save-scores writes them)."
    with pytest.raises(UsageError, match=r"measures accuracy and .* macro_f1") as err:
        diff_runs(load_side(ab[0]), load_side(ab[1], metric="macro_f1"))
    assert err.value.hint == "Compare two runs of the same --metric."
    with pytest.raises(UsageError, match="no such file") as err:
        load_side(tmp_path / "missing.npz")
    assert err.value.hint == "Give two JSON reports (-o report.json) or two --save-scores files."


def test_a_report_that_cannot_be_read_says_how_to_write_one(tmp_path):
    hint = "Write one with promptsel select -o report.json."
    for text, message in (("{broken", "as a JSON report: "), ("[1, 2]", "is not a promptsel JSON report (it has no prompts list)."),
                          ('{"prompts": 3}', "is not a promptsel JSON report (it has no prompts list).")):
        path = tmp_path / "r.json"
        path.write_text(text)
        with pytest.raises(UsageError) as err:
            load_side(path)
        assert err.value.message.startswith(f"Cannot read {path}" if "JSON report: " in message else str(path)), err.value.message
        assert message in err.value.message and err.value.hint == hint


def test_the_labels_mismatch_says_to_compare_the_same_data_and_reports_keep_their_metric(tmp_path):
    save_run(tmp_path / "a.npz", 0)
    save_run(tmp_path / "b.npz", 1, label_override={"s4": 1})
    with pytest.raises(UsageError) as err:
        diff_runs(load_side(tmp_path / "a.npz"), load_side(tmp_path / "b.npz"))
    assert err.value.hint == "Compare runs on the same labelled data."
    f1 = tmp_path / "f1.json"
    f1.write_text(json.dumps(report([("a", 0.5, None)], metric="macro_f1")))
    assert load_side(f1).metric == "macro_f1"
    acc = tmp_path / "acc.json"
    acc.write_text(json.dumps(report([("a", 0.5, None)])))
    assert load_side(acc).metric == "accuracy"  # a report without one: accuracy
    with pytest.raises(UsageError, match=r"measures macro_f1 and .* accuracy"):
        diff_runs(load_side(f1), load_side(acc))


def report(prompts: list[tuple[str, float | None, str | None]], **top) -> dict:
    return {"prompts": [{"id": p, "performance": perf, "performance_interval": None if perf is None else [perf - 0.1, perf + 0.1],
                         **({"template_sha256": sha} if sha else {})} for p, perf, sha in prompts], **top}


def test_a_report_side_compares_summary_numbers_and_names_edited_templates(tmp_path, ab):
    path = tmp_path / "r.JSON"  # a report by its suffix, in any case
    path.write_text(json.dumps(report([("better", 0.5, "1" * 64), ("same", 0.75, "2" * 64), ("worse", None, None)],
                                      recommendation={"prompt": "same"}, metric="accuracy",
                                      dataset={"sample_ids": [0, 1, 2]})))
    side = load_side(path)
    assert side.kind == "report" and side.sample_ids == ["0", "1", "2"] and side.choice == "same"
    assert side.intervals["better"] == [0.4, 0.6] and side.templates == {"better": "1" * 64, "same": "2" * 64}
    assert side.summary() == {"path": str(path), "kind": "report", "prompts": 3, "examples": 3, "labels": True, "choice": "same"}
    other = tmp_path / "s.json"
    other.write_text(json.dumps(report([("better", 0.25, "1" * 64), ("same", 0.75, "3" * 64), ("worse", 0.5, None)],
                                       oracle={"chosen": "worse"})))
    result = diff_runs(side, load_side(other))
    rows = {r["id"]: r for r in result["prompts"]}
    assert rows["better"]["delta"] == -0.25 and rows["same"]["delta"] == 0 and rows["worse"]["delta"] is None
    assert all(r["delta_interval"] is None and r["verdict"] is None for r in rows.values())
    assert rows["same"]["b_interval"] == [0.65, 0.85] and rows["better"]["a_interval"] == [0.4, 0.6]
    assert result["paired"] is False and result["resamples"] is None and result["edited"] == ["same"]
    assert result["choice"] == {"a": "same", "b": "worse", "changed": True}
    assert result["examples"] == {"a": 3, "b": 0, "shared": 0}
    # Ranked on the two prompts with a number on both sides: (0.5, 0.75) and (0.25, 0.75).
    assert result["rank_correlation"] == {"spearman": pytest.approx(1.0), "kendall": pytest.approx(1.0), "prompts": 3}
    assert result["notes"] == [
        "A JSON report holds each prompt's performance but not which examples it got right, so the deltas are differences "
        "of summary numbers, without a paired interval; compare two --save-scores files for one."]
    assert result["no_change"] is False
    # A report against a scores file: still summary numbers only, said once.
    mixed = diff_runs(side, load_side(ab[0]))
    assert mixed["paired"] is False and sum("not which examples" in n for n in mixed["notes"]) == 1
    assert diff_runs(load_side(other), load_side(other))["no_change"] is True
