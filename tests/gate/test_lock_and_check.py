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
    NOTE,
    REGRESSED,
    REMOVED,
    UNCHANGED,
    WITHIN,
    Finding,
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
from tests.shared_data import shared_path

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


def method_finding(found, name: str) -> Finding:
    return next(f for f in found if f.subject == "method" and f.name == name)


def test_every_method_finding_is_whole_messages_numbers_and_choices():
    """Each branch of the method rule, read as the whole Finding the reports print."""
    old = make_entry({"a": 0.8, "b": 0.79}, {"mi": "a"})
    cases = [
        (make_entry({"a": 0.9, "b": 0.79}, {"mi": "a"}), Finding(IMPROVED, "method", "mi", "mi: the chosen prompt's accuracy rose from 0.800 to 0.900",
                                                                 0.8, 0.9, (), ("a", "a"))),
        (make_entry({"a": 0.8, "b": 0.79}, {"mi": "b"}), Finding(WITHIN, "method", "mi", "mi: choice a → b, accuracy 0.800 → 0.790",
                                                                 0.8, 0.79, (), ("a", "b"))),
        (make_entry({"a": 0.7, "b": 0.79}, {"mi": "a"}), Finding(
            REGRESSED, "method", "mi", "mi: the chosen prompt's accuracy fell from 0.800 (a) to 0.700 (a); tolerance 0.02 (absolute)",
            0.8, 0.7, (), ("a", "a"))),
        (make_entry({"a": 0.9, "b": 0.8}, {"mi": "b"}), Finding(
            REGRESSED, "method", "mi", "mi now picks b (accuracy 0.800) instead of a, which scores 0.900; tolerance 0.02 (absolute)",
            0.8, 0.8, (), ("a", "b"))),
        (make_entry({"a": 0.8, "b": 0.79}, {"mi": "a"}), Finding(UNCHANGED, "method", "mi", "mi: still a", 0.8, 0.8, (), ("a", "a"))),
    ]
    for new, expected in cases:
        assert method_finding(compare(old, new), "mi") == expected


def test_a_method_that_did_not_run_is_a_note_and_the_others_are_still_compared():
    old = make_entry({"a": 0.8}, {"globale": "a", "mi": "a"})
    found = compare(old, make_entry({"a": 0.7}, {"mi": "a"}))
    assert method_finding(found, "globale") == Finding(NOTE, "method", "globale", "globale did not run")
    assert method_finding(found, "mi").kind == REGRESSED


def test_a_missing_number_on_either_side_is_a_note_not_a_verdict():
    old = make_entry({"a": None, "b": 0.6}, {"mi": "a"})
    found = compare(old, make_entry({"a": 0.8, "b": 0.6}, {"mi": "a"}))
    assert method_finding(found, "mi") == Finding(NOTE, "method", "mi", "mi: no finite accuracy to compare", None, 0.8, (), ("a", "a"))
    assert next(f for f in found if f.name == "a") == Finding(NOTE, "prompt", "a", "a: no finite accuracy to compare with an unchanged definition",
                                                              None, 0.8)  # (a TypeError before)
    # ...and the floor is the worst prompt that has a number (a TypeError on None before).
    found = compare(old, make_entry({"a": 0.8, "b": 0.6, "c": 0.575}, {"mi": "a"}))
    assert next(f for f in found if f.name == "c").message == (
        "new prompt c: accuracy 0.575 is below the floor 0.580 (the worst locked prompt, b at 0.600, minus the tolerance)")
    assert next(f for f in compare(make_entry({"a": None}, {"mi": "a"}), make_entry({"a": None, "c": 0.1}, {"mi": "a"}))
                if f.name == "c").kind == NEW  # no number locked: no floor
    old = make_entry({"a": None}, {"mi": "a"}, scores={"mi": {"a": 0.3}}, labels=False)
    new = make_entry({"a": None}, {"mi": "a"}, scores={"mi": {"a": 0.3}}, labels=False)
    new["methods"]["mi"]["score"] = None
    assert method_finding(compare(old, new), "mi") == Finding(NOTE, "method", "mi", "mi: no finite score to compare", 0.3, None, (), ("a", "a"))


