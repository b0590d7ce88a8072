"""FUTE from saved predictions: the MTE targets are log-probs a model already gave on U (a
``--scores`` file's ``unlabeled_logprobs``, or a classifier's p(positive)), not a backend's; the
DTE comes from a named dataset's train split as in ``select``.

This is the library's own saved-labels path (the one ``select --scores FILE --dte-dataset NAME``
takes: :class:`~promptsel.fute.embeddings.Fute` with ``u_targets`` and no scorer), so the
benchmarks train and key exactly the embeddings a user's run would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from promptsel.fute.embeddings import Fute
from promptsel.fute.options import FuteOptions
from promptsel.fute.sources import corpus_from_inputs
from promptsel.fute.store import EmbeddingStore
from promptsel.selection.inputs import resolve_dataset_spec


def saved_fute(*, texts: list[str], logprobs: np.ndarray, prompt_ids: list[str], dataset: str, data_dir: str,
               options: FuteOptions, seed: int, store: EmbeddingStore | None = None, source: str = "saved",
               kind: type[Fute] = Fute) -> Fute:
    """A :class:`Fute` whose U is ``texts`` labelled by ``logprobs`` [P, |U|, C] (normalised over
    the classes as a score table's rows are); ``kind`` a subclass that changes the DTE's sample."""
    from promptsel.model.scoretable import ScoreTable

    spec = resolve_dataset_spec(dataset)
    table = ScoreTable(prompt_ids=list(prompt_ids), class_names=list(spec.classes), class_logprobs=logprobs)
    corpus = corpus_from_inputs(source, f"saved predictions ({source})", [{spec.fields[0]: t} for t in texts], spec.fields)
    return kind(prompt_set=None, prompt_ids=prompt_ids, spec=spec, scorer=None, scoring=None,  # type: ignore[arg-type]
                options=options, store=store or EmbeddingStore(), seed=seed, data_dir=data_dir, corpus=corpus,
                u_targets=table.probs)


def fute_scores(embedder_id: str, arrays: dict[str, np.ndarray], *, dataset: str, data_dir: str, seed: int,
                embedder_options: dict[str, Any] | None = None, dte_size: int = FuteOptions().dte_size,
                store: EmbeddingStore | None = None, progress: Any = None,
                mte_targets: str = "soft") -> tuple[np.ndarray, dict[str, Any]]:
    """FUTE's score for every prompt of a ``--scores`` file's U arrays (as the embedder's options
    say to compare), and FUTE's report section (embeddings with their status and seconds,
    diagnostics)."""
    fute, embedder = _saved_pair(embedder_id, arrays, dataset=dataset, data_dir=data_dir, seed=seed,
                                 embedder_options=embedder_options, dte_size=dte_size, store=store, mte_targets=mte_targets)
    if progress is not None:
        fute.progress = progress
    scores = fute.score(embedder)
    return scores, {"embeddings": fute.records, "diagnostics": fute.diagnostics(), "surrogate": fute.surrogate.describe()}


def fill_store(embedder_id: str, arrays: dict[str, np.ndarray], *, dataset: str, data_dir: str, seed: int,
               with_dte: bool, embedder_options: dict[str, Any] | None = None, dte_size: int = FuteOptions().dte_size,
               mte_targets: str = "soft") -> int:
    """Train into the store what :func:`fute_scores` would read for these prompts (their MTEs and
    nulls; the DTE and its null ``with_dte``) without scoring: processes given disjoint prompts
    share one run's training, and the run over every prompt then finds it all stored (the keys are
    each prompt's own labels). Returns the number of embeddings trained."""
    fute, embedder = _saved_pair(embedder_id, arrays, dataset=dataset, data_dir=data_dir, seed=seed,
                                 embedder_options=embedder_options, dte_size=dte_size, store=None, mte_targets=mte_targets)
    if with_dte:
        fute.dte(embedder)
    fute.mtes(embedder)
    if embedder.compares_to_null():
        fute.mtes(embedder, null=True)
        if with_dte and embedder.compares_to_dte_null():
            fute.dte(embedder, null=True)
    return sum(r["status"] == "computed" for r in fute.records)


def _saved_pair(embedder_id: str, arrays: dict[str, np.ndarray], *, dataset: str, data_dir: str, seed: int,
                embedder_options: dict[str, Any] | None, dte_size: int, store: EmbeddingStore | None,
                mte_targets: str) -> tuple[Fute, Any]:
    from promptsel.plugins import registries

    cls = registries().embedders.get(embedder_id)
    options = FuteOptions(embedder_options={embedder_id: dict(embedder_options or {})}, dte_size=dte_size,
                          mte_targets=mte_targets)  # type: ignore[arg-type]
    fute = saved_fute(texts=[str(t) for t in arrays["unlabeled_text"]], logprobs=arrays["unlabeled_logprobs"],
                      prompt_ids=[str(p) for p in arrays["prompt_ids"]], dataset=dataset, data_dir=data_dir,
                      options=options, seed=seed, store=store)
    return fute, cls(**options.embedder_options_for(cls))
