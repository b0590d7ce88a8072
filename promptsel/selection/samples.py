"""``--log-samples FILE.jsonl``: one line per evaluation example, to see what each prompt did.

Each line: the example's ``id``, its ``input`` (the fields the templates read; ``null`` with
``--scores``, which holds no texts) and ``input_sha256`` (of the input as canonical JSON, to
match examples across runs and tools as lm-eval's ``doc_hash`` does; ``null`` without an input),
its gold ``label`` (a class name, or ``null``), and per prompt the predicted ``class``, the
class ``probs`` and ``correct`` (the class is the gold label; ``null`` without labels).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..files import atomic_write
from ..model.data import Dataset
from ..model.scoretable import ScoreTable


def sample_lines(table: ScoreTable, dataset: Dataset | None) -> list[dict[str, Any]]:
    probs, predicted, classes = table.probs, table.predictions, table.class_names
    inputs = dataset.inputs() if dataset is not None else [None] * table.n_examples
    out = []
    for n, sample_id in enumerate(table.sample_ids):
        label = None if table.labels is None else classes[int(table.labels[n])]
        text = inputs[n]
        digest = None if text is None else hashlib.sha256(
            json.dumps(text, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
        out.append({
            "id": sample_id, "input": text, "input_sha256": digest, "label": label,
            "predictions": {pid: {"class": classes[int(predicted[p, n])],
                                  "probs": {c: float(probs[p, n, k]) for k, c in enumerate(classes)},
                                  "correct": None if table.labels is None else bool(predicted[p, n] == table.labels[n])}
                            for p, pid in enumerate(table.prompt_ids)},
        })
    return out


def write_samples(path: Path, table: ScoreTable, dataset: Dataset | None) -> None:
    """Write atomically: an interrupted run never leaves half a log that looks whole."""
    atomic_write(path, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in sample_lines(table, dataset)))