def test_the_interval_rule_holds_at_its_edges_and_names_the_locked_level():
    old = make_entry({"a": None}, {"mi": "a"}, scores={"mi": {"a": 0.30}}, intervals={"mi": [0.25, 0.35]}, labels=False)
    eps = 1e-9
    # Outside only past the interval's ends by more than the slack: at lo - eps and hi + eps, within.
    for score, kind in ((0.25, WITHIN), (0.25 - eps, WITHIN), (0.35, WITHIN), (0.35 + eps, WITHIN), (0.2499, REGRESSED), (0.3501, IMPROVED)):
        new = make_entry({"a": None}, {"mi": "a"}, scores={"mi": {"a": score}}, labels=False)
        assert method_finding(compare(old, new), "mi").kind == kind, score
    new = make_entry({"a": None}, {"mi": "a"}, scores={"mi": {"a": 0.36}}, labels=False)
    assert method_finding(compare(old, new), "mi").message == "mi: the chosen prompt's score rose from 0.3 to 0.36"
    new = make_entry({"a": None}, {"mi": "a"}, scores={"mi": {"a": 0.31}}, labels=False)
    assert method_finding(compare(old, new), "mi").message == "mi: choice a → a, score 0.3 → 0.31"
    low = make_entry({"a": None}, {"mi": "a"}, scores={"mi": {"a": 0.2}}, labels=False)
    old["bootstrap"]["level"] = 0.9
    assert method_finding(compare(old, low), "mi").message == (
        "mi: the chosen prompt's score fell from 0.3 (a) to 0.2 (a); below 0.25, the lower end of the locked 90% bootstrap "
        "interval [0.25, 0.35]")
    del old["bootstrap"]  # a lock from before the level was recorded: 95 %
    assert "the locked 95% bootstrap interval" in method_finding(compare(old, low), "mi").message
    no_interval = make_entry({"a": None}, {"zps-log": "a"}, scores={"zps-log": {"a": 0.8}}, labels=False)
    worse = make_entry({"a": None}, {"zps-log": "a"}, scores={"zps-log": {"a": 0.7}}, labels=False)
    assert method_finding(compare(no_interval, worse), "zps-log").message == (
        "zps-log: the chosen prompt's score fell from 0.8 (a) to 0.7 (a); tolerance 0.02 (absolute) (no bootstrap interval for zps-log)")


def test_labels_on_one_side_only_compare_scores_and_a_removed_previous_choice_is_no_crash():
    old = make_entry({"a": 0.8}, {"mi": "a"}, scores={"mi": {"a": 0.3}}, intervals={"mi": [0.25, 0.35]})
    new = make_entry({"a": None}, {"mi": "a"}, scores={"mi": {"a": 0.2}}, labels=False)
    found = method_finding(compare(old, new), "mi")
    assert found.kind == REGRESSED and (found.before, found.after) == (0.3, 0.2)  # the scores, by the interval
    old = make_entry({"a": 0.8, "c": 0.9}, {"mi": "c"})
    new = make_entry({"a": 0.8}, {"mi": "a"})  # c was deleted; mi moved to a
    found = compare(old, new)
    assert method_finding(found, "mi") == Finding(
        REGRESSED, "method", "mi", "mi: the chosen prompt's accuracy fell from 0.900 (c) to 0.800 (a); tolerance 0.02 (absolute)",
        0.9, 0.8, (), ("c", "a"))


def test_missing_numbers_print_as_a_dash_and_an_old_lock_without_a_prompt_set_compares():
    old = make_entry({"a": None}, {"mi": "a", "globale": "a"}, scores={"mi": {"a": 0.3}, "globale": {"a": 0.5}}, labels=False)
    new = copy.deepcopy(old)
    del new["prompts"]["a"]["scores"]["globale"]  # globale no longer scores a
    found = compare(old, new)
    assert next(f for f in found if f.subject == "prompt").message == "a: globale score 0.5 → –"
    labelled = make_entry({"a": 0.8}, {"mi": "a"})
    grown = make_entry({"a": 0.8, "c": None}, {"mi": "a"})
    assert next(f for f in compare(labelled, grown) if f.name == "c").message == "new prompt c: accuracy –"
    described = make_entry({"a": 0.8}, {"mi": "a"})
    older = copy.deepcopy(described)
    del older["prompt_set"]
    for a, b in ((older, described), (described, older)):
        notes = [f for f in compare(a, b) if f.kind == NOTE]
        assert notes == [Finding(NOTE, "lock", "description", "the prompt set's description changed (Self-Select shows it to the model)")]


