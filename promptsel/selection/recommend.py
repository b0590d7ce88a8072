"""The recommendation: one prompt to use, how sure that is, and warnings when the data cannot tell.

Pure functions over a ScoreTable and the methods' scores; ``decide`` puts them together into
the report's fields (``promptsel.selection.report_schema``). The statistics are
``promptsel.model.stats``'s, the warnings ``promptsel.selection.warnings``'s.

With labels, the recommendation is the best measured prompt. A seeded, paired bootstrap over
the examples gives each prompt's performance interval and the interval of the recommended
prompt's lead over every other prompt; a prompt whose lead interval contains 0 is
*indistinguishable* from the recommendation. No correction for the many comparisons:
"indistinguishable" is the lenient reading (an honest list of alternatives), not a test that
the recommendation is better.

Without labels, a named label-free rule (a method or ``consensus``) recommends its top prompt,
and its *stability* is the share of bootstrap resamples of the inputs in which the same rule,
rerun on the resampled table, picks the same prompt, with the fewest prompts that cover 90 %
of the resampled picks. Whether a rule can be rerun so is the method's own declaration
(``stability_reason``, from ``stats.bootstrap_reason``). The default rule depends on the
calibration (``DEFAULT_RULES``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..model import metrics
from ..model.scoretable import ScoreTable
from ..model.stats import (
    COVER_SHARE,
    LEVEL,
    RESAMPLES,
    bootstrap_performance,
    bootstrap_reason,
    chance_level,
    choice_share,
    class_shares,
    cover_set,
    percentile_interval,
    rerun_draws,
    resample_indices,
    resample_weights,
    win_shares,
)
from ..plugins import get_selector
from ..selector import SelectionContext
from .agreement import method_agreement
from .report_schema import Alternative, PromptStats, Recommendation, Stability, Warning_
from .warnings import (
    at_chance_warning,
    calibrated_warning,
    calibration_hint,
    collapsed_warning,
    label_free_check,
    method_warnings,
    stability_warnings,
    tied_top_warnings,
)

#: The label-free rule used when the user names none, per calibration, chosen by
#: ``bench/bench_consensus.py`` (bench/RESULTS.md, "Label-free rules and consensus"). On raw
#: scores a prompt's label bias dominates ZPS (and MI on the fixture), and the consensus of MI,
#: GlobalE, LocalE and SPELL did best over eight settings. After CBM, ZPS's pseudo-labels
#: become good and ZPS-Log did best over five settings. After CC or PMI (three datasets each,
#: SmolLM2) hardly any rule beat a random pick; MI, best under PMI and UPS's choice with
#: calibration, is the least bad.
DEFAULT_RULES = {"none": "consensus", "cbm": "zps-log", "cc": "mi", "pmi": "mi"}
DEFAULT_RULE = DEFAULT_RULES["none"]
MEASURED = "measured"


# --- the rule ------------------------------------------------------------------------------

def stability_reason(method: str) -> str | None:
    """Why a registered method's choice cannot be bootstrapped over the inputs (``None``: it can)."""
    return bootstrap_reason(get_selector(method))


def rescorer(method: str, context: SelectionContext | None = None, **options: Any) -> Callable[[ScoreTable], np.ndarray]:
    """``table -> scores`` for a registered method (to rerun it on resampled tables)."""
    selector = get_selector(method)(**options)
    ctx = context or SelectionContext()
    return lambda table: selector.score(table, ctx)


def default_rule(calibration: str = "none") -> str:
    """The label-free rule ``--recommend`` defaults to under a calibration."""
    return DEFAULT_RULES.get(calibration, DEFAULT_RULE)


# --- the recommendation ------------------------------------------------------------------

