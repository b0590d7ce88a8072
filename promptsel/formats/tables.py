"""The check's findings as table rows, shared by the terminal and the Markdown renderings."""

from __future__ import annotations

from ..gate.check import EntryCheck
from ..gate.compare import NOTE, UNCHANGED


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _g(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"


def _delta(before: float | None, after: float | None, digits: str = ".3f") -> str:
    return "" if before is None or after is None or before == after else format(after - before, "+" + digits)


def method_table(entry: EntryCheck) -> tuple[list[str], list[list[str]]]:
    """Headers and rows (the first cell is the verdict) of the per-method table of an entry:
    each method's choice and the performance (or, without labels, the score) of it."""
    num, digits = (_f, ".3f") if entry.labels else (_g, ".4g")
    headers = ["", "method", "chosen before", "chosen after", f"{entry.metric if entry.labels else 'score'} before", "after", "Δ"]
    rows = [[f.kind, f.name, f.chosen[0] or "", f.chosen[1] or "", num(f.before), num(f.after), _delta(f.before, f.after, digits)]
            for f in entry.findings if f.subject == "method" and f.kind != NOTE]
    return headers, rows


def prompt_table(entry: EntryCheck) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the prompts that changed: what changed and, with labels, the
    performance before and after (without labels the score changes are in "what changed")."""
    rows = [[f.kind, f.name, "; ".join(f.changes), _f(f.before), _f(f.after), _delta(f.before, f.after)]
            for f in entry.findings if f.subject == "prompt" and f.kind != UNCHANGED]
    if entry.labels:
        return ["", "prompt", "what changed", f"{entry.metric} before", "after", "Δ"], rows
    return ["", "prompt", "what changed"], [row[:3] for row in rows]
