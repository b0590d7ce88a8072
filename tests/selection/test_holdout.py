"""``select --holdout``: a seeded, class-stratified held-out part; the choice made on the rest;
the chosen prompt and the baseline measured on the held-out part, checked against hand
computations on a table built around the split; and the sensitivity band of a family of variants."""

from __future__ import annotations

import json

import numpy as np
import pytest

from promptsel.formats.html import to_html
from promptsel.formats.markdown import select_report
from promptsel.model.prompts import load_prompt_set
from promptsel.model.stats import stratified_split
from promptsel.selection.sensitivity import sensitivity_band
from tests.command_line import one_line_error, run

# --- the split --------------------------------------------------------------------------------


def test_the_split_is_stratified_disjoint_and_seeded():
    labels = np.array([0] * 10 + [1] * 40)
    choose, held = stratified_split(labels, 0.2, seed=7)
    # 20 % of 10 and of 40, by hand.
    assert (np.sum(labels[held] == 0), np.sum(labels[held] == 1)) == (2, 8)
    assert sorted([*choose, *held]) == list(range(50))
    again, _ = stratified_split(labels, 0.2, seed=7)
    assert list(again) == list(choose)
    assert any(list(stratified_split(labels, 0.2, seed=s)[1]) != list(held) for s in range(8, 12))
    # 27 and 27 at one half: 13.5 each, the spare slot to the lower class index.
    labels = np.array([0, 1] * 27)
    _, held = stratified_split(labels, 0.5, seed=0)
    assert (np.sum(labels[held] == 0), np.sum(labels[held] == 1)) == (14, 13)


# --- the holdout block against a hand computation ---------------------------------------------

PROMPTS = """
[[prompt]]
id = "a"
template = "{{text}} Good?"
answer_choices = { negative = ["no"], positive = ["yes"] }

[[prompt]]
id = "a.v1"
parent = "a"
axes = { labels = "yes/no", separator = ": ", spacing = "\\n" }
template = "Review: {{text}}\\nGood?"
answer_choices = { negative = ["no"], positive = ["yes"] }

[[prompt]]
id = "b"
template = "Is {{text}} good?"
answer_choices = { negative = ["no"], positive = ["yes"] }
"""


@pytest.fixture
def holdout_run(tmp_path, monkeypatch):
    """54 examples, 27 per class; held out at 0.5 with seed 0 (``stratified_split``, tested
    above). On the choosing 27: a.v1 right on all, a on 20, b on 18. On the held-out 27: a right
    on all, a.v1 wrong on the first 10, b right on 21."""
    monkeypatch.chdir(tmp_path)
    labels = np.array([0, 1] * 27)
    choose, held = stratified_split(labels, 0.5, seed=0)
    right = np.ones((3, 54), dtype=bool)
    right[0, choose[20:]] = False  # a: 20 of 27 on the choosing part
    right[2, choose[18:]] = False  # b: 18 of 27
    right[1, held[:10]] = False  # a.v1: 17 of 27 held out
    right[2, held[21:]] = False  # b: 21 of 27 held out
    predictions = np.where(right, labels, 1 - labels)
    probs = np.where(np.arange(2) == predictions[..., None], 0.9, 0.1)
    np.savez(tmp_path / "t.npz", class_logprobs=np.log(probs), labels=labels, prompt_ids=np.array(["a", "a.v1", "b"]),
             sample_ids=np.array([f"x{i}" for i in range(54)]))
    (tmp_path / "p.toml").write_text(PROMPTS, encoding="utf-8")
    return held


def select_json(capsys, *extra: str) -> dict:
    code, out, err = run(capsys, "select", "--scores", "t.npz", "--prompts", "p.toml", "-m", "mi", "--holdout", "0.5",
                         "--bootstrap", "20000", "--json", "--quiet", *extra)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.option("select", "--holdout")