def recommend_measured(
    table: ScoreTable, *, metric: str = "accuracy", resamples: int = RESAMPLES,
    level: float = LEVEL, seed: int = 0, picks: np.ndarray | None = None,
) -> tuple[Recommendation, dict[str, PromptStats]]:
    """With labels: the best measured prompt, its interval, its lead over every other prompt and
    the stability of "best" over resamples of the examples."""
    if table.labels is None:
        raise ValueError("recommend_measured needs a table with labels.")
    n_classes = len(table.class_names)
    ids = table.prompt_ids
    perf = metrics.performance(table.predictions, table.labels, metric=metric, n_classes=n_classes)
    if picks is None:
        picks = resample_indices(table.n_examples, resamples, seed)
    draws = bootstrap_performance(table.predictions, table.labels, resample_weights(picks, table.n_examples),
                                  metric=metric, n_classes=n_classes)
    intervals = percentile_interval(draws, level)  # [P, 2]
    best, tied = metrics.choose(perf)
    leads = draws[:, [best]] - draws  # [B, P]
    lead_intervals = percentile_interval(leads, level)
    shares = win_shares(draws)
    alternatives: list[Alternative] = []
    indistinguishable = np.zeros(len(ids), dtype=bool)
    for q in range(len(ids)):
        lo, hi = lead_intervals[q]
        if q != best and lo <= 0.0 <= hi:
            indistinguishable[q] = True
            alternatives.append(Alternative(prompt=ids[q], performance=float(perf[q]), lead=float(perf[best] - perf[q]),
                                            lead_interval=[float(lo), float(hi)]))
    alternatives.sort(key=lambda a: -a["performance"])
    cover = cover_set(shares)
    rec = Recommendation(
        prompt=ids[best], rule=MEASURED, basis="labels", metric=metric,
        performance=float(perf[best]), performance_interval=[float(x) for x in intervals[best]],
        expected_performance=float(perf[best]), tied=[ids[i] for i in tied],
        chance=chance_level(table.labels, n_classes, metric), level=level, resamples=int(picks.shape[0]), seed=seed,
        indistinguishable=alternatives,
        stability=Stability(share=choice_share(shares, tied), cover=[ids[i] for i in cover], cover_level=COVER_SHARE,
                            estimated=True, how="share of resamples of the examples in which this prompt measures best"),
        label_free=None,
    )
    stats = _prompt_stats(table, intervals, lead_intervals, indistinguishable, shares, best)
    return rec, stats


def recommend_label_free(
    table: ScoreTable, rule: str, scores: np.ndarray, *,
    rescore: Callable[[ScoreTable], np.ndarray] | None = None, reason: str | None = None,
    resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0, picks: np.ndarray | None = None,
) -> tuple[Recommendation, dict[str, PromptStats]]:
    """Without labels: ``rule``'s top prompt (``scores`` on the full table) and the stability of
    that choice, from rerunning ``rescore`` on resamples of the inputs. Without ``rescore`` the
    stability is not estimated and ``reason`` says why."""
    ids = table.prompt_ids
    best, tied = metrics.choose(scores)
    shares = None
    if rescore is not None:
        if picks is None:
            picks = resample_indices(table.n_examples, resamples, seed)
        shares = win_shares(rerun_draws(table, rescore, picks))
        stability = Stability(share=choice_share(shares, tied), cover=[ids[i] for i in cover_set(shares)], cover_level=COVER_SHARE,
                              estimated=True, how=f"share of resamples of the inputs in which {rule}, rerun, picks this prompt")
    else:
        stability = Stability(share=None, cover=[], cover_level=COVER_SHARE, estimated=False,
                              how=reason or "not estimated")
    rec = Recommendation(
        prompt=ids[best], rule=rule, basis="label-free", metric=None, performance=None, performance_interval=None,
        expected_performance=None, tied=[ids[i] for i in tied], chance=None, level=level,
        resamples=0 if picks is None or rescore is None else int(picks.shape[0]), seed=seed,
        indistinguishable=[], stability=stability, label_free=None,
    )
    stats = _prompt_stats(table, None, None, None, shares, best)
    return rec, stats


def _prompt_stats(table: ScoreTable, intervals, lead_intervals, indistinguishable, shares, best: int) -> dict[str, PromptStats]:
    top = class_shares(table.predictions, len(table.class_names))
    out: dict[str, PromptStats] = {}
    for p, pid in enumerate(table.prompt_ids):
        out[pid] = PromptStats(
            performance_interval=None if intervals is None else [float(x) for x in intervals[p]],
            lead_interval=None if lead_intervals is None or p == best else [float(x) for x in lead_intervals[p]],
            indistinguishable=None if indistinguishable is None else bool(indistinguishable[p]),
            pick_share=None if shares is None else float(shares[p]),
            top_class=table.class_names[int(top[p].argmax())],
            top_share=float(top[p].max()),
        )
    return out


