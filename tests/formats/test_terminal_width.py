"""The terminal report as a CI log reads it (issue 23): stderr into a file at 80 columns, the UPS
fixture's 100 prompts. No number is split across lines, the last line is the recommendation,
``--top``/``--sort`` order and cut the table, ``-q`` keeps the answer and its warnings."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.command_line import run
from tests.shared_data import shared_path


@pytest.fixture
def ups100(tmp_path, monkeypatch):
    with np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz")) as d:
        np.savez(tmp_path / "ups100.npz", class_logprobs=d["log_prob"], prompt_nll=-np.log(d["p_xt"]),
                 labels=d["targets"], prompt_ids=d["prompt"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")  # what rich falls back to on a stream that is not a terminal
    return tmp_path


def rows_of(err: str, pid: str) -> list[str]:
    return [line for line in err.splitlines() if re.match(rf"\s+{pid}\s", line)]


def test_80_columns_into_a_file_split_no_number_and_end_with_the_recommendation(capsys, ups100):
    code, out, err = run(capsys, "select", "--scores", "ups100.npz", "--no-progress", "--json")  # every method: 9 columns
    assert code == 0, err
    report = json.loads(out)
    assert max(len(line) for line in err.splitlines()) <= 80
    for p in report["prompts"]:
        rows = rows_of(err, p["id"])
        assert rows, p["id"]
        # Its accuracy, whole, on the first table's row of the prompt (a split number would leave
        # "0.86" on this line and "7" under it).
        assert f" {p['performance']:.3f} " in rows[0] + " "
        # The next line of the log is another prompt's row or the table's end, never a rest of a cell.
        lines = err.splitlines()
        after = lines[lines.index(rows[0]) + 1]
        assert not re.fullmatch(r"\s+[\d.()*+-]+(\s+[\d.()*+-]+)*\s*", after), after
    rec = report["recommendation"]
    lo, hi = rec["performance_interval"]
    assert err.rstrip("\n").splitlines()[-1] == (f"Recommended prompt: {rec['prompt']} (accuracy {rec['performance']:.3f}, "
                                                 f"95% interval {lo:.3f}–{hi:.3f}).")


def prompts_table(err: str) -> list[str]:
    """The ids of the prompts table's rows, in order (the other tables start with a method)."""
    return [m.group(1) for m in re.finditer(r"^\s+(prompt_\d+)\s+\d\.\d{3}\s", err, re.M)]


@pytest.mark.option("select", "--top", "--sort")
def test_top_and_sort(capsys, ups100):
    code, out, err = run(capsys, "select", "--scores", "ups100.npz", "--no-progress", "--json", "-m", "mi,spell", "--top", "3",
                         "--sort", "performance")
    assert code == 0, err
    perf = {p["id"]: p["performance"] for p in json.loads(out)["prompts"]}
    best3 = sorted(perf, key=lambda k: -perf[k])[:3]
    shown = [pid for pid in perf if rows_of(err, pid)]
    assert set(shown) >= set(best3)
    # In the prompts table only the best three appear, best first (other ids may be method choices).
    assert prompts_table(err) == best3
    assert "The best 3 of 100 prompts by performance" in err
    code, out, err = run(capsys, "select", "--scores", "ups100.npz", "--no-progress", "--json", "-m", "mi,spell", "--sort", "mi", "--top", "3")
    mi = {p["id"]: p["scores"]["mi"] for p in json.loads(out)["prompts"]}
    top_mi = sorted(mi, key=lambda k: -mi[k])[:3]
    assert prompts_table(err) == top_mi != best3  # MI's three best, in MI's order
    assert "The best 3 of 100 prompts by mi" in err
    # without --top the table holds every prompt
    code, _, err = run(capsys, "select", "--scores", "ups100.npz", "--no-progress", "-m", "mi,spell")
    assert code == 0 and sorted(prompts_table(err)) == sorted(perf) and "The best" not in err


@pytest.mark.option("select", "-q")
def test_quiet_keeps_the_recommendation_and_warnings_and_says_what_it_wrote(capsys, ups100):
    code, _, err = run(capsys, "select", "--scores", "ups100.npz", "--no-progress", "-q", "-m", "mi,consensus", "-o", "r.md")
    assert code == 0, err
    assert err.startswith("Wrote r.md.")
    assert "Recommended prompt: prompt_05" in err and "Warning (collapsed)" in err
    assert "Choice per method" not in err and not prompts_table(err)  # no tables
    code, _, loud = run(capsys, "select", "--scores", "ups100.npz", "--no-progress", "-m", "mi,consensus", "-o", "r.md")
    assert code == 0 and "Choice per method" in loud and len(prompts_table(loud)) == 100
    assert err.rstrip("\n").splitlines()[-1].startswith("Recommended prompt: prompt_05")


def test_a_sort_by_a_method_not_run_is_refused_before_the_run(capsys, ups100):
    code, _, err = run(capsys, "select", "--scores", "ups100.npz", "--no-progress", "-m", "mi", "--sort", "spell")
    assert code == 2 and "--sort spell" in err
