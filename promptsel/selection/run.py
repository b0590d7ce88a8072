"""``select`` as a library call, in stages: inputs -> score -> ScoreTable -> calibrate -> methods
-> report (with the recommendation and its warnings)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import Backend
from ..errors import PromptselError
from ..model.data import Dataset
from ..model.progress import Progress
from ..model.request import SelectRequest
from ..model.scoretable import ScoreTable, UnlabeledScores
from ..plugins import report_sections
from ..selector import SelectionContext
from ..version import __version__
from . import holdout
from .examples import behind_the_choice
from .inputs import Inputs
from .record import run_record
from .report import SCHEMA_VERSION, evaluate
from .samples import write_samples
from .scoring import build_score_table
from .sensitivity import sensitivity_band


@dataclass
class Calibrated:
    """The table every method reads, and what calibration did to get it."""

    table: ScoreTable
    raw: ScoreTable
    kind: str
    #: [P, C] the class prior divided out of each prompt (None without calibration).
    priors: np.ndarray | None = None


@dataclass
class MethodScores:
    """What the methods stage produced: one score per prompt per method, in run order."""

    scores: dict[str, np.ndarray]
    seconds: dict[str, float]
    #: Report sections the methods added, by name (``Selector.report_section``).
    sections: dict[str, Any]
    #: Class log-probs a method had the model compute on unlabeled inputs (FUTE's U), if any.
    unlabeled: UnlabeledScores | None = None


def run_select(req: SelectRequest, progress: Progress | None = None) -> tuple[dict[str, Any], ScoreTable]:
    """Run a selection and return the report and the ScoreTable it was computed from."""
    started = time.perf_counter()
    with Inputs(req, progress) as inputs:
        return select(inputs, started=started)


def select(inputs: Inputs, *, started: float | None = None) -> tuple[dict[str, Any], ScoreTable]:
    """The stages after the inputs: score, save the table if asked, run the methods, report."""
    started = time.perf_counter() if started is None else started
    req = inputs.request
    known = inputs.prompt_set.ids if inputs.prompt_set is not None else inputs.table.prompt_ids if inputs.table is not None else None
    holdout.check_request(req.holdout, req.baseline, _has_labels(inputs), known)
    if req.adaptive:  # in rounds, stopping when the best prompt is known (on the choosing part, with --holdout)
        return select_adaptive(inputs, started=started)
    raw = score(inputs)
    if req.save_scores is not None:
        raw.save(req.save_scores)
    part, scored = None, raw
    if req.holdout is not None:  # everything below reads the choosing part, but the holdout block
        part = holdout.split(raw, req.holdout, req.seed)
        raw = part.choosing
    calibrated = calibrate(inputs, raw)
    table = calibrated.table
    if req.log_samples is not None:
        write_samples(req.log_samples, table, _choosing_dataset(inputs.dataset, part))
    t = time.perf_counter()
    methods = run_methods(inputs, table)
    inputs.timings["selection"] = time.perf_counter() - t
    if req.save_scores is not None and methods.unlabeled is not None and scored.unlabeled is None:
        # Saved again with U's labels, so the saved run replays FUTE (before the methods, the
        # table alone was saved: a method that fails loses no scoring).
        scored.unlabeled = methods.unlabeled
        scored.save(req.save_scores)
    report = build_report(inputs, table, methods, scored=scored)
    t = time.perf_counter()
    report.update(recommendation(inputs, calibrated, methods, report))
    report.update(variant_blocks(inputs, calibrated, report, part))
    report["examples"] = behind_the_choice(table, report, _choosing_dataset(inputs.dataset, part), inputs.prompt_set)
    inputs.timings["recommendation"] = time.perf_counter() - t
    inputs.timings["total"] = time.perf_counter() - started
    report["timings"] = timings(inputs, methods)
    return report, table


def _has_labels(inputs: Inputs) -> bool | None:
    """Whether the examples have labels, before any scoring (None: not known yet)."""
    if inputs.dataset is not None:
        return inputs.dataset.has_labels
    return None if inputs.table is None else inputs.table.labels is not None


def _choosing_dataset(dataset: Dataset | None, part: holdout.Split | None) -> Dataset | None:
    """The examples of the choosing part (the whole dataset without ``--holdout``)."""
    if dataset is None or part is None:
        return dataset
    rows = [int(i) for i in part.choosing_rows]
    return dataclasses.replace(dataset, examples=[dataset.examples[i] for i in rows], ids=[dataset.ids[i] for i in rows])


def variant_blocks(inputs: Inputs, calibrated: Calibrated, report: dict[str, Any], part: holdout.Split | None) -> dict[str, Any]:
    """``holdout`` (with ``--holdout``) and ``sensitivity`` (for a prompt set with variants): keys a
    report has only when they apply, so other reports read as they always did."""
    req = inputs.request
    chosen = report["recommendation"]["prompt"]
    performance = [p["performance"] for p in report["prompts"]]
    out: dict[str, Any] = {}
    if part is not None:
        out["holdout"] = holdout.holdout_report(part, np.asarray(performance, dtype=float), calibrated.priors, inputs.prompt_set,
                                                chosen=chosen, baseline=req.baseline, metric=req.metric,
                                                resamples=req.bootstrap, seed=req.seed)
    band = sensitivity_band(inputs.prompt_set, performance, chosen, req.metric)
    if band is not None:
        out["sensitivity"] = band
    return out


def score(inputs: Inputs) -> ScoreTable:
    """The ScoreTable: from the scores file, or every prompt on every input through the cache."""
    if inputs.table is not None:
        return inputs.table
    assert inputs.scorer is not None and inputs.prompt_set is not None and inputs.dataset is not None
    t = time.perf_counter()
    inputs.table = build_score_table(inputs.prompt_set, inputs.dataset, inputs.scorer, inputs.request.scoring,
                                     need_nll=inputs.needs_prompt_nll)
    inputs.timings["scoring"] = time.perf_counter() - t
    inputs.timings["backend"] = inputs.scorer.timings.backend_seconds
    return inputs.table


def calibrate(inputs: Inputs, raw: ScoreTable) -> Calibrated:
    """``--calibrate``: divide each prompt's class prior out of the table before any method reads
    it. ``cc`` and ``pmi`` score content-free inputs through every prompt, exactly as the
    evaluation inputs are scored (same rendering, label words, cache); ``cbm`` needs nothing more."""
    from . import calibration

    kind = inputs.request.calibrate
    if kind == "none":
        return Calibrated(raw, raw, kind)
    references = None
    if calibration.REFERENCES[kind]:
        assert inputs.scorer is not None and inputs.prompt_set is not None and inputs.dataset is not None
        fields, classes = inputs.dataset.fields, inputs.dataset.classes
        examples = calibration.reference_inputs(kind, fields)
        free = Dataset(name="content-free", split=kind, fields=fields, classes=classes, examples=examples,
                       ids=[f"{kind}:{i}" for i in range(len(examples))], source=f"calibration:{kind}")
        t = time.perf_counter()
        references = build_score_table(inputs.prompt_set, free, inputs.scorer, inputs.request.scoring,
                                       need_nll=False).class_logprobs
        inputs.timings["calibration"] = time.perf_counter() - t
    return Calibrated(calibration.calibrate(raw, kind, references), raw, kind, calibration.priors(raw, kind, references))


def run_methods(inputs: Inputs, table: ScoreTable) -> MethodScores:
    context = SelectionContext(prompt_set=inputs.prompt_set, scorer=inputs.scorer, seed=inputs.request.seed,
                               run=inputs, progress=inputs.progress)
    scores: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for name in inputs.methods:
        selector = inputs.selector(name)
        began = time.perf_counter()
        values = np.asarray(selector.score(table, context), dtype=float)
        seconds[name] = time.perf_counter() - began
        if values.shape != (table.n_prompts,):
            raise PromptselError(f"Method {name!r} returned {values.shape} scores for {table.n_prompts} prompts (a plugin bug).")
        scores[name] = values
    return MethodScores(scores, {**seconds, **context.seconds}, context.sections, context.unlabeled)


def versions(backend: Backend | None) -> dict[str, str]:
    out = {"promptsel": __version__, "python": platform.python_version(), "numpy": np.__version__}
    for pkg in ("scipy", "scikit-learn", "pluggy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    if backend is not None:
        out.update(backend.versions())
    return out


def dataset_info(inputs: Inputs, table: ScoreTable) -> dict[str, Any]:
    req = inputs.request
    if inputs.dataset is None:  # --scores
        assert req.scores is not None
        return {
            "name": req.dataset or Path(req.scores).stem, "split": req.split, "n": table.n_examples,
            "n_total": table.n_examples, "source": f"scores:{req.scores}",
            "sample_ids_sha256": hashlib.sha256("\n".join(table.sample_ids).encode()).hexdigest(),
            "sample_ids": table.sample_ids, "classes": table.class_names,
        }
    d = inputs.dataset
    return {
        "name": d.name, "split": d.split, "n": len(d.examples), "n_total": d.n_total, "source": d.source,
        "sample_ids_sha256": d.sample_ids_sha256, "sample_ids": d.ids, "classes": list(d.classes), "max_chars": req.max_chars,
    }


def _backend_info(inputs: Inputs) -> dict[str, Any]:
    backend = inputs.backend
    if backend is None:  # --scores: the file is the model
        assert inputs.request.scores is not None
        return {"name": None, "model": None, "fingerprint": hashlib.sha256(Path(inputs.request.scores).read_bytes()).hexdigest()}
    return {"name": backend.backend_id, "model": backend.model_name, "fingerprint": backend.fingerprint,
            "capabilities": sorted(inputs.runtime_capabilities or ()), "approximate": backend.approximate}


def recommendation(inputs: Inputs, calibrated: Calibrated, methods: MethodScores, report: dict[str, Any]) -> dict[str, Any]:
    """The report's ``recommendation``, ``warnings`` and ``agreement``; per-prompt intervals and
    shares go into the prompts' entries."""
    from .recommend import decide, stability_reason

    req = inputs.request
    rule = inputs.rule
    context = SelectionContext(prompt_set=inputs.prompt_set, seed=req.seed)
    rescore = None
    if stability_reason(rule) is None:  # rerun with the options the run gave the rule
        selector = inputs.selector(rule)
        rescore = lambda t: selector.score(t, context)  # noqa: E731
    progress = inputs.progress
    if rescore is not None and calibrated.table.labels is None and progress is not None:
        # Without labels the rule is rerun on every resample (seconds to a minute): say so as it goes.
        progress.start(f"Stability of {rule}: reruns on resampled inputs", req.bootstrap)
        rescore = _counted(rescore, progress)
    try:
        found = decide(calibrated.table, methods.scores, rule=rule, metric=req.metric, resamples=req.bootstrap, seed=req.seed,
                       rescore=rescore, sections=methods.sections, calibration=calibrated.kind,
                       calibration_priors=calibrated.priors, raw=calibrated.raw)
    finally:
        if progress is not None:
            progress.done()
    stats = found.pop("prompt_stats") or {}
    for entry in report["prompts"]:
        entry.update(stats.get(entry["id"], {}))
    return found


