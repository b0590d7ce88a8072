"""The recommendation and its warnings in plain sentences: one wording for the terminal and the
Markdown report (the HTML report lays the same fields out as a card)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _n(x: Any, digits: int = 3) -> str:
    return "–" if x is None else f"{float(x):.{digits}f}"


def _interval(pair: Any, digits: int = 3) -> str:
    return "–" if not pair else f"{_n(pair[0], digits)}–{_n(pair[1], digits)}"


def performance_cell(prompt: Mapping[str, Any], digits: int = 3) -> str:
    """A prompt's measured performance; in an adaptive run also on how many inputs, and whether
    it was dropped (its mean is then over fewer inputs than the survivors')."""
    shown = _n(prompt.get("performance"), digits)
    if prompt.get("n") is None or prompt.get("performance") is None:
        return shown
    dropped = prompt.get("dropped")
    return f"{shown} (n={prompt['n']}" + (f", dropped after round {dropped})" if dropped is not None else ")")


def adaptive_lines(report: Mapping[str, Any]) -> list[str]:
    """What an adaptive run read, why it stopped and what its confidence statement means."""
    a = report.get("adaptive")
    if not a:
        return []
    share = a["cells_scored"] / max(a["cells_total"], 1)
    lines = [f"Adaptive: scored {a['cells_scored']:,} of {a['cells_total']:,} (prompt, input) cells ({share:.1%}) in "
             f"{a['rounds']} rounds of {a['round_size']} inputs; stopped: {a['stop_reason']} ({a['stop_meaning']}).",
             f"Confidence statement (epsilon {a['epsilon']}, delta {a['delta']}): {a['guarantee']}"]
    if "heldout_cells" in a:  # --holdout: the search read the choosing part only
        lines.insert(1, f"Of those, {a['search_cells']:,} by the search on the choosing part ({a['inputs_total']:,} inputs) and "
                        f"{a['heldout_cells']:,} on the {a['heldout_inputs']:,} held-out inputs (the chosen prompt and the baseline).")
    if a.get("sensitivity"):
        lines.append(f"No sensitivity band: {a['sensitivity'].removeprefix('no sensitivity band in an adaptive run: ')}.")
    tokens = a.get("tokens")
    if tokens:
        lines.append(f"Model work of the rounds: {tokens['requests']:,} requests ({tokens['cached']:,} more from the cache), "
                     f"{tokens['evaluate']:,} tokens to evaluate after shared prefixes.")
    lines.append(f"Label-free methods read the {a['common_inputs']} inputs every prompt was scored on; their performance "
                 "columns are measured on those inputs.")
    return lines


def recommendation_lines(report: Mapping[str, Any]) -> list[str]:
    """What to use and how sure that is; empty for a report without a recommendation."""
    rec = report.get("recommendation")
    if not rec:
        return []
    level = f"{rec.get('level', 0.95):.0%}"
    metric = rec.get("metric") or report.get("metric") or "performance"
    # With --holdout everything but the holdout block is measured on the choosing part.
    n = (report.get("holdout") or {}).get("n_choosing") or (report.get("dataset") or {}).get("n")
    head = f"Recommended prompt: {rec['prompt']}, the best"
    if at_chance(report):  # not a green light: the best prompt may not do the task at all
        head = f"No prompt measurably beats chance ({_n(rec.get('chance'))}); {rec['prompt']} has the best"
    lines = []
    if rec.get("basis") == "labels" and report.get("adaptive"):
        lines.append(f"{head} measured {metric}: {_n(rec.get('performance'))} ({level} anytime-valid interval "
                     f"{_interval(rec.get('performance_interval'))}, valid after the adaptive stop).")
        alternatives = rec.get("indistinguishable") or []
        if alternatives:
            shown = ", ".join(f"{a['prompt']} ({_n(a.get('performance'))}, lead {_interval(a.get('lead_interval'))})"
                              for a in alternatives)
            lines.append(f"Still in the running when it stopped (not told apart): {shown}.")
        else:
            lines.append("Every other prompt was dropped: surely worse at the search's confidence.")
        free = rec.get("label_free")
        if free:
            verdict = "the same prompt" if free.get("prompt") == rec.get("prompt") else f"{free.get('prompt')}"
            lines.append(f"Without labels, {free.get('rule')} would pick {verdict} (on the inputs every prompt read).")
        lines += adaptive_lines(report)
    elif rec.get("basis") == "labels":
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
    return lines + variant_lines(report) + holdout_lines(report)


def axes_text(axes: Mapping[str, str]) -> str:
    """A variant's axis values, ``name=value`` (whitespace shown escaped, as in TOML)."""
    return ", ".join(f"{k}={v!r}" if v != v.strip() or "\n" in v else f"{k}={v}" for k, v in axes.items())


def variant_lines(report: Mapping[str, Any]) -> list[str]:
    """Where the recommended prompt came from (a variant: its parent and axes) and its
    sensitivity band over its family of variants."""
    rec = report.get("recommendation") or {}
    entry = next((p for p in report.get("prompts") or [] if p.get("id") == rec.get("prompt")), None) or {}
    lines = []
    if entry.get("parent"):
        lines.append(f"It is a variant of {entry['parent']} ({axes_text(entry.get('axes') or {})}).")
    band = report.get("sensitivity")
    if band:
        lines.append(f"Sensitivity: over the {band['n']} formats of {band['family']} (the original and its variants), the "
                     f"{band['metric']} runs 5th / 50th / 95th percentile {_n(band['p5'])} / {_n(band['p50'])} / {_n(band['p95'])} "
                     f"(min {_n(band['min'])}, max {_n(band['max'])}).")
    return lines


def holdout_lines(report: Mapping[str, Any]) -> list[str]:
    """``--holdout``: the chosen prompt on the held-out examples, beside the baseline."""
    h = report.get("holdout")
    if not h:
        return []
    level = f"{h.get('level', 0.95):.0%}"
    base = h["baseline"]
    return [
        f"Held out: {h['n_heldout']} of {h['n_heldout'] + h['n_choosing']} examples ({h['fraction']:.0%}, class-stratified), "
        f"unseen by the choice. On them {h['chosen']} scores {_n(h['chosen_heldout'])} ({level} interval "
        f"{_interval(h['chosen_heldout_interval'])}); on the choosing part {_n(h['chosen_choosing'])}, so choosing "
        f"overstated it by {_n(h['optimism'])}" + (f" ({h['optimism_meaning']})." if h.get("optimism_meaning") else "."),
        f"Baseline {base['prompt']} ({base['how']}) scores {_n(base['heldout'])} ({level} interval "
        f"{_interval(base['heldout_interval'])}) on the same held-out examples: the difference is {_n(h['difference'])} "
        f"(paired {level} interval {_interval(h['difference_interval'])}).",
    ]


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