def test_the_check_result_as_json_is_every_field():
    from dataclasses import asdict

    from promptsel.gate.check import CheckResult, EntryCheck

    finding = Finding(REGRESSED, "prompt", "a", "a: fell", 0.8, 0.7, ("x",), (None, None))
    entry = EntryCheck("k", [finding, Finding(UNCHANGED, "method", "mi", "mi: still a")], seconds=1.23456, cache={"hits": 2})
    result = CheckResult(Path("dir/lock.json"), Policy(Tolerance(0.05, relative=True), Floor("value", 0.5)), [entry])
    assert result.as_dict() == {
        "lock": str(Path("dir/lock.json")), "status": REGRESSED, "tolerance": "5% (relative)", "floor": str(Floor("value", 0.5)),
        "entries": [{"key": "k", "seconds": 1.235, "cache": {"hits": 2}, "findings": [asdict(finding), asdict(entry.findings[1])]}],
    }
    assert str(Floor("value", 0.5)) != str(Floor())


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


def _record(**extra) -> dict:
    """A lock's request as `lock` writes it for a local data file (the fields check reads)."""
    return {"prompts": "p.toml", "dataset": "data.jsonl", "split": None, "limit": None, "seed": 0, "methods": ["mi"],
            "backend": "fake", "model": None, "model_args": {}, "metric": "accuracy", "max_chars": None, "scoring": {},
            "fields": {"text": "text"}, "label_field": "label", "classes": None, **extra}


def test_a_request_rebuilds_with_the_cache_on_and_settings_no_plugin_declares_are_refused(tmp_path):
    from promptsel.gate.entry import request_from_record
    from promptsel.gate.lockfile import LockFileError

    req = request_from_record(_record(), tmp_path)
    assert req.cache is True and req.prompts == tmp_path / "p.toml" and req.dataset == str(tmp_path / "data.jsonl")
    assert request_from_record(_record(), tmp_path, cache=False).cache is False
    with pytest.raises(LockFileError) as err:
        request_from_record(_record(zeta={"a": 1}, alpha=2), tmp_path)
    assert err.value.message == ("The lock's request for p.toml has settings (alpha, zeta) that no loaded plugin declares.")
    assert err.value.hint == ("Install or enable the plugin that wrote them (see `promptsel plugins`), "
                              "or re-lock with `promptsel lock`.")


def test_every_setting_of_a_locked_request_comes_back_and_a_bad_one_names_where_it_is(tmp_path):
    from promptsel.fute.options import FuteOptions
    from promptsel.gate.entry import request_from_record
    from promptsel.gate.lockfile import LockFileError
    from promptsel.model.request import ScoringOptions

    adaptive = {"epsilon": 0.02, "delta": 0.1, "max_inputs": 40, "round_size": 5}
    record = _record(dataset="sst2", split="validation", limit=7, seed=3, methods=["mi", "globale"], model="m.gguf",
                     model_args={"n_ctx": 512}, metric="macro_f1", max_chars=99, scoring={"mode": "first_token"},
                     fields={"text": "sentence"}, label_field="y", classes=["neg", "pos"], method_options={"mi": {"k": 1}},
                     calibrate="cbm", adaptive=adaptive, fute={"dte_size": 300})
    req = request_from_record(record, tmp_path, data_dir="D")
    assert (req.dataset, req.prompts, req.split, req.limit, req.seed, req.methods) == (
        "sst2", tmp_path / "p.toml", "validation", 7, 3, ["mi", "globale"])
    assert (req.backend, req.model, req.metric, req.max_chars, req.label_field, req.classes) == (
        "fake", "m.gguf", "macro_f1", 99, "y", ["neg", "pos"])
    assert req.scoring == ScoringOptions(mode="first_token") and req.fields == {"text": "sentence"}
    assert req.method_options == {"mi": {"k": 1}} and req.calibrate == "cbm" and req.data_dir == "D"
    assert req.adaptive is True and req.adaptive_settings == adaptive
    assert next(g for g in req.groups if isinstance(g, FuteOptions)).dte_size == 300
    assert req.backend_args == {"n_ctx": 512}
    here = request_from_record(record, tmp_path, model="other.gguf", model_args={"n_threads": 2})
    assert here.model == "other.gguf" and here.backend_args == {"n_ctx": 512, "n_threads": 2}
    plain = request_from_record(_record(), tmp_path)
    assert (plain.calibrate, plain.method_options, plain.adaptive, plain.split, plain.max_chars) == ("none", {}, False, None, None)
    for bad, where in (({"scoring": {"mode": "bogus"}}, "valid: the lock's scoring option mode"),
                       ({"fute": {"dte_size": "many"}}, "valid: the lock's fute option dte_size"),
                       ({"adaptive": {"epsilon": 0.1, "rounds": 3}}, "adaptive must be a table of epsilon, delta, max_inputs and round_size")):
        with pytest.raises(LockFileError) as err:
            request_from_record(_record(**bad), tmp_path)
        assert err.value.message.startswith("The lock's request for p.toml is not valid: ") and where in err.value.message, err.value.message
        assert err.value.hint == "Re-lock it with `promptsel lock`."
    with pytest.raises(LockFileError, match="adaptive must be a table"):
        request_from_record(_record(adaptive=["epsilon"]), tmp_path)


