"""``select --adaptive`` from rounds to report: the recommendation, the per-prompt rows and the
report's ``adaptive`` block, with the anytime-valid bounds in place of the bootstrap (a bootstrap
of the inputs read is not valid once the reading stopped on what it saw;
``promptsel.selection.adaptive`` says why the bounds are).

Prompts are read on different numbers of inputs: each row of the report carries ``n`` (its
inputs), ``dropped`` (the round after which it was dropped, or null) and its accuracy over its
own n; the interval beside it is its anytime-valid interval. Label-free methods, whose scores are
not means over inputs, read only the inputs every prompt was scored on (``adaptive.common_inputs``),
and their performance, rate and NDCG columns are measured on those inputs.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from ..errors import UsageError
from ..model.request import SelectRequest
from ..model.scoretable import ScoreTable
from ..model.stats import chance_level, class_shares
from .adaptive import (
    GUARANTEE,
    STOP_REASONS,
    Cost,
    LiveSource,
    Outcome,
    ReplaySource,
    RoundProgress,
    RowsSource,
    run_adaptive,
)
from .report_schema import (
    AdaptiveHoldout,
    Alternative,
    PromptStats,
    Recommendation,
    Stability,
    Warning_,
)
from .warnings import (
    at_chance_warning,
    collapsed_warning,
    label_free_check,
    method_warnings,
    tied_top_warnings,
    warning,
)

#: The report's ``adaptive`` block (``report_schema.Adaptive``): absent when the run was not adaptive.
ADAPTIVE_KEY = "adaptive"


def refuse(req: SelectRequest) -> None:
    """The options ``--adaptive`` cannot honour, each a one-line error before any work."""
    if not req.adaptive:
        defaults = {f.name: f.default for f in dataclasses.fields(req)}
        given = [name for name in req.ADAPTIVE if getattr(req, name) != defaults[name]]
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} applies to adaptive runs only.", hint="Add --adaptive, or leave it out.")
        return
    if req.metric != "accuracy":
        raise UsageError(f"--adaptive works with --metric accuracy only: {req.metric} is not a mean over inputs, so the "
                         "confidence sequences do not bound it.", hint="Use --metric accuracy, or leave out --adaptive.")
    if req.calibrate != "none":
        raise UsageError(f"--adaptive reads the raw scores; --calibrate {req.calibrate} changes them with the whole sample.",
                         hint="Leave out --calibrate or --adaptive.")
    if req.log_samples is not None:
        raise UsageError("--log-samples writes every prompt's answer on every input; --adaptive scores only some.",
                         hint="Leave out --log-samples or --adaptive.")


def source(inputs: Any, cost: Cost | None, title: str | None = None) -> tuple[Any, np.ndarray]:
    """(the whole sample's source, its labels): the scores file (``cost`` None), or the scorer with
    its plans added to ``cost``."""
    req = inputs.request
    if inputs.table is not None:
        return ReplaySource(inputs.table, req.scores), _labels(inputs.table.labels, f"{req.scores} has no labels")
    assert cost is not None
    labels = _labels(inputs.dataset.labels, f"{inputs.dataset.name} has no labels")
    return LiveSource(inputs, RoundProgress(inputs.progress, cost, title)), labels


def rounds(inputs: Any, rows: np.ndarray | None = None, heldout: int = 0) -> Outcome:
    """The adaptive rounds of a request: from the scores file, or through the scorer; on the
    inputs ``rows`` only when given (``--holdout``'s choosing part, beside ``heldout`` inputs held out)."""
    req = inputs.request
    cost = None if inputs.table is not None else Cost()
    feed, labels = source(inputs, cost)
    if rows is not None:
        feed, labels = RowsSource(feed, rows), labels[rows]
    if inputs.table is not None:
        n_prompts, n_classes = inputs.table.n_prompts, len(inputs.table.class_names)
    else:
        n_prompts, n_classes = len(inputs.prompt_set.prompts), len(inputs.dataset.classes)
        worst = n_prompts * min(len(labels), req.max_inputs or len(labels))
        held = f", plus {2 * heldout:,} on the {heldout:,} held-out inputs (the chosen prompt and the baseline)" if heldout else ""
        inputs.progress.note(f"Adaptive: at most {worst:,} cells (prompt x input; worst case, every one){held}, in rounds of "
                             f"{req.round_size} inputs; the expected case is estimated after the first round.")
    note = None if cost is None else (lambda cells, read: inputs.progress.note(_expected_note(cells, read, cost, worst)))
    started = time.perf_counter()
    outcome = run_adaptive(feed, labels, n_prompts, n_classes, seed=req.seed, epsilon=req.epsilon, delta=req.delta,
                           max_inputs=req.max_inputs, round_size=req.round_size, note=note)
    outcome.cost = cost
    inputs.timings["scoring"] = time.perf_counter() - started
    if inputs.scorer is not None:
        inputs.timings["backend"] = inputs.scorer.timings.backend_seconds
    return outcome


def _expected_note(cells: int, read: int, cost: Cost, worst: int) -> str:
    """The expected case after the first round (``read`` cells), in cells and, at that round's
    tokens per cell, in tokens to evaluate, with the worst case beside it."""
    per_cell = cost.evaluate / max(read, 1)
    return (f"Adaptive: expected about {cells:,} of {worst:,} cells, about {per_cell * cells:,.0f} tokens to evaluate "
            f"(worst case {per_cell * worst:,.0f}), from the first round's gaps, paired variances and tokens per cell "
            "(a rough guide: the rounds stop on the data).")


def _labels(labels: np.ndarray | None, why: str) -> np.ndarray:
    if labels is None:
        raise UsageError(f"--adaptive needs labels: {why}.", hint="Leave out --adaptive for a label-free selection.")
    return labels


def tables(outcome: Outcome, ids: list[str], classes: list[str], labels: np.ndarray,
           sample_ids: list[str]) -> tuple[ScoreTable, ScoreTable]:
    """(what was read, as a table with its ``scored`` mask, for ``--save-scores``; the inputs every
    prompt read, complete, for the label-free methods)."""
    read = ScoreTable(prompt_ids=ids, class_names=classes, class_logprobs=outcome.class_logprobs,
                      prompt_nll=outcome.prompt_nll, labels=labels, sample_ids=sample_ids, scored=outcome.scored)
    first = outcome.order[: outcome.common]
    nll = None if outcome.prompt_nll is None else outcome.prompt_nll[:, first]
    common = ScoreTable(prompt_ids=ids, class_names=classes, class_logprobs=outcome.class_logprobs[:, first], prompt_nll=nll,
                        labels=labels[first], sample_ids=[sample_ids[i] for i in first])
    return read, common


#: Why an adaptive run has no sensitivity band (the report's ``adaptive.sensitivity``).
NO_BAND = ("no sensitivity band in an adaptive run: the family's variants were read on different numbers of inputs (the "
           "dropped ones on few), so their accuracies are not comparable, and on the inputs every prompt read (common_inputs) "
           "the percentiles would be too coarse to mean much; run without --adaptive on a --limit sample for the band")


def block(outcome: Outcome, n_inputs: int, *, heldout_cells: int | None = None, heldout_inputs: int = 0,
          variants: bool = False) -> AdaptiveHoldout:
    """The report's ``adaptive`` block. With ``--holdout``, ``heldout_cells`` (the held-out pass)
    are counted in ``cells_scored`` and the ``heldout_inputs`` in ``cells_total``: the cost of
    the whole run beside a full evaluation of the whole sample."""
    d = outcome.decision
    n_prompts = outcome.scored.shape[0]
    cost = outcome.cost
    extra: dict[str, Any] = {}
    if heldout_cells is not None:
        extra = {"search_cells": outcome.cells, "heldout_cells": heldout_cells, "heldout_inputs": heldout_inputs}
    if variants:
        extra["sensitivity"] = NO_BAND
    return {
        "cells_scored": outcome.cells + (heldout_cells or 0), "cells_total": int(n_prompts * (outcome.scored.shape[1] + heldout_inputs)),
        "rounds": outcome.rounds,
        "stop_reason": d.reason, "stop_meaning": STOP_REASONS.get(d.reason or "", ""), "guaranteed": d.reason != "budget",
        "epsilon": outcome.settings["epsilon"], "delta": outcome.settings["delta"],
        "max_inputs": outcome.settings["max_inputs"], "round_size": outcome.settings["round_size"],
        "inputs_read": int(outcome.read.max()), "inputs_total": n_inputs, "common_inputs": outcome.common,
        "survivors": [int(s) for s in d.survivors], "expected_cells": outcome.expected_cells,
        "tokens": None if cost is None else {"requests": cost.requests, "cached": cost.cached, "tokens": cost.tokens,
                                             "evaluate": cost.evaluate, "generate": cost.generate},
        "order": "a permutation of the inputs drawn from the seed (numpy default_rng(seed).permutation)",
        "bounds": (f"anytime-valid empirical-Bernstein confidence sequences for sampling without replacement: the lead "
                   f"intervals at {1 - outcome.settings['delta'] / max(n_prompts - 1, 1):.4g} per side, each prompt's "
                   f"accuracy interval at {1 - outcome.settings['delta'] / (2 * n_prompts):.4g} per side"),
        "guarantee": GUARANTEE,
        **extra,
    }


def recommendation(outcome: Outcome, common: ScoreTable, labels: np.ndarray, method_scores: dict[str, np.ndarray],
                   sections: dict[str, Any], rule: str, rule_scores: np.ndarray | None,
                   seed: int) -> tuple[dict[str, Any], dict[str, PromptStats]]:
    """The report's ``recommendation``, ``warnings`` and ``agreement`` of an adaptive run, and the
    per-prompt statistics (the confidence sequences, not a bootstrap)."""
    from .agreement import method_agreement

    ids = common.prompt_ids
    d, means, delta = outcome.decision, outcome.means, outcome.settings["delta"]
    leader = d.leader
    alternatives = [Alternative(prompt=ids[q], performance=float(means[q]), lead=float(means[leader] - means[q]),
                                lead_interval=[float(x) for x in outcome.lead_bounds[q]])
                    for q in d.survivors if q != leader]
    alternatives.sort(key=lambda a: -a["performance"])
    how = ("an adaptive run's stop depends on what it read, so a bootstrap of those inputs is not valid; "
           f"the confidence sequences are (stopped: {d.reason})")
    rec = Recommendation(
        prompt=ids[leader], rule="measured", basis="labels", metric="accuracy", performance=float(means[leader]),
        performance_interval=[float(x) for x in outcome.accuracy_bounds[leader]], expected_performance=float(means[leader]),
        tied=[ids[leader]], chance=chance_level(labels, len(common.class_names), "accuracy"), level=1 - delta, resamples=0,
        seed=seed, indistinguishable=alternatives,
        stability=Stability(share=None, cover=[ids[q] for q in d.survivors], cover_level=1 - delta, estimated=False, how=how),
        label_free=None,
    )
    survivors = set(d.survivors)
    shares = class_shares(common.predictions, len(common.class_names))
    stats = {pid: PromptStats(
        performance_interval=[float(x) for x in outcome.accuracy_bounds[p]],
        lead_interval=None if p == leader else [float(x) for x in outcome.lead_bounds[p]],
        indistinguishable=p != leader and p in survivors, pick_share=None,
        top_class=common.class_names[int(shares[p].argmax())], top_share=float(shares[p].max()),
    ) for p, pid in enumerate(ids)}
    warnings: list[Warning_] = [w for w in (at_chance_warning(rec), collapsed_warning(common, rec["prompt"])) if w]
    if d.reason == "budget":
        warnings.append(warning(
            "adaptive_budget",
            f"Stopped at --max-inputs ({outcome.settings['max_inputs']}) before the best prompt was known: {ids[leader]} "
            f"leads, but {len(survivors) - 1} other prompts are still in the running and nothing guarantees it is within "
            f"epsilon {outcome.settings['epsilon']} of the best.", survivors=[ids[q] for q in d.survivors]))
    if rule_scores is not None:
        rec["label_free"], disagree = label_free_check(rec, common, rule, rule_scores, stats)
        if disagree:  # in the adaptive run's terms: the search dropped the rule's pick as surely worse
            dropped = ", ".join(f"{p} (after round {outcome.dropped.get(ids.index(p))})" for p in disagree["prompts"])
            disagree["message"] = (f"Without labels, {rule} would pick {dropped}: the search dropped it as surely worse than "
                                   "another prompt (confidence 1 - delta); on this model and data, "
                                   "label-free selection is not a substitute for labels.")
            warnings.append(disagree)
    warnings += tied_top_warnings(ids, method_scores, None)
    warnings += method_warnings(method_scores, sections)
    rec["calibration"], rec["calibration_prior"] = "none", None
    found = {"recommendation": rec, "warnings": warnings,
             "agreement": method_agreement(method_scores) if method_scores else None}
    return found, stats


def prompt_rows(report: dict[str, Any], outcome: Outcome, stats: dict[str, PromptStats]) -> None:
    """Each prompt's row: its accuracy over its own inputs, their number, whether it was dropped."""
    read = outcome.read
    for p, entry in enumerate(report["prompts"]):
        entry["performance"] = float(outcome.means[p])
        entry["n"] = int(read[p])
        entry["dropped"] = outcome.dropped.get(p)
        entry.update(stats[entry["id"]])
    leader = outcome.decision.leader
    report["oracle"] = {"chosen": report["prompts"][leader]["id"], "performance": float(outcome.means[leader])}

