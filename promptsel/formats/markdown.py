"""Markdown: the selection report, and the check as a pull-request comment."""

from __future__ import annotations

from typing import Any

from ..gate.check import CheckResult, EntryCheck
from ..gate.compare import (
    IMPROVED,
    NEW,
    NOT_COMPARABLE,
    NOTE,
    REGRESSED,
    REMOVED,
    UNCHANGED,
    WITHIN,
)
from .summary import (
    axes_text,
    example_lines,
    example_table,
    performance_cell,
    recommendation_lines,
    section_lines,
    warning_lines,
)
from .tables import method_table, prompt_table


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _recommendation(report: dict[str, Any]) -> list[str]:
    lines = recommendation_lines(report)
    out = ["## Recommendation", "", f"**{_cell(lines[0])}**", "", *(f"- {_cell(line)}" for line in lines[1:]), ""] if lines else []
    warnings = warning_lines(report)
    if warnings:
        out += ["## Warnings", "", *(f"- **{code}**{' (info)' if severity == 'info' else ''}: {_cell(message)}"
                                     for severity, code, message in warnings), ""]
    return out


def _inputs_line(report: dict[str, Any]) -> str:
    """Where the numbers come from, with no ``None`` in it: a backend and model, or a scores file."""
    ds, be = report["dataset"], report["backend"]
    if be.get("name"):
        source = f"Backend `{be['name']}`, model `{be.get('model') or '–'}`"
    else:
        source = f"From the scores file `{str(ds.get('source') or '').removeprefix('scores:') or ds['name']}`"
    calibration = report.get("calibration")
    extra = f"; calibration {calibration}" if calibration and calibration != "none" else ""
    return f"{source}; metric {report['metric']}{extra}; seed {report['seed']}."


def _run_record(report: dict[str, Any]) -> list[str]:
    """When and how the report was made, as the JSON records it (lm-eval users expect one)."""
    run = report.get("run") or {}
    lines = []
    if run.get("timestamp"):
        lines.append(f"- when: {run['timestamp']}")
    if run.get("command"):
        lines.append(f"- command: `{run['command']}`")
    for key, what in (("promptsel_revision", "promptsel revision"), ("prompts_revision", "prompts revision")):
        found = run.get(key) or {}
        if found.get("commit"):
            lines.append(f"- {what}: `{found['commit'][:12]}`{' (uncommitted changes)' if found.get('dirty') else ''}")
    versions = report.get("versions") or {}
    if versions:
        lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    return ["## Run record", "", *lines, ""] if lines else []


