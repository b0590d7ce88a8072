"""Datasets: named specs registered by plugins, their sources, local files and sampling.

A named dataset resolves its split through sources in order: a data directory in the canonical
layout ``<dir>/<name>/<split>.jsonl`` (``--data-dir`` / ``PROMPTSEL_DATA_DIR``), the Hugging Face
hub through ``datasets`` (online), and an offline source from a registry package where the
spec has one. Examples are plain dicts of the spec's fields plus ``label`` (a class name).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError, UsageError
from ..files import TABLE_SUFFIXES, read_jsonl_lines, read_table

if TYPE_CHECKING:
    import numpy as np

#: The files ``--dataset`` takes as a local dataset.
LOCAL_SUFFIXES = TABLE_SUFFIXES


@dataclass(frozen=True)
class HubSource:
    """Where a dataset lives on the Hugging Face hub and how its columns map to ours."""

    path: str
    config: str | None = None
    splits: Mapping[str, str] = field(default_factory=dict)  # our split -> hub split
    columns: Mapping[str, str] = field(default_factory=dict)  # our field -> hub column
    label_column: str = "label"
    #: Class name for each integer label; ``None`` when the hub stores names already.
    label_names: Sequence[str] | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: the fields templates may use, ordered classes, default splits, sources."""

    name: str
    task: str
    fields: tuple[str, ...]
    classes: tuple[str, ...]
    eval_split: str
    train_split: str | None = None
    description: str = ""
    hub: HubSource | None = None
    #: ``offline(split) -> list of examples`` or ``None`` for a split it does not have.
    offline: Callable[[str], list[dict[str, Any]] | None] | None = None
    offline_name: str = ""
    #: Other names it answers to (``--dataset rt``).
    aliases: tuple[str, ...] = ()
    #: Names of unlabeled-corpus sources that are (or are built from) this dataset: FUTE leaves
    #: them, and the overlaps of every dataset of the same task, out of U.
    overlaps: tuple[str, ...] = ()