def test_holdout_numbers_match_a_hand_computation(holdout_run, capsys):
    report = select_json(capsys)
    h = report["holdout"]
    assert h["heldout_ids"] == [f"x{i}" for i in holdout_run]
    assert (h["n_choosing"], h["n_heldout"], h["fraction"]) == (27, 27, 0.5)
    # Chosen on the choosing part: a.v1 (27/27); every number outside the block is from that part.
    assert report["recommendation"]["prompt"] == h["chosen"] == "a.v1"
    assert {p["id"]: p["performance"] for p in report["prompts"]} == pytest.approx({"a": 20 / 27, "a.v1": 1.0, "b": 18 / 27})
    assert h["chosen_choosing"] == pytest.approx(1.0)
    assert h["chosen_heldout"] == pytest.approx(17 / 27)
    assert h["optimism"] == pytest.approx(10 / 27)
    # The best original on the choosing part is a (20 > 18), held out right on all 27.
    assert h["baseline"]["prompt"] == "a" and h["baseline"]["heldout"] == pytest.approx(1.0)
    assert h["baseline"]["heldout_interval"] == pytest.approx([1.0, 1.0])
    assert h["difference"] == pytest.approx(-10 / 27)
    # A resample's wrong count of a.v1 is Binomial(27, 10/27): its central 95 % is [5, 15]
    # (P(k <= 4) = 0.011, P(k <= 5) = 0.032, P(k <= 14) = 0.962, P(k <= 15) = 0.984).
    assert h["chosen_heldout_interval"] == pytest.approx([12 / 27, 22 / 27])
    assert h["difference_interval"] == pytest.approx([-15 / 27, -5 / 27])
    # The variant's parent and axes reach its report entry; an original has neither key.
    entries = {p["id"]: p for p in report["prompts"]}
    assert entries["a.v1"]["parent"] == "a"
    assert entries["a.v1"]["axes"] == {"labels": "yes/no", "separator": ": ", "spacing": "\n"}
    assert "parent" not in entries["a"] and "axes" not in entries["b"]
    # Sensitivity: the family of a.v1 is a (20/27) and a.v1 (1); linear percentiles by hand.
    band = report["sensitivity"]
    assert (band["family"], band["n"]) == ("a", 2)
    assert [band["p5"], band["p50"], band["p95"]] == pytest.approx([20 / 27 + q * 7 / 27 for q in (0.05, 0.5, 0.95)])


@pytest.mark.option("select", "--baseline")
def test_a_named_baseline(holdout_run, capsys):
    h = select_json(capsys, "--baseline", "b")["holdout"]
    assert h["baseline"]["prompt"] == "b" and h["baseline"]["how"] == "named with --baseline"
    assert h["baseline"]["heldout"] == pytest.approx(21 / 27)
    assert h["difference"] == pytest.approx(17 / 27 - 21 / 27)
    # Paired: a.v1 minus b is -1 on 10 held-out examples, +1 on 6 (disjoint errors), 0 on 11. A
    # resample's sum is (#plus - #minus) of a Multinomial(27; 6/27, 10/27, 11/27), whose exact CDF
    # (summed by hand over the multinomial) is 0.0135 at -13, 0.0261 at -12, 0.9711 at 3 and
    # 0.9842 at 4: the central 95 % is [-12, 4] / 27, the low end within the resampling noise of
    # -11 (0.0261 is one standard error of 20,000 resamples above 2.5 %). Unpaired, two independent
    # binomials, the high end would be 2 or 3 (CDF 0.9501 at 1, 0.975 at 2, 0.9881 at 3).
    low, high = h["difference_interval"]
    assert -12 / 27 - 1e-9 <= low <= -11 / 27 + 1e-9
    assert high == pytest.approx(4 / 27)


def test_every_report_format_shows_the_holdout(holdout_run, capsys, tmp_path):
    code, _, err = run(capsys, "select", "--scores", "t.npz", "--prompts", "p.toml", "-m", "mi", "--holdout", "0.5",
                       "-o", "r.md", "-o", "r.html")
    assert code == 0, err
    for text in (" ".join(err.split()), (tmp_path / "r.md").read_text(), (tmp_path / "r.html").read_text()):
        assert "0.630" in text  # a.v1 held out: 17/27
        assert "-0.370" in text  # the difference from a: -10/27
        assert "variant of a" in text or "a.v1" in text


def test_a_report_without_holdout_has_no_such_key(holdout_run, capsys):
    code, out, _ = run(capsys, "select", "--scores", "t.npz", "--prompts", "p.toml", "-m", "mi", "--json", "--quiet")
    assert code == 0
    report = json.loads(out)
    assert "holdout" not in report
    assert "holdout" not in select_report(report) and "held out" not in to_html(report)


