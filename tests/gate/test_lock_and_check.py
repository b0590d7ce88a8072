"""``promptsel lock`` and ``promptsel check`` without a model: the regression rules on hand-made
lock entries, then the commands end to end on the FakeBackend (exit codes, the lock file, the
Markdown and JUnit a reviewer reads)."""

from __future__ import annotations

import copy
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from promptsel.errors import UsageError
from promptsel.gate.bootstrap import bootstrap_intervals
from promptsel.gate.compare import (
    IMPROVED,
    NEW,
    NOT_COMPARABLE,
    REGRESSED,
    REMOVED,
    UNCHANGED,
    WITHIN,
    compare,
)
from promptsel.gate.diff import describe_changes, text_change
from promptsel.gate.entry import definition_sha256
from promptsel.gate.lockfile import dumps, rounded
from promptsel.gate.policy import Floor, Policy, Tolerance, failed_exit_code
from promptsel.model.scoretable import ScoreTable
from promptsel.selector import SelectionContext
from tests.command_line import run
from tests.fake_project import DATA, PROMPTS

# --- hand-made entries ----------------------------------------------------------------------

YES_NO = [["positive", ["yes", "Yes"]], ["negative", ["no", "No"]]]


def make_entry(perf: dict[str, float | None], chosen: dict[str, str], *, scores: dict[str, dict[str, float]] | None = None,
               intervals: dict[str, list[float]] | None = None, labels: bool = True, fingerprint: str = "f" * 64,
               sample: str = "s" * 64) -> dict:
    """A lock entry with just what ``compare`` reads. Every prompt's definition is its own
    template text, so two prompts are "the same prompt" only when their ids' templates match."""
    scores = scores or {}
    prompts = {}
    for pid, p in perf.items():
        data = {"template": f"Template {pid}: {{{{text}}}}", "answer_choices": YES_NO, "chat": True}
        prompts[pid] = {"definition": data, "definition_sha256": definition_sha256(data), "performance": p,
                        "scores": {m: scores.get(m, {}).get(pid, 0.0) for m in chosen}}
    methods = {m: {"chosen": c, "tied": [c], "performance": perf[c], "score": scores.get(m, {}).get(c, 0.0),
                   "score_interval": (intervals or {}).get(m)} for m, c in chosen.items()}
    return {"request": {"metric": "accuracy"}, "dataset": {"labels": labels, "n": 12, "sample_sha256": sample, "source": "file"},
            "backend": {"fingerprint": fingerprint, "model": "m"}, "prompt_set": {"description": "d"},
            "versions": {"promptsel": "0.1.0"}, "prompts": prompts, "methods": methods,
            "bootstrap": None if labels else {"level": 0.95, "resamples": 1000, "excluded": {}}}


def kinds(findings, subject: str | None = None) -> dict[str, str]:
    return {f.name: f.kind for f in findings if subject is None or f.subject == subject}


def test_an_unchanged_entry_is_unchanged_everywhere():
    old = make_entry({"a": 0.8, "b": 0.6}, {"mi": "a", "globale": "b"})
    found = compare(old, copy.deepcopy(old))
    assert kinds(found) == {"mi": UNCHANGED, "globale": UNCHANGED, "a": UNCHANGED, "b": UNCHANGED}


def test_the_chosen_prompt_dropping_past_the_tolerance_regresses_the_method_and_the_prompt():
    old = make_entry({"a": 0.8, "b": 0.6}, {"mi": "a"})
    new = make_entry({"a": 0.75, "b": 0.6}, {"mi": "a"})
    found = compare(old, new)
    assert kinds(found) == {"mi": REGRESSED, "a": REGRESSED, "b": UNCHANGED}
    method = next(f for f in found if f.name == "mi")
    assert (method.before, method.after, method.chosen) == (0.8, 0.75, ("a", "a"))
    assert "fell from 0.800 (a) to 0.750 (a)" in method.message


def test_a_drop_of_exactly_the_tolerance_passes():
    # 0.5 - 0.48 is 0.020000000000000018 in floats: still "not more than 0.02".
    found = compare(make_entry({"a": 0.5}, {"mi": "a"}), make_entry({"a": 0.48}, {"mi": "a"}))
    assert kinds(found) == {"mi": WITHIN, "a": WITHIN}
    found = compare(make_entry({"a": 0.5}, {"mi": "a"}), make_entry({"a": 0.479}, {"mi": "a"}))
    assert kinds(found) == {"mi": REGRESSED, "a": REGRESSED}