def _counted(rescore: Any, progress: Progress) -> Any:
    def counted(table: ScoreTable) -> Any:
        values = rescore(table)
        progress.advance()
        return values

    return counted


def timings(inputs: Inputs, methods: MethodScores) -> dict[str, Any]:
    return {**{k: round(v, 4) for k, v in inputs.timings.items()}, "methods": {k: round(v, 4) for k, v in methods.seconds.items()}}


#: The report's own keys besides what ``evaluate`` adds (the recommendation's are added after):
#: no method's section may take one.
CORE_KEYS = frozenset({"schema_version", "dataset", "backend", "prompt_set", "metric", "ndcg_variant", "calibration", "seed",
                       "scoring", "timings", "cache", "versions", "run", "recommendation", "warnings", "prompt_stats",
                       "agreement", "holdout", "sensitivity", "adaptive", "examples"})


def build_report(inputs: Inputs, table: ScoreTable, methods: MethodScores, *, scored: ScoreTable | None = None) -> dict[str, Any]:
    """The report of ``table``; its ``dataset`` describes ``scored``, every example that was
    scored (with ``--holdout``, ``table`` is the choosing part of it)."""
    req, prompt_set, scorer = inputs.request, inputs.prompt_set, inputs.scorer
    evaluated = evaluate(table, methods.scores, metric=req.metric, ndcg_variant=req.ndcg)
    # Every registered method's section, null when it did not run: the report keeps its keys.
    sections = {name: methods.sections.get(name) for name in report_sections()}
    taken = sorted(set(sections) & (CORE_KEYS | set(evaluated)))
    if taken:
        owners = ", ".join(f"{report_sections()[name].selector_id!r} ({name!r})" for name in taken)
        raise PromptselError(f"Methods name their report section after a key the report already has: {owners} (a plugin bug).")
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "dataset": dataset_info(inputs, table if scored is None else scored),
        "backend": _backend_info(inputs),
        "prompt_set": None if prompt_set is None else {"path": str(prompt_set.path), "name": prompt_set.name, "sha256": prompt_set.sha256},
        "metric": req.metric,
        "ndcg_variant": req.ndcg,
        "calibration": req.calibrate,
        "seed": req.seed,
        "scoring": None if scorer is None else req.scoring.as_dict(),
        **evaluated,
        **sections,
        "timings": timings(inputs, methods),
        "cache": None if scorer is None else {"enabled": req.cache, "hits": scorer.cache.hits, "misses": scorer.cache.misses,
                                                "invalid": scorer.cache.invalid},
        "versions": versions(inputs.backend),
        "run": run_record(req.command, req.prompts, req.adaptive_settings),
    }
    for entry, prompt in zip(report["prompts"], prompt_set.prompts if prompt_set is not None else [None] * table.n_prompts):
        entry["template_sha256"] = None if prompt is None else prompt.template_sha256
        if prompt is not None and prompt.parent is not None:  # a variant (promptsel expand): where it came from
            entry["parent"], entry["axes"] = prompt.parent, dict(prompt.axes or {})
    return report


