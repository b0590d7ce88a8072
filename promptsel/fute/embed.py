"""``promptsel embed``: compute (or find) FUTE's task embeddings ahead of ``select``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..model.progress import Progress
from ..model.prompts import PromptSet
from ..model.request import SelectRequest
from ..plugins import registries
from ..selection.inputs import Inputs, resolve_dataset_spec
from ..selection.report import SCHEMA_VERSION
from .embeddings import Fute, check_backend, check_dataset
from .method import check_training_installed
from .options import FuteOptions
from .store import EmbeddingStore


def run_embed(req: SelectRequest, datasets: list[str], embedders: list[str] | None = None, *,
              dte_only: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """The MTEs of every prompt (unless ``dte_only``) and the DTE of every dataset, per embedder."""
    regs = registries()
    classes = [regs.embedders.get(name) for name in embedders] if embedders else [e.target for e in regs.embedders]
    options = req.group(FuteOptions)
    instances = [cls(**options.embedder_options_for(cls)) for cls in classes]
    inputs = Inputs(req, progress, backend=not dte_only, dataset=False)
    if inputs.prompt_set is None and not dte_only:
        raise UsageError("embed needs --prompts for the model task embeddings (or --dte-only).")
    specs = []
    for name in datasets:
        spec = check_dataset(resolve_dataset_spec(name))
        if inputs.prompt_set is not None:
            inputs.prompt_set.check_dataset(spec.fields, spec.classes, spec.name)
        specs.append(spec)
    check_training_installed("embed")
    if not dte_only:
        check_backend(req.backend)
    store = EmbeddingStore()
    records: list[dict[str, Any]] = []
    reports = []
    with inputs:
        for spec in specs:
            fute = Fute(prompt_set=inputs.prompt_set or PromptSet(Path("-"), "-", []), spec=spec, scorer=inputs.scorer,
                        scoring=req.scoring, options=options, store=store, seed=req.seed, data_dir=req.data_dir,
                        progress=inputs.progress)
            for embedder in instances:
                fute.dte(embedder)
                if embedder.compares_to_dte_null():
                    fute.dte(embedder, null=True)
                if not dte_only:
                    fute.mtes(embedder)
                    if embedder.compares_to_null():
                        fute.mtes(embedder, null=True)
            records += fute.records
            reports.append(fute.report() if not dte_only else {"surrogate": fute.surrogate.describe()})
        backend = inputs.backend
        backend_info = None if backend is None else {"name": backend.backend_id, "model": backend.model_name,
                                                     "fingerprint": backend.fingerprint}
    return {
        "schema_version": SCHEMA_VERSION,
        "store": str(store.root),
        "embeddings": records,
        "unlabeled": reports[0]["unlabeled"] if reports and not dte_only else None,
        "surrogate": reports[0]["surrogate"] if reports else None,
        "backend": backend_info,
    }
