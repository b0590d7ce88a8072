"""The embedding store: task embeddings (MTEs and DTEs) saved under content keys.

One ``.npz`` file per embedding, named by its key, holding the vector and a JSON metadata
record (kind, embedder, surrogate, model, prompt, dataset, task, seconds). A key hashes
everything that changes the numbers, so an entry is reused across datasets and runs exactly
when it would come out the same. Files are written to a temporary name and renamed into
place: an interrupted training never leaves a half-written entry, and a file that cannot be
read is treated as absent (and recomputed), never trusted.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..assets.packages import cache_dir
from ..files import atomic_open


@dataclass(frozen=True)
class StoredEmbedding:
    key: str
    vector: np.ndarray
    meta: dict[str, Any]


def default_root() -> Path:
    return cache_dir() / "embeddings"


class EmbeddingStore:
    """``enabled=False`` (``--no-cache``) keeps embeddings in memory for this run only."""

    def __init__(self, root: str | Path | None = None, *, enabled: bool = True) -> None:
        self.root = Path(root) if root else default_root()
        self.enabled = enabled
        self._memory: dict[str, StoredEmbedding] = {}

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def get(self, key: str) -> StoredEmbedding | None:
        if key in self._memory or not self.enabled:
            return self._memory.get(key)
        path = self.path(key)
        if not path.is_file():
            return None
        entry = _read(path)
        if entry is None:
            warnings.warn(f"Ignoring unreadable embedding {path}; it will be recomputed.", stacklevel=2)
        return entry

    def put(self, key: str, vector: np.ndarray, meta: dict[str, Any]) -> StoredEmbedding:
        entry = StoredEmbedding(key, np.asarray(vector, dtype=np.float32), {**meta, "key": key})
        if not self.enabled:
            self._memory[key] = entry
            return entry
        with atomic_open(self.path(key)) as fh:  # readers see no entry or a whole one
            np.savez(fh, vector=entry.vector, meta=np.array(json.dumps(entry.meta, sort_keys=True)))
        return entry

    def entries(self) -> Iterator[StoredEmbedding]:
        """Every readable entry (unreadable files are skipped), in key order."""
        if not self.enabled:
            yield from sorted(self._memory.values(), key=lambda e: e.key)
            return
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("*.npz")):
            entry = _read(path)
            if entry is not None:
                yield entry

    def clear(self) -> int:
        removed = 0
        for path in self.root.glob("*.npz") if self.root.is_dir() else ():
            path.unlink()
            removed += 1
        self._memory.clear()
        return removed


def _read(path: Path) -> StoredEmbedding | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            vector = np.asarray(data["vector"], dtype=np.float32)
            meta = json.loads(str(data["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if vector.ndim != 1 or not isinstance(meta, dict):
        return None
    return StoredEmbedding(path.stem, vector, meta)
