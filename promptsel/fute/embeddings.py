"""FUTE (Wang et al. 2024): rank prompts by cosine(model task embedding, dataset task embedding).

* MTE_p: the LLM with prompt p labels the unlabeled corpus U (same backend, scorer and cache as
  the eval split), or a scores file holds those labels (:mod:`promptsel.fute.sources`); an
  embedder f turns {(x', ŷ_p(x'))} into a vector on the surrogate Θ_T.
* DTE: the same f on the dataset's labeled train split (a seeded sample of ``dte_size``, with a
  held-out slice of it for early stopping; the eval split is never touched).

Both are kept in the embedding store under content keys. An MTE's key covers the backend and
model fingerprint, the prompt's full definition, the scoring options, U's content, the target
fields and classes, the embedder and its options, the surrogate and the seed: not the dataset,
so a second dataset of the same task reuses every MTE and only computes its own DTE. An MTE
from saved labels (``--scores``) is keyed by those labels themselves, as there is no backend.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..embedder import Embedder, cosine
from ..errors import CapabilityError, DataError, UsageError
from ..model.data import Dataset, DatasetSpec, load_named
from ..plugins import registries
from ..selection.cache import make_key
from .options import FUTE_PREFIX, UNLABELED_EVAL, FuteOptions
from .store import EmbeddingStore
from .unlabeled import Corpus, load_corpus, task_exclusions

if TYPE_CHECKING:
    from ..model.progress import Progress
    from ..model.prompts import PromptSet
    from ..model.request import ScoringOptions
    from ..selection.scoring import Scorer
    from ..surrogate import Surrogate, TaskData

HELDOUT_FRACTION = 0.1


def check_dataset(spec: DatasetSpec | None) -> DatasetSpec:
    """FUTE's DTE needs a named dataset with a labeled train split."""
    if spec is None:
        raise CapabilityError(
            "FUTE needs the dataset's labeled train split for its dataset embedding; a local file has none.",
            hint="Register the dataset (register_datasets) or use a named dataset.",
        )
    if spec.train_split is None:
        raise CapabilityError(f"FUTE needs a labeled train split and dataset {spec.name!r} declares none.")
    return spec


def split_heldout(sample: Dataset, seed: int) -> tuple[Dataset, Dataset]:
    """(train, held-out): a stratified ``HELDOUT_FRACTION`` of ``sample`` (at least one row per
    class) held out for early stopping, the rest to train on."""
    n_held = max(len(sample.classes), round(HELDOUT_FRACTION * len(sample.examples)))
    held = sample.sample(n_held, seed + 1)
    held_ids = set(held.ids)
    keep = [i for i, x in enumerate(sample.ids) if x not in held_ids]
    return replace(sample, examples=[sample.examples[i] for i in keep], ids=[sample.ids[i] for i in keep]), held


def dte_task(sample: Dataset, seed: int) -> TaskData:
    """A DTE's training data: gold labels, with a stratified held-out slice of the sample."""
    from ..surrogate import TaskData

    train, held = split_heldout(sample, seed)
    heldout = TaskData("dte", held.inputs(), sample.fields, len(sample.classes), labels=held.labels)
    return TaskData("dte", train.inputs(), sample.fields, len(sample.classes), labels=train.labels, heldout=heldout)


def mte_task(inputs: list[dict[str, Any]], fields: Sequence[str], targets: np.ndarray, seed: int) -> TaskData:
    """An MTE's training data: the LLM's soft labels on U, with the same seeded
    ``HELDOUT_FRACTION`` of U held out for every prompt (early stopping, and the check that the
    MTE learned anything from the inputs)."""
    from ..surrogate import TaskData

    n = len(inputs)
    held = set(np.random.default_rng(seed + 1).choice(n, size=min(n - 1, max(1, round(HELDOUT_FRACTION * n))), replace=False).tolist())
    hold, rows = sorted(held), [i for i in range(n) if i not in held]
    heldout = TaskData("mte", [inputs[i] for i in hold], tuple(fields), targets.shape[1], targets=targets[hold])
    return TaskData("mte", [inputs[i] for i in rows], tuple(fields), targets.shape[1], targets=targets[rows], heldout=heldout)