def test_holdout_input_errors(holdout_run, capsys, tmp_path):
    code, _, err = run(capsys, "select", "--scores", "t.npz", "-m", "mi", "--baseline", "a")
    assert code == 2 and "without --holdout" in one_line_error(err)
    code, _, err = run(capsys, "select", "--scores", "t.npz", "--prompts", "p.toml", "-m", "mi", "--holdout", "0.5",
                       "--baseline", "zz")
    assert code == 2 and "--baseline 'zz' is not a prompt" in one_line_error(err)
    code, _, err = run(capsys, "select", "--scores", "t.npz", "-m", "mi", "--holdout", "1.5")
    assert code == 2 and "--holdout" in err and "0.99" in err
    np.savez(tmp_path / "u.npz", class_logprobs=np.log(np.full((2, 4, 2), 0.5)))
    code, _, err = run(capsys, "select", "--scores", "u.npz", "-m", "mi", "--holdout", "0.5")
    assert code == 2 and "have no labels" in one_line_error(err)


# --- the sensitivity band ---------------------------------------------------------------------

def test_the_band_is_the_families_percentiles(tmp_path):
    lines = ['[[prompt]]\nid = "o"\ntemplate = "{{text}}"\nanswer_choices = { x = ["x"] }\n',
             '[[prompt]]\nid = "other"\ntemplate = "{{text}}?"\nanswer_choices = { x = ["x"] }\n']
    lines += [f'[[prompt]]\nid = "o.v{i}"\nparent = "o"\ntemplate = "{{{{text}}}}{"!" * i}"\nanswer_choices = {{ x = ["x"] }}\n'
              for i in range(1, 21)]
    (tmp_path / "s.toml").write_text("\n".join(lines), encoding="utf-8")
    prompt_set = load_prompt_set(tmp_path / "s.toml")
    # o, o.v1 ... o.v20 at 0, 0.05, ..., 1.0 (21 values): percentiles 5/50/95 fall on 0.05, 0.5, 0.95.
    performance = [0.0, 0.77] + [i / 20 for i in range(1, 21)]
    band = sensitivity_band(prompt_set, performance, "o.v7", "accuracy")
    assert (band["family"], band["n"]) == ("o", 21)
    assert [band["p5"], band["p50"], band["p95"], band["min"], band["max"]] == pytest.approx([0.05, 0.5, 0.95, 0.0, 1.0])
    assert sensitivity_band(prompt_set, performance, "other", "accuracy") is None  # no variants of its own


# --- through a backend ------------------------------------------------------------------------

def test_holdout_with_a_backend_expanded_prompts_and_a_sample_log(capsys, tmp_path, monkeypatch, fake_backend_plugin):
    from tests.fake_project import DATA, PROMPTS

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "data.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in DATA))
    (tmp_path / "p.toml").write_text(PROMPTS)
    assert run(capsys, "expand", "p.toml", "-o", "v.toml", "--n", "2", "--axes", "labels,field_name")[0] == 0
    code, out, err = run(capsys, "select", "-d", "data.jsonl", "-p", "v.toml", "-b", "fake", "-m", "mi", "--holdout", "0.5",
                         "--log-samples", "s.jsonl", "--json", "--quiet")
    assert code == 0, err
    report = json.loads(out)
    h = report["holdout"]
    ids = report["dataset"]["sample_ids"]
    assert len(ids) == 12 and h["n_heldout"] == 6 and h["n_choosing"] == 6
    logged = [json.loads(line)["id"] for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    # The log holds the choosing part, which the methods read; the held-out ids are the rest.
    assert sorted(logged + h["heldout_ids"]) == sorted(ids) and not set(logged) & set(h["heldout_ids"])
    labels = dict(DATA)
    texts = {json.loads(line)["id"]: json.loads(line)["input"]["text"] for line in (tmp_path / "s.jsonl").read_text().splitlines()}
    assert sorted(labels[t] for t in texts.values()) == ["negative"] * 3 + ["positive"] * 3  # stratified
    variants = [p for p in report["prompts"] if "parent" in p]
    assert len(variants) == 6 and all(set(p["axes"]) >= {"labels", "field_name"} for p in variants)