@dataclass
class Dataset:
    """One split, loaded: examples, ids (stable within the split) and where it came from."""

    name: str
    split: str
    fields: tuple[str, ...]
    classes: tuple[str, ...]
    examples: list[dict[str, Any]]
    ids: list[str]
    source: str
    task: str = ""
    n_total: int = 0

    def __post_init__(self) -> None:
        if not self.n_total:
            self.n_total = len(self.examples)

    @property
    def has_labels(self) -> bool:
        return bool(self.examples) and all(ex.get("label") is not None for ex in self.examples)

    @property
    def labels(self) -> np.ndarray | None:
        import numpy as np

        if not self.has_labels:
            return None
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[ex["label"]] for ex in self.examples], dtype=np.int64)

    @property
    def sample_ids_sha256(self) -> str:
        return hashlib.sha256("\n".join(self.ids).encode()).hexdigest()

    def content_sha256(self) -> str:
        """A fingerprint of the content (ids, input fields and labels). Ids alone are not
        enough: ``test:3`` is a different sentence in the offline Rotten Tomatoes source than in
        a data directory holding Hugging Face's split."""
        rows = [[i, ex] for i, ex in zip(self.ids, self.examples)]
        return hashlib.sha256(json.dumps(rows, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def describe_source(self) -> dict[str, Any]:
        """Where the sample came from and its size, without a machine's paths."""
        kind = self.source.partition(":")[0]
        return {"source": kind if kind in ("data-dir", "file") else self.source, "n": len(self.examples)}

    def inputs(self) -> list[dict[str, Any]]:
        """The examples without their labels: what prompts are rendered with."""
        return [{k: ex[k] for k in self.fields} for ex in self.examples]

    def sample(self, limit: int | None, seed: int) -> Dataset:
        """A seeded, class-stratified sample of ``limit`` examples, in the split's own order."""
        check_seed(seed)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
            raise UsageError(f"--limit must be a positive number, got {limit!r}.")
        if limit is None or limit >= len(self.examples):
            return self
        import numpy as np

        rng = np.random.default_rng(seed)
        if self.has_labels:
            labels = self.labels
            assert labels is not None
            counts = np.bincount(labels, minlength=len(self.classes))
            quota = largest_remainder(counts, limit)
            chosen = [
                idx
                for c in range(len(self.classes))
                for idx in rng.choice(np.flatnonzero(labels == c), size=quota[c], replace=False)
            ]
        else:
            chosen = list(rng.choice(len(self.examples), size=limit, replace=False))
        keep = sorted(int(i) for i in chosen)
        return Dataset(
            name=self.name, split=self.split, fields=self.fields, classes=self.classes,
            examples=[self.examples[i] for i in keep], ids=[self.ids[i] for i in keep],
            source=self.source, task=self.task, n_total=self.n_total,
        )


    def truncated(self, max_chars: int) -> Dataset:
        """Every input field cut to ``max_chars`` characters at a word boundary."""
        if max_chars <= 0:
            raise UsageError(f"--max-chars must be a positive number, got {max_chars}.")
        examples = [{k: truncate(v, max_chars) if k in self.fields and isinstance(v, str) else v for k, v in ex.items()}
                    for ex in self.examples]
        return replace(self, examples=examples)


def largest_remainder(counts: np.ndarray, total: int) -> list[int]:
    """``total`` slots shared among classes in proportion to ``counts`` (the class-stratified
    sample of ``--limit`` and the held-out part of ``--holdout``)."""
    import numpy as np

    exact = counts / counts.sum() * total
    quota = np.floor(exact).astype(int)
    # Hand the remaining slots to the largest remainders (ties: lower class index first).
    for c in np.argsort(-(exact - quota), kind="stable")[: total - quota.sum()]:
        quota[c] += 1
    return [int(min(q, n)) for q, n in zip(quota, counts)]


def data_dir(explicit: str | Path | None = None) -> Path | None:
    value = explicit or os.environ.get("PROMPTSEL_DATA_DIR")
    return Path(value) if value else None


def check_text(value: Any, where: str) -> None:
    """A template field's value: text (or a number), never null or a structure."""
    if value is None or isinstance(value, (dict, list)):
        got = "null or missing" if value is None else f"a JSON {'object' if isinstance(value, dict) else 'array'}"
        raise DataError(f"{where} is {got}, not text.", hint="Give every example a text for every field, or leave the example out.")


def check_all_or_no_labels(examples: Sequence[Mapping[str, Any]], where: Sequence[str]) -> None:
    """A split is labeled or label-free: a few missing labels would silently make all of it
    label-free (no performance, no oracle), so they are an error naming the first one."""
    missing = [i for i, ex in enumerate(examples) if ex.get("label") is None]
    if missing and len(missing) < len(examples):
        raise DataError(f"{where[missing[0]]}: no label, while {len(examples) - len(missing)} other examples have one.",
                        hint="Label every example, or none (a label-free run).")


def check_seed(seed: Any) -> int:
    """Seeds are whole numbers in [0, 2**32): what numpy, torch and Python's random all take."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise UsageError(f"--seed must be a whole number from 0 to {2**32 - 1}, got {seed!r}.")
    return seed


def load_named(spec: DatasetSpec, split: str, directory: str | Path | None = None) -> Dataset:
    """Load one split of a named dataset from the first source that has it."""
    tried: list[str] = []
    root = data_dir(directory)
    if root is not None:
        path = root / spec.name / f"{split}.jsonl"
        if path.is_file():
            return _make(spec, split, read_jsonl_lines(path), f"data-dir:{path}", path)
        tried.append(f"data directory ({path} not found)")
    else:
        tried.append("data directory (none set: --data-dir or PROMPTSEL_DATA_DIR)")
    if spec.hub is not None:
        rows, why = _load_hub(spec, split)
        if rows is not None:
            return _make(spec, split, list(enumerate(rows, 1)), f"hub:{spec.hub.path}")
        tried.append(f"Hugging Face hub ({why})")
    if spec.offline is not None:
        rows = spec.offline(split)
        if rows is not None:
            return _make(spec, split, list(enumerate(rows, 1)), f"offline:{spec.offline_name}")
        tried.append(f"offline {spec.offline_name} (has no {split!r} split)")
    raise DataError(
        f"Dataset {spec.name!r} split {split!r} is not available; tried: {'; '.join(tried)}.",
        hint=f"Put it at <dir>/{spec.name}/{split}.jsonl and pass --data-dir <dir>, or go online with `pip install 'promptsel[hub]'`.",
    )


def _load_hub(spec: DatasetSpec, split: str) -> tuple[list[dict[str, Any]] | None, str]:
    hub = spec.hub
    assert hub is not None
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return None, "offline mode is set"
    if split not in hub.splits:
        return None, f"no {split!r} split there"
    try:
        import datasets
    except ImportError:
        return None, "the `datasets` package is not installed"
    try:
        ds = datasets.load_dataset(hub.path, hub.config, split=hub.splits[split])
    except Exception as exc:  # the hub is optional: any failure moves on to the next source
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    rows = []
    for row in ds:
        example = {f: row[hub.columns.get(f, f)] for f in spec.fields}
        label = row.get(hub.label_column)
        if hub.label_names is not None and label is not None:
            label = hub.label_names[label] if 0 <= label < len(hub.label_names) else None
        example["label"] = label
        rows.append(example)
    return rows, ""


def _make(spec: DatasetSpec, split: str, rows: list[tuple[int, dict[str, Any]]], source: str,
          path: Path | None = None) -> Dataset:
    """Examples from numbered rows; errors name the file and line (or the source and row)."""
    examples = []
    for lineno, row in rows:
        where = f"{path}:{lineno}" if path is not None else f"{source}: row {lineno}"
        missing = [f for f in spec.fields if f not in row]
        if missing:
            raise DataError(f"{where}: no field {missing[0]!r} (needs: {', '.join(spec.fields)}).")
        for f in spec.fields:
            check_text(row[f], f"{where}: field {f!r}")
        label = row.get("label")
        if label is not None and label not in spec.classes:
            raise DataError(f"{where}: label {label!r} is not one of {', '.join(spec.classes)}.")
        examples.append({**{f: row[f] for f in spec.fields}, "label": label})
    if not examples:
        raise DataError(f"Dataset {spec.name!r} split {split!r} from {source} is empty.", hint="Check the file has examples.")
    check_all_or_no_labels(examples, [f"{path}:{n}" if path is not None else f"{source}: row {n}" for n, _ in rows])
    return Dataset(
        name=spec.name, split=split, fields=spec.fields, classes=spec.classes,
        examples=examples, ids=[f"{split}:{i}" for i in range(len(examples))], source=source, task=spec.task,
    )


def load_local(
    path: str | Path,
    *,
    fields: Sequence[str] | None = None,
    label_field: str | None = "label",
    classes: Sequence[str] | None = None,
    rename: Mapping[str, str] | None = None,
) -> Dataset:
    """Load a local ``.jsonl``, ``.csv`` or ``.tsv`` file.

    ``rename`` maps template field names to file columns (``--field text=review``). Without
    ``fields`` every column except the label becomes a field. Without ``classes`` the classes
    are the sorted distinct labels. A file without the label column is label-free.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Data file not found: {path}.", hint="Check the path given to --dataset.")
    if path.suffix.lower() not in LOCAL_SUFFIXES:
        raise UsageError(f"Unsupported data file {path}: use one of {', '.join(LOCAL_SUFFIXES)}.")
    rows = read_table(path)
    if not rows:
        raise DataError(f"Data file {path} is empty.", hint="It needs a header (csv/tsv) and at least one example.")
    if classes is not None:
        classes = check_classes(classes)
    rename = dict(rename or {})
    columns = [str(c) for c in rows[0][1] if c is not None]
    has_labels = label_field is not None and label_field in columns
    if fields is None:
        fields = [c for c in columns if c != label_field and c not in rename.values()] + list(rename)
    fields = tuple(fields)
    if not fields:
        raise DataError(f"{path} has no column for the templates (only {label_field!r}).",
                        hint="Add a text column, or map fields to columns with --field NAME=COLUMN.")
    examples = []
    for lineno, row in rows:
        example = {}
        for f in fields:
            column = rename.get(f, f)
            if column not in row:
                raise DataError(f"{path}:{lineno}: no column {column!r} for field {f!r} (columns: {', '.join(columns)}).",
                                hint="Map fields to columns with --field NAME=COLUMN.")
            check_text(row[column], f"{path}:{lineno}: field {column!r}")
            example[f] = row[column]
        label = row.get(label_field) if has_labels else None
        if isinstance(label, (dict, list)):
            raise DataError(f"{path}:{lineno}: label is a JSON {'object' if isinstance(label, dict) else 'array'}, not a class name.")
        example["label"] = str(label) if label not in (None, "") else None
        examples.append(example)
    check_all_or_no_labels(examples, [f"{path}:{lineno}" for lineno, _ in rows])
    labels = sorted({ex["label"] for ex in examples if ex["label"] is not None})
    if classes is None:
        if not labels:
            raise UsageError(f"{path} has no {label_field!r} column; pass --classes to name the classes.")
        if len(labels) < 2:
            raise DataError(f"{path}: every label is {labels[0]!r}; choosing a prompt needs at least two classes.",
                            hint="Pass all the classes with --classes A,B.")
        classes = labels
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise DataError(f"{path}: label {unknown[0]!r} is not one of the classes {', '.join(classes)}.")
    return Dataset(
        name=path.stem, split=path.name, fields=fields, classes=tuple(classes), examples=examples,
        ids=[f"{path.name}:{i}" for i in range(len(examples))], source=f"file:{path}",
    )


def truncate(text: str, max_chars: int) -> str:
    """At most ``max_chars`` characters, cut at a word boundary (mid-word only for one huge word)."""
    if len(text) <= max_chars:
        return text
    cut = text.rfind(" ", 0, max_chars + 1)
    return text[:cut].rstrip() if cut > 0 else text[:max_chars]


def check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    """``--classes``: at least two distinct, non-empty names."""
    names = tuple(str(c).strip() for c in classes)
    if any(not c for c in names):
        raise UsageError(f"--classes has an empty class name: {','.join(names)!r}.")
    if len(set(names)) != len(names):
        dup = next(c for i, c in enumerate(names) if c in names[:i])
        raise UsageError(f"--classes names {dup!r} twice.")
    if len(names) < 2:
        raise UsageError(f"--classes needs at least two classes, got {', '.join(names)}.")
    return names
