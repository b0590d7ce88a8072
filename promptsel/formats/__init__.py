"""Output formats: one table from a file's suffix to the writer that renders it, per command.

The CLI checks every ``-o`` path against this table before any work starts (an unknown suffix
or a folder that cannot be written is a usage error then, not after a long run) and writes
through it; ``--json`` writes the command's ``.json`` format to stdout (:func:`print_json`).
Writers are named ``module:function`` within this package and imported when used (the imports
are written out in :meth:`Format.render`, so the architecture check sees them), which keeps
``promptsel --help`` fast. A new format is one row here and one function. What the command line prints besides is in
:mod:`.terminal` (tables, progress) and :mod:`.messages` (one-line messages, plain listings).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..files import atomic_write


@dataclass(frozen=True)
class Format:
    suffix: str
    description: str
    #: ``module:function`` in this package (``:function`` for this module); the function takes the
    #: command's result and returns the file's text. ``None``: the command draws the file itself
    #: (the map's PNG: ``plot`` calls the drawing with its settings); the row is there for the
    #: suffix check.
    writer: str | None
    #: ``-o`` may name a file of this format; ``False``: stdout only (``--json``).
    file: bool = True

    def render(self, result: Any) -> str:
        if self.writer is None:
            raise TypeError(f"{self.description} is drawn by its command, not rendered from a result")
        module, _, name = self.writer.partition(":")
        return getattr(_writer_module(module), name)(result)


def _writer_module(name: str) -> Any:
    """The one writer module a row names, imported now: each import written out, so the
    architecture check sees them, and only the one asked for (``--json`` loads no writer)."""
    if name == "markdown":
        from . import markdown

        return markdown
    if name == "html":
        from . import html

        return html
    if name == "junit":
        from . import junit

        return junit
    if name == "table_csv":
        from . import table_csv

        return table_csv
    return sys.modules[__name__]


#: command -> suffix -> format. ``what`` names the output in error messages.
_JSON = ":to_json"
FORMATS: dict[str, dict[str, Format]] = {
    "select": {
        ".json": Format(".json", "the JSON report", _JSON),
        ".md": Format(".md", "a Markdown report", "markdown:select_report"),
        ".html": Format(".html", "a self-contained HTML report", "html:to_html"),
        ".csv": Format(".csv", "one row per prompt as CSV", "table_csv:select_rows"),
    },
    "check": {
        ".md": Format(".md", "a pull-request comment", "markdown:check_result"),
        ".json": Format(".json", "the findings as JSON", _JSON),
        ".xml": Format(".xml", "JUnit XML", "junit:check_result"),
    },
    "diff": {
        ".json": Format(".json", "the comparison as JSON", _JSON),
        ".md": Format(".md", "the comparison in Markdown", "markdown:diff_report"),
        ".html": Format(".html", "the comparison as a self-contained HTML page", "html:diff_html"),
    },
    "plot": {
        ".png": Format(".png", "the map of task embeddings", None),
        ".json": Format(".json", "a summary of the map", _JSON, file=False),
    },
    "embed": {".json": Format(".json", "the record of embeddings", _JSON, file=False)},
    "expand": {".json": Format(".json", "what expand wrote", _JSON, file=False)},
    "validate": {".json": Format(".json", "the probe's result", _JSON, file=False)},
    "plugins": {".json": Format(".json", "the loaded plugins", _JSON, file=False)},
    "cache": {".json": Format(".json", "what the cache holds", _JSON, file=False)},
}
WHAT = {"select": "a report", "check": "the check", "plot": "the map", "diff": "the comparison"}


def format_for(command: str, path: Path, as_suffix: str | None = None) -> Format:
    """The format of ``path`` by its suffix (or ``as_suffix``, for a flag such as ``--junit``)."""
    table = {suffix: f for suffix, f in FORMATS[command].items() if f.file}
    found = table.get(as_suffix or path.suffix.lower())
    if found is None:
        names = list(table)
        listed = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
        raise UsageError(f"Cannot write {WHAT[command]} to {path}: use a {listed} file name.")
    return found


def check_outputs(command: str, paths: list[Path], as_suffix: str | None = None) -> None:
    """Every output path has a known suffix and a folder that can be written (or created)."""
    for path in paths:
        format_for(command, path, as_suffix)
    check_writable(paths, WHAT[command])


def check_writable(paths: list[Path], what: str = "a file") -> None:
    """Each path can be written: not a folder, and its folder (or the nearest one that exists,
    when it will be created) is writable. Checked before any work, so a run never ends in an
    error it could have said at the start."""
    for path in paths:
        if path.is_dir():
            raise UsageError(f"Cannot write {what} to {path}: it is a folder.")
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)) \
                or not _can_create_in(folder):
            raise UsageError(f"Cannot write {what} to {path}: {folder} is not writable.", hint="Choose another path.")


def _can_create_in(folder: Path) -> bool:
    """A file can really be made there: ``os.access`` says yes for root on /proc or a read-only
    mount, and the atomic write creates a temporary file beside the target."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".promptsel-check-"):
            return True
    except OSError:
        return False


def write(command: str, result: Any, path: Path, as_suffix: str | None = None) -> None:
    text = format_for(command, path, as_suffix).render(result)
    atomic_write(path, text)  # a run stopped while writing leaves the old report whole


def print_json(command: str, result: Any) -> None:
    """``--json``: the command's JSON format on stdout (machine output; people's goes to stderr)."""
    sys.stdout.write(FORMATS[command][".json"].render(result))


def to_json(result: Any) -> str:
    """A result as indented JSON: a dict or list as it is, anything else by its ``as_dict()``."""
    data = result if isinstance(result, (dict, list)) else result.as_dict()
    return json.dumps(data, indent=2) + "\n"
