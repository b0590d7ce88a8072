"""``select --adaptive --holdout``: the split made before any scoring (the same as without
``--adaptive``), the search on the choosing part only, the chosen prompt and the baseline
measured on the held-out part, and every cell counted; replayed and live (issue 22 item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

from promptsel.model.sequential import search
from promptsel.model.stats import stratified_split
from tests.command_line import SA, run
from tests.selection.test_adaptive import project  # noqa: F401  (a fixture: sixty reviews for the fake model)
from tests.selection.test_holdout import PROMPTS

N, SEED = 100, 0


def select_json(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, "select", *argv, "--json", "--no-progress", "-q")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def flipping(tmp_path, monkeypatch):
    """100 examples, 50 per class, split at 0.5 with seed 0. On the choosing 50: a.v1 right on all,
    a on 45, b on none. On the held-out 50: a.v1 right on 10, a on all, b on all, so over the
    whole sample a (95) beats a.v1 (60): a search that read a held-out row could flip the choice.
    b's held-out cells are NaN (not scored): a replay that asked for them would fail."""
    monkeypatch.chdir(tmp_path)
    labels = np.array([0, 1] * (N // 2))
    choose, held = stratified_split(labels, 0.5, seed=SEED)
    right = np.ones((3, N), dtype=bool)  # a, a.v1, b
    right[0, choose[45:]] = False
    right[2, choose] = False
    right[1, held[10:]] = False
    predictions = np.where(right, labels, 1 - labels)
    lp = np.log(np.where(np.arange(2) == predictions[..., None], 0.9, 0.1))
    lp[2, held] = np.nan
    np.savez(tmp_path / "t.npz", class_logprobs=lp, labels=labels, prompt_ids=np.array(["a", "a.v1", "b"]),
             sample_ids=np.array([f"x{i}" for i in range(N)]))
    (tmp_path / "p.toml").write_text(PROMPTS, encoding="utf-8")
    return right, labels, choose, held


def test_the_search_reads_the_choosing_part_and_the_held_out_numbers_match_a_hand_computation(flipping, capsys):
    right, _, choose, held = flipping
    report = select_json(capsys, "--scores", "t.npz", "--prompts", "p.toml", "--adaptive", "--holdout", "0.5",
                         "--round-size", "10", "--bootstrap", "20000")
    # The core search on the choosing part alone, in the order the seed draws for its 50 inputs.
    order = np.random.default_rng(SEED).permutation(len(choose))
    decision, cells = search(right[:, choose].astype(float), order, round_size=10)
    assert decision.leader == 1  # a.v1, which the whole sample would not choose
    a = report["adaptive"]
    assert report["recommendation"]["prompt"] == "a.v1"
    assert (a["stop_reason"], a["search_cells"]) == (decision.reason, cells)
    assert (a["inputs_total"], a["heldout_inputs"]) == (50, 50)
    # The held-out pass: a.v1 and the baseline a, 50 inputs each, counted in cells_scored.
    assert a["heldout_cells"] == 100 and a["cells_scored"] == cells + 100 and a["cells_total"] == 3 * N
    h = report["holdout"]
    assert h["heldout_ids"] == [f"x{i}" for i in held]
    assert (h["n_choosing"], h["n_heldout"], h["chosen"]) == (50, 50, "a.v1")
    assert h["chosen_choosing"] == 1.0 and h["chosen_heldout"] == pytest.approx(10 / 50)
    assert h["optimism"] == pytest.approx(1 - 10 / 50)
    assert "winner's curse and the adaptive stop" in h["optimism_meaning"]
    # The baseline: the best original (a beats b, never right) by its accuracy on the inputs it read.
    rows = {p["id"]: p for p in report["prompts"]}
    n_a = rows["a"]["n"]
    assert h["baseline"]["prompt"] == "a"
    assert h["baseline"]["choosing"] == pytest.approx(right[0, choose][order[:n_a]].mean())
    assert h["baseline"]["heldout"] == 1.0 and h["difference"] == pytest.approx(10 / 50 - 1)
    # A resample's right count of a.v1 is Binomial(50, 0.2); the baseline is always right, so
    # the paired difference is that count over 50, minus 1 (one count of slack for the percentiles).
    low, high = binom.ppf([0.025, 0.975], 50, 0.2) / 50
    assert h["chosen_heldout_interval"] == pytest.approx([low, high], abs=1 / 50 + 1e-9)
    assert h["difference_interval"] == pytest.approx([low - 1, high - 1], abs=1 / 50 + 1e-9)
    # No band in an adaptive run, and the report says why.
    assert "sensitivity" not in report and "different numbers of inputs" in a["sensitivity"]


def every_cell(path: str) -> str:
    """The flipping table with b's held-out cells filled in (both classes at 0.5: argmax class 0)."""
    with np.load("t.npz") as z:
        arrays = dict(z)
    arrays["class_logprobs"] = np.nan_to_num(arrays["class_logprobs"], nan=np.log(0.5))
    np.savez(path, **arrays)
    return path


def test_the_same_seed_holds_out_the_same_examples_with_and_without_adaptive(flipping, capsys):
    full = every_cell("full.npz")  # a plain --holdout run reads every cell
    for seed in ("0", "5"):
        plain = select_json(capsys, "--scores", full, "--holdout", "0.5", "--seed", seed, "-m", "mi")
        adaptive = select_json(capsys, "--scores", full, "--holdout", "0.5", "--seed", seed, "--adaptive")
        assert adaptive["holdout"]["heldout_ids"] == plain["holdout"]["heldout_ids"]


def test_only_the_chosen_prompt_and_the_baseline_are_read_on_the_held_out_part(flipping, capsys):
    _, labels, _, held = flipping
    # b is neither: its held-out cells, missing from t.npz, are asked for only once it is named.
    code, _, err = run(capsys, "select", "--scores", "t.npz", "--prompts", "p.toml", "--adaptive", "--holdout", "0.5",
                       "--baseline", "b", "--no-progress", "-q")
    assert code != 0 and "lacks cells this adaptive replay reads" in err
    report = select_json(capsys, "--scores", every_cell("full.npz"), "--prompts", "p.toml", "--adaptive", "--holdout", "0.5",
                         "--baseline", "b")
    assert report["holdout"]["baseline"]["how"] == "named with --baseline"
    assert report["holdout"]["baseline"]["heldout"] == pytest.approx(np.mean(labels[held] == 0))


LIVE = ("-d", "data.jsonl", "-p", "prompts.toml", "-b", "fake", "--round-size", "4", "--seed", "2", "--holdout", "0.5")
SAME = ("cells_scored", "search_cells", "heldout_cells", "cells_total", "rounds", "stop_reason", "survivors")


def test_live_equals_the_replay_of_its_saved_table_and_of_the_full_table(capsys, project, fake_backend_plugin):  # noqa: F811
    live = select_json(capsys, *LIVE, "--adaptive", "--save-scores", "live.npz")
    replay = select_json(capsys, "--scores", "live.npz", "--adaptive", *LIVE[-6:])
    select_json(capsys, "-d", "data.jsonl", "-p", "prompts.toml", "-b", "fake", "--save-scores", "full.npz")
    full = select_json(capsys, "--scores", "full.npz", "--adaptive", *LIVE[-6:])
    for other in (replay, full):
        assert {k: live["adaptive"][k] for k in SAME} == {k: other["adaptive"][k] for k in SAME}
        assert live["holdout"] == other["holdout"]
    a = live["adaptive"]
    assert a["heldout_cells"] in (30, 60) and a["cells_scored"] == a["search_cells"] + a["heldout_cells"]
    # The saved table holds exactly the cells the run scored, the held-out pass's included.
    with np.load("live.npz") as z:
        assert int((~np.isnan(z["class_logprobs"]).any(axis=-1)).sum()) == a["cells_scored"]
    # Every model request of the held-out pass is counted with the rounds'.
    assert a["tokens"]["requests"] + a["tokens"]["cached"] >= a["cells_scored"]


def test_every_format_shows_the_held_out_pass(flipping, capsys):
    code, _, err = run(capsys, "select", "--scores", "t.npz", "--prompts", "p.toml", "--adaptive", "--holdout", "0.5",
                       "-o", "r.md", "-o", "r.html", "--no-progress")
    assert code == 0, err
    shown, md, page = " ".join(err.split()), Path("r.md").read_text(), Path("r.html").read_text()
    for text in (shown, md, page.replace("&#x27;", "'")):
        assert "winner's curse and the adaptive stop" in text
    for text in (shown, md):
        assert "on the 50 held-out inputs" in text and "No sensitivity band" in text


def test_expanded_variants_chosen_adaptively_and_confirmed_held_out(capsys, project, fake_backend_plugin):  # noqa: F811
    """Issue 22's done-when, on the fake model: ``expand`` then ``select --holdout 0.5 --adaptive``."""
    code, _, err = run(capsys, "expand", str(SA), "-o", "v.toml", "--n", "3", "--seed", "1")
    assert code == 0, err
    report = select_json(capsys, "-d", "data.jsonl", "-p", "v.toml", "-b", "fake", "--holdout", "0.5", "--adaptive", "-m", "mi")
    h, a = report["holdout"], report["adaptive"]
    assert h["chosen"] == report["recommendation"]["prompt"] and h["n_heldout"] == 30 and a["inputs_total"] == 30
    parents = {p["id"]: p.get("parent") for p in report["prompts"]}
    assert parents[h["baseline"]["prompt"]] is None  # an original prompt of sa.toml
    n_held = 1 if h["baseline"]["prompt"] == h["chosen"] else 2
    assert a["heldout_cells"] == 30 * n_held and a["cells_total"] == len(parents) * 60
