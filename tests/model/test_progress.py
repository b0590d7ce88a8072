"""Cost before work: the plan of a scoring pass, its time estimate, and progress off a terminal."""

from __future__ import annotations

import csv
import itertools
import re
from pathlib import Path

import pytest
from rich.console import Console

from promptsel.formats.terminal import RichProgress, _duration
from promptsel.model import progress as progress_module
from promptsel.model.progress import Plan
from tests.command_line import SA, run


@pytest.fixture
def big_csv(tmp_path) -> Path:
    """5,000 distinct reviews: a dataset that is long to score."""
    path = tmp_path / "big.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for i in range(5000):
            writer.writerow([f"Review number {i}: the film was {['dull', 'great'][i % 2]}.", ["negative", "positive"][i % 2]])
    return path


def test_select_on_5000_rows_prints_its_cost_before_the_first_batch(capsys, big_csv, fake_backend_plugin):
    # interrupt_after=0: Ctrl-C at the very first backend call, so whatever is printed came before it.
    code, _, err = run(capsys, "select", "--dataset", str(big_csv), "--prompts", SA, "--backend", "fake", "-M", "interrupt_after=0")
    assert code == 130
    # sa.toml on 5,000 inputs: 9 distinct label prompts (sa06 = sa10) and 3 CoT prompts (reasoning, then a
    # follow-up each), and SPELL's 9 distinct templates (sa10-sa13 repeat others): 45k + 15k + 15k + 45k.
    plan = re.search(r"Plan: ([\d,]+) requests to compute; about ([\d,]+) tokens, ([\d,]+) to evaluate .*; up to ([\d,]+) to generate", err)
    assert plan, err
    assert plan.group(1) == "120,000"
    assert plan.group(4) == f"{15000 * 64:,}"  # 3 CoT prompts x 5,000 inputs x --max-new-tokens 64
    assert "Scoring 13 prompts x 5000 inputs: 120,000 to do." in err
    assert err.index("Plan:") < err.index("Interrupted")


def test_a_long_run_without_limit_is_told_how_to_try_a_sample(capsys, big_csv, fake_backend_plugin, monkeypatch):
    clock = itertools.count(step=30.0)  # every look at the clock: 30 s later (a slow machine)
    monkeypatch.setattr(progress_module, "_clock", lambda: next(clock))
    args = ["select", "--dataset", str(big_csv), "--prompts", SA, "--backend", "fake", "-M", "interrupt_after=40", "--methods", "mi"]
    code, _, err = run(capsys, *args)
    assert code == 130
    advice = re.search(r"Estimated time: (.+?) in all, .* left\. That is over 15 min\. .* sample of (\d+) inputs .* run: (.+)$", err, re.M)
    assert advice, err
    n = int(advice.group(2))
    assert 50 <= n < 5000 and n % 50 == 0
    expected = [*args[1:7], "--model-arg", "interrupt_after=40", "--methods", "mi", "--limit", str(n)]  # long option names
    assert advice.group(3).split()[2:] == expected
    # with --limit given, no advice however long it takes
    code, _, err = run(capsys, *args, "--limit", "4000")
    assert code == 130 and "Estimated time" in err and "That is over" not in err


class _Pass:
    """Drive a RichProgress like a scoring pass does."""

    def __init__(self, progress: RichProgress) -> None:
        self.progress = progress

    def run(self, total: int) -> None:
        self.progress.plan(Plan(sequences=total, cached=0, tokens=1000, evaluate=600, generate=64, inputs=10))
        self.progress.start("Scoring 2 prompts x 10 inputs", total)
        for _ in range(total):
            self.progress.advance()
        self.progress.done()


def test_off_a_terminal_progress_is_a_plain_line_every_few_seconds(monkeypatch):
    console = Console(stderr=True, force_terminal=False, width=200, record=True)
    ticks = itertools.count(step=4.0)  # each event 4 s after the one before
    monkeypatch.setattr("promptsel.formats.terminal.time.monotonic", lambda: next(ticks))
    _Pass(RichProgress(console, interval=10)).run(20)
    lines = console.export_text().splitlines()
    assert lines[0] == "Plan: 20 requests to compute; 1,000 tokens, 600 to evaluate after shared prefixes; up to 64 to generate."
    assert lines[1] == "Scoring 2 prompts x 10 inputs: 20 to do."
    progress_lines = [ln for ln in lines[2:] if ln.startswith("Scoring")]
    assert 5 <= len(progress_lines) <= 9  # 20 events x 4 s, a line every >= 10 s, and one at the end
    assert progress_lines[-1].startswith("Scoring 2 prompts x 10 inputs: 20/20 (100 %), ")
    assert all(re.search(r": \d+/20 \(\d+ %\), [\d.]+/s, \d+ s elapsed, \d+ (s|min) left$", ln) for ln in progress_lines)


def test_on_a_terminal_the_bar_shows_a_rate_and_the_time_left_from_the_first_sequence():
    console = Console(file=open("/dev/null", "w"), force_terminal=True, width=200)  # noqa: SIM115
    progress = RichProgress(console)
    progress.start("Scoring", 10)
    assert progress._bar is not None
    progress.advance()
    task = progress._bar.tasks[0]
    assert task.fields["rate"].endswith("/s") and task.fields["left"].endswith(" left")
    progress.estimate(100.0, 42.0)  # the library's estimate replaces the plain average
    progress.advance()
    assert progress._bar.tasks[0].fields["left"] == "42 s left"
    progress.done()


@pytest.mark.parametrize(("seconds", "text"), [(3, "3 s"), (89, "89 s"), (600, "10 min"), (7260, "2 h 01 min")])
def test_durations_read_as_people_say_them(seconds, text):
    assert _duration(seconds) == text


def test_a_long_run_of_many_variants_is_told_about_adaptive(capsys, big_csv, fake_backend_plugin, monkeypatch, tmp_path):
    variants = tmp_path / "v.toml"
    assert run(capsys, "expand", SA, "-o", str(variants), "--n", "4")[0] == 0  # 13 + 52 prompts
    clock = itertools.count(step=30.0)
    monkeypatch.setattr(progress_module, "_clock", lambda: next(clock))
    args = ["select", "--dataset", str(big_csv), "--prompts", str(variants), "--backend", "fake", "-M", "interrupt_after=40",
            "--methods", "mi", "--limit", "200"]
    code, _, err = run(capsys, *args)
    assert code == 130
    line = " ".join(err.split())
    assert "Estimated time" in line and "With 65 prompts, --adaptive" in line, err
    assert "sample of" not in line  # --limit given: no sample advice, only the adaptive one
    # The 13 prompts of sa.toml are not told.
    code, _, err = run(capsys, *[SA if a == str(variants) else a for a in args])
    assert code == 130 and "Estimated time" in err and "--adaptive" not in err
