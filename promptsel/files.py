"""Files: the one way promptsel writes a file, and the one reader of the tables users give.

Writing. Every file promptsel leaves behind (a report, a lock, a sample log, a cached model, an
embedding, the unlabeled corpus) is written to a temporary file beside it and moved over it when
whole (``os.replace``, atomic on POSIX and Windows within one folder). A reader, a concurrent run
or a process that dies halfway never sees half a file: the old content stays until the new one
is complete, and an error leaves no temporary file behind. It is atomic, not durable: nothing is
flushed to the disk with ``fsync`` (a power cut may still lose the newest version), which would
cost a disk flush for every small embedding.

Reading. ``.jsonl``, ``.csv`` and ``.tsv`` tables (a dataset file, the unlabeled corpus) are read
by :func:`read_table`: numbered rows, and a :class:`~promptsel.errors.DataError` naming the file
and the line for text that is not UTF-8, a line that is not a JSON object, or a row the csv module
cannot read.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .errors import DataError

#: The table files :func:`read_table` reads.
TABLE_SUFFIXES = (".jsonl", ".csv", ".tsv")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` when the ``with`` block ends without an exception.

    On an exception ``path`` keeps its old content (or stays absent) and the temporary file is
    removed; a killed process leaves ``path`` intact too (and a hidden ``.partial`` file). The
    folder is created if needed, and the new file gets the mode ``open()`` would give it (the
    umask applies, as it does not to ``tempfile.mkstemp``'s 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A random name: two processes writing the same file never write into the same temporary one.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(path: str | os.PathLike[str], data: str | bytes, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`atomic_open`). Text is written as
    given: ``\\n`` stays ``\\n`` on every platform, so a file in a repository reads the same."""
    with atomic_open(path) as fh:
        fh.write(data.encode(encoding) if isinstance(data, str) else data)


def read_text(path: Path) -> str:
    """A whole UTF-8 file (a byte-order mark is dropped); other bytes are a DataError naming the line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        lineno = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{lineno}: not UTF-8 text ({exc.reason}).", hint="Save the file as UTF-8.") from None


def read_table(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) for every row of a ``.jsonl``, ``.csv`` or ``.tsv`` file, by its suffix."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return read_jsonl_lines(path)
    if suffix in (".csv", ".tsv"):
        return _read_delimited(path, "\t" if suffix == ".tsv" else ",")
    raise ValueError(f"read_table reads {', '.join(TABLE_SUFFIXES)} files, not {path.name}")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [row for _, row in read_jsonl_lines(path)]


def read_jsonl_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; any other line is a DataError naming it."""
    rows = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not UTF-8 text ({exc.reason} at byte {exc.start + 1}).",
                                hint="Save the file as UTF-8.") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                raise DataError(f"{path}:{lineno}: not valid JSON ({msg}).", hint="Each line must be one JSON object.") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: a JSON {type(row).__name__}, not an object.",
                                hint='Each line must be one JSON object, e.g. {"text": "...", "label": "..."}.')
            rows.append((lineno, row))
    return rows


def _read_delimited(path: Path, delimiter: str) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a CSV/TSV file with a header; a row the csv module cannot read is a DataError
    naming the line."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), delimiter=delimiter)
    rows = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        hint = "Use a .jsonl file for texts this long." if "field larger" in str(exc) else "Check the quoting on that line."
        raise DataError(f"{path}:{reader.line_num + 1}: cannot read this {path.suffix[1:]} row ({exc}).", hint=hint) from None
    return rows
