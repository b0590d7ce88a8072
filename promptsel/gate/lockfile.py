"""The lock file: its format, and reading and writing it.

A lock holds one entry per (prompt set, dataset, split, limit, backend + model); what an entry
holds is :mod:`promptsel.gate.entry`'s business.

The format is JSON written with sorted keys, one key per line, short lists on one line and
numbers rounded to six significant digits. JSON rather than TOML because the standard library both reads and writes it
(``tomllib`` only reads, and a hand-written TOML emitter would be one more thing to get wrong);
with one value per line a ``git diff`` of the lock shows exactly which prompt text or number
moved. Rounding makes reruns byte-identical even where the last bits of a float would differ.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from ..files import atomic_write

LOCK_VERSION = 1
SIGNIFICANT_DIGITS = 6
ABOUT = ("Written by `promptsel lock`; `promptsel check` reruns every entry and fails on a regression; "
         "`promptsel check --update` accepts the new state. Edit with promptsel, not by hand.")


class LockFileError(UsageError):
    """A lock file that is missing, not JSON, or not shaped like a lock."""


def rounded(value: Any) -> Any:
    """``value`` with every float rounded to six significant digits (non-finite: ``None``)."""
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if not math.isfinite(x):
            return None
        return float(f"{x:.{SIGNIFICANT_DIGITS}g}") + 0.0  # + 0.0 turns -0.0 into 0.0
    if isinstance(value, np.integer):
        return int(value)
    return value


def new_lock() -> dict[str, Any]:
    return {"about": ABOUT, "lock_version": LOCK_VERSION, "entries": {}}


def dumps(lock: dict[str, Any]) -> str:
    """JSON with sorted keys, one key per line, and short lists without objects on one line
    (``"answer_choices": [["positive", ["yes", "Yes"]], ...]``): an edited label word is then a
    one-line diff, not a five-line one."""
    return _dump(lock, 0) + "\n"


_INLINE_WIDTH = 100


def _has_dict(value: Any) -> bool:
    return isinstance(value, dict) or (isinstance(value, list) and any(_has_dict(v) for v in value))


def _dump(value: Any, level: int) -> str:
    pad, end = "  " * (level + 1), "  " * level
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {_dump(value[k], level + 1)}" for k in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(value, list):
        inline = json.dumps(value, ensure_ascii=False, sort_keys=True)
        if not _has_dict(value) and len(inline) <= _INLINE_WIDTH:
            return inline
        return "[\n" + ",\n".join(pad + _dump(v, level + 1) for v in value) + "\n" + end + "]"
    return json.dumps(value, ensure_ascii=False)


def write_lock(path: Path, lock: dict[str, Any]) -> None:
    """Write atomically: an interrupted write never leaves half a lock in the repository."""
    atomic_write(path, dumps(lock))


#: The fields ``check`` reads, with their JSON types: a hand edit or a bad merge that breaks one
#: is a usage error naming it, never a KeyError in the middle of a comparison.
_NUMBER = (int, float, type(None))
_SECTIONS: dict[str, dict[str, tuple[type, ...]]] = {
    "request": {"prompts": (str,), "dataset": (str,), "methods": (list,), "backend": (str,), "model_args": (dict,),
                "scoring": (dict,), "seed": (int,), "metric": (str,), "fields": (dict,), "label_field": (str,),
                "split": (str, type(None)), "limit": (int, type(None)), "model": (str, type(None)),
                "max_chars": (int, type(None)), "classes": (list, type(None))},
    "dataset": {"n": (int,), "labels": (bool,), "sample_sha256": (str,)},
    "backend": {"fingerprint": (str,), "model": (str,)},
}
_PER_PROMPT = {"definition": (dict,), "definition_sha256": (str,), "performance": _NUMBER, "scores": (dict,)}
_PER_METHOD = {"chosen": (str,), "performance": _NUMBER, "score": _NUMBER}


def _check_fields(path: Path, key: str, where: str, table: Any, fields: dict[str, tuple[type, ...]]) -> None:
    for name, types in fields.items():
        value = table.get(name) if isinstance(table, dict) else None
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise LockFileError(f"{path}: entry {key!r} has no valid {where}.{name}.", hint="Re-lock it with `promptsel lock`.")


def _check_entry(path: Path, key: str, entry: Any) -> None:
    for section, fields in _SECTIONS.items():
        if not isinstance(entry, dict) or not isinstance(entry.get(section), dict):
            raise LockFileError(f"{path}: entry {key!r} has no {section!r} table.", hint="Re-lock it with `promptsel lock`.")
        _check_fields(path, key, section, entry[section], fields)
    request = entry["request"]
    texts = {"methods": request["methods"], "classes": request.get("classes") or [], "fields": list(request["fields"].values())}
    for name, values in texts.items():
        if not all(isinstance(v, str) for v in values):
            raise LockFileError(f"{path}: entry {key!r} has no valid request.{name} (names must be strings).",
                                hint="Re-lock it with `promptsel lock`.")
    for kind, fields in (("prompts", _PER_PROMPT), ("methods", _PER_METHOD)):
        table = entry.get(kind)
        if not isinstance(table, dict) or not table:
            raise LockFileError(f"{path}: entry {key!r} has no {kind}.", hint="Re-lock it with `promptsel lock`.")
        for name, item in table.items():
            _check_fields(path, key, f"{kind}.{name}", item, fields)
    for method, item in entry["methods"].items():
        if item["chosen"] not in entry["prompts"]:
            raise LockFileError(f"{path}: entry {key!r}: {method} chose {item['chosen']!r}, which is not one of its prompts.",
                                hint="Re-lock it with `promptsel lock`.")


def read_lock(path: Path) -> dict[str, Any]:
    """Read and check a lock; every problem is one :class:`LockFileError` naming the file."""
    if not path.is_file():
        raise LockFileError(f"No lock file at {path}.",
                            hint="Create it with `promptsel lock --dataset NAME --prompts FILE` and commit it.")
    try:
        lock = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LockFileError(f"{path} is not a valid lock file ({exc}).",
                            hint="Restore it from git (a merge conflict?) or write a new one with `promptsel lock`.") from exc
    if not isinstance(lock, dict) or not isinstance(lock.get("entries"), dict):
        raise LockFileError(f"{path} is not a promptsel lock file (no 'entries' table).")
    if lock.get("lock_version") != LOCK_VERSION:
        raise LockFileError(f"{path} has lock_version {lock.get('lock_version')!r}; this promptsel reads version {LOCK_VERSION}.",
                            hint="Write it again with `promptsel check --update`, or use the promptsel that wrote it.")
    for key, entry in lock["entries"].items():
        _check_entry(path, key, entry)
    return lock