def _lock_file(tmp_path, change=None) -> Path:
    """A minimal valid lock with one entry, after ``change(entry)``."""
    from promptsel.gate.lockfile import new_lock

    entry = {"request": _record(), "dataset": {"n": 3, "labels": True, "sample_sha256": "s"},
             "backend": {"fingerprint": "f", "model": "m"},
             "prompts": {"a": {"definition": {}, "definition_sha256": "d", "performance": 0.5, "scores": {}}},
             "methods": {"mi": {"chosen": "a", "performance": 0.5, "score": 0.1}}}
    if change:
        change(entry)
    lock = new_lock()
    lock["entries"]["k"] = entry
    path = tmp_path / "promptsel.lock"
    path.write_text(json.dumps(lock))
    return path


def test_every_broken_part_of_a_lock_entry_is_named_with_the_way_out(tmp_path):
    from promptsel.gate.lockfile import ABOUT, LockFileError, new_lock, read_lock

    assert new_lock() == {"about": ABOUT, "lock_version": 1, "entries": {}}
    assert read_lock(_lock_file(tmp_path))["entries"]["k"]["methods"]["mi"]["chosen"] == "a"  # the valid one reads
    relock = "Re-lock it with `promptsel lock`."
    cases = [
        (lambda e: e.clear(), "has no 'request' table."),
        (lambda e: e.__setitem__("backend", ["f", "m"]), "has no 'backend' table."),
        (lambda e: e["request"].__setitem__("seed", True), "has no valid request.seed."),  # a bool is not an int here
        (lambda e: e["dataset"].__setitem__("labels", 1), "has no valid dataset.labels."),
        (lambda e: e["request"].__setitem__("methods", ["mi", 3]), "has no valid request.methods (names must be strings)."),
        (lambda e: e["request"].__setitem__("classes", ["neg", None]), "has no valid request.classes (names must be strings)."),
        (lambda e: e["request"].__setitem__("fields", {"text": 1}), "has no valid request.fields (names must be strings)."),
        (lambda e: e.__setitem__("prompts", {}), "has no prompts."),
        (lambda e: e.__setitem__("prompts", ["a"]), "has no prompts."),
        (lambda e: e["prompts"].__setitem__("b", 5), "has no valid prompts.b.definition."),
        (lambda e: e["methods"]["mi"].__setitem__("score", "high"), "has no valid methods.mi.score."),
        (lambda e: e["methods"]["mi"].__setitem__("chosen", "z"), ": mi chose 'z', which is not one of its prompts."),
    ]
    for change, message in cases:
        path = _lock_file(tmp_path, change)
        with pytest.raises(LockFileError) as err:
            read_lock(path)
        assert err.value.message.startswith(f"{path}: entry 'k'") and err.value.message.endswith(message), err.value.message
        assert err.value.hint == relock, message
    # Entries that are not tables at all: the same error, not a crash.
    path = tmp_path / "promptsel.lock"
    path.write_text(json.dumps({**new_lock(), "entries": {"k": 5}}))
    with pytest.raises(LockFileError, match="entry 'k' has no 'request' table"):
        read_lock(path)
    for text, message, hint in (
            ("[1]", f"{path} is not a promptsel lock file (no 'entries' table).", None),
            (json.dumps({"entries": {}, "lock_version": 7}), f"{path} has lock_version 7; this promptsel reads version 1.",
             "Write it again with `promptsel check --update`, or use the promptsel that wrote it.")):
        path.write_text(text)
        with pytest.raises(LockFileError) as err:
            read_lock(path)
        assert (err.value.message, err.value.hint) == (message, hint)
    path.unlink()
    with pytest.raises(LockFileError) as err:
        read_lock(path)
    assert (err.value.message, err.value.hint) == (
        f"No lock file at {path}.", "Create it with `promptsel lock --dataset NAME --prompts FILE` and commit it.")
    path.write_text("{not json")
    with pytest.raises(LockFileError) as err:
        read_lock(path)
    assert err.value.hint == "Restore it from git (a merge conflict?) or write a new one with `promptsel lock`."