def hardened(targets: np.ndarray) -> np.ndarray:
    """Each row one-hot at its most probable class (the first on a tie, as a score table's
    argmax): the prompt's decisions, which are what its accuracy counts, without its confidence."""
    targets = np.asarray(targets)
    return np.eye(targets.shape[-1], dtype=targets.dtype)[targets.argmax(axis=-1)]


def permuted_rows(targets: np.ndarray, seed: int) -> np.ndarray:
    """A prompt's targets on U shuffled across the texts (one seeded permutation for every
    prompt): its permutation null keeps the label mix and loses the link to the inputs."""
    return targets[np.random.default_rng(seed + 11).permutation(len(targets))]


def permuted_labels(sample: Dataset, seed: int) -> Dataset:
    """The sample with its gold labels shuffled across its texts (one seeded permutation): the
    DTE's permutation null keeps the class mix and loses the link to the texts."""
    labels = [ex["label"] for ex in sample.examples]
    order = np.random.default_rng(seed + 13).permutation(len(labels))
    return replace(sample, examples=[{**ex, "label": labels[j]} for ex, j in zip(sample.examples, order)])


def null_similarity(mte: np.ndarray, null: np.ndarray, dte: np.ndarray) -> float:
    """cos(MTE, DTE) − cos(MTE_null, DTE): what the prompt's labels carry about the task beyond
    what any MTE with its label mix shares with the DTE (the seeded start, batch order, dropout,
    the class prior), measured on the ladder (bench/RESULTS.md, "FUTE's premise as a ladder")."""
    return cosine(mte, dte) - cosine(null, dte)


def null_both_similarity(mte: np.ndarray, null: np.ndarray, dte: np.ndarray, dte_null: np.ndarray) -> float:
    """cos(MTE − MTE_null, DTE − DTE_null): each side as what its labels' link to its texts
    changed, beyond what an embedding of the same label mix on the same texts learns anyway.
    The one comparison that passed the premise ladder's checks on the head's change
    (bench/RESULTS.md, "the head's change")."""
    f64 = np.float64
    return cosine(np.asarray(mte, f64) - np.asarray(null, f64), np.asarray(dte, f64) - np.asarray(dte_null, f64))


#: What the report keeps of an embedder's training record for its diagnostics.
DIAGNOSIS_KEYS = ("epochs", "stopped_early", "kept_epoch", "heldout", "chance", "gain", "gain_low", "gain_high",
                  "max_gain", "learned", "movement")


def diagnosis(trained: Mapping[str, Any]) -> dict[str, Any]:
    """The diagnostic fields of one embedding's training record (``None`` where the embedder did
    not measure one: a plugin's embedder, or an embedding stored before they were recorded)."""
    return {k: trained.get(k) for k in DIAGNOSIS_KEYS}


def check_backend(name: str) -> None:
    """FUTE labels U with the backend's label log-probs; fail before any model runs without them."""
    from ..backend import CONTINUATION_LOGPROBS

    if CONTINUATION_LOGPROBS not in registries().backends.get(name).capabilities:
        raise CapabilityError(f"FUTE needs label log-probs on the unlabeled corpus; backend {name!r} has none.")


