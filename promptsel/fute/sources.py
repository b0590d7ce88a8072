"""Where a FUTE run's corpus U, U's labels and the DTE's dataset come from.

* U and its labels: live, the LLM labels a corpus (``pool``, ``builtin``, a file, or ``eval``:
  the evaluation inputs with their labels dropped); with ``--scores``, the scores file holds U's
  texts and every prompt's class log-probs on them (``ScoreTable.unlabeled``), and those saved
  predictions are the MTEs' targets exactly as the live ones would be.
* The DTE: the train split of ``--dte-dataset``, else of the evaluation dataset.

Everything here is checked before any model runs (:func:`check_sources`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import CapabilityError, UsageError
from ..model.data import Dataset, DatasetSpec
from ..model.scoretable import ScoreTable, UnlabeledScores
from ..selection.inputs import resolve_dataset_spec
from .embeddings import Fute, check_dataset
from .options import UNLABELED_EVAL as EVAL
from .options import FuteOptions
from .store import EmbeddingStore
from .unlabeled import Corpus

if TYPE_CHECKING:
    from ..selector import RunView

#: U's name in the report when it came from a scores file.
SCORES = "scores file"


def dte_spec(view: RunView, who: str = "FUTE") -> DatasetSpec:
    """The dataset whose labeled train split makes the DTE: ``--dte-dataset``, else the
    evaluation dataset (a scores file names none)."""
    name = view.request.group(FuteOptions).dte_dataset
    if name is None:
        if view.request.scores is not None:
            raise CapabilityError(f"{who} with --scores needs --dte-dataset NAME: the labeled dataset whose train split "
                                  "makes the dataset task embedding.", hint="For example: --dte-dataset sst2 --data-dir DIR.")
        if view.spec is None:
            raise CapabilityError(f"{who} needs a labeled train split for its dataset embedding; a local file has none.",
                                  hint="Name a registered dataset of the same task with --dte-dataset.")
        return check_dataset(view.spec)
    spec = resolve_dataset_spec(name)
    if spec is None:
        raise UsageError(f"--dte-dataset {name}: FUTE needs a named dataset with a train split, not a local file.",
                         hint="See promptsel list datasets.")
    return check_dataset(spec)


def check_sources(view: RunView, who: str) -> DatasetSpec:
    """Fail before any model runs when U or the DTE cannot be had; returns the DTE's dataset."""
    options = view.request.group(FuteOptions)
    if view.request.scores is not None:
        table = view.table
        assert table is not None  # --scores: Inputs read the file before checking the methods
        if options.unlabeled is not None:
            raise UsageError(f"--unlabeled {options.unlabeled} does not apply with --scores: U is the scores file's.")
        if table.unlabeled is None:  # said first: without U, naming the DTE's dataset would not help
            raise CapabilityError(
                f"{who} with --scores needs U in the scores file: add unlabeled_text [M] and unlabeled_logprobs [P, M, C] "
                "(each prompt's class log-probs on those texts).",
                hint="Or save a live FUTE run with --save-scores: it writes them.")
    spec = dte_spec(view, who)
    if view.request.scores is not None:
        assert table is not None and table.unlabeled is not None
        saved_inputs(table.unlabeled, spec, who)  # the texts fit the DTE's fields
        if list(table.class_names) != list(spec.classes):
            raise UsageError(f"{who}: the scores file's classes ({', '.join(table.class_names)}) are not {spec.name}'s "
                             f"({', '.join(spec.classes)}).",
                             hint=f"Save class_names in the file, in {spec.name}'s order, or pick another --dte-dataset.")
    elif options.dte_dataset is not None and view.prompt_set is not None:
        # The MTEs train on U rendered with the DTE dataset's fields: the prompts must fit them.
        view.prompt_set.check_dataset(spec.fields, spec.classes, spec.name)
    return spec