def test_a_request_is_recorded_whole_for_a_named_and_for_a_local_dataset(tmp_path):
    from promptsel.fute.options import FuteOptions
    from promptsel.gate.entry import entry_key, request_from_record, request_record
    from promptsel.model.request import ScoringOptions, SelectRequest

    (tmp_path / "prompts").mkdir()
    req = SelectRequest(dataset="sst2", prompts=tmp_path / "prompts" / "p.toml", split="validation", limit=7, seed=3,
                        methods=["mi"], backend="openai", model="m", model_args={"base_url": "http://user:key@host/v1", "n": 1},
                        metric="macro_f1", max_chars=99, scoring=ScoringOptions(mode="first_token"), fields={"text": "sentence"},
                        label_field="y", classes=["neg", "pos"], method_options={"mi": {"k": 1}}, calibrate="cbm",
                        groups=(FuteOptions(dte_size=300),), adaptive=True, epsilon=0.02, delta=0.1, max_inputs=40, round_size=5)
    record = request_record(req, tmp_path, "validation")
    assert record == {
        "prompts": "prompts/p.toml", "dataset": "sst2", "split": "validation", "limit": 7, "seed": 3, "methods": ["mi"],
        "backend": "openai", "model": "m", "model_args": {"base_url": "http://***@host/v1", "n": 1}, "metric": "macro_f1",
        "max_chars": 99, "scoring": ScoringOptions(mode="first_token").as_dict(), "fields": {"text": "sentence"},
        "label_field": "y", "classes": ["neg", "pos"], "method_options": {"mi": {"k": 1}}, "fute": {"dte_size": 300},
        "calibrate": "cbm", "adaptive": {"epsilon": 0.02, "delta": 0.1, "max_inputs": 40, "round_size": 5},
    }
    assert entry_key(record, "m.gguf") == "prompts/p.toml | sst2:validation | limit=7 | openai:m.gguf"
    back = request_from_record(record, tmp_path)
    assert request_record(back, tmp_path, "validation") == record  # a lock's request reruns as itself
    local = SelectRequest(dataset=str(tmp_path / "data.jsonl"), prompts=tmp_path / "prompts" / "p.toml", split="train")
    plain = request_record(local, tmp_path / "prompts", "train")
    assert plain["dataset"] == "../data.jsonl" and plain["split"] is None and plain["prompts"] == "p.toml"
    assert not {"method_options", "calibrate", "adaptive", "fute"} & set(plain)  # only what was set
    assert entry_key(plain, "x") == f"p.toml | ../data.jsonl | limit=all | {local.backend}:x"


def test_a_lock_on_a_named_dataset_keys_its_split_and_writes_the_default_methods_by_name(capsys, project):
    data = str(shared_path("data"))
    code, _, err = run(capsys, "lock", "-d", "sst2", "--data-dir", data, "--limit", "8", "-p", "prompts.toml", "-b", "fake",
                       "--no-progress", "-q")
    assert code == 0, err
    (key, entry), = json.loads(Path("promptsel.lock").read_text())["entries"].items()
    assert key.startswith("prompts.toml | sst2:validation | limit=8 | fake:")
    assert entry["request"]["split"] == "validation" and entry["request"]["dataset"] == "sst2"
    from promptsel.gate.check import run_check

    assert run_check(Path("promptsel.lock"), data_dir=data).status == "passed"  # the data is where this machine keeps it
    # without --methods: every label-free method the backend allows, written out by name
    assert "mi" in entry["request"]["methods"] and sorted(entry["request"]["methods"]) == sorted(entry["methods"])


