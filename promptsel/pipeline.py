"""``select`` as a library call: prompts + data + backend -> ScoreTable -> methods -> report."""

from __future__ import annotations

import contextlib
import hashlib
import platform
import time
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .backend import CONTINUATION_LOGPROBS, GENERATE, SEQUENCE_LOGPROBS, Backend
from .cache import Cache
from .data import LOCAL_SUFFIXES, Dataset, DatasetSpec, load_local, load_named
from .embedder import FUTE_PREFIX
from .errors import BackendError, CapabilityError, PromptselError, UsageError
from .fute import FuteOptions, is_fute, method_names
from .plugins import registries
from .prompts import PromptSet, load_prompt_set
from .report import SCHEMA_VERSION, evaluate
from .scoretable import ScoreTable
from .scoring import Progress, Scorer, ScoringOptions, build_score_table
from .selector import NEEDS_CLASS_LOGPROBS, NEEDS_PROMPT_NLL, SelectionContext, Selector

#: ScoreTable array -> the backend capability that computes it.
TABLE_SOURCES = {NEEDS_CLASS_LOGPROBS: CONTINUATION_LOGPROBS, NEEDS_PROMPT_NLL: SEQUENCE_LOGPROBS}


@dataclass
class SelectRequest:
    dataset: str | None = None
    prompts: Path | None = None
    backend: str = "llamacpp"
    model: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    methods: list[str] | None = None
    split: str | None = None
    limit: int | None = None
    seed: int = 0
    data_dir: str | None = None
    scores: Path | None = None
    save_scores: Path | None = None
    metric: str = "accuracy"
    ndcg: str = "minmax"
    cache: bool = True
    scoring: ScoringOptions = field(default_factory=ScoringOptions)
    #: For local data files: template field -> column, the label column and the classes.
    fields: dict[str, str] = field(default_factory=dict)
    label_field: str = "label"
    classes: list[str] | None = None
    #: Truncate each input text to this many characters at a word boundary (long reviews).
    max_chars: int | None = None
    fute: FuteOptions = field(default_factory=FuteOptions)


def resolve_dataset_spec(name: str) -> DatasetSpec | None:
    """The registered spec for a name, ``None`` for a local file path."""
    regs = registries()
    if name in regs.datasets:
        return regs.datasets.get(name)
    if Path(name).suffix.lower() in LOCAL_SUFFIXES:
        return None
    raise UsageError(regs.datasets.unknown_message(name) + f" A local {'/'.join(LOCAL_SUFFIXES)} file works too.")


def load_dataset(req: SelectRequest, spec: DatasetSpec | None) -> Dataset:
    assert req.dataset is not None
    if spec is None:
        dataset = load_local(req.dataset, label_field=req.label_field, classes=req.classes, rename=req.fields)
    else:
        dataset = load_named(spec, req.split or spec.eval_split, req.data_dir)
    dataset = dataset.sample(req.limit, req.seed)
    return dataset.truncated(req.max_chars) if req.max_chars is not None else dataset


def make_backend(name: str, model: str | None, model_args: dict[str, Any]) -> Backend:
    cls = registries().backends.get(name)
    try:
        return cls(model=model, **model_args)
    except PromptselError:
        raise
    except TypeError as exc:
        raise UsageError(f"Backend {name!r} does not accept these model arguments: {exc}.") from exc
    except Exception as exc:
        raise BackendError(f"Backend {name!r} failed to start: {type(exc).__name__}: {exc}") from exc


def expand_methods(requested: list[str] | None) -> list[str] | None:
    """``all`` stands for every registered method, FUTE's included (the default leaves FUTE
    out: it needs a labeled train split and trains a surrogate)."""
    if requested is None or "all" not in requested:
        return requested
    out: list[str] = []
    for name in requested:
        out += [e.name for e in registries().selectors] + method_names() if name == "all" else [name]
    return list(dict.fromkeys(out))


