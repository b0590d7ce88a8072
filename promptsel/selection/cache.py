"""A persistent, content-addressed cache of backend results (SQLite, write-through).

Every backend call goes through it. Keys hash the backend id, the model fingerprint (a file
hash, not a name), the options that change numbers, the full rendered text, the continuations
and the scoring mode. Results are committed as they arrive, so an interrupted run resumes
where it stopped. Errors are never cached.

Nothing read back is trusted blindly. Each row stores a digest of its key and value, and the
caller says what a value must look like (say, three finite numbers): a row that fails either
check is a miss, recomputed and rewritten, and counted in :attr:`Cache.invalid`. The digest
catches damage and hand edits, not an attacker (who could recompute it). Rows written before
digests existed have none; they are misses too (recomputed once, then stored with one), since
an old row cannot be told from an edited one. A database file SQLite cannot read is one
:class:`~promptsel.errors.CacheError` naming the file; ``promptsel cache clear`` removes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..assets.packages import assets_dir, cache_dir
from ..errors import CacheError

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL,
    digest TEXT
)
"""

#: What else promptsel keeps in its cache directory (``cache clear`` keeps it, ``--all`` not).
STORED = {
    "models": "models",
    "embeddings": "embeddings",
    "unlabeled corpus": "unlabeled",
    "model fingerprints": "fingerprints.json",
}

#: SQLite's words for a file that is not (or no longer) a readable database.
_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_DAMAGED_TEXT = ("malformed", "not a database")


