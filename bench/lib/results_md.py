"""bench/RESULTS.md, where every benchmark's ``--write`` adds its section."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "RESULTS.md"


def append(text: str) -> None:
    """Add ``text`` at the end of RESULTS.md after a blank line (a section is then moved under its
    benchmark's heading by hand, with a reading of it)."""
    with open(RESULTS, "a", encoding="utf-8") as fh:
        fh.write("\n" + text.lstrip("\n"))


def publish(text: str, write: bool) -> None:
    """Print a benchmark's section, and with ``--write`` (``write``) add it to RESULTS.md too."""
    print(text)
    if write:
        append(text)