def saved_inputs(saved: UnlabeledScores, spec: DatasetSpec, who: str = "FUTE") -> list[dict[str, str]]:
    """U's prompt inputs from a scores file's texts: one field, or two with ``unlabeled_text_b``."""
    fields = spec.fields
    if len(fields) == 1:
        if saved.text_b is not None:
            raise UsageError(f"{who}: the scores file has unlabeled_text_b, but {spec.name} has one text field ({fields[0]}).",
                             hint="Drop unlabeled_text_b, or pick a --dte-dataset with two text fields.")
        return [{fields[0]: t} for t in saved.text]
    if len(fields) == 2:
        if saved.text_b is None:
            raise UsageError(f"{who}: {spec.name} has two text fields ({', '.join(fields)}); the scores file has no "
                             "unlabeled_text_b.", hint="Add unlabeled_text_b [M], the second segment of each pair.")
        return [{fields[0]: a, fields[1]: b} for a, b in zip(saved.text, saved.text_b)]
    raise UsageError(f"{who}: U's texts fit tasks with one or two text fields; {spec.name} has {len(fields)}.")


def subsample(m: int, size: int, seed: int) -> np.ndarray:
    """Rows kept of an ``m``-row U capped at ``size``: all of them, in order, when it fits (so a
    saved run replays exactly), else a seeded sample kept in U's order."""
    if m <= size:
        return np.arange(m)
    return np.sort(np.random.default_rng(seed).choice(m, size=size, replace=False))


def corpus_from_inputs(name: str, origin: str, inputs: Sequence[dict[str, str]], fields: Sequence[str]) -> Corpus:
    """A corpus whose rows give back exactly ``inputs`` through ``Corpus.inputs(fields)``."""
    second = fields[1] if len(fields) == 2 else None
    rows = tuple({"text": x[fields[0]], "text_b": x[second] if second else None, "source": name} for x in inputs)
    return Corpus(name=name, rows=rows, origin=origin)


def eval_corpus(dataset: Dataset, size: int, seed: int) -> Corpus:
    """``--unlabeled eval``: the evaluation inputs, their labels never read."""
    inputs = dataset.inputs()
    keep = subsample(len(inputs), size, seed)
    return corpus_from_inputs(EVAL, f"{dataset.source} (evaluation inputs, labels dropped)", [inputs[i] for i in keep],
                              dataset.fields)


def saved_unlabeled(table: ScoreTable, spec: DatasetSpec, size: int, seed: int, origin: str) -> tuple[Corpus, np.ndarray]:
    """``--scores``: U's corpus and every prompt's class distributions on it, [P, M, C]."""
    assert table.unlabeled is not None
    inputs = saved_inputs(table.unlabeled, spec)
    keep = subsample(len(inputs), size, seed)
    corpus = corpus_from_inputs(SCORES, origin, [inputs[i] for i in keep], spec.fields)
    return corpus, table.unlabeled.probs[:, keep]


def to_save(corpus: Corpus, fields: Sequence[str], logprobs: np.ndarray) -> UnlabeledScores:
    """What ``--save-scores`` writes of a live U: the inputs the LLM saw, and its log-probs."""
    inputs = corpus.inputs(fields)
    text_b = [x[fields[1]] for x in inputs] if len(fields) == 2 else None
    return UnlabeledScores(text=[x[fields[0]] for x in inputs], logprobs=logprobs, text_b=text_b)


def fute_for_run(view: RunView) -> Fute:
    """The run's :class:`Fute`, with U and the DTE's dataset from where the request says."""
    req = view.request
    options = req.group(FuteOptions)
    spec = dte_spec(view)
    common = {"spec": spec, "scoring": req.scoring, "options": options, "store": EmbeddingStore(enabled=req.cache),
              "seed": req.seed, "data_dir": req.data_dir, "progress": view.progress,
              "dte_from": "--dte-dataset" if options.dte_dataset is not None else "the evaluation dataset"}
    if req.scores is not None:
        table = view.table
        assert table is not None
        corpus, targets = saved_unlabeled(table, spec, options.unlabeled_size, req.seed, str(req.scores))
        return Fute(prompt_set=view.prompt_set, prompt_ids=table.prompt_ids, scorer=None, corpus=corpus, u_targets=targets,
                    **common)
    corpus = None
    if options.unlabeled == EVAL:
        assert view.dataset is not None
        corpus = eval_corpus(view.dataset, options.unlabeled_size, req.seed)
    return Fute(prompt_set=view.prompt_set, scorer=view.scorer, corpus=corpus, **common)  # type: ignore[arg-type]