def make_key(kind: str, identity: Mapping[str, Any], payload: Any) -> str:
    blob = json.dumps([kind, identity, payload], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def row_digest(key: str, value: str) -> str:
    """The integrity check stored with a row: a hash of its key and its stored value."""
    return hashlib.blake2b(f"{key}\x00{value}".encode(), digest_size=16).hexdigest()


def finite_numbers(value: Any, n: int | None = None) -> bool:
    """A cached list of log-probs: numbers (no booleans), all finite, ``n`` of them if given."""
    return (
        isinstance(value, list)
        and (n is None or len(value) == n)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )


def default_path() -> Path:
    return cache_dir() / "results.sqlite"


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return 0


def _is_inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def stored_files() -> dict[str, Path]:
    """Everything besides the results that promptsel keeps, by what it is. Archives count only
    where they are inside the cache directory: a ``PROMPTSEL_ASSETS_DIR`` elsewhere is the
    user's own folder (an air-gapped machine's hand-placed files) and is never removed."""
    root = cache_dir()
    found = {name: root / rel for name, rel in STORED.items()}
    if _is_inside(assets_dir(), root):
        found["archives"] = assets_dir()
    return {name: path for name, path in found.items() if path.exists()}


class DamagedCache(CacheError):
    """A cache file SQLite cannot read (garbage, truncated): ``cache clear`` removes it."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"The result cache {path} is damaged ({reason}).",
                         hint="Remove it with `promptsel cache clear` (results are recomputed), or run with --no-cache.")
        self.reason = reason


@dataclass
class Cleared:
    """What ``Cache.clear`` did: results deleted (``None`` when the file was damaged and
    removed whole), and what else was removed or kept, by name, as (path, bytes)."""

    results: int | None
    damaged: str | None = None
    removed: dict[str, tuple[str, int]] = field(default_factory=dict)
    kept: dict[str, tuple[str, int]] = field(default_factory=dict)


class Cache:
    """``enabled=False`` (``--no-cache``) keeps results in memory for this run only."""

    def __init__(self, path: str | Path | None = None, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(path) if path else default_path()
        self._memory: dict[str, Any] = {}
        self._db: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0
        #: Rows read back that failed their digest or the caller's check (counted in misses too).
        self.invalid = 0

    @contextlib.contextmanager
    def _sqlite(self) -> Iterator[None]:
        """SQLite's errors as one line naming the file and what to do."""
        try:
            yield
        except OSError as exc:  # the cache folder cannot be created or written
            raise CacheError(f"The result cache {self.path} cannot be used: {exc.strerror or exc}.",
                             hint="Set PROMPTSEL_CACHE_DIR to a folder you can write, or run with --no-cache.") from None
        except sqlite3.DatabaseError as exc:
            reason = _damage(exc)
            if reason:
                raise DamagedCache(self.path, reason) from None
            raise CacheError(f"The result cache {self.path} cannot be used: {exc}.",
                             hint="Check the file and its folder, or run with --no-cache.") from None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            with self._sqlite():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=60)
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute("PRAGMA synchronous=NORMAL")
                    db.execute(SCHEMA)
                    _add_digest_column(db)
                except BaseException:
                    db.close()
                    raise
                self._db = db
        return self._db

    def get_many(self, keys: Iterable[str], valid: Callable[[str, Any], bool] | None = None) -> dict[str, Any]:
        """The stored values of ``keys`` that pass their digest and ``valid(key, value)``."""
        keys = list(dict.fromkeys(keys))
        found = {k: self._memory[k] for k in keys if k in self._memory}
        wanted = [k for k in keys if k not in found]
        if self.enabled and wanted:
            with self._sqlite():
                for start in range(0, len(wanted), 500):  # SQLite caps bound parameters
                    chunk = wanted[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = self.db.execute(f"SELECT key, value, digest FROM results WHERE key IN ({marks})", chunk).fetchall()
                    for key, text, digest in rows:
                        if digest is None:  # written before digests existed: recomputed once
                            continue
                        value = _decode(key, text, digest)
                        if value is _BAD or (valid is not None and not valid(key, value)):
                            self.invalid += 1
                            continue
                        found[key] = self._memory[key] = value
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    def put_many(self, kind: str, items: Mapping[str, Any]) -> None:
        self._memory.update(items)
        if self.enabled and items:
            now = time.time()
            rows = []
            for k, v in items.items():
                text = json.dumps(v)
                rows.append((k, kind, text, now, row_digest(k, text)))
            with self._sqlite(), self.db:  # one transaction per batch: committed before the next batch starts
                self.db.executemany(
                    "INSERT OR REPLACE INTO results (key, kind, value, created, digest) VALUES (?, ?, ?, ?, ?)", rows
                )

    def info(self) -> dict[str, Any]:
        """Where the cache is, what it holds, and what else promptsel keeps (bytes by name).
        A damaged file is described (``damaged``), not an error: ``cache clear`` is the fix."""
        stored = {name: _size(path) for name, path in stored_files().items()}
        out: dict[str, Any] = {"path": str(self.path), "entries": 0, "bytes": 0, "kinds": {}, "damaged": None, "stored": stored}
        if not self.path.is_file():
            return out
        out["bytes"] = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
        try:
            with self._sqlite():
                kinds = dict(self.db.execute("SELECT kind, COUNT(*) FROM results GROUP BY kind").fetchall())
        except DamagedCache as exc:
            out["damaged"] = exc.reason
            return out
        out.update(entries=sum(kinds.values()), kinds=kinds)
        return out

    def clear(self, *, all: bool = False) -> Cleared:
        """Delete every cached result; a damaged file is removed whole. ``all=True`` also
        removes what :func:`stored_files` lists (models, archives, embeddings, ...)."""
        cleared = Cleared(results=0)
        if self.path.is_file():
            try:
                with self._sqlite(), self.db:
                    cleared.results = self.db.execute("DELETE FROM results").rowcount
                with self._sqlite():
                    self.db.execute("VACUUM")
            except DamagedCache as exc:
                cleared.results, cleared.damaged = None, exc.reason
                self.close()
                for path in self.path.parent.glob(self.path.name + "*"):  # the file and its -wal, -shm
                    path.unlink(missing_ok=True)
        for name, path in stored_files().items():
            entry = (str(path), _size(path))
            if all:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
                cleared.removed[name] = entry
            else:
                cleared.kept[name] = entry
        return cleared

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


_BAD = object()


def _decode(key: str, text: str, digest: str) -> Any:
    if row_digest(key, text) != digest:
        return _BAD
    try:
        return json.loads(text)
    except ValueError:
        return _BAD


def _damage(exc: sqlite3.DatabaseError) -> str | None:
    """SQLite's reason when the file itself is unreadable, else ``None`` (locked, read-only...)."""
    name = getattr(exc, "sqlite_errorname", "")  # Python 3.11+
    text = str(exc)
    if name in _DAMAGED or any(t in text for t in _DAMAGED_TEXT):
        return text
    return None


def _add_digest_column(db: sqlite3.Connection) -> None:
    """Caches written before digests existed get the column (their rows stay without one)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(results)")}
    if "digest" not in columns:
        try:
            db.execute("ALTER TABLE results ADD COLUMN digest TEXT")
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):  # another process added it first
                raise