def test_the_inputs_findings_are_whole_and_versions_are_notes_both_ways():
    from promptsel.gate.compare import compare_inputs

    old = make_entry({"a": 0.8}, {"mi": "a"}, fingerprint="a" * 64, sample="s" * 64)
    new = make_entry({"a": 0.8}, {"mi": "a"}, fingerprint="b" * 64, sample="t" * 64)
    old["dataset"]["source"], old["backend"]["model"] = "data.jsonl", "big.gguf"
    del new["dataset"]["source"]
    new["dataset"]["n"], new["backend"]["model"] = 10, "small.gguf"
    old["versions"], new["versions"] = {"promptsel": "0.1.0", "torch": "2"}, {"promptsel": "0.2.0", "llama": "1"}
    assert compare_inputs(old, new) == [
        Finding(NOT_COMPARABLE, "lock", "model", "the model is not the locked one: the lock has big.gguf (sha256 aaaaaaaaaaaa), "
                                                 "this run small.gguf (sha256 bbbbbbbbbbbb)"),
        Finding(NOT_COMPARABLE, "lock", "data sample", "the evaluation sample is not the locked one: the lock has 12 examples "
                                                       "from data.jsonl, this run 10 from ? with other content"),
        Finding(NOTE, "lock", "llama", "llama (none) → 1"),
        Finding(NOTE, "lock", "promptsel", "promptsel 0.1.0 → 0.2.0"),
        Finding(NOTE, "lock", "torch", "torch 2 → (none)"),
    ]
    # ...and the other way round: each side's source where it has one, "?" where not
    assert compare_inputs(new, old)[1].message == ("the evaluation sample is not the locked one: the lock has 10 examples "
                                                   "from ?, this run 12 from data.jsonl with other content")
    del old["versions"]  # a lock from before versions were recorded
    assert [f.message for f in compare_inputs(old, new) if f.kind == NOTE] == ["llama (none) → 1", "promptsel (none) → 0.2.0"]
    del new["versions"]  # only the run's versions make notes
    assert [f.kind for f in compare_inputs(old, new)] == [NOT_COMPARABLE, NOT_COMPARABLE]


def prompt_findings(old, new, policy=None) -> list[Finding]:
    return [f for f in compare(old, new, policy) if f.subject == "prompt"]


def test_every_prompt_finding_is_whole_with_labels():
    old = make_entry({"a": 0.8, "b": 0.6, "c": 0.7, "d": 0.5, "gone": 0.9}, {"mi": "a"})
    new = make_entry({"a": 0.7, "b": 0.7, "c": 0.71, "d": 0.5, "n1": 0.59, "n2": 0.1}, {"mi": "a"})
    new["prompts"]["b"]["definition"] = {**old["prompts"]["b"]["definition"], "template": "Template b, better: {{text}}", "chat": False}
    edit = describe_changes(old["prompts"]["b"]["definition"], new["prompts"]["b"]["definition"])
    assert len(edit) == 2 and edit[0].startswith("template: ")  # two changes, joined by "; "
    floor = 0.5 - 0.02  # the worst locked prompt (d) less the tolerance
    tol = "tolerance 0.02 (absolute)"
    assert prompt_findings(old, new) == [
        Finding(REGRESSED, "prompt", "a", f"a: accuracy fell from 0.800 to 0.700 with an unchanged definition; {tol}", 0.8, 0.7),
        Finding(IMPROVED, "prompt", "b", f"b: accuracy rose from 0.600 to 0.700 after: {'; '.join(edit)}", 0.6, 0.7, tuple(edit)),
        Finding(WITHIN, "prompt", "c", "c: accuracy 0.700 → 0.710 with an unchanged definition", 0.7, 0.71),
        Finding(UNCHANGED, "prompt", "d", "d: unchanged", 0.5, 0.5),
        Finding(NEW, "prompt", "n1", "new prompt n1: accuracy 0.590", None, 0.59, ("new prompt",)),
        Finding(REGRESSED, "prompt", "n2", f"new prompt n2: accuracy 0.100 is below the floor {floor:.3f} (the worst locked "
                                           "prompt, d at 0.500, minus the tolerance)", None, 0.1, ("new prompt",)),
        Finding(REMOVED, "prompt", "gone", "gone was removed", 0.9, None, ("removed",)),
    ]
    # The floor's edge: at the floor, or below it by no more than the slack, a new prompt passes.
    for after in (floor, floor - 1e-9):
        edge = make_entry({"a": 0.8, "b": 0.6, "c": 0.7, "d": 0.5, "gone": 0.9, "n": after}, {"mi": "a"})
        assert next(f for f in prompt_findings(old, edge) if f.name == "n").kind == NEW, after