def test_relative_tolerance_scales_with_the_locked_value():
    old, new = make_entry({"a": 0.8}, {"mi": "a"}), make_entry({"a": 0.77}, {"mi": "a"})
    assert kinds(compare(old, new, Policy(Tolerance(0.05, relative=True)))) == {"mi": WITHIN, "a": WITHIN}  # allows 0.04
    assert kinds(compare(old, new, Policy(Tolerance(0.02)))) == {"mi": REGRESSED, "a": REGRESSED}
    assert kinds(compare(old, new, Policy(Tolerance(0.03, relative=True)))) == {"mi": REGRESSED, "a": REGRESSED}  # 0.024


def test_switching_to_a_prompt_worse_than_the_previous_choice_regresses():
    # The method's choice keeps its locked performance (0.8), but it left a, which now does 0.9.
    old = make_entry({"a": 0.8, "b": 0.8}, {"mi": "a"})
    new = make_entry({"a": 0.9, "b": 0.8}, {"mi": "b"})
    found = compare(old, new)
    assert kinds(found, "method") == {"mi": REGRESSED}
    assert "mi now picks b (accuracy 0.800) instead of a, which scores 0.900" in found[0].message
    assert kinds(found, "prompt") == {"a": IMPROVED, "b": UNCHANGED}


def test_switching_to_an_equally_good_prompt_is_within_tolerance():
    old = make_entry({"a": 0.8, "b": 0.79}, {"mi": "a"})
    new = make_entry({"a": 0.8, "b": 0.79}, {"mi": "b"})
    found = compare(old, new)
    assert kinds(found, "method") == {"mi": WITHIN}
    assert found[0].chosen == ("a", "b")


def test_a_locked_prompt_that_no_method_chose_can_regress_too():
    found = compare(make_entry({"a": 0.8, "b": 0.6}, {"mi": "a"}), make_entry({"a": 0.8, "b": 0.5}, {"mi": "a"}))
    assert kinds(found) == {"mi": UNCHANGED, "a": UNCHANGED, "b": REGRESSED}


def test_improvements_are_reported_not_failed():
    found = compare(make_entry({"a": 0.6}, {"mi": "a"}), make_entry({"a": 0.7}, {"mi": "a"}))
    assert kinds(found) == {"mi": IMPROVED, "a": IMPROVED}


def test_a_new_prompt_below_the_floor_regresses():
    old = make_entry({"a": 0.8, "b": 0.6}, {"mi": "a"})
    low, ok = make_entry({"a": 0.8, "b": 0.6, "c": 0.57}, {"mi": "a"}), make_entry({"a": 0.8, "b": 0.6, "c": 0.59}, {"mi": "a"})
    # worst (default): b's 0.6 minus the tolerance 0.02 = 0.58
    found = compare(old, low)
    assert kinds(found, "prompt")["c"] == REGRESSED
    assert "below the floor 0.580 (the worst locked prompt, b at 0.600, minus the tolerance)" in found[-1].message
    assert kinds(compare(old, ok), "prompt")["c"] == NEW
    assert kinds(compare(old, ok, Policy(floor=Floor("value", 0.7))), "prompt")["c"] == REGRESSED
    assert kinds(compare(old, low, Policy(floor=Floor("none"))), "prompt")["c"] == NEW


def test_a_removed_prompt_is_reported_and_a_renamed_one_is_matched_by_its_definition():
    old = make_entry({"a": 0.8, "b": 0.6, "c": 0.5}, {"mi": "a"})
    new = make_entry({"a": 0.8, "b2": 0.6}, {"mi": "a"})
    new["prompts"]["b2"]["definition"] = old["prompts"]["b"]["definition"]
    new["prompts"]["b2"]["definition_sha256"] = old["prompts"]["b"]["definition_sha256"]
    found = compare(old, new)
    assert kinds(found, "prompt") == {"a": UNCHANGED, "b2": WITHIN, "c": REMOVED}
    assert next(f for f in found if f.name == "b2").changes == ("renamed from b",)


