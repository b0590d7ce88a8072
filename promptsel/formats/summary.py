"""The recommendation and its warnings in plain sentences: one wording for the terminal and the
Markdown report (the HTML report lays the same fields out as a card)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _n(x: Any, digits: int = 3) -> str:
    return "–" if x is None else f"{float(x):.{digits}f}"


def _interval(pair: Any, digits: int = 3) -> str:
    return "–" if not pair else f"{_n(pair[0], digits)}–{_n(pair[1], digits)}"


def recommendation_lines(report: Mapping[str, Any]) -> list[str]:
    """What to use and how sure that is; empty for a report without a recommendation."""
    rec = report.get("recommendation")
    if not rec:
        return []
    level = f"{rec.get('level', 0.95):.0%}"
    metric = rec.get("metric") or report.get("metric") or "performance"
    n = (report.get("dataset") or {}).get("n")
    head = f"Recommended prompt: {rec['prompt']}, the best"
    if at_chance(report):  # not a green light: the best prompt may not do the task at all
        head = f"No prompt measurably beats chance ({_n(rec.get('chance'))}); {rec['prompt']} has the best"
    lines = []
    if rec.get("basis") == "labels":
        lines.append(f"{head} measured {metric}: {_n(rec.get('performance'))} ({level} interval "
                     f"{_interval(rec.get('performance_interval'))}; {rec.get('resamples')} paired bootstrap resamples of {n} examples).")
        alternatives = rec.get("indistinguishable") or []
        if alternatives:
            shown = ", ".join(f"{a['prompt']} ({_n(a.get('performance'))})" for a in alternatives)
            lines.append(f"Statistically indistinguishable from it (its lead over them includes 0): {shown}.")
        else:
            lines.append("Its lead over every other prompt excludes 0.")
        free = rec.get("label_free")
        if free:
            lines.append(f"Without labels, {free.get('rule')} would pick {label_free_verdict(rec)}.")
    else:
        lines.append(f"Recommended prompt: {rec['prompt']}, chosen without labels by {rec.get('rule')}.")
    stability = rec.get("stability") or {}
    if stability.get("estimated"):
        cover = ", ".join(stability.get("cover") or [])
        lines.append(f"Stability: chosen in {stability.get('share', 0):.0%} of {rec.get('resamples')} resamples of the examples; "
                     f"{stability.get('cover_level', 0.9):.0%} of the choices fall in {cover or '–'}.")
    elif stability:
        lines.append(f"Stability: not estimated: {stability.get('how')}.")
    tied = rec.get("tied") or []
    if len(tied) > 1:
        lines.append(f"Tied at the top: {', '.join(tied)}; the {metric} shown is their mean, {_n(rec.get('expected_performance'))}.")
    if rec.get("calibration") not in (None, "none"):
        prior = rec.get("calibration_prior") or {}
        shown = ", ".join(f"{c} {_n(v)}" for c, v in prior.items())
        lines.append(f"Calibrated ({rec['calibration']}): use the prompt the same way, dividing its class probabilities by "
                     f"its prior ({shown}).")
    return lines


def answer_line(report: Mapping[str, Any]) -> str | None:
    """The recommendation in one short line, repeated last in the terminal."""
    rec = report.get("recommendation")
    if not rec:
        return None
    metric = rec.get("metric") or report.get("metric") or "performance"
    if rec.get("basis") != "labels":
        return f"Recommended prompt: {rec['prompt']} (chosen without labels by {rec.get('rule')})."
    measured = (f"{metric} {_n(rec.get('performance'))}, {rec.get('level', 0.95):.0%} interval "
                f"{_interval(rec.get('performance_interval'))}")
    if at_chance(report):
        return f"No prompt measurably beats chance ({_n(rec.get('chance'))}); the best is {rec['prompt']} ({measured})."
    return f"Recommended prompt: {rec['prompt']} ({measured})."


def at_chance(report: Mapping[str, Any]) -> bool:
    """The ``at_chance`` warning fired: no prompt is distinguishable from ignoring the input."""
    return any(w.get("code") == "at_chance" for w in report.get("warnings") or [])


def label_free_verdict(rec: Mapping[str, Any]) -> str:
    """What the label-free rule would pick, said truly: ``agrees`` means "not measurably worse",
    which is "the same prompt" only when its choice is the recommended prompt and nothing else."""
    free = rec.get("label_free") or {}
    picked, tied = free.get("prompt"), free.get("tied") or [free.get("prompt")]
    if picked == rec.get("prompt") and len(tied) <= 1:
        return "the same prompt"
    named = ", ".join(str(t) for t in tied) if len(tied) > 1 else str(picked)
    shown = f"{named} ({_n(free.get('performance'))})"
    if free.get("agrees"):
        return f"{shown}, not measurably worse than {rec.get('prompt')} (whose lead over it includes 0)"
    return f"{shown}, measurably worse than {rec.get('prompt')}"


def warning_lines(report: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(severity, code, message) of every warning, in report order."""
    return [(w.get("severity", "warning"), w.get("code", ""), w.get("message", "")) for w in report.get("warnings") or []]


def section_lines(report: Mapping[str, Any]) -> list[str]:
    """What the methods' own report sections say, in each method's words
    (``Selector.section_lines``), for every section the report holds."""
    from ..plugins import report_sections

    return [line for name, method in report_sections().items() if report.get(name)
            for line in method.section_lines(report[name])]


def example_lines(report: Mapping[str, Any]) -> list[str]:
    """Where the recommended prompt and its rivals answer differently, counted, in words."""
    found = report.get("examples") or {}
    best = found.get("recommended")
    lines = []
    for rival in found.get("rivals") or []:
        line = f"{best} and {rival['prompt']} ({rival['role']}) answer differently on {rival['disagree']} examples"
        if "recommended_right" in rival:
            line += f": {best} is right on {rival['recommended_right']}, {rival['prompt']} on {rival['rival_right']}"
        lines.append(line + ".")
    confusion = found.get("confusion")
    if confusion:
        per_class = ", ".join(f"{c} {_n(a)}" for c, a in zip(confusion["classes"], confusion["class_accuracy"]))
        lines.append(f"{best}'s accuracy per gold class: {per_class}.")
    return lines


def example_table(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The listed disagreements: sample id, text, gold label, each prompt's answer (probability)."""
    found = report.get("examples") or {}
    rows = found.get("examples") or []
    prompts = list(rows[0]["predictions"]) if rows else []
    texts = any(r.get("text") for r in rows)  # a scores file has none: no empty column
    headers = ["sample", *(["text"] if texts else []), "gold", *prompts]
    body = [[str(r["sample_id"]), *([r.get("text") or "–"] if texts else []), r.get("gold") or "–",
             *(f"{r['predictions'][p]['class']} ({r['predictions'][p]['probability']:.2f})" for p in prompts)] for r in rows]
    return headers, body