def test_every_prompt_finding_is_whole_without_labels():
    old = make_entry({"a": None, "b": None, "c": None}, {"mi": "a"}, scores={"mi": {"a": 0.3, "b": 0.2, "c": 0.1}}, labels=False)
    new = make_entry({"a": None, "b": None, "c": None, "n1": None, "n2": None}, {"mi": "a"},
                     scores={"mi": {"a": 0.3, "b": 0.25, "c": 0.15}}, labels=False)
    new["prompts"]["c"]["definition"] = {**old["prompts"]["c"]["definition"], "chat": False}
    edit = describe_changes(old["prompts"]["c"]["definition"], new["prompts"]["c"]["definition"])
    assert prompt_findings(old, new) == [
        Finding(UNCHANGED, "prompt", "a", "a: unchanged"),
        Finding(WITHIN, "prompt", "b", "b: mi score 0.2 → 0.25", changes=("mi score 0.2 → 0.25",)),
        Finding(WITHIN, "prompt", "c", "c: " + "; ".join([*edit, "mi score 0.1 → 0.15"]), changes=(*edit, "mi score 0.1 → 0.15")),
        Finding(NEW, "prompt", "n1", "new prompt n1", changes=("new prompt",)),
        Finding(NEW, "prompt", "n2", "new prompt n2", changes=("new prompt",)),
    ]


def test_entries_are_selected_by_prompt_file_and_by_dataset_name_or_path(tmp_path, monkeypatch):
    from promptsel.gate.check import select_entries

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.jsonl").write_text("")
    lock_path = tmp_path / "promptsel.lock"
    lock = {"entries": {}}
    with pytest.raises(UsageError) as err:
        select_entries(lock, lock_path, None, None)
    assert (err.value.message, err.value.hint) == (f"{lock_path} has no entries.", "Add one with `promptsel lock --dataset NAME --prompts FILE`.")
    lock["entries"] = {"k1": {"request": {"prompts": "p.toml", "dataset": "data.jsonl"}, "dataset": {"name": "mydata.jsonl"}},
                       "k2": {"request": {"prompts": "q.toml", "dataset": "sst2"}, "dataset": {"name": "sst2"}},
                       "k3": {"request": {"prompts": "p.toml", "dataset": "sst2"}, "dataset": {"name": "sst2"}}}
    assert select_entries(lock, lock_path, None, None) == ["k1", "k2", "k3"]
    assert select_entries(lock, lock_path, Path("p.toml"), None) == ["k1", "k3"]
    assert select_entries(lock, lock_path, None, "sst2") == ["k2", "k3"]
    assert select_entries(lock, lock_path, None, "data.jsonl") == ["k1"]  # a local file, by its path
    assert select_entries(lock, lock_path, None, "mydata.jsonl") == ["k1"]  # ...or by the name the entry recorded
    assert select_entries(lock, lock_path, tmp_path / "p.toml", "sst2") == ["k3"]
    with pytest.raises(UsageError) as err:
        select_entries(lock, lock_path, Path("q.toml"), "data.jsonl")
    assert err.value.message == f"{lock_path} has no entry for prompts q.toml and dataset data.jsonl; it has: k1; k2; k3."
    assert err.value.hint == "Add one with `promptsel lock`."
    with pytest.raises(UsageError, match="has no entry for dataset rotten_tomatoes; it has"):
        select_entries(lock, lock_path, None, "rotten_tomatoes")
    with pytest.raises(UsageError, match=r"Unknown dataset 'sts2'\. Did you mean: sst2"):  # a typo is named as one
        select_entries(lock, lock_path, None, "sts2")


def test_dumps_keeps_letters_sorts_keys_and_inlines_short_lists_up_to_100_characters():
    from promptsel.gate.lockfile import dumps

    assert dumps({"é": ["ü", 1], "a": {"z": None, "b": "ß"}}) == '{\n  "a": {\n    "b": "ß",\n    "z": null\n  },\n  "é": ["ü", 1]\n}\n'
    at_width = ["x" * 96]  # ["xxx...x"]: 96 + 4 = 100 characters
    assert len(json.dumps(at_width)) == 100 and dumps({"k": at_width}) == '{\n  "k": ' + json.dumps(at_width) + "\n}\n"
    over = ["x" * 97]
    assert dumps({"k": over}) == '{\n  "k": [\n    "' + "x" * 97 + '"\n  ]\n}\n'
    assert dumps({"k": [{"b": 1, "a": 2}, 3]}) == '{\n  "k": [\n    {\n      "a": 2,\n      "b": 1\n    },\n    3\n  ]\n}\n'


def test_a_definition_hash_is_of_sorted_unescaped_json_and_only_cot_prompts_keep_cot_texts():
    import hashlib

    from promptsel.gate.entry import definition
    from promptsel.model.prompts import Prompt

    assert definition_sha256({"b": "é", "a": 1}) == hashlib.sha256('{"a": 1, "b": "é"}'.encode()).hexdigest()
    plain = Prompt(id="p", template="{{text}}", answer_choices={"positive": ["yes"], "negative": ["no"]})
    cot = Prompt(id="c", template="{{text}}", answer_choices={"positive": ["yes"], "negative": ["no"]}, cot=True)
    assert "cot_instruction" not in definition(plain) and "cot_followup" not in definition(plain)
    assert "cot_instruction" in definition(cot) and "cot_followup" in definition(cot)
    assert definition(plain)["answer_choices"] == [["positive", ["yes"]], ["negative", ["no"]]]


