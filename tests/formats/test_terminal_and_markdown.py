from __future__ import annotations

import io
import re

import numpy as np
from rich.console import Console

from promptsel.formats.markdown import select_report as to_markdown
from promptsel.formats.terminal import print_report
from promptsel.model.scoretable import ScoreTable
from promptsel.selection.report import evaluate


def report() -> dict:
    rng = np.random.default_rng(0)
    table = ScoreTable(prompt_ids=[f"p{i}" for i in range(4)], class_names=["a", "b"],
                       class_logprobs=rng.normal(size=(4, 30, 2)), labels=rng.integers(0, 2, 30))
    scores = {"mi": np.array([0.1, 0.3, 0.2, 0.0]), "self-select": np.array([0.2, 0.2, 0.5, 0.1])}
    body = evaluate(table, scores)
    return {"dataset": {"name": "toy", "split": "test", "n": 30}, "backend": {"name": "fake", "model": "m"},
            "metric": "accuracy", "ndcg_variant": "minmax", "seed": 0, **body}


def render(width: int) -> str:
    out = io.StringIO()
    print_report(report(), Console(file=out, width=width, color_system=None))
    return out.getvalue()


def test_wide_terminal_shows_score_and_rank_in_one_table():
    text = render(200)
    assert "*0.3 (1)" in text  # mi chooses p1: its score, its rank, the choice mark
    assert "*0.5 (1)" in text and "score (rank)" in text
    assert "oracle" in text and "random: what a random ranking earns, expected" in text


def test_narrow_terminal_splits_scores_and_ranks_and_names_the_methods():
    text = render(40)
    assert "m1=mi" in text and "m2=self-select" in text
    assert "*0.3" in text and "ranks" in text


def test_markdown_report_lists_every_prompt_and_method():
    md = to_markdown(report())
    assert all(f"| p{i} |" in md for i in range(4))
    assert "| mi | p1 |" in md and "| self-select | p2 |" in md


def test_markdown_from_a_scores_file_has_no_none_and_folds_the_table_best_first():
    r = report()
    r["dataset"].update(split=None, source="scores:toy.npz")
    r["backend"] = {"name": None, "model": None}
    r["run"] = {"timestamp": "2026-01-01T00:00:00+00:00", "command": "promptsel select --scores toy.npz",
                "promptsel_revision": {"commit": "abcdef0123456789", "dirty": False}, "prompts_revision": None}
    for p in r["prompts"]:
        p["performance_interval"] = [p["performance"] - 0.1, p["performance"] + 0.1]
    md = to_markdown(r)
    assert "None" not in md
    assert md.startswith("# promptsel: toy (n=30)\n") and "From the scores file `toy.npz`" in md
    assert "<details>" in md and "</details>" in md
    order = [line.split("|")[1].strip() for line in md.splitlines() if re.match(r"\| p\d ", line)]
    perf = {p["id"]: p["performance"] for p in r["prompts"]}
    assert order == sorted(perf, key=lambda k: -perf[k])
    best = order[0]
    assert f"| {best} | {perf[best]:.3f} | {perf[best] - 0.1:.3f}–{perf[best] + 0.1:.3f} |" in md
    assert "- command: `promptsel select --scores toy.npz`" in md and "- promptsel revision: `abcdef012345`" in md


def test_csv_has_one_row_per_prompt_with_its_numbers():
    import csv as csvlib

    from promptsel.formats.table_csv import select_rows

    r = report()
    r["recommendation"] = {"prompt": "p1"}
    rows = list(csvlib.DictReader(io.StringIO(select_rows(r))))
    assert [row["prompt"] for row in rows] == ["p0", "p1", "p2", "p3"]
    assert [row["recommended"] for row in rows] == ["False", "True", "False", "False"]
    for row, p in zip(rows, r["prompts"]):
        assert float(row["accuracy"]) == p["performance"]  # full precision, not rounded
        assert float(row["mi_score"]) == p["scores"]["mi"]
    # mi's scores 0.1, 0.3, 0.2, 0.0: ranks 3, 1, 2, 4.
    assert [row["mi_rank"] for row in rows] == ["3", "1", "2", "4"]
    assert rows[0]["accuracy_low"] == ""  # no interval in this report: empty, not "None"
