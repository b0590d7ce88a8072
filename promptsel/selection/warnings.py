"""The report's warnings: when the data cannot tell, or the numbers hold only under conditions.

Each producer returns a :class:`~promptsel.selection.report_schema.Warning_` (or a list, or
None): a code from ``WARNING_CODES``, a severity, a plain-text message and the code's own
fields. A method adds warnings about its own run (an embedding that did not train, say) through
``Selector.report_warnings``, collected by ``method_warnings``; nothing here knows any method by
name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import PromptselError
from ..model import metrics
from ..model.scoretable import ScoreTable
from ..model.stats import class_shares, expected_choice
from ..plugins import get_selector
from .report_schema import PromptStats, Recommendation, Warning_

#: A prompt predicting one class for at least this share of inputs has collapsed.
COLLAPSE_SHARE = 0.95
#: Label-free stability below this: on a fresh sample of the same size the rule would more
#: likely than not pick another prompt, so the choice is more noise than signal.
UNSTABLE_SHARE = 0.5

#: The codes of the warnings promptsel itself gives, and their fields. Methods add their own.
WARNING_CODES = {
    "at_chance": "the best prompt's performance interval includes the chance level (fields: chance, interval)",
    "collapsed": "prompts that predict one class for >= 95 % of inputs (fields: prompts [{prompt, class, share}], recommended)",
    "tied_top": "prompts tied at the top of a method's ranking (fields: method, prompts, expected_performance)",
    "no_labels_unstable": "label-free choice stability below 0.5 (fields: rule, share, threshold, cover)",
    "labels_unstable": "with labels: the best prompt measures best in under half the resamples (fields: share, threshold, cover)",
    "stability_unknown": "the label-free rule's stability cannot be estimated (fields: rule, reason)",
    "label_free_disagrees": "with labels: the label-free rule's choice is measurably worse than the best (fields: rule, prompt, lead_interval)",
    "calibrated": "info: scores were calibrated; the numbers hold only with the same calibration at inference (fields: calibration)",
    "adaptive_budget": "with --adaptive: --max-inputs was reached before the best prompt was known; no guarantee (fields: survivors)",
    "calibration_helps": "info, with labels and no calibration: CBM would measure better than the best raw prompt's interval (fields: prompt, performance, raw_interval)",
}


def warning(code: str, message: str, severity: str = "warning", **fields: Any) -> Warning_:
    return Warning_(code=code, severity=severity, message=message, **fields)  # type: ignore[typeddict-item]


def _g(x: float) -> str:
    return f"{x:.3f}"


def method_warnings(methods: Iterable[str], sections: Mapping[str, Any]) -> list[Warning_]:
    """What each method says about its own run (``Selector.report_warnings``), in run order.
    ``sections``: the report sections the run's methods added (``SelectionContext.sections``)."""
    out = []
    for method in methods:
        for found in get_selector(method).report_warnings(sections, method):
            if not (isinstance(found, Mapping) and isinstance(found.get("code"), str) and isinstance(found.get("message"), str)):
                raise PromptselError(f"Method {method!r} gave a report warning without a code and a message: {found!r} (a plugin bug).")
            fields = {k: v for k, v in found.items() if k not in ("code", "message", "severity")}
            out.append(warning(found["code"], found["message"], found.get("severity", "warning"), **fields))
    return out


def at_chance_warning(rec: Recommendation) -> Warning_ | None:
    """``at_chance``: the recommended prompt's interval reaches down to the chance level."""
    interval, chance = rec.get("performance_interval"), rec.get("chance")
    if interval is None or chance is None or interval[0] > chance:
        return None
    return warning(
        "at_chance",
        f"The best prompt ({rec['prompt']}, {rec['metric']} {_g(rec['performance'] or 0)}, "
        f"{rec['level']:.0%} interval {_g(interval[0])}–{_g(interval[1])}) is not distinguishable from chance "
        f"({_g(chance)}, what ignoring the input earns on this sample): the model may not do this task at all.",
        chance=chance, interval=interval, prompt=rec["prompt"],
    )


def collapsed_warning(table: ScoreTable, recommended: str | None = None, threshold: float = COLLAPSE_SHARE, *,
                      before: str | None = None) -> Warning_ | None:
    """``collapsed``: prompts that give one class to at least ``threshold`` of the inputs.
    ``before``: the calibration the run applied after this was judged on the raw table, which
    the message says (the calibrated tables below count other classes)."""
    shares = class_shares(table.predictions, len(table.class_names))
    hits = []
    for p, pid in enumerate(table.prompt_ids):
        c = int(shares[p].argmax())
        if shares[p, c] >= threshold:
            hits.append({"prompt": pid, "class": table.class_names[c], "share": float(shares[p, c])})
    if not hits:
        return None
    named = ", ".join(f"{h['prompt']} ({h['class']} {h['share']:.0%})" for h in hits[:8])
    more = f" and {len(hits) - 8} more" if len(hits) > 8 else ""
    rec_hit = recommended is not None and any(h["prompt"] == recommended for h in hits)
    lead = f"The recommended prompt {recommended} answers one class for almost every input. " if rec_hit else ""
    return warning(
        "collapsed",
        f"{lead}{len(hits)} of {table.n_prompts} prompts predict one class for at least {threshold:.0%} of inputs: "
        f"{named}{more}{f' before calibration ({before})' if before else ''}. "
        "Their label-free scores measure the collapse, not the task.",
        prompts=hits, recommended=rec_hit, threshold=threshold, **({"before_calibration": before} if before else {}),
    )