class Fute:
    """One FUTE run for a prompt set and a dataset: MTEs and the DTE through the store."""

    def __init__(self, *, prompt_set: PromptSet | None, spec: DatasetSpec, scorer: Scorer | None, scoring: ScoringOptions,
                 options: FuteOptions, store: EmbeddingStore, seed: int = 0, data_dir: str | None = None,
                 progress: Progress | None = None, corpus: Corpus | None = None, u_targets: np.ndarray | None = None,
                 prompt_ids: Sequence[str] | None = None, dte_from: str | None = None) -> None:
        """``corpus`` and ``u_targets`` [P, |U|, C]: a U given, and its labels when they were
        saved (no backend then; ``prompt_ids`` name the prompts without a prompt file).
        ``dte_from``: how the DTE's dataset was chosen, for the report."""
        from ..model.progress import Progress

        if prompt_set is None and prompt_ids is None:
            raise ValueError("Fute needs a prompt set or the prompts' ids.")
        self.prompt_set = prompt_set
        self.prompt_ids = list(prompt_ids) if prompt_ids is not None else [p.id for p in prompt_set.prompts]  # type: ignore[union-attr]
        self.dte_from = dte_from
        self.spec = check_dataset(spec)
        self.scorer = scorer
        self.scoring = scoring
        self.options = options
        self.store = store
        self.seed = seed
        self.data_dir = data_dir
        self.progress = progress or Progress()
        self.records: list[dict[str, Any]] = []
        self.timings: dict[str, float] = {}
        self._corpus: Corpus | None = corpus
        self._surrogate: Surrogate | None = None
        self._u_targets: np.ndarray | None = u_targets
        #: [P, |U|, C] log-probs, when this run had the LLM label U (``--save-scores`` writes them).
        self.u_logprobs: np.ndarray | None = None
        self.saved = u_targets is not None and scorer is None

    # -- inputs ---------------------------------------------------------------------------
    @property
    def corpus(self) -> Corpus:
        if self._corpus is None:
            if self.options.unlabeled == UNLABELED_EVAL:
                raise UsageError("--unlabeled eval takes the evaluation inputs as U: it applies to select and lock.")
            t = time.perf_counter()
            exclude = set(task_exclusions(self.spec.task)) | set(self.options.unlabeled_exclude)
            self._corpus = load_corpus(self.options.unlabeled, size=self.options.unlabeled_size, seed=self.seed,
                                       data_dir=self.data_dir, exclude=exclude)
            self.timings["unlabeled"] = time.perf_counter() - t
        return self._corpus

    @property
    def surrogate(self) -> Surrogate:
        if self._surrogate is None:
            from ..surrogate import DEFAULT_SURROGATE, Surrogate

            self._surrogate = Surrogate(self.options.surrogate or DEFAULT_SURROGATE, max_length=self.options.max_length)
        return self._surrogate

    def mte_key(self, prompt_index: int, embedder: Embedder, null: bool = False) -> str:
        if self.saved:
            return self._saved_mte_key(prompt_index, embedder, null)
        if self.scorer is None or self.prompt_set is None:
            raise CapabilityError("FUTE needs a backend to label the unlabeled corpus, or a scores file that holds its labels.")
        prompt = self.prompt_set.prompts[prompt_index]
        return make_key("mte", {"backend": self.scorer.backend.cache_identity()}, {
            "prompt": prompt.template_sha256,
            "scoring": self.scoring.label_identity(),
            "unlabeled": self.corpus.fingerprint,
            "fields": list(self.spec.fields),
            "classes": list(self.spec.classes),
            "embedder": embedder.identity(),
            "surrogate": self.surrogate.identity(),
            "seed": self.seed,
            **({"null": "permuted targets"} if null else {}), **self._targets_key(),
        })

    def _targets_key(self) -> dict[str, str]:
        # Only when set, so the embeddings stored before the option stay valid.
        return {"mte_targets": self.options.mte_targets} if self.options.mte_targets != "soft" else {}

    def _saved_mte_key(self, prompt_index: int, embedder: Embedder, null: bool = False) -> str:
        """No backend and maybe no prompt file: the saved labels themselves stand for the model,
        the prompt and the scoring that made them."""
        assert self._u_targets is not None
        labels = hashlib.sha256(np.ascontiguousarray(self._u_targets[prompt_index], dtype=np.float64).tobytes()).hexdigest()
        return make_key("mte", {"labels": "saved"}, {
            "targets": labels, "unlabeled": self.corpus.fingerprint, "fields": list(self.spec.fields),
            "classes": list(self.spec.classes), "embedder": embedder.identity(), "surrogate": self.surrogate.identity(),
            "seed": self.seed, **({"null": "permuted targets"} if null else {}), **self._targets_key(),
        })

    def train_sample(self) -> Dataset:
        """A seeded, stratified sample of the train split (its held-out slice: :func:`dte_task`)."""
        assert self.spec.train_split is not None
        full = load_named(self.spec, self.spec.train_split, self.data_dir)
        if not full.has_labels:
            raise DataError(f"The {self.spec.train_split!r} split of {self.spec.name!r} has no labels; FUTE's dataset embedding needs them.")
        return full.sample(self.options.dte_size, self.seed)

    def dte_key(self, sample: Dataset, embedder: Embedder, null: bool = False) -> str:
        content = hashlib.sha256(json.dumps(sample.examples, sort_keys=True).encode()).hexdigest()
        return make_key("dte", {"dataset": self.spec.name}, {
            "split": sample.split, "content": content, "fields": list(self.spec.fields),
            "classes": list(self.spec.classes), "embedder": embedder.identity(),
            "surrogate": self.surrogate.identity(), "seed": self.seed,
            **({"null": "permuted labels"} if null else {}),
        })

    # -- the run --------------------------------------------------------------------------
    def score(self, embedder: Embedder) -> np.ndarray:
        """cosine(MTE_p, DTE) for every prompt, less its permutation null's where the embedder
        compares to one (:func:`null_similarity`)."""
        dte = self.dte(embedder)
        mtes = self.mtes(embedder)
        if not embedder.compares_to_null():
            return np.array(embedder.similarities(mtes, dte), dtype=np.float64)
        nulls = self.mtes(embedder, null=True)
        if embedder.compares_to_dte_null():
            dte_null = self.dte(embedder, null=True)
            return np.array([null_both_similarity(m, n, dte, dte_null) for m, n in zip(mtes, nulls)])
        return np.array([null_similarity(m, n, dte) for m, n in zip(mtes, nulls)])

    def mtes(self, embedder: Embedder, null: bool = False) -> list[np.ndarray]:
        """Every prompt's MTE, or with ``null`` its permutation null (:func:`permuted_rows`),
        stored under its own key."""
        kind = "mte-null" if null else "mte"
        ids = self.prompt_ids
        keys = [self.mte_key(i, embedder, null) for i in range(len(ids))]
        vectors: dict[str, np.ndarray] = {}
        trained: dict[str, Mapping[str, Any]] = {}
        for k in dict.fromkeys(keys):
            found = self.store.get(k)
            if found is not None:
                vectors[k], trained[k] = found.vector, found.meta.get("train") or {}
        # Prompts with the same definition (the paper's set has two) share one key: train once.
        missing = [i for i, k in enumerate(keys) if k not in vectors and keys.index(k) == i]
        if missing:
            targets = self.u_targets()
            if self.options.mte_targets == "hard":
                targets = hardened(targets)
            inputs = self.corpus.inputs(self.spec.fields)
            what = "permutation nulls of model task embeddings" if null else "model task embeddings"
            self.progress.start(f"Training {len(missing)} {what} ({embedder.embedder_id})", len(missing))
            try:
                for i in missing:
                    data = mte_task(inputs, self.spec.fields, permuted_rows(targets[i], self.seed) if null else targets[i], self.seed)
                    vectors[keys[i]], trained[keys[i]] = self._compute(kind, embedder, keys[i], data, prompt=ids[i])
                    self.progress.advance()
            finally:
                self.progress.done()
        for i, k in enumerate(keys):
            if i not in missing:
                self._record(kind, embedder, k, "reused", 0.0, trained.get(k, {}), prompt=ids[i])
        return [vectors[k] for k in keys]

    def dte(self, embedder: Embedder, null: bool = False) -> np.ndarray:
        """The DTE, or with ``null`` its permutation null: the same sample with its gold labels
        shuffled across its texts (:func:`permuted_labels`), stored under its own key."""
        t = time.perf_counter()
        sample = self.train_sample()
        self.timings["load_train"] = self.timings.get("load_train", 0.0) + time.perf_counter() - t
        key = self.dte_key(sample, embedder, null)
        kind = "dte-null" if null else "dte"
        found = self.store.get(key)
        if found is not None:
            self._record(kind, embedder, key, "reused", 0.0, found.meta.get("train") or {}, dataset=self.spec.name)
            return found.vector
        data = dte_task(permuted_labels(sample, self.seed) if null else sample, self.seed)
        assert data.heldout is not None
        what = "permutation null of the dataset task embedding" if null else "dataset task embedding"
        self.progress.start(f"Training the {what} of {self.spec.name} ({embedder.embedder_id})", 1)
        try:
            return self._compute(kind, embedder, key, data, dataset=self.spec.name, split=sample.split,
                                 n_train=len(data), n_heldout=len(data.heldout))[0]
        finally:
            self.progress.advance()
            self.progress.done()

    def u_targets(self) -> np.ndarray:
        """[P, |U|, C] soft class distributions of every prompt on U (through the cache)."""
        if self._u_targets is None:
            from ..selection.scoring import build_score_table

            assert self.scorer is not None and self.prompt_set is not None
            inputs = self.corpus.inputs(self.spec.fields)
            u = Dataset(
                name="unlabeled", split="U", fields=self.spec.fields, classes=self.spec.classes,
                examples=inputs, ids=[f"u{i}" for i in range(len(inputs))], source=self.corpus.origin, task=self.spec.task,
            )
            t = time.perf_counter()
            table = build_score_table(self.prompt_set, u, self.scorer, self.scoring, need_nll=False)
            self.timings["unlabeled_scoring"] = time.perf_counter() - t
            self._u_targets, self.u_logprobs = table.probs, table.class_logprobs
        return self._u_targets

    def _compute(self, kind: str, embedder: Embedder, key: str, data: TaskData, **meta: Any) -> tuple[np.ndarray, dict[str, Any]]:
        t = time.perf_counter()
        vector, info = embedder.embed(self.surrogate, data, self.seed)
        seconds = time.perf_counter() - t
        vector = np.asarray(vector, dtype=np.float32)
        if vector.ndim != 1 or not np.all(np.isfinite(vector)):
            raise UsageError(f"Embedder {embedder.embedder_id!r} returned a {vector.shape} vector with non-finite values (a plugin bug).")
        backend = self.scorer.backend if self.scorer is not None else None
        self.store.put(key, vector, {
            "kind": kind, "embedder": embedder.embedder_id, "surrogate": self.surrogate.name, "task": self.spec.task,
            "model": backend.model_name if not kind.startswith("dte") and backend is not None else None,
            "backend": backend.backend_id if not kind.startswith("dte") and backend is not None else None,
            "prompt_set": self.prompt_set.name if not kind.startswith("dte") and self.prompt_set is not None else None,
            "seconds": round(seconds, 3), "created": time.time(), "dim": int(vector.size), "n": len(data),
            "train": info, **meta,
        })
        self._record(kind, embedder, key, "computed", seconds, info, **meta)
        return vector, info

    def _record(self, kind: str, embedder: Embedder, key: str, status: str, seconds: float,
                trained: Mapping[str, Any], **meta: Any) -> None:
        entry = {"kind": kind, "embedder": embedder.embedder_id, "prompt": meta.get("prompt"),
                 "dataset": meta.get("dataset"), "key": key, "status": status, "seconds": round(seconds, 3),
                 "training": diagnosis(trained)}
        self.records.append(entry)

    def diagnostics(self) -> dict[str, Any]:
        """Per FUTE method, how each embedding trained: ``{"fute-tupate": {"dte": {...}, "mte":
        {prompt id: {...}}}}`` with epochs, early stop, held-out loss against the constant
        predictor's (``learned``) and movement from the start. A ranking built on an embedding
        that did not learn is noise; the recommendation warns about it."""
        out: dict[str, Any] = {}
        for entry in self.records:
            method = out.setdefault(FUTE_PREFIX + entry["embedder"], {"dte": None, "mte": {}})
            if entry["kind"] == "dte":
                method["dte"] = entry["training"]
            elif entry["kind"] == "mte":
                method["mte"][entry["prompt"]] = entry["training"]
            # A permutation null is not meant to learn anything: its diagnosis stays in
            # ``embeddings`` and never raises ``fute_not_learned``.
        return out

    def report(self) -> dict[str, Any]:
        return {
            "unlabeled": self.corpus.describe(),
            "surrogate": self.surrogate.describe(),
            "dte_size": self.options.dte_size,
            # What the MTEs learned from U's labels: the class probabilities or the decisions.
            "mte_targets": self.options.mte_targets,
            # Where U's labels and the DTE came from (--scores: saved predictions, no LLM ran).
            "labels": "saved" if self.saved else "llm",
            "dte": {"dataset": self.spec.name, "split": self.spec.train_split, "from": self.dte_from},
            "embeddings": self.records,
            "diagnostics": self.diagnostics(),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
