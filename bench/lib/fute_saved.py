"""FUTE from saved predictions: the MTE targets are log-probs an LLM already gave on U (a
``--scores`` file's ``unlabeled_logprobs``), not a backend's; the DTE comes from a named
dataset's train split as in ``select``.

A stand-in until ``select --scores`` reads the U arrays itself (issue 20, item 1): it reuses the
library's :class:`~promptsel.fute.embeddings.Fute` whole (the embedding store, training, the DTE,
the diagnostics) and replaces only the three things a backend provides: U, its labels by every
prompt, and the MTE key (which hashes the saved targets instead of a backend and a template).
Swapping it for ``select --scores FILE --dte-dataset sst2 --methods fute-tupate`` changes no
number a fresh store would compute, but not the store keys.
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

import numpy as np

from promptsel.fute.embeddings import Fute
from promptsel.fute.options import FuteOptions
from promptsel.fute.store import EmbeddingStore
from promptsel.fute.unlabeled import Corpus
from promptsel.selection.cache import make_key
from promptsel.selection.inputs import resolve_dataset_spec


class SavedPredictionsFute(Fute):
    def __init__(self, *, texts: list[str], logprobs: np.ndarray, prompt_ids: list[str], dataset: str,
                 data_dir: str, options: FuteOptions, seed: int, store: EmbeddingStore | None = None,
                 source: str = "saved") -> None:
        from promptsel.model.scoretable import ScoreTable

        spec = resolve_dataset_spec(dataset)
        # Only the ids of the prompts are read when the MTE key is not the template's.
        prompt_set: Any = SimpleNamespace(name="saved", prompts=[SimpleNamespace(id=p) for p in prompt_ids])
        super().__init__(prompt_set=prompt_set, spec=spec, scorer=None, scoring=None, options=options,  # type: ignore[arg-type]
                         store=store or EmbeddingStore(), seed=seed, data_dir=data_dir)
        # Normalised over the classes as a score table's rows are (and as u_targets returns them).
        table = ScoreTable(prompt_ids=list(prompt_ids), class_names=list(spec.classes), class_logprobs=logprobs)
        self._u_targets = table.probs
        self._corpus = Corpus(name=source, origin=f"saved predictions ({source})",
                              rows=tuple({"text": t, "text_b": "", "source": source} for t in texts))

    def mte_key(self, prompt_index: int, embedder: Any) -> str:
        targets = np.ascontiguousarray(self._u_targets[prompt_index], dtype=np.float64)
        return make_key("mte", {"backend": "saved-predictions"}, {
            "targets": hashlib.sha256(targets.tobytes()).hexdigest(),
            "unlabeled": self.corpus.fingerprint,
            "fields": list(self.spec.fields),
            "classes": list(self.spec.classes),
            "embedder": embedder.identity(),
            "surrogate": self.surrogate.identity(),
            "seed": self.seed,
        })


def fute_scores(embedder_id: str, arrays: dict[str, np.ndarray], *, dataset: str, data_dir: str, seed: int,
                embedder_options: dict[str, Any] | None = None, dte_size: int = FuteOptions().dte_size,
                store: EmbeddingStore | None = None, progress: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
    """cosine(MTE_p, DTE) for every prompt of a ``--scores`` file's U arrays, and FUTE's report
    section (embeddings with their status and seconds, diagnostics)."""
    from promptsel.plugins import registries

    cls = registries().embedders.get(embedder_id)
    options = FuteOptions(embedder_options={embedder_id: dict(embedder_options or {})}, dte_size=dte_size)
    fute = SavedPredictionsFute(texts=[str(t) for t in arrays["unlabeled_text"]], logprobs=arrays["unlabeled_logprobs"],
                                prompt_ids=[str(p) for p in arrays["prompt_ids"]], dataset=dataset, data_dir=data_dir,
                                options=options, seed=seed, store=store)
    if progress is not None:
        fute.progress = progress
    embedder = cls(**options.embedder_options_for(cls))
    scores = fute.score(embedder)
    return scores, {"embeddings": fute.records, "diagnostics": fute.diagnostics(), "surrogate": fute.surrogate.describe()}
