"""The embedding map's panels: which stored embeddings are drawn, grouped by embedding space.

Vectors of different (embedder, surrogate) pairs live in different spaces, so each pair gets a
panel (and a projection) of its own. Entries that cannot be drawn are left out with a warning.
No drawing here: that is ``plot.py``.
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable

import numpy as np

from ..fute.store import StoredEmbedding


def filter_entries(
    entries: Iterable[StoredEmbedding],
    *,
    embedder: str | None = None,
    task: str | None = None,
    model: str | None = None,
    dataset: str | None = None,
) -> list[StoredEmbedding]:
    """The entries that match every given filter (``None`` leaves that field unfiltered).

    Names match exactly. ``model`` selects MTEs and keeps every DTE, since a DTE does not depend
    on the LLM. ``dataset`` selects DTEs; an MTE belongs to no dataset, so it is kept when its
    task is the task of one of the selected DTEs (the prompts that could be ranked for it).
    """
    kept = [
        e
        for e in entries
        if (embedder is None or e.meta.get("embedder") == embedder)
        and (task is None or task_of(e) == task)
        and (model is None or e.meta.get("kind") != "mte" or e.meta.get("model") == model)
    ]
    if dataset is None:
        return kept
    dtes = [e for e in kept if e.meta.get("kind") == "dte" and e.meta.get("dataset") == dataset]
    tasks = {task_of(e) for e in dtes}
    return [e for e in kept if e.meta.get("kind") == "mte" and task_of(e) in tasks] + dtes


class Panel:
    """One embedding space's entries, in drawing order."""

    def __init__(self, embedder: str, surrogate: str, entries: list[StoredEmbedding]) -> None:
        self.embedder = embedder
        self.surrogate = surrogate
        self.entries = entries


def kind_of(e: StoredEmbedding) -> str:
    return str(e.meta.get("kind", ""))


def task_of(e: StoredEmbedding) -> str:
    return str(e.meta.get("task") or "")


def model_of(e: StoredEmbedding) -> str:
    return str(e.meta.get("model") or "?")


def group_panels(entries: list[StoredEmbedding]) -> list[Panel]:
    """Group by space, keeping the vectors of each group's most common length."""
    groups: dict[tuple[str, str], list[StoredEmbedding]] = defaultdict(list)
    unusable: Counter[str] = Counter()
    for e in entries:
        vector = np.asarray(e.vector, dtype=np.float64)
        if kind_of(e) not in ("mte", "dte"):
            unusable["of unknown kind"] += 1
        elif (
            vector.ndim != 1
            or vector.size == 0
            or not np.all(np.isfinite(vector))
            or not np.any(vector)
        ):
            unusable["empty, zero or not finite"] += 1
        else:
            space = (str(e.meta.get("embedder") or "?"), str(e.meta.get("surrogate") or "?"))
            groups[space].append(e)
    for why, count in unusable.items():
        warnings.warn(f"Left {count} embedding(s) out of the map: {why}.", stacklevel=3)
    panels = []
    for (embedder, surrogate), group in sorted(groups.items()):
        lengths = Counter(len(e.vector) for e in group)
        length = max(lengths, key=lambda n: (lengths[n], n))
        kept = [e for e in group if len(e.vector) == length]
        if len(kept) < len(group):
            others = ", ".join(str(n) for n in sorted(lengths) if n != length)
            warnings.warn(
                f"Left {len(group) - len(kept)} {embedder} on {surrogate} embedding(s) out of the map: "
                f"their length ({others}) differs from the other {len(kept)} ({length}). "
                "They were probably made by another version of the embedder; recompute them.",
                stacklevel=3,
            )
        kept.sort(
            key=lambda e: (
                kind_of(e),
                task_of(e),
                model_of(e),
                str(e.meta.get("prompt", "")),
                str(e.meta.get("dataset", "")),
                e.key,
            )
        )
        panels.append(Panel(embedder, surrogate, kept))
    return panels