def select_report(report: dict[str, Any]) -> str:
    """A Markdown report (for pull-request comments and docs): the answer first, the prompts
    best first with their intervals, folded, and the run record last."""
    ds = report["dataset"]
    methods = list(report["methods"])
    variants = any(p.get("parent") for p in report["prompts"])  # a column only for a set with variants
    where = ", ".join(x for x in (ds.get("split"), f"n={ds['n']}") if x)
    lines = [
        f"# promptsel: {ds['name']} ({where})",
        "",
        _inputs_line(report),
        "",
        *_recommendation(report),
    ]
    ranks = {m: {pid: i + 1 for i, pid in enumerate(report["methods"][m]["ranking"])} for m in methods}
    # Best first; without labels in file order (the methods' ranks are in every cell).
    prompts = sorted(report["prompts"], key=lambda p: -p["performance"]) if all(
        p.get("performance") is not None for p in report["prompts"]) else list(report["prompts"])
    measured = any(p.get("performance") is not None for p in prompts)
    level = (report.get("recommendation") or {}).get("level", 0.95)
    perf_heads = f" | {report['metric']} | {level:.0%} interval" if measured else ""
    lines += [
        "## Prompts",
        "",
        f"<details><summary>{len(prompts)} prompts × {len(methods)} methods: score (#rank)"
        f"{', best first' if measured else ''}</summary>",
        "",
        "| prompt" + perf_heads + " | " + " | ".join(methods) + (" | variant of" if variants else "") + " |",
        "|---|" + ("---|---|" if measured else "") + "---|" * len(methods) + ("---|" if variants else ""),
    ]
    for p in prompts:
        cells = [f"{_fmt(p['scores'].get(m), 4)} (#{ranks[m][p['id']]})" for m in methods]
        perf = f" | {performance_cell(p)} | {_interval(p.get('performance_interval'))}" if measured else ""
        origin = (f" | {_cell(p['parent'])} ({_cell(axes_text(p.get('axes') or {}))})" if p.get("parent") else " | –") if variants else ""
        lines.append(f"| {_cell(p['id'])}{perf} | " + " | ".join(cells) + origin + " |")
    lines += ["", "</details>", ""]
    lines += ["## Choice per method", "", "| method | chosen | performance | rate | NDCG | Spearman | Kendall |", "|---|---|---|---|---|---|---|"]
    for m, e in report["methods"].items():
        tied = f" (tied: {', '.join(e['tied'])})" if len(e["tied"]) > 1 else ""
        lines.append(
            f"| {m} | {e['chosen']}{tied} | {_fmt(e['performance'])} | {_fmt(e['rate'])} | {_fmt(e['ndcg'])} "
            f"| {_fmt(e['spearman'])} | {_fmt(e['kendall'])} |"
        )
    if report.get("adaptive"):
        lines += ["", f"An adaptive run: the methods' columns are measured on the {report['adaptive']['common_inputs']} inputs "
                  "every prompt was scored on; each prompt's performance on its own n inputs (see Prompts)."]
    if report["oracle"]["chosen"] is not None:
        lines += [
            "",
            f"Oracle: {report['oracle']['chosen']} ({_fmt(report['oracle']['performance'])}). "
            f"Random ranking: expected NDCG {_fmt(report['random']['ndcg'])}, expected performance {_fmt(report['random']['performance'])}.",
        ]
    sections = section_lines(report)
    if sections:
        lines += ["", *(_cell(line) for line in sections)]
    lines += _examples(report)
    record = _run_record(report)
    if record:
        lines += ["", *record]
    return "\n".join(lines).rstrip("\n") + "\n"


def _examples(report: dict[str, Any]) -> list[str]:
    """The examples behind the choice: the counts, the confusion matrix, the listed examples folded."""
    found = report.get("examples")
    if not found:
        return []
    out = ["", "## The examples behind the choice", "", *(f"- {_cell(line)}" for line in example_lines(report))]
    for pid, template in (found.get("templates") or {}).items():
        if template is not None:
            out.append(f"- {_cell(pid)}: `{_cell(template).replace('`', chr(39))}`")
    confusion = found.get("confusion")
    if confusion:
        classes = confusion["classes"]
        rows = [[c, *map(str, row), _fmt(acc)] for c, row, acc in zip(classes, confusion["matrix"], confusion["class_accuracy"])]
        out += ["", f"Confusion matrix of {found['recommended']}:", "", *_table(["gold \\ predicted", *classes, "accuracy"], rows)]
    headers, rows = example_table(report)
    if rows:
        out += ["", f"<details><summary>{found['shown']} of the {found['disagreements']} examples where they answer differently"
                    "</summary>", "", *_table(headers, rows), "", "</details>"]
    return out


def _interval(pair: Any) -> str:
    return "–" if not pair else f"{_fmt(pair[0])}–{_fmt(pair[1])}"


# --- the check ------------------------------------------------------------------------------