def select_adaptive(inputs: Inputs, *, started: float) -> tuple[dict[str, Any], ScoreTable]:
    """``select --adaptive``: the rounds, then the methods on the inputs every prompt read, then
    the report with the adaptive recommendation and block. Returns the report and that table."""
    from .adaptive_holdout import Sample, confirm, whole_table
    from .adaptive_report import (
        ADAPTIVE_KEY,
        block,
        prompt_rows,
        recommendation,
        rounds,
        source,
        tables,
    )
    from .recommend import stability_reason

    req = inputs.request
    if inputs.table is not None:
        full = inputs.table
        sample = Sample(full.prompt_ids, full.class_names, full.labels, full.sample_ids)
    else:
        sample = Sample(inputs.prompt_set.ids, list(inputs.dataset.classes), inputs.dataset.labels, list(inputs.dataset.ids))
    choosing = held_rows = None
    if req.holdout is not None:  # split before anything is scored: the rounds never see the held-out rows
        choosing, held_rows = holdout.split_rows(sample.labels, req.holdout, req.seed)
    outcome = rounds(inputs, choosing, 0 if held_rows is None else len(held_rows))
    rows = np.arange(len(sample.sample_ids)) if choosing is None else choosing
    labels, sample_ids = sample.labels[rows], [sample.sample_ids[i] for i in rows]
    read, common = tables(outcome, sample.ids, sample.classes, labels, sample_ids)
    confirmed = None
    if held_rows is not None:  # the chosen prompt and the baseline on the held-out rows, after the search stopped
        feed, _ = source(inputs, outcome.cost, "Held out")
        confirmed = confirm(feed, outcome, sample, held_rows, prompt_set=inputs.prompt_set, fraction=req.holdout,
                            baseline=req.baseline, resamples=req.bootstrap, seed=req.seed)
        read = whole_table(read, confirmed, rows, sample)
    if req.save_scores is not None:
        read.save(req.save_scores)
    t = time.perf_counter()
    methods = run_methods(inputs, common)
    inputs.timings["selection"] = time.perf_counter() - t
    report = build_report(inputs, common, methods)
    if inputs.table is not None:  # the sample is the file's, not the inputs every prompt read
        report["dataset"] = dataset_info(inputs, inputs.table)
    t = time.perf_counter()
    rule = inputs.rule
    rule_scores = methods.scores.get(rule)
    if rule_scores is None and stability_reason(rule) is None:
        rule_scores = np.asarray(inputs.selector(rule).score(common, SelectionContext(prompt_set=inputs.prompt_set,
                                                                                              seed=req.seed)), dtype=float)
    found, stats = recommendation(outcome, common, labels, methods.scores, methods.sections, rule, rule_scores, req.seed)
    report.update(found)
    prompt_rows(report, outcome, stats)
    report[ADAPTIVE_KEY] = block(outcome, len(labels), heldout_cells=None if confirmed is None else confirmed.cells,
                                 heldout_inputs=0 if held_rows is None else len(held_rows),
                                 variants=inputs.prompt_set is not None and inputs.prompt_set.has_variants)
    if confirmed is not None:
        report["holdout"] = confirmed.block
    inputs.timings["recommendation"] = time.perf_counter() - t
    inputs.timings["total"] = time.perf_counter() - started
    report["timings"] = timings(inputs, methods)
    return report, common