def table_needs(caps: set[str] | frozenset[str]) -> set[str]:
    """The capabilities plus the ScoreTable arrays they compute (the table itself is built from
    label log-probs, so without those there is none)."""
    available = set(caps)
    if CONTINUATION_LOGPROBS in caps:
        available |= {need for need, cap in TABLE_SOURCES.items() if cap in caps}
    return available


def choose_methods(requested: list[str] | None, available: set[str]) -> list[str]:
    """The requested label-free methods (all available ones by default), checked against what
    we have. FUTE methods are checked where FUTE runs."""
    regs = registries()
    if requested is None:
        return [e.name for e in regs.selectors if e.target.needs <= available]
    names = []
    for name in requested:
        if is_fute(name):
            continue
        entry = regs.selectors.entry(name)
        missing = entry.target.needs - available
        if missing:
            raise CapabilityError(
                f"Method {entry.name!r} needs {', '.join(sorted(missing))}, which this run cannot provide.",
                hint="Use a backend that has it, or leave the method out of --methods.",
            )
        names.append(entry.name)
    return list(dict.fromkeys(names))


def versions(backend: Backend | None) -> dict[str, str]:
    out = {"promptsel": __version__, "python": platform.python_version(), "numpy": np.__version__}
    for pkg in ("scipy", "scikit-learn", "pluggy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    if backend is not None:
        out.update(backend.versions())
    return out


def run_select(req: SelectRequest, progress: Progress | None = None) -> tuple[dict[str, Any], ScoreTable]:
    """Run a selection and return the report and the ScoreTable it was computed from."""
    progress = progress or Progress()
    requested = expand_methods(req.methods)
    fute_methods = list(dict.fromkeys(m for m in requested or [] if is_fute(m)))
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    prompt_set: PromptSet | None = load_prompt_set(req.prompts) if req.prompts else None
    backend: Backend | None = None
    scorer: Scorer | None = None
    fute_scores: dict[str, np.ndarray] = {}
    fute_report: dict[str, Any] | None = None
    if req.scores is not None:
        table = ScoreTable.load(req.scores, prompt_ids=prompt_set.ids if prompt_set else None)
        if prompt_set is not None and len(prompt_set.prompts) != table.n_prompts:
            raise UsageError(f"{req.prompts} has {len(prompt_set.prompts)} prompts but {req.scores} scores {table.n_prompts}.")
        if fute_methods:
            raise CapabilityError(
                f"{fute_methods[0]} needs a backend to label the unlabeled corpus; it cannot run from --scores.",
                hint="Leave FUTE methods out of --methods, or run with --dataset and --prompts.",
            )
        available = {NEEDS_CLASS_LOGPROBS} | ({NEEDS_PROMPT_NLL} if table.prompt_nll is not None else set())
        methods = choose_methods(requested, available)
        digest = hashlib.sha256(Path(req.scores).read_bytes()).hexdigest()
        dataset_info = {
            "name": req.dataset or Path(req.scores).stem, "split": req.split, "n": table.n_examples,
            "n_total": table.n_examples, "source": f"scores:{req.scores}",
            "sample_ids_sha256": hashlib.sha256("\n".join(table.sample_ids).encode()).hexdigest(),
            "sample_ids": table.sample_ids, "classes": table.class_names,
        }
        backend_info = {"name": None, "model": None, "fingerprint": digest}
    else:
        if prompt_set is None or req.dataset is None:
            raise UsageError("select needs --dataset and --prompts (or --scores FILE.npz).")
        spec = resolve_dataset_spec(req.dataset)
        if spec is not None:  # check the prompts against the dataset before anything heavy
            prompt_set.check_dataset(spec.fields, spec.classes, spec.name)
        backend_cls = registries().backends.get(req.backend)
        caps = set(backend_cls.capabilities)
        methods = choose_methods(requested, table_needs(caps))
        if fute_methods:
            from .fute import check_backend, check_dataset, embedder_for

            for name in fute_methods:  # unknown names and bad options fail before any model runs
                embedder_for(name, req.fute)
            check_dataset(spec)
            check_backend(req.backend)
        if any(p.cot for p in prompt_set.prompts) and GENERATE not in caps:
            raise CapabilityError(f"The prompt set has CoT prompts but backend {req.backend!r} cannot generate.")
        t = time.perf_counter()
        dataset = load_dataset(req, spec)
        if spec is None:
            prompt_set.check_dataset(dataset.fields, dataset.classes, dataset.name)
        timings["load_data"] = time.perf_counter() - t
        t = time.perf_counter()
        backend = make_backend(req.backend, req.model, req.model_args)
        try:  # a server may give less than its class promises: ask before the long run
            runtime = set(backend.runtime_capabilities())
            if runtime != caps:
                try:
                    methods = choose_methods(requested, table_needs(runtime))
                except CapabilityError as exc:
                    lost = ", ".join(sorted(caps - runtime))
                    raise CapabilityError(
                        f"{exc.message.rstrip('.')}: backend {req.backend!r} cannot give {lost} with this model or server.",
                        hint=f"See why with: promptsel validate --backend {req.backend} (same --model and -M); or leave the method out of --methods.",
                    ) from None
        except BaseException:
            backend.close()
            raise
        timings["load_backend"] = time.perf_counter() - t
        scorer = Scorer(backend, Cache(enabled=req.cache), progress=progress)
        # SPELL's pass over the templates is only paid for when a chosen method reads it.
        need_nll = any(NEEDS_PROMPT_NLL in registries().selectors.get(m).needs for m in methods)
        t = time.perf_counter()
        try:
            table = build_score_table(prompt_set, dataset, scorer, replace(req.scoring, need_nll=need_nll))
        except BaseException:
            backend.close()
            raise
        timings["scoring"] = time.perf_counter() - t
        if fute_methods:
            t = time.perf_counter()
            try:
                fute_scores, fute_report = _run_fute(req, prompt_set, spec, scorer, progress, fute_methods)
            except BaseException:
                backend.close()
                raise
            timings["fute"] = time.perf_counter() - t
        timings["backend"] = scorer.timings.backend_seconds
        dataset_info = {
            "name": dataset.name, "split": dataset.split, "n": len(dataset.examples), "n_total": dataset.n_total,
            "source": dataset.source, "sample_ids_sha256": dataset.sample_ids_sha256, "sample_ids": dataset.ids,
            "classes": list(dataset.classes), "max_chars": req.max_chars,
        }
        backend_info = {"name": backend.backend_id, "model": backend.model_name, "fingerprint": backend.fingerprint,
                        "capabilities": sorted(runtime), "approximate": backend.approximate}
    if req.save_scores is not None:
        table.save(req.save_scores)
    t = time.perf_counter()
    context = SelectionContext(prompt_set=prompt_set, scorer=scorer, seed=req.seed)
    method_scores: dict[str, np.ndarray] = {}
    method_seconds: dict[str, float] = {}
    for name in methods:
        selector: Selector = registries().selectors.get(name)()
        began = time.perf_counter()
        scores = np.asarray(selector.score(table, context), dtype=float)
        method_seconds[name] = time.perf_counter() - began
        if scores.shape != (table.n_prompts,):
            raise PromptselError(f"Method {name!r} returned {scores.shape} scores for {table.n_prompts} prompts (a plugin bug).")
        method_scores[name] = scores
    method_scores.update(fute_scores)  # FUTE's columns after the label-free methods
    if fute_report is not None:  # a FUTE method's own time: its embeddings (U scoring is shared)
        for name in fute_scores:
            spent = [e["seconds"] for e in fute_report["embeddings"] if FUTE_PREFIX + e["embedder"] == name]
            method_seconds[name] = float(sum(spent))
    timings["selection"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "dataset": dataset_info,
        "backend": backend_info,
        "prompt_set": None if prompt_set is None else {"path": str(prompt_set.path), "name": prompt_set.name, "sha256": prompt_set.sha256},
        "metric": req.metric,
        "ndcg_variant": req.ndcg,
        "seed": req.seed,
        "scoring": None if scorer is None else {
            "mode": req.scoring.mode, "aggregate": req.scoring.aggregate,
            "spell_text": req.scoring.spell_text, "max_new_tokens": req.scoring.max_new_tokens,
        },
        **evaluate(table, method_scores, metric=req.metric, ndcg_variant=req.ndcg),
        "fute": fute_report,
        "timings": {**{k: round(v, 4) for k, v in timings.items()}, "methods": {k: round(v, 4) for k, v in method_seconds.items()}},
        "cache": None if scorer is None else {"enabled": req.cache, "hits": scorer.cache.hits, "misses": scorer.cache.misses,
                                                "invalid": scorer.cache.invalid},
        "versions": versions(backend),
    }
    if prompt_set is not None:
        for entry, prompt in zip(report["prompts"], prompt_set.prompts):
            entry["template_sha256"] = prompt.template_sha256
    else:
        for entry in report["prompts"]:
            entry["template_sha256"] = None
    if backend is not None:
        backend.close()
    return report, table


def _run_fute(req: SelectRequest, prompt_set: PromptSet, spec: DatasetSpec | None, scorer: Scorer,
              progress: Progress, methods: list[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from .fute import Fute
    from .store import EmbeddingStore

    assert spec is not None
    fute = Fute(prompt_set=prompt_set, spec=spec, scorer=scorer, scoring=req.scoring, options=req.fute,
                store=EmbeddingStore(enabled=req.cache), seed=req.seed, data_dir=req.data_dir, progress=progress)
    return fute.scores(methods), fute.report()


def run_embed(req: SelectRequest, datasets: list[str], embedders: list[str] | None = None, *,
              dte_only: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """Compute (or find) the MTEs of every prompt and the DTE of every dataset, ahead of ``select``."""
    from .fute import Fute, check_backend, check_dataset, embedder_for
    from .store import EmbeddingStore

    progress = progress or Progress()
    methods = [FUTE_PREFIX + name for name in embedders] if embedders else method_names()
    instances = [embedder_for(m, req.fute) for m in methods]
    prompt_set = load_prompt_set(req.prompts) if req.prompts else None
    if prompt_set is None and not dte_only:
        raise UsageError("embed needs --prompts for the model task embeddings (or --dte-only).")
    specs = []
    for name in datasets:
        spec = check_dataset(resolve_dataset_spec(name))
        if prompt_set is not None:
            prompt_set.check_dataset(spec.fields, spec.classes, spec.name)
        specs.append(spec)
    scorer = None
    backend = None
    if not dte_only:
        check_backend(req.backend)
        backend = make_backend(req.backend, req.model, req.model_args)
        scorer = Scorer(backend, Cache(enabled=True), progress=progress)
    store = EmbeddingStore()
    records: list[dict[str, Any]] = []
    reports = []
    try:
        for spec in specs:
            fute = Fute(prompt_set=prompt_set or PromptSet(Path("-"), "-", []), spec=spec, scorer=scorer, scoring=req.scoring,
                        options=req.fute, store=store, seed=req.seed, data_dir=req.data_dir, progress=progress)
            for embedder in instances:
                fute.dte(embedder)
                if not dte_only:
                    fute.mtes(embedder)
            records += fute.records
            reports.append(fute.report() if not dte_only else {"surrogate": fute.surrogate.describe()})
    finally:
        if backend is not None:
            backend.close()
    return {
        "schema_version": SCHEMA_VERSION,
        "store": str(store.root),
        "embeddings": records,
        "unlabeled": reports[0]["unlabeled"] if reports and not dte_only else None,
        "surrogate": reports[0]["surrogate"] if reports else None,
        "backend": None if backend is None else {"name": backend.backend_id, "model": backend.model_name, "fingerprint": backend.fingerprint},
    }