_MARK = {REGRESSED: "❌", IMPROVED: "⬆️", WITHIN: "〰️", UNCHANGED: "✅", NEW: "🆕", REMOVED: "➖", NOT_COMPARABLE: "⚠️"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return lines


def _cache_line(entry: EntryCheck) -> str:
    if entry.new is None:
        return "Not run: the lock does not match this run's inputs."
    hits, misses = (entry.cache or {}).get("hits", 0), (entry.cache or {}).get("misses", 0)
    return f"Ran in {entry.seconds:.1f} s; {hits} of {hits + misses} model results came from the cache."


def check_result(result: CheckResult) -> str:
    """The check as Markdown, written to be read in a pull-request comment."""
    n = len(result.regressions)
    title = {
        "passed": "## ✅ promptsel check passed",
        REGRESSED: f"## ❌ promptsel check failed: {n} regression{'s' if n != 1 else ''}",
        NOT_COMPARABLE: "## ⚠️ promptsel check could not compare: the lock does not match this run",
        "updated": f"## 🔄 promptsel check --update: {result.lock_path.name} rewritten",
    }[result.status]
    lines = [title, "", f"Lock `{result.lock_path.name}` · tolerance {result.policy.tolerance} · "
             f"floor for new prompts: {result.policy.floor}.", ""]
    headings = (("Accepted regressions", "Accepted new inputs") if result.updated else ("Regressions", "Not comparable"))
    for heading, kind in zip(headings, (REGRESSED, NOT_COMPARABLE)):
        # With several lock entries, say which one each finding belongs to.
        found = [(e, f) for e in result.entries for f in e.of(kind)]
        where = (lambda e: f"`{e.key}`: ") if len(result.entries) > 1 else (lambda e: "")
        if found:
            lines += [f"### {heading}", "", *(f"- {where(e)}{_cell(f.message)}." for e, f in found), ""]
    if result.not_comparable and not result.updated:
        lines += ["Use the locked model and data (`--model`, `--data-dir`), or accept the new inputs with "
                  "`promptsel check --update` and commit the lock.", ""]
    for entry in result.entries:
        lines += [f"### `{entry.key}`", "", _cache_line(entry), ""]
        if entry.new is None:
            continue
        for headers, rows in (method_table(entry), prompt_table(entry)):
            if rows:
                lines += [*_table(headers, [[f"{_MARK.get(r[0], '')} {r[0]}", *r[1:]] for r in rows]), ""]
        same = sum(1 for f in entry.of(UNCHANGED) if f.subject == "prompt")
        lines += [f"{same} prompt{'s' if same != 1 else ''} unchanged."]
        notes = entry.of(NOTE)
        if notes:
            lines += ["", "Notes: " + "; ".join(_cell(f.message) for f in notes) + "."]
        lines += [""]
    lines += ["<details><summary>How promptsel check decides</summary>", "", *_RULES_MD, "", "</details>", ""]
    if result.status in (REGRESSED, NOT_COMPARABLE):
        lines += ["If the change is intended, run `promptsel check --update` and commit the lock.", ""]
    return "\n".join(lines)


_RULES_MD = [
    "A check fails when, beyond the tolerance: a method's chosen prompt performs worse; a method switches to a prompt "
    "that performs worse than its previous choice does now; a locked prompt performs worse; or a new prompt performs "
    "below the floor. Without labels it fails when a method's chosen prompt scores below the lower end of the locked "
    "95% bootstrap interval of its choice's score (ZPS, Self-Select and FUTE: the tolerance instead). A different "
    "model or evaluation sample is an error (not comparable), not a regression.",
]


# --- promptsel diff ---------------------------------------------------------------------------

def diff_report(result: dict[str, Any]) -> str:
    """``promptsel diff`` as Markdown: the answer, what it rests on, and the prompts folded."""
    from .diff_text import detail_lines, headline, table

    headers, rows = table(result)
    lines = ["# promptsel diff", "", f"**{_cell(headline(result))}**", "", *(f"- {_cell(line)}" for line in detail_lines(result)), "",
             f"<details><summary>{len(rows)} prompts</summary>", "", *_table(headers, rows), "", "</details>", ""]
    return "\n".join(lines)