# --- all of it ---------------------------------------------------------------------------

def decide(
    table: ScoreTable,
    method_scores: Mapping[str, np.ndarray],
    *,
    rule: str | None = None,
    metric: str = "accuracy",
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
    context: SelectionContext | None = None,
    rescore: Callable[[ScoreTable], np.ndarray] | None = None,
    sections: Mapping[str, Any] | None = None,
    calibration: str = "none",
    calibration_priors: np.ndarray | None = None,
    raw: ScoreTable | None = None,
) -> dict[str, Any]:
    """The report's ``recommendation``, ``warnings``, ``prompt_stats`` and ``agreement``.

    ``method_scores`` are the scores every method gave on the full table (as in the report).
    ``rule`` is the label-free rule (default ``default_rule(calibration)``); it decides without labels and is
    checked against the measurement with labels. Its scores come from ``method_scores[rule]``
    or, when absent, from running it. ``rescore`` overrides how the rule is rerun on resampled
    tables (default: the registered method, when ``stability_reason`` allows). The same seeded
    resamples serve every bootstrap here. ``calibration`` names the calibration the table went
    through (``promptsel.selection.calibration``); it is recorded and, unless ``none``, warned about, and
    ``calibration_priors`` [P, C] (``calibration.priors``) gives the recommended prompt's prior,
    which a user needs to apply the same calibration when deploying it. ``raw`` is the table
    before calibration: collapse is judged on it, because calibration rebalances a collapsed
    prompt's answers on this sample without making it read the input. ``sections``: the report
    sections the run's methods added; given, every method of ``method_scores`` adds its own
    warnings through ``Selector.report_warnings``.
    """
    rule = rule or default_rule(calibration)
    # Collapse is judged on the raw table: a calibrated run's message says so.
    before = calibration if raw is not None and calibration != "none" else None
    picks = resample_indices(table.n_examples, resamples, seed)
    rule_scores = method_scores.get(rule)
    reason = stability_reason(rule)
    if rescore is None and reason is None:
        rescore = rescorer(rule, context)
    if rule_scores is None and rescore is not None:
        rule_scores = np.asarray(rescore(table), dtype=np.float64)
    perf = None
    warnings: list[Warning_] = []
    if table.labels is not None:
        rec, stats = recommend_measured(table, metric=metric, level=level, seed=seed, picks=picks)
        perf = metrics.performance(table.predictions, table.labels, metric=metric, n_classes=len(table.class_names))
        if rule_scores is not None:
            rec["label_free"], disagree = label_free_check(rec, table, rule, rule_scores, stats)
        else:
            disagree = None
        warnings += [w for w in (at_chance_warning(rec), collapsed_warning(raw or table, rec["prompt"], before=before)) if w]
        warnings += stability_warnings(rec)
        warnings += [disagree] if disagree else []
        if calibration == "none":
            warnings += [w for w in (calibration_hint(table, rec),) if w]
    else:
        if rule_scores is None:
            raise ValueError(f"No scores for the rule {rule!r}: run it first or pass its scores in method_scores.")
        rec, stats = recommend_label_free(table, rule, rule_scores, rescore=rescore, reason=reason,
                                          level=level, seed=seed, picks=picks)
        warnings += [w for w in (collapsed_warning(raw or table, rec["prompt"], before=before),) if w]
        warnings += stability_warnings(rec)
        if len(rec["tied"]) > 1 and rule not in method_scores:
            warnings += tied_top_warnings(table.prompt_ids, {rule: rule_scores}, None)
    warnings += tied_top_warnings(table.prompt_ids, method_scores, perf)
    if sections is not None:  # what each method says about its own run
        warnings += method_warnings(method_scores, sections)
    rec["calibration"] = calibration
    rec["calibration_prior"] = None
    if calibration_priors is not None:
        row = np.asarray(calibration_priors)[table.prompt_ids.index(rec["prompt"])]
        rec["calibration_prior"] = {c: float(v) for c, v in zip(table.class_names, row)}
    if calibration != "none":
        warnings.append(calibrated_warning(calibration))
    return {
        "recommendation": rec,
        "warnings": warnings,
        "prompt_stats": stats,
        "agreement": method_agreement(method_scores) if method_scores else None,
    }