def tied_top_warnings(ids: Sequence[str], method_scores: Mapping[str, np.ndarray], perf: np.ndarray | None) -> list[Warning_]:
    """``tied_top``: one per method whose top score is shared by several prompts."""
    out = []
    for method, scores in method_scores.items():
        choice = expected_choice(scores, perf)
        tied = choice["tied"]
        if len(tied) < 2:
            continue
        names = [ids[i] for i in tied]
        every = " (every prompt: it does not rank them at all)" if len(tied) == len(ids) else ""
        expected = choice["performance"]
        tail = (f" Reported performance is the mean over them, {_g(expected)}, what a random pick among them earns."
                if expected is not None else " Any of them is its choice.")
        out.append(warning(
            "tied_top",
            f"{method} ties {len(tied)} prompts at the top{every}: {', '.join(names[:8])}{' …' if len(names) > 8 else ''}.{tail}",
            method=method, prompts=names, expected_performance=expected,
        ))
    return out


def stability_warnings(rec: Recommendation, threshold: float = UNSTABLE_SHARE) -> list[Warning_]:
    """``no_labels_unstable`` and ``stability_unknown`` for a label-free recommendation,
    ``labels_unstable`` for a measured one."""
    st = rec["stability"]
    if rec["basis"] != "label-free":
        share = st["share"]
        if share is None or share >= threshold:
            return []
        return [warning(
            "labels_unstable",
            f"{rec['prompt']} measures best in only {share:.0%} of resamples of the examples; "
            f"{len(st['cover'])} prompts share {st['cover_level']:.0%} of the wins "
            f"({', '.join(st['cover'][:8])}{' …' if len(st['cover']) > 8 else ''}). Label more examples to separate them.",
            share=share, threshold=threshold, cover=st["cover"],
        )]
    if not st["estimated"]:
        return [warning("stability_unknown",
                        f"How stable {rec['rule']}'s choice is cannot be estimated: {st['how']}. "
                        "Label the sample (even 50 examples) to measure the prompts instead.",
                        severity="info", rule=rec["rule"], reason=st["how"])]
    share = st["share"] or 0.0
    if share >= threshold:
        return []
    return [warning(
        "no_labels_unstable",
        f"{rec['rule']} picks {rec['prompt']} in only {share:.0%} of resamples of the inputs; "
        f"{len(st['cover'])} prompts are needed to cover {st['cover_level']:.0%} of its choices "
        f"({', '.join(st['cover'][:8])}{' …' if len(st['cover']) > 8 else ''}). Treat these as candidates, not a choice.",
        rule=rec["rule"], share=share, threshold=threshold, cover=st["cover"],
    )]


def label_free_check(rec: Recommendation, table: ScoreTable, rule: str, scores: np.ndarray,
                     stats: Mapping[str, PromptStats]) -> tuple[dict[str, Any], Warning_ | None]:
    """With labels: what the label-free ``rule`` would have chosen, and ``label_free_disagrees``
    when its (tie-expected) choice is measurably worse than the recommendation."""
    ids = table.prompt_ids
    assert table.labels is not None
    perf = metrics.performance(table.predictions, table.labels, metric=rec["metric"] or "accuracy",
                               n_classes=len(table.class_names))
    choice = expected_choice(scores, perf)
    tied = [ids[i] for i in choice["tied"]]
    close = {rec["prompt"], *(a["prompt"] for a in rec["indistinguishable"])}
    worse = [p for p in tied if p not in close]
    summary = {"rule": rule, "prompt": ids[choice["chosen"]], "tied": tied, "performance": choice["performance"],
               "rate": choice["rate"], "agrees": not worse}
    if not worse:
        return summary, None
    lead = stats[worse[0]]["lead_interval"]
    return summary, warning(
        "label_free_disagrees",
        f"Without labels, {rule} would pick {', '.join(worse)} ({rec['metric']} {_g(choice['performance'] or 0)}), "
        f"measurably worse than {rec['prompt']} (lead interval {_g(lead[0])}–{_g(lead[1])}): "
        "on this model and data, label-free selection is not a substitute for labels.",
        rule=rule, prompts=worse, lead_interval=lead,
    )


def calibration_hint(table: ScoreTable, rec: Recommendation) -> Warning_ | None:
    """``calibration_helps``: CBM costs no model call, so with labels the report can say when it
    would measure better than the raw best prompt's whole interval. A hint, not a default: CBM
    helped every balanced binary set measured and hurt CB (a rare class; bench/RESULTS.md)."""
    from .calibration import calibrate

    assert table.labels is not None and rec["performance_interval"] is not None
    calibrated = calibrate(table, "cbm")
    perf = metrics.performance(calibrated.predictions, table.labels, metric=rec["metric"] or "accuracy",
                               n_classes=len(table.class_names))
    best, _ = metrics.choose(perf)
    high = rec["performance_interval"][1]
    if perf[best] <= high:
        return None
    return warning(
        "calibration_helps",
        f"With --calibrate cbm, {table.prompt_ids[best]} would measure {_g(float(perf[best]))}, above the whole interval "
        f"of the best raw prompt ({_g(rec['performance_interval'][0])}–{_g(high)}). It is free (no model call); "
        "using the prompt then means dividing its class probabilities by its prior.",
        severity="info", prompt=table.prompt_ids[best], performance=float(perf[best]), raw_interval=rec["performance_interval"],
    )


def calibrated_warning(calibration: str) -> Warning_:
    """``calibrated``: the numbers are those of calibrated prompts."""
    return warning(
        "calibrated",
        f"Class probabilities were calibrated ({calibration}) before every method, so performance and choices are "
        "those of calibrated prompts: use the same calibration with the chosen prompt (divide its class "
        "probabilities by its prior and renormalise), or its accuracy will differ.",
        severity="info", calibration=calibration,
    )