def test_without_labels_the_chosen_score_must_stay_inside_the_locked_bootstrap_interval():
    old = make_entry({"a": None, "b": None}, {"mi": "a"}, scores={"mi": {"a": 0.30, "b": 0.1}},
                     intervals={"mi": [0.25, 0.35]}, labels=False)
    for score, kind in ((0.24, REGRESSED), (0.26, WITHIN), (0.30, UNCHANGED), (0.36, IMPROVED)):
        new = make_entry({"a": None, "b": None}, {"mi": "a"}, scores={"mi": {"a": score, "b": 0.1}}, labels=False)
        assert kinds(compare(old, new), "method") == {"mi": kind}, score
    new = make_entry({"a": None, "b": None}, {"mi": "a"}, scores={"mi": {"a": 0.24, "b": 0.1}}, labels=False)
    message = next(f.message for f in compare(old, new) if f.name == "mi")
    assert "below 0.25, the lower end of the locked 95% bootstrap interval [0.25, 0.35]" in message


def test_without_labels_or_an_interval_the_score_uses_the_tolerance():
    old = make_entry({"a": None}, {"zps-log": "a"}, scores={"zps-log": {"a": 0.8}}, labels=False)
    for score, kind in ((0.77, REGRESSED), (0.79, WITHIN), (0.83, IMPROVED)):
        new = make_entry({"a": None}, {"zps-log": "a"}, scores={"zps-log": {"a": score}}, labels=False)
        assert kinds(compare(old, new), "method") == {"zps-log": kind}, score


def test_another_model_or_data_sample_is_not_comparable():
    old = make_entry({"a": 0.8}, {"mi": "a"})
    found = compare(old, make_entry({"a": 0.8}, {"mi": "a"}, fingerprint="0" * 64, sample="1" * 64))
    assert [f.name for f in found if f.kind == NOT_COMPARABLE] == ["model", "data sample"]


def test_describe_changes_names_the_field_and_the_words():
    swapped = [["positive", ["no", "No"]], ["negative", ["yes", "Yes"]]]
    assert describe_changes({"answer_choices": YES_NO, "cot": False}, {"answer_choices": swapped, "cot": True}) == [
        "answer_choices.positive: [yes, Yes] → [no, No]", "answer_choices.negative: [no, No] → [yes, Yes]", "cot: false → true"]
    reordered = [["negative", ["no", "No"]], ["positive", ["yes", "Yes"]]]
    assert describe_changes({"answer_choices": YES_NO}, {"answer_choices": reordered}) == [
        "answer_choices: class order positive, negative → negative, positive"]
    assert text_change("{{text}} Did the reviewer enjoy the movie? ", "{{text}} Did the reviewer hate the movie? ") == (
        '"…the reviewer enjoy the movie? "', '"…the reviewer hate the movie? "')
    assert text_change("Is it good?\n\n{{text}}", "Is it bad?\n\n{{text}}") == ('"Is it good?\\n\\n{{text}}"', '"Is it bad?\\n\\n{{text}}"')
    # Switching CoT on shows the CoT instruction a non-CoT definition leaves out.
    assert describe_changes({"cot": False}, {"cot": True, "cot_instruction": "Think.", "cot_followup": None}) == [
        "cot: false → true", 'cot_instruction: (none) → "Think."']


def test_tolerance_floor_and_exit_code_parsing():
    assert Tolerance.parse("0.02") == Tolerance(0.02, False)
    assert Tolerance.parse(" 5% ") == Tolerance(0.05, True)
    assert str(Tolerance.parse("5%")) == "5% (relative)" and str(Tolerance.parse("0.1")) == "0.1 (absolute)"
    for bad in ("-0.1", "abc", "nan", "%", ""):
        with pytest.raises(UsageError):
            Tolerance.parse(bad)
    assert Floor.parse("worst") == Floor("worst") and Floor.parse("0.6") == Floor("value", 0.6) and Floor.parse("none") == Floor("none")
    with pytest.raises(UsageError):
        Floor.parse("lowest")
    assert failed_exit_code({}) == 100
    assert failed_exit_code({"PROMPTSEL_FAILED_EXIT_CODE": "3"}) == 3
    assert failed_exit_code({"PROMPTSEL_FAILED_EXIT_CODE": "0"}) == 0
    for bad in ("x", "256", "-1"):
        with pytest.raises(UsageError):
            failed_exit_code({"PROMPTSEL_FAILED_EXIT_CODE": bad})


