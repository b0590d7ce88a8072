"""``promptsel diff`` on two runs whose answer is known (issue 23): two score files that differ
in one prompt's predictions name that prompt with a paired interval that excludes 0; two
identical runs report no change; a report diff compares summary numbers and says so."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from tests.command_line import one_line_error, run
from tests.shared_data import shared_path

FLIPPED = 100  # examples prompt_03 gets wrong in A and right in B


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    """a.npz and a copy; b.npz: prompt_03 right on 100 more examples, prompt_07 with 3 examples
    turned right and 3 turned wrong (6 changed predictions, no change in accuracy)."""
    with np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz")) as d:
        lp, y, ids = d["log_prob"][:13].copy(), d["targets"], d["prompt"][:13]
    for name in ("a.npz", "a_again.npz"):
        np.savez(tmp_path / name, class_logprobs=lp, labels=y, prompt_ids=ids)
    pred = lp.argmax(-1)
    b = lp.copy()
    wrong3 = np.flatnonzero(pred[3] != y)[:FLIPPED]
    b[3, wrong3] = b[3, wrong3][:, ::-1]  # two classes: swapping them flips the prediction
    flip7 = np.concatenate([np.flatnonzero(pred[7] != y)[:3], np.flatnonzero(pred[7] == y)[:3]])
    b[7, flip7] = b[7, flip7][:, ::-1]
    np.savez(tmp_path / "b.npz", class_logprobs=b, labels=y, prompt_ids=ids)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_one_changed_prompt_is_named_with_a_paired_interval_that_excludes_zero(capsys, runs):
    code, out, err = run(capsys, "diff", "a.npz", "b.npz", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["paired"] and result["changed"] == ["prompt_03"] and not result["no_change"]
    row = {r["id"]: r for r in result["prompts"]}
    n = 872
    p = FLIPPED / n
    assert row["prompt_03"]["delta"] == pytest.approx(p) and row["prompt_03"]["changed_predictions"] == FLIPPED
    lo, hi = row["prompt_03"]["delta_interval"]
    assert lo > 0  # excludes 0
    # Each example's change is 0 or +1, so the paired mean is a binomial share: its 95 % interval
    # is close to p ± 1.96 √(p(1-p)/n) = [0.0935, 0.1358].
    half = 1.96 * math.sqrt(p * (1 - p) / n)
    assert lo == pytest.approx(p - half, abs=0.006) and hi == pytest.approx(p + half, abs=0.006)
    # prompt_07: 6 predictions moved, 3 each way: no change in accuracy, within noise, not named.
    assert row["prompt_07"]["changed_predictions"] == 6 and row["prompt_07"]["delta"] == 0
    assert row["prompt_07"]["verdict"] == "within noise"
    assert all(row[q]["verdict"] == "identical" for q in row if q not in ("prompt_03", "prompt_07"))
    assert result["choice"] == {"a": "prompt_05", "b": "prompt_05", "changed": False}
    # Only prompt_03's accuracy moved (0.696 -> 0.811), past prompt_04 .. prompt_12 below 0.811:
    # its rank changes and no other, so the rank correlation is below 1.
    assert result["rank_correlation"]["spearman"] < 1
    assert "prompt_03" in err and "better" in err


@pytest.mark.option("diff", "-o")
def test_identical_runs_report_no_change(capsys, runs):
    code, out, err = run(capsys, "diff", "a.npz", "a_again.npz", "--json", "-o", "d.md", "-o", "d.html")
    assert code == 0, err
    result = json.loads(out)
    assert result["no_change"] and result["changed"] == [] and result["choice"]["changed"] is False
    assert all(r["verdict"] == "identical" and r["delta"] == 0 for r in result["prompts"])
    assert err.strip().splitlines()[-1].startswith("No change")  # the answer is also the last line
    assert "Wrote d.md." in err and "Wrote d.html." in err
    assert "No change" in Path("d.md").read_text() and "No change" in Path("d.html").read_text()


@pytest.mark.option("diff", "--top", "-q")
def test_top_cuts_the_table_to_the_largest_changes_and_quiet_prints_only_the_answer(capsys, runs, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")  # one table: each prompt on one row

    def table_rows(err: str) -> list[str]:
        return re.findall(r"^\s+(prompt_\d+)\s+\d\.\d{3}\s", err, re.M)

    code, _, whole = run(capsys, "diff", "a.npz", "b.npz")
    assert code == 0, whole
    assert sorted(table_rows(whole)) == [f"prompt_{i:02d}" for i in range(13)] and "more prompts" not in whole
    code, _, cut = run(capsys, "diff", "a.npz", "b.npz", "--top", "2")
    assert code == 0, cut
    # the one prompt that changed measurably first, then one more; the other 11 are counted
    rows = table_rows(cut)
    assert len(rows) == 2 and rows[0] == "prompt_03"
    assert "11 more prompts: --top to show more" in cut
    code, _, quiet = run(capsys, "diff", "a.npz", "b.npz", "-q")
    assert code == 0 and quiet.strip().splitlines() == ["1 prompt changed measurably (prompt_03)."]
    assert whole.strip().splitlines()[-1] == "1 prompt changed measurably (prompt_03)." and len(whole.splitlines()) > 10


def test_reports_compare_summary_numbers_and_say_so(capsys, runs):
    for name in ("a", "b"):
        code, _, err = run(capsys, "select", f"--scores={name}.npz", "-m", "mi", "-o", f"{name}.json", "-q", "--no-progress")
        assert code == 0, err
    code, out, err = run(capsys, "diff", "a.json", "b.json", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert not result["paired"]
    row = {r["id"]: r for r in result["prompts"]}
    assert row["prompt_03"]["delta"] == pytest.approx(FLIPPED / 872) and row["prompt_03"]["delta_interval"] is None
    assert any("not which examples" in note for note in result["notes"])


def test_prompts_that_appear_or_disappear_are_listed(capsys, runs):
    with np.load("a.npz") as d:
        np.savez("fewer.npz", class_logprobs=d["class_logprobs"][:12], labels=d["labels"], prompt_ids=d["prompt_ids"][:12])
    code, out, err = run(capsys, "diff", "a.npz", "fewer.npz", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["disappeared"] == ["prompt_12"] and result["appeared"] == [] and not result["no_change"]


def test_unrelated_runs_are_one_line_errors(capsys, runs):
    np.savez("other.npz", class_logprobs=np.zeros((2, 5, 2)), prompt_ids=np.array(["x", "y"]))
    code, _, err = run(capsys, "diff", "a.npz", "other.npz")
    assert code == 2 and "no prompt id in common" in one_line_error(err)
    code, _, err = run(capsys, "diff", "a.npz", "missing.npz")
    assert code == 2 and "no such file" in one_line_error(err)


def test_reports_of_an_edited_prompt_file_name_the_edited_template(capsys, runs):
    for name in ("a", "b"):
        code, _, err = run(capsys, "select", f"--scores={name}.npz", "-m", "mi", "-o", f"{name}.json", "-q", "--no-progress")
        assert code == 0, err
    for name, sha in (("a", "1" * 64), ("b", "2" * 64)):  # prompt_03's template differs, the others agree
        report = json.loads(Path(f"{name}.json").read_text())
        for p in report["prompts"]:
            p["template_sha256"] = sha if p["id"] == "prompt_03" else "0" * 64
        Path(f"{name}.json").write_text(json.dumps(report))
    code, out, err = run(capsys, "diff", "a.json", "b.json", "--json")
    assert code == 0, err
    assert json.loads(out)["edited"] == ["prompt_03"]
    assert "Template changed under the same id: prompt_03." in err
