"""The sentence on what the label-free rule would pick says what is true (issue 23): "the same
prompt" only when it is the recommended prompt; another prompt is named, with whether it is
measurably worse, in the terminal, Markdown and HTML alike."""

from __future__ import annotations

from promptsel.formats.html import to_html
from promptsel.formats.markdown import select_report
from promptsel.formats.summary import recommendation_lines


def report(free_prompt: str, agrees: bool, tied: list[str] | None = None) -> dict:
    rec = {"prompt": "prompt_03", "basis": "labels", "rule": "measured", "metric": "accuracy", "performance": 0.8,
           "performance_interval": [0.7, 0.9], "level": 0.95, "resamples": 1000, "indistinguishable": [],
           "label_free": {"rule": "consensus", "prompt": free_prompt, "tied": tied or [free_prompt],
                          "performance": 0.75, "agrees": agrees}}
    return {"dataset": {"name": "toy", "split": "test", "n": 40}, "backend": {"name": "fake", "model": "m"},
            "metric": "accuracy", "seed": 0, "ndcg_variant": "minmax", "prompts": [], "methods": {},
            "oracle": {"chosen": None}, "recommendation": rec}


def free_line(r: dict) -> str:
    return next(line for line in recommendation_lines(r) if line.startswith("Without labels"))


def test_same_prompt_only_when_it_is_the_same():
    assert free_line(report("prompt_03", True)) == "Without labels, consensus would pick the same prompt."


def test_another_prompt_not_measurably_worse_is_named():
    r = report("prompt_04", True)
    line = free_line(r)
    assert "same prompt" not in line
    assert line.startswith("Without labels, consensus would pick prompt_04 (0.750), not measurably worse than prompt_03")
    assert "same prompt" not in select_report(r)
    page = to_html(r)
    assert "prompt_04" in page and "not measurably worse" in page and "it agrees" not in page


def test_a_worse_prompt_is_called_worse():
    line = free_line(report("prompt_04", False))
    assert "prompt_04 (0.750), measurably worse than prompt_03" in line and "not measurably" not in line


def test_a_tie_that_includes_the_recommendation_is_not_the_same_prompt():
    line = free_line(report("prompt_03", True, tied=["prompt_03", "prompt_07"]))
    assert "same prompt" not in line and "prompt_03, prompt_07" in line


def test_at_chance_headline_says_no_prompt_beats_chance():
    from promptsel.formats.summary import answer_line

    r = report("prompt_03", True)
    r["recommendation"].update(chance=0.75, performance_interval=[0.70, 0.9])
    r["warnings"] = [{"code": "at_chance", "severity": "warning", "message": "not distinguishable from chance"}]
    first = recommendation_lines(r)[0]
    assert first.startswith("No prompt measurably beats chance (0.750)") and "Recommended prompt" not in first
    assert answer_line(r).startswith("No prompt measurably beats chance")
    assert "No prompt measurably beats chance" in select_report(r)
    del r["warnings"]
    assert recommendation_lines(r)[0].startswith("Recommended prompt: prompt_03")


def test_at_chance_html_card_is_not_a_recommendation():
    r = report("prompt_03", True)
    r["warnings"] = [{"code": "at_chance", "severity": "warning", "message": "not distinguishable from chance"}]
    page = to_html(r)
    assert "No prompt measurably beats chance" in page and "<h2>Recommendation</h2>" not in page
