"""A run's inputs, resolved once: the prompt set, the dataset sample, the methods and the backend.

:class:`Inputs` is what ``select``, ``lock``, ``check`` and ``embed`` all start from. Opening it
does the checks that need no model first (the prompt file, the dataset's fields and classes,
every method's needs, options and prerequisites), then loads the data, then starts the backend,
which it owns: leaving the ``with`` block closes it, whatever happened inside.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..backend import CONTINUATION_LOGPROBS, GENERATE, SEQUENCE_LOGPROBS, Backend
from ..errors import BackendError, CapabilityError, PromptselError, UsageError
from ..model.data import LOCAL_SUFFIXES, Dataset, DatasetSpec, load_local, load_named
from ..model.progress import Progress
from ..model.prompts import PromptSet, load_prompt_set
from ..model.request import SelectRequest
from ..model.scoretable import ScoreTable
from ..plugins import get_selector, registries
from ..selector import NEEDS_CLASS_LOGPROBS, NEEDS_PROMPT_NLL, NEEDS_UNLABELED_LOGPROBS, Selector
from .cache import Cache
from .scoring import Scorer

#: ScoreTable array -> the backend capability that computes it (U's log-probs: on demand).
TABLE_SOURCES = {NEEDS_CLASS_LOGPROBS: CONTINUATION_LOGPROBS, NEEDS_PROMPT_NLL: SEQUENCE_LOGPROBS,
                 NEEDS_UNLABELED_LOGPROBS: CONTINUATION_LOGPROBS}


def resolve_dataset_spec(name: str) -> DatasetSpec | None:
    """The registered spec for a name, ``None`` for a local file path."""
    regs = registries()
    if name in regs.datasets:
        return regs.datasets.get(name)
    if Path(name).suffix.lower() in LOCAL_SUFFIXES:
        return None
    raise UsageError(regs.datasets.unknown_message(name) + f" A local {'/'.join(LOCAL_SUFFIXES)} file works too.")


def refuse_inapplicable(spec: DatasetSpec | None, dataset: str, *, fields: Mapping[str, str] | None = None,
                        label_field: str = "label", classes: Sequence[str] | None = None, split: str | None = None) -> None:
    """Options that do not apply to this kind of dataset are an error, never silently ignored:
    a named dataset has its own fields and classes; a local file has no splits."""
    if spec is not None:
        local_only = [opt for opt, given in (("--field", fields), ("--label-field", label_field != "label"),
                                             ("--classes", classes)) if given]
        if local_only:
            raise UsageError(f"{local_only[0]} applies to local data files; {spec.name!r} is a named dataset with its own "
                             f"fields ({', '.join(spec.fields)}) and classes ({', '.join(spec.classes)}).")
    elif split is not None:
        raise UsageError(f"--split applies to named datasets; {dataset} is a local file (the whole file is used).")


def load_dataset(req: SelectRequest, spec: DatasetSpec | None) -> Dataset:
    """The evaluation sample: the split (or local file), sampled and truncated as asked."""
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
    """``all`` stands for every registered method, also those outside the default set."""
    if requested is None or "all" not in requested:
        return requested
    out: list[str] = []
    for name in requested:
        out += [e.name for e in registries().selectors] if name == "all" else [name]
    return list(dict.fromkeys(out))


def table_needs(caps: set[str] | frozenset[str]) -> set[str]:
    """The capabilities plus the ScoreTable arrays they compute (the table itself is built from
    label log-probs, so without those there is none)."""
    available = set(caps)
    if CONTINUATION_LOGPROBS in caps:
        available |= {need for need, cap in TABLE_SOURCES.items() if cap in caps}
    return available


class Inputs:
    """A request's inputs, resolved once. Use as a context manager: it owns the backend.

    ``Inputs(request)`` runs every check that needs no model and loads the data; ``open()``
    (or entering the ``with`` block) starts the backend, asks it what it really can do, and
    settles the methods. With ``--scores`` there is no dataset and no backend: the table is
    read from the file.
    """

    def __init__(self, request: SelectRequest, progress: Progress | None = None, *, backend: bool = True,
                 dataset: bool = True) -> None:
        from .adaptive_report import refuse

        refuse(request)  # options --adaptive cannot honour, before anything loads
        self.request = request
        self.progress = progress or Progress()
        self.timings: dict[str, float] = {}
        self.backend: Backend | None = None
        self.scorer: Scorer | None = None
        self.spec: DatasetSpec | None = None
        self.dataset: Dataset | None = None
        self.table: ScoreTable | None = None
        self.runtime_capabilities: frozenset[str] | None = None
        self._want_backend = backend and request.scores is None
        self.prompt_set: PromptSet | None = load_prompt_set(request.prompts) if request.prompts else None
        self.requested = expand_methods(request.methods)
        self._check_calibration()
        if request.scores is not None:
            self._from_scores(unscored=request.adaptive)
            self.rule = self._check_rule()
            return
        if dataset:
            if self.prompt_set is None or request.dataset is None:
                raise UsageError("select needs --dataset and --prompts (or --scores FILE.npz).")
            self.spec = resolve_dataset_spec(request.dataset)
            refuse_inapplicable(self.spec, request.dataset, fields=request.fields, label_field=request.label_field,
                                classes=request.classes, split=request.split)
            if self.spec is not None:  # check the prompts against the dataset before anything heavy
                self.prompt_set.check_dataset(self.spec.fields, self.spec.classes, self.spec.name)
        self.capabilities = frozenset(registries().backends.get(request.backend).capabilities)
        self.methods = self._choose(table_needs(self.capabilities))
        self.rule = self._check_rule()
        if self.prompt_set is not None and any(p.cot for p in self.prompt_set.prompts) and GENERATE not in self.capabilities:
            raise CapabilityError(f"The prompt set has CoT prompts but backend {request.backend!r} cannot generate.")
        if dataset:
            started = time.perf_counter()
            self.dataset = load_dataset(request, self.spec)
            if self.spec is None:
                self.prompt_set.check_dataset(self.dataset.fields, self.dataset.classes, self.dataset.name)
            if request.adaptive and self.dataset.labels is None:
                raise UsageError(f"--adaptive needs labels: {self.dataset.name} has none.",
                                 hint="Leave out --adaptive for a label-free selection.")
            self.timings["load_data"] = time.perf_counter() - started

    # --- methods ---------------------------------------------------------------------------
    def _choose(self, available: set[str]) -> list[str]:
        """The requested methods (the default set without a request), each checked against
        what this run has, its own prerequisites and its options."""
        regs = registries()
        unknown_options = set(self.request.method_options)
        if self.requested is None:
            names = [e.name for e in regs.selectors if e.target.default and e.target.needs <= available]
        else:
            entries = [regs.selectors.entry(name) for name in self.requested]
            for entry in entries:  # each method's own reasons first: they say most
                entry.target.preflight(self)
            names = []
            for entry in entries:
                missing = entry.target.needs - available
                if missing:
                    raise CapabilityError(
                        f"Method {entry.name!r} needs {', '.join(sorted(missing))}, which this run cannot provide.",
                        hint="Use a backend that has it, or leave the method out of --methods.",
                    )
                names.append(entry.name)
            # Methods of the default set first, the opt-in ones (FUTE) after, each in the order asked.
            names = sorted(dict.fromkeys(names), key=lambda n: not regs.selectors.get(n).default)
        for name in names:  # bad options fail now, before any model runs
            self.selector(name)
            unknown_options.discard(name)
            unknown_options -= set(regs.selectors.entry(name).aliases)
        if unknown_options:
            raise UsageError(f"--method-arg sets options of {', '.join(sorted(unknown_options))}, which this run does not use.",
                             hint=f"Methods of this run: {', '.join(names) or 'none'}.")
        return names

    def _check_calibration(self) -> None:
        from .calibration import REFERENCES

        kind = self.request.calibrate  # one of the request's choices: it checked that when it was made
        if REFERENCES[kind] and self.request.scores is not None:
            raise UsageError(f"--calibrate {kind} scores content-free inputs through the model; a scores file has no model.",
                             hint="Use --calibrate cbm (it needs only the scores) or none.")

    def _check_rule(self) -> str:
        """The label-free rule of the recommendation: a registered method that this run has, or
        can rerun from the table alone."""
        from .recommend import default_rule, stability_reason

        rule = self.request.recommend or default_rule(self.request.calibrate)
        entry = registries().selectors.entry(rule)
        beyond = set(entry.target.needs) - {NEEDS_CLASS_LOGPROBS, NEEDS_PROMPT_NLL}
        if entry.name not in self.methods and self.request.scores is not None and beyond:
            # Adding it to --methods would fail the same way: say what it lacks and what works.
            raise UsageError(f"--recommend {entry.name} asks the model ({', '.join(sorted(beyond))}), and a scores file has none.",
                             hint=f"Leave --recommend out (the default, {default_rule(self.request.calibrate)}, reads the scores) "
                                  f"or name a method of this run: {', '.join(self.methods)}.")
        if entry.name not in self.methods and stability_reason(entry.name) is not None:
            raise UsageError(f"--recommend {entry.name} needs its scores from this run, and it is not among its methods.",
                             hint=f"Add it: --methods {','.join([*self.methods, entry.name])}.")
        return entry.name

    def selector(self, name: str) -> Selector:
        """A fresh instance of method ``name`` with the options the request gives it."""
        entry = registries().selectors.entry(name)
        options = {**self.request.method_options.get(entry.name, {}),
                   **{k: v for alias in entry.aliases for k, v in self.request.method_options.get(alias, {}).items()}}
        return entry.target(**options)

    @property
    def needs_prompt_nll(self) -> bool:
        """SPELL's pass over the templates is only paid for when a chosen method reads it."""
        return any(NEEDS_PROMPT_NLL in get_selector(m).needs for m in self.methods)

    # --- --scores ------------------------------------------------------------------------
    def _from_scores(self, *, unscored: bool = False) -> None:
        req = self.request
        assert req.scores is not None
        self.table = ScoreTable.load(req.scores, prompt_ids=self.prompt_set.ids if self.prompt_set else None, unscored=unscored)
        if req.adaptive and self.table.labels is None:
            raise UsageError(f"--adaptive needs labels: {req.scores} has none.", hint="Leave out --adaptive for a label-free selection.")
        if self.prompt_set is not None and len(self.prompt_set.prompts) != self.table.n_prompts:
            raise UsageError(f"{req.prompts} has {len(self.prompt_set.prompts)} prompts but {req.scores} scores {self.table.n_prompts}.")
        self.capabilities = frozenset()
        available = {NEEDS_CLASS_LOGPROBS} | ({NEEDS_PROMPT_NLL} if self.table.prompt_nll is not None else set())
        if self.table.unlabeled is not None:
            available.add(NEEDS_UNLABELED_LOGPROBS)
        self.methods = self._choose(available)

    # --- the backend -----------------------------------------------------------------------
    def open(self) -> Inputs:
        """Start the backend and settle the methods on what it really gives."""
        if not self._want_backend or self.backend is not None:
            return self
        req = self.request
        started = time.perf_counter()
        self.backend = make_backend(req.backend, req.model, req.backend_args)
        try:  # a server may give less than its class promises: ask before the long run
            runtime = frozenset(self.backend.runtime_capabilities())
            self.runtime_capabilities = runtime
            if runtime != self.capabilities:
                try:
                    self.methods = self._choose(table_needs(runtime))
                except CapabilityError as exc:
                    lost = ", ".join(sorted(self.capabilities - runtime))
                    raise CapabilityError(
                        f"{exc.message.rstrip('.')}: backend {req.backend!r} cannot give {lost} with this model or server.",
                        hint=f"See why with: promptsel validate --backend {req.backend} (same --model and -M); or leave the method out of --methods.",
                    ) from None
        except BaseException:
            self.close()
            raise
        self.timings["load_backend"] = time.perf_counter() - started
        self.scorer = Scorer(self.backend, Cache(enabled=req.cache), progress=self.progress)
        return self

    def close(self) -> None:
        """Close the backend and the result cache (its SQLite connection: left to the garbage
        collector, it would keep serving pages from its write-ahead log after the file changed)."""
        if self.scorer is not None:
            self.scorer.cache.close()
        if self.backend is not None:
            backend, self.backend = self.backend, None
            backend.close()

    def __enter__(self) -> Inputs:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what the run is -------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """The model and the evaluation sample this run scores (what a lock must match)."""
        assert self.backend is not None and self.dataset is not None
        return {"backend": {"fingerprint": self.backend.fingerprint, "model": self.backend.model_name},
                "dataset": {"sample_sha256": self.dataset.content_sha256(), **self.dataset.describe_source()}}

