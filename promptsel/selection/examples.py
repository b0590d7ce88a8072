"""The examples behind the choice: where the recommended prompt and its rivals (the runner-up,
the label-free pick) answer differently, with the text, the gold label and each prompt's answer
and probability; and, with labels, the recommended prompt's confusion matrix.

A practitioner reads these to see *why* a prompt won (and whether its wins are the examples
they care about), as promptfoo's and inspect-ai's viewers show the cases where outputs differ.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..model.data import Dataset
from ..model.prompts import PromptSet
from ..model.scoretable import ScoreTable

#: Examples listed in the report (all disagreements are counted).
MAX_EXAMPLES = 20
#: An example's text is cut to this many characters in the report.
MAX_TEXT = 300


def behind_the_choice(table: ScoreTable, report: dict[str, Any], dataset: Dataset | None = None,
                      prompt_set: PromptSet | None = None, limit: int = MAX_EXAMPLES) -> dict[str, Any] | None:
    """The report's ``examples`` section (None without a recommendation)."""
    rec = report.get("recommendation")
    if not rec or rec.get("prompt") not in table.prompt_ids:
        return None
    ids = table.prompt_ids
    best = ids.index(rec["prompt"])
    rivals = _rivals(table, report, best)
    predictions, probs = table.predictions, table.probs
    names = table.class_names
    labels = table.labels
    differs = np.zeros(table.n_examples, dtype=bool)
    counts = []
    for role, i in rivals:
        apart = predictions[i] != predictions[best]
        differs |= apart
        entry: dict[str, Any] = {"prompt": ids[i], "role": role, "disagree": int(apart.sum())}
        if labels is not None:  # of those, which one got it right
            entry["recommended_right"] = int((apart & (predictions[best] == labels)).sum())
            entry["rival_right"] = int((apart & (predictions[i] == labels)).sum())
        counts.append(entry)
    shown = [best, *(i for _, i in rivals)]
    where = {} if dataset is None else {sid: k for k, sid in enumerate(dataset.ids)}
    rows = []
    for n in np.flatnonzero(differs)[:limit]:
        rows.append({
            "sample_id": table.sample_ids[n],
            "text": _text(dataset, where, table.sample_ids[n]),
            "gold": None if labels is None else names[int(labels[n])],
            "predictions": {ids[i]: {"class": names[int(predictions[i, n])], "probability": float(probs[i, n, predictions[i, n]])}
                            for i in shown},
        })
    templates = None
    if prompt_set is not None:
        by_id = {p.id: p.template for p in prompt_set.prompts}
        templates = {ids[i]: by_id.get(ids[i]) for i in shown}
    return {"recommended": ids[best], "rivals": counts, "disagreements": int(differs.sum()), "shown": len(rows),
            "examples": rows, "templates": templates, "confusion": _confusion(table, best)}


def _rivals(table: ScoreTable, report: dict[str, Any], best: int) -> list[tuple[str, int]]:
    """(role, index): the runner-up (by measured performance, or without labels by the
    recommending rule's ranking) and, with labels, the label-free rule's pick when it differs."""
    ids = table.prompt_ids
    rec = report["recommendation"]
    out: list[tuple[str, int]] = []
    if table.labels is not None:
        perf = {p["id"]: p.get("performance") for p in report.get("prompts") or []}
        order = sorted((i for i in range(len(ids)) if i != best and perf.get(ids[i]) is not None), key=lambda i: -perf[ids[i]])
        if order:
            out.append(("runner-up", order[0]))
        free = rec.get("label_free") or {}
        if free.get("prompt") in ids and ids.index(free["prompt"]) not in (best, *(i for _, i in out)):
            out.append((f"{free.get('rule')}'s pick without labels", ids.index(free["prompt"])))
    else:
        ranking = ((report.get("methods") or {}).get(rec.get("rule")) or {}).get("ranking") or []
        runner = next((p for p in ranking if p != ids[best] and p in ids), None)
        if runner is not None:
            out.append((f"{rec.get('rule')}'s runner-up", ids.index(runner)))
    return out


def _text(dataset: Dataset | None, where: dict[str, int], sample_id: str) -> str | None:
    """The example's fields as one line (matched by sample id; None from a scores file)."""
    if dataset is None or sample_id not in where:
        return None
    example = dataset.examples[where[sample_id]]
    text = " / ".join(str(example.get(f, "")) for f in dataset.fields)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def _confusion(table: ScoreTable, best: int) -> dict[str, Any] | None:
    """Gold class (rows) × predicted class (columns) counts of the recommended prompt, and each
    class's accuracy (its recall): where its accuracy comes from."""
    if table.labels is None:
        return None
    c = len(table.class_names)
    matrix = np.zeros((c, c), dtype=int)
    np.add.at(matrix, (table.labels, table.predictions[best]), 1)
    totals = matrix.sum(axis=1)
    recall = [None if totals[k] == 0 else float(matrix[k, k] / totals[k]) for k in range(c)]
    return {"classes": list(table.class_names), "matrix": matrix.tolist(), "class_accuracy": recall}