def test_rounding_and_serialisation_are_stable():
    assert rounded({"x": [0.1234567891, -0.0, float("nan"), np.float32(2.5), np.int64(3)]}) == {"x": [0.123457, 0.0, None, 2.5, 3]}
    assert json.dumps(rounded(-0.0)) == "0.0"
    text = dumps({"b": {"z": 1, "a": [1, 2]}, "a": [{"k": "v"}], "about": "x"})
    assert text == '{\n  "a": [\n    {\n      "k": "v"\n    }\n  ],\n  "about": "x",\n  "b": {\n    "a": [1, 2],\n    "z": 1\n  }\n}\n'
    assert json.loads(text) == {"b": {"z": 1, "a": [1, 2]}, "a": [{"k": "v"}], "about": "x"}


def test_bootstrap_interval_is_exact_where_resampling_cannot_move_the_score():
    # Prompt 0 says 50/50 on every example: MI = ln 2 - ln 2 = 0 on any resample. Prompt 1 is
    # sure and right on half the examples and sure the other way on the rest: MI varies.
    lp = np.log(np.array([[[0.5, 0.5]] * 8, [[0.99, 0.01], [0.01, 0.99]] * 4]))
    table = ScoreTable(prompt_ids=["flat", "sure"], class_names=["a", "b"], class_logprobs=lp)
    intervals, excluded = bootstrap_intervals(table, ["mi", "zps-log"], SelectionContext(), resamples=200, seed=1)
    assert excluded == {"zps-log": "a prompt's score depends on every other prompt (the pseudo-label ensemble)"}
    assert intervals["mi"][0].tolist() == pytest.approx([0.0, 0.0], abs=1e-12)
    lo, hi = intervals["mi"][1]
    assert 0 < lo < hi <= np.log(2)
    again, _ = bootstrap_intervals(table, ["mi"], SelectionContext(), resamples=200, seed=1)
    assert np.array_equal(again["mi"], intervals["mi"])


# --- the commands on the FakeBackend --------------------------------------------------------

KEY = "prompts.toml | data.jsonl | limit=all | fake:fake"


def one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err
    assert lines[-1].startswith("Error: "), err
    return lines[-1]