def test_a_lock_entry_records_its_data_model_prompt_set_and_ties_and_a_seeded_interval(capsys, project):
    from promptsel.gate.lockfile import rounded

    entry = next(iter(lock(capsys)["entries"].values()))
    assert entry["dataset"]["name"] == "data" and entry["dataset"]["split"] == "data.jsonl" and entry["dataset"]["n"] == 12
    assert len(entry["dataset"]["sample_ids_sha256"]) == 64 and entry["bootstrap"] is None  # labels: no interval needed
    assert entry["backend"]["name"] == "fake" and entry["prompt_set"] == {"name": "t", "description": "Sentiment."}
    assert all(m["chosen"] in m["tied"] for m in entry["methods"].values())
    assert all(p["definition_sha256"] == definition_sha256(p["definition"]) for p in entry["prompts"].values())
    with pytest.raises(UsageError, match=r"^lock needs --dataset and --prompts\.$"):
        from promptsel.gate.entry import lock_selection
        from promptsel.model.request import SelectRequest

        lock_selection(SelectRequest(dataset="data.jsonl", prompts=None), Path("other.lock"))
    # Without labels, the interval is the bootstrap's with the run's seed (5, not the default 0).
    Path("unlabeled.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t, _ in DATA))
    args = ("-d", "unlabeled.jsonl", "--classes", "positive,negative", "-p", "prompts.toml", "-b", "fake", "-m", "mi",
            "--seed", "5", "--no-progress", "-q")
    code, _, err = run(capsys, "lock", *args)
    assert code == 0, err
    code, _, err = run(capsys, "select", *args, "--save-scores", "s.npz")
    assert code == 0, err
    free = json.loads(Path("promptsel.lock").read_text())["entries"]["prompts.toml | unlabeled.jsonl | limit=all | fake:fake"]
    table = ScoreTable.load("s.npz")
    for seed, same in ((5, True), (0, False)):
        intervals, _ = bootstrap_intervals(table, ["mi"], SelectionContext(), seed=seed)
        pick = table.prompt_ids.index(free["methods"]["mi"]["chosen"])
        assert (free["methods"]["mi"]["score_interval"] == rounded(intervals["mi"][pick].tolist())) is same, seed


def test_run_check_passes_an_unchanged_lock_and_says_not_comparable_without_judging(capsys, project):
    from promptsel.gate.check import run_check
    from promptsel.gate.compare import NOT_COMPARABLE as NC

    lock(capsys, "--metric", "macro_f1")
    first = run_check(Path("promptsel.lock"))
    assert first.status == "passed" and not first.updated
    (e,) = first.entries
    assert e.metric == "macro_f1" and e.labels is True and 0 < e.seconds < 120 and e.new is not None
    again = run_check(Path("promptsel.lock"))  # the cache is on by default: every row is read back
    assert again.entries[0].cache["hits"] > 0 and again.entries[0].cache["misses"] == 0 and again.entries[0].cache["enabled"]
    assert run_check(Path("promptsel.lock"), cache=False).entries[0].cache["enabled"] is False
    Path("unlabeled.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t, _ in DATA))
    code, _, err = run(capsys, "lock", "-d", "unlabeled.jsonl", "--classes", "positive,negative", "-p", "prompts.toml",
                       "-b", "fake", "-m", "mi", "--no-progress", "-q")
    assert code == 0, err
    with pytest.raises(UsageError, match="has no entry for dataset rotten_tomatoes"):
        run_check(Path("promptsel.lock"), dataset="rotten_tomatoes")
    data = json.loads(Path("promptsel.lock").read_text())
    for entry in data["entries"].values():  # both entries now name another model
        entry["backend"]["fingerprint"] = "0" * 64
    Path("promptsel.lock").write_text(json.dumps(data))
    moved = run_check(Path("promptsel.lock"))
    assert moved.status == NC and [(e.metric, e.labels, e.new) for e in moved.entries] == [("macro_f1", True, None), ("accuracy", False, None)]
    assert all([f.kind for f in e.findings] == [NC] for e in moved.entries)
