"""A persistent, content-addressed cache of backend results (SQLite, write-through).

Every backend call goes through it. Keys hash the backend id, the model fingerprint (a file
hash, not a name), the options that change numbers, the full rendered text, the continuations
and the scoring mode. Results are committed as they arrive, so an interrupted run resumes
where it stopped. Errors are never cached.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..assets.packages import cache_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def make_key(kind: str, identity: Mapping[str, Any], payload: Any) -> str:
    blob = json.dumps([kind, identity, payload], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def default_path() -> Path:
    return cache_dir() / "results.sqlite"


class Cache:
    """``enabled=False`` (``--no-cache``) keeps results in memory for this run only."""

    def __init__(self, path: str | Path | None = None, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(path) if path else default_path()
        self._memory: dict[str, Any] = {}
        self._db: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(SCHEMA)
        return self._db

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(dict.fromkeys(keys))
        found = {k: self._memory[k] for k in keys if k in self._memory}
        wanted = [k for k in keys if k not in found]
        if self.enabled and wanted:
            for start in range(0, len(wanted), 500):  # SQLite caps bound parameters
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self.db.execute(f"SELECT key, value FROM results WHERE key IN ({marks})", chunk)
                for key, value in rows:
                    found[key] = self._memory[key] = json.loads(value)
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    def put_many(self, kind: str, items: Mapping[str, Any]) -> None:
        self._memory.update(items)
        if self.enabled and items:
            now = time.time()
            with self.db:  # one transaction per batch: committed before the next batch starts
                self.db.executemany(
                    "INSERT OR REPLACE INTO results (key, kind, value, created) VALUES (?, ?, ?, ?)",
                    [(k, kind, json.dumps(v), now) for k, v in items.items()],
                )

    def info(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"path": str(self.path), "entries": 0, "bytes": 0, "kinds": {}}
        kinds = dict(self.db.execute("SELECT kind, COUNT(*) FROM results GROUP BY kind").fetchall())
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
        return {"path": str(self.path), "entries": sum(kinds.values()), "bytes": size, "kinds": kinds}

    def clear(self) -> int:
        if not self.path.is_file():
            return 0
        with self.db:
            n = self.db.execute("DELETE FROM results").rowcount
        self.db.execute("VACUUM")
        return n

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