@pytest.fixture
def project(tmp_path, monkeypatch, fake_backend_plugin) -> Path:
    """A repository with a prompt set, a labelled data file and a lock of them (methods mi,
    globale; the fake model)."""
    (tmp_path / "data.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in DATA))
    (tmp_path / "prompts.toml").write_text(PROMPTS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROMPTSEL_FAILED_EXIT_CODE", raising=False)
    return tmp_path


def lock(capsys, *extra: str) -> dict:
    code, _, err = run(capsys, "lock", "-d", "data.jsonl", "-p", "prompts.toml", "-b", "fake", "-m", "mi,globale",
                       "--no-progress", "-q", *extra)
    assert code == 0, err
    return json.loads(Path("promptsel.lock").read_text())


def check(capsys, *extra: str) -> tuple[int, str]:
    code, _, err = run(capsys, "check", "--no-progress", "-o", "check.md", "-o", "check.json", "--junit", "check.xml", *extra)
    return code, err


def edit_prompts(old: str, new: str) -> None:
    text = Path("prompts.toml").read_text()
    assert old in text
    Path("prompts.toml").write_text(text.replace(old, new))


@pytest.mark.option("lock", "-d", "-p", "-m")
def test_lock_records_the_run_and_is_byte_identical_when_rerun(capsys, project):
    data = lock(capsys)
    first = Path("promptsel.lock").read_bytes()
    lock(capsys)
    assert Path("promptsel.lock").read_bytes() == first
    assert list(data["entries"]) == [KEY] and data["lock_version"] == 1
    entry = data["entries"][KEY]
    assert entry["request"]["prompts"] == "prompts.toml" and entry["request"]["dataset"] == "data.jsonl"  # relative
    assert entry["request"]["methods"] == ["mi", "globale"]
    assert entry["dataset"]["n"] == 12 and entry["dataset"]["labels"] is True and entry["dataset"]["source"] == "file"
    assert entry["versions"]["promptsel"] and "python" not in entry["versions"]
    assert set(entry["prompts"]) == {"yesno", "goodbad", "plain"}
    goodbad = entry["prompts"]["goodbad"]
    assert goodbad["definition"]["answer_choices"] == [["positive", ["good"]], ["negative", ["bad"]]]
    assert goodbad["definition"]["template"] == "{{text}} Was it good or bad?"
    # 12 examples: every accuracy is k/12, written with six significant digits.
    assert all(p["performance"] in {float(f"{k / 12:.6g}") for k in range(13)} for p in entry["prompts"].values())
    for m in ("mi", "globale"):
        chosen = entry["methods"][m]["chosen"]
        assert entry["methods"][m]["performance"] == entry["prompts"][chosen]["performance"]
        assert entry["methods"][m]["score"] == entry["prompts"][chosen]["scores"][m]
    assert first.decode().count('"answer_choices": [["') == 3  # short lists on one line: one-line diffs


@pytest.mark.option("check", "-o", "--junit")
def test_unchanged_prompts_pass_from_the_cache(capsys, project):
    lock(capsys)
    code, err = check(capsys)
    assert code == 0, err
    assert "promptsel check passed" in err
    result = json.loads(Path("check.json").read_text())
    assert result["status"] == "passed" and result["entries"][0]["cache"]["misses"] == 0
    md = Path("check.md").read_text()
    assert md.startswith("## ✅ promptsel check passed") and "3 prompts unchanged." in md
    suites = ET.parse("check.xml").getroot()
    assert (suites.get("tests"), suites.get("failures"), suites.get("errors")) == ("5", "0", "0")


def test_swapped_label_words_exit_100_and_name_the_prompt(capsys, project):
    locked = lock(capsys)["entries"][KEY]
    # Listing negative first keeps every rendered text the same, so the two class log-probs
    # just trade places: the new accuracy is exactly 1 - the old one.
    before = locked["prompts"]["goodbad"]["performance"]
    assert before >= 7 / 12  # the fake model's cue word "great" makes "good" likely on positives
    edit_prompts('answer_choices = { positive = ["good"], negative = ["bad"] }',
                 'answer_choices = { negative = ["good"], positive = ["bad"] }')
    code, err = check(capsys)
    assert code == 100, err
    assert "REGRESSED goodbad: accuracy fell from" in err
    md = Path("check.md").read_text()
    assert md.startswith("## ❌ promptsel check failed")
    row = next(line for line in md.splitlines() if line.startswith("| ❌ regressed | goodbad |"))
    assert row == (f"| ❌ regressed | goodbad | answer_choices.positive: [good] → [bad]; answer_choices.negative: [bad] → [good] "
                   f"| {before:.3f} | {1 - before:.3f} | {1 - 2 * before:+.3f} |")
    assert "2 prompts unchanged." in md
    failing = {case.get("name") for case in ET.parse("check.xml").getroot().iter("testcase") if case.find("failure") is not None}
    assert "prompt goodbad" in failing
    assert {"prompt yesno", "prompt plain"}.isdisjoint(failing)
    assert json.loads(Path("check.json").read_text())["status"] == "regressed"


def test_the_failed_exit_code_can_be_overridden(capsys, project, monkeypatch):
    lock(capsys)
    edit_prompts('positive = ["good"], negative = ["bad"]', 'negative = ["good"], positive = ["bad"]')
    monkeypatch.setenv("PROMPTSEL_FAILED_EXIT_CODE", "3")
    assert check(capsys)[0] == 3
    monkeypatch.setenv("PROMPTSEL_FAILED_EXIT_CODE", "0")  # report, do not fail (benchmarks)
    assert check(capsys)[0] == 0
    assert Path("check.md").read_text().startswith("## ❌")
    monkeypatch.setenv("PROMPTSEL_FAILED_EXIT_CODE", "many")
    code, err = check(capsys)
    assert code == 2 and "PROMPTSEL_FAILED_EXIT_CODE must be an exit code" in one_line_error(err)


@pytest.mark.option("check", "--update")
def test_update_blesses_the_new_state(capsys, project):
    lock(capsys)
    edit_prompts('positive = ["good"], negative = ["bad"]', 'negative = ["good"], positive = ["bad"]')
    code, err = check(capsys, "--update")
    assert code == 0, err
    assert Path("check.md").read_text().startswith("## 🔄 promptsel check --update")
    entry = json.loads(Path("promptsel.lock").read_text())["entries"][KEY]
    assert entry["prompts"]["goodbad"]["definition"]["answer_choices"] == [["negative", ["good"]], ["positive", ["bad"]]]
    assert check(capsys)[0] == 0


@pytest.mark.option("check", "--floor")
def test_new_prompts_are_held_to_the_floor(capsys, project):
    lock(capsys)
    Path("prompts.toml").write_text(PROMPTS + '\n[[prompt]]\nid = "extra"\ntemplate = "{{text}}?"\n'
                                    'answer_choices = { positive = ["up"], negative = ["down"] }\n')
    code, err = check(capsys, "--floor", "1.01")  # no accuracy reaches it
    assert code == 100 and "new prompt extra: accuracy" in err and "below the floor 1.01" in err
    assert check(capsys, "--floor", "none")[0] == 0
    assert "| 🆕 new | extra | new prompt |" in Path("check.md").read_text()


def test_a_lock_moved_with_its_repository_still_checks(capsys, project, tmp_path_factory, monkeypatch):
    lock(capsys)
    moved = tmp_path_factory.mktemp("elsewhere") / "repo"
    shutil.copytree(project, moved)
    monkeypatch.chdir(moved.parent)
    code, err = check(capsys, "--lock", "repo/promptsel.lock")
    assert code == 0, err


def test_a_broken_or_missing_lock_is_a_usage_error(capsys, project):
    code, err = check(capsys)
    assert code == 2 and "No lock file at promptsel.lock" in one_line_error(err) and "promptsel lock" in err
    Path("promptsel.lock").write_text('{"entries": {<<<<<<< HEAD\n')
    code, err = check(capsys)
    assert code == 2 and "promptsel.lock is not a valid lock file" in one_line_error(err)
    Path("promptsel.lock").write_text('{"lock_version": 99, "entries": {}}')
    assert check(capsys)[0] == 2
    Path("promptsel.lock").write_text('{"lock_version": 1, "entries": {"x": {"request": {}}}}')
    code, err = check(capsys)
    assert code == 2 and "entry 'x' has no valid request.prompts" in one_line_error(err)
    assert not Path("check.md").exists()  # nothing was compared, so nothing to post
    code, _, err = run(capsys, "lock", "-d", "data.jsonl", "-p", "prompts.toml", "-b", "fake", "-q")
    assert code == 2 and "entry 'x'" in one_line_error(err)  # lock never overwrites a lock it cannot read
    Path("promptsel.lock").unlink()
    data = lock(capsys)
    del data["entries"][KEY]["prompts"]["goodbad"]["definition"]
    Path("promptsel.lock").write_text(json.dumps(data))
    code, err = check(capsys)
    assert code == 2 and f"entry {KEY!r} has no valid prompts.goodbad.definition" in one_line_error(err)


def test_a_broken_prompt_file_is_a_usage_error_not_a_regression(capsys, project):
    lock(capsys)
    Path("prompts.toml").write_text(PROMPTS.replace('id = "plain"', 'id = "plain'))
    code, err = check(capsys)
    assert code == 2 and "prompts.toml: invalid TOML" in one_line_error(err)
    Path("prompts.toml").unlink()
    code, err = check(capsys)
    assert code == 2 and "Prompt file not found" in one_line_error(err)


def test_a_backend_crash_is_exit_1_not_a_regression(capsys, project):
    lock(capsys)
    edit_prompts("Was it good or bad?", "Good or bad?")  # not in the cache: the backend must run
    code, err = check(capsys, "-M", "fail_after=0")
    assert code == 1, err
    assert "fake backend failure" in one_line_error(err)
    assert not Path("check.md").exists()


def test_another_model_or_data_sample_is_an_error_that_says_so(capsys, project):
    lock(capsys)
    code, err = check(capsys, "--model", "other")
    assert code == 2 and "the model is not the locked one: the lock has fake" in one_line_error(err)
    assert Path("check.md").read_text().startswith("## ⚠️ promptsel check could not compare")
    assert ET.parse("check.xml").getroot().get("errors") == "1"
    Path("data.jsonl").write_text(Path("data.jsonl").read_text().replace("tedious", "very tedious"))
    code, err = check(capsys)
    assert code == 2 and "the evaluation sample is not the locked one" in one_line_error(err)
    assert check(capsys, "--update")[0] == 0  # accepting the new data
    assert check(capsys)[0] == 0


@pytest.mark.option("lock", "--limit")
@pytest.mark.option("check", "--prompts")
def test_entries_are_kept_per_sample_and_selected_with_filters(capsys, project):
    lock(capsys)
    lock(capsys, "--limit", "6")
    entries = json.loads(Path("promptsel.lock").read_text())["entries"]
    assert sorted(entries) == ["prompts.toml | data.jsonl | limit=6 | fake:fake", KEY]
    code, err = check(capsys, "-p", "prompts.toml")
    assert code == 0, err
    assert len(json.loads(Path("check.json").read_text())["entries"]) == 2
    Path("other.toml").write_text(PROMPTS)
    code, err = check(capsys, "-p", "other.toml")
    assert code == 2 and "has no entry for prompts other.toml" in one_line_error(err)


def test_label_free_lock_records_bootstrap_intervals(capsys, project):
    Path("unlabeled.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t, _ in DATA))
    code, _, err = run(capsys, "lock", "-d", "unlabeled.jsonl", "--classes", "positive,negative", "-p", "prompts.toml",
                       "-b", "fake", "-m", "mi,zps-log", "--no-progress", "-q")
    assert code == 0, err
    entry = json.loads(Path("promptsel.lock").read_text())["entries"]["prompts.toml | unlabeled.jsonl | limit=all | fake:fake"]
    assert entry["dataset"]["labels"] is False
    assert entry["bootstrap"]["resamples"] == 1000 and entry["bootstrap"]["level"] == 0.95
    assert set(entry["bootstrap"]["excluded"]) == {"zps-log"}
    lo, hi = entry["methods"]["mi"]["score_interval"]
    assert lo <= hi and entry["methods"]["zps-log"]["score_interval"] is None
    assert entry["methods"]["mi"]["performance"] is None
    code, err = check(capsys)
    assert code == 0, err
    assert "| score before |" in Path("check.md").read_text()


def test_the_default_bootstrap_interval_is_a_95_percent_one(tmp_path):
    """SPELL scores a prompt by minus its mean perplexity, a plain mean over the examples. For
    the mean of N values with standard deviation s, a 95% percentile bootstrap interval is about
    2 x 1.96 s / sqrt(N) wide (normal theory): 0.196 for s = 1, N = 400; a 50% one would be
    2 x 0.674 / 20 = 0.067."""
    rng = np.random.default_rng(7)
    z = rng.normal(size=400)
    perplexity = 5.0 + (z - z.mean()) / z.std()  # mean 5, standard deviation exactly 1
    table = ScoreTable(prompt_ids=["a", "b"], class_names=["x", "y"], class_logprobs=np.zeros((2, 400, 2)),
                       prompt_nll=np.log(np.stack([perplexity, perplexity[::-1]])))
    intervals, _ = bootstrap_intervals(table, ["spell"], SelectionContext())  # the defaults
    for lo, hi in intervals["spell"]:
        assert lo < -5.0 < hi
        assert 0.17 < hi - lo < 0.225, (lo, hi)
    # ...and the interval a lock entry records is that one (make_entry is what `lock` calls).
    from promptsel.gate.entry import make_entry
    from promptsel.model.prompts import load_prompt_set
    from promptsel.selection.report import evaluate

    prompts = tmp_path / "p.toml"
    prompts.write_text("".join(f'[[prompt]]\nid = "{i}"\ntemplate = "{i} {{{{text}}}}"\nanswer_choices = {{ x = ["x"], y = ["y"] }}\n'
                               for i in "ab"))
    scores = {"spell": -np.exp(table.prompt_nll).mean(axis=1)}
    report = {**evaluate(table, scores), "dataset": {"name": "d", "split": None, "n": 400, "sample_ids_sha256": "s"},
              "backend": {"name": "fake", "model": "m", "fingerprint": "f"}, "versions": {}}
    entry = make_entry({"seed": 0}, report, table, load_prompt_set(prompts), {"sha256": "digest", "source": "memory"})
    lo, hi = entry["methods"]["spell"]["score_interval"]
    assert entry["bootstrap"]["level"] == 0.95 and 0.17 < hi - lo < 0.225, (lo, hi)
