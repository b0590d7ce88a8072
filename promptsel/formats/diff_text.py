"""``promptsel diff`` in words and rows: one wording for the terminal, Markdown and HTML."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _n(x: Any, digits: int = 3) -> str:
    return "–" if x is None else f"{float(x):.{digits}f}"


def _signed(x: Any, digits: int = 3) -> str:
    return "–" if x is None else f"{float(x):+.{digits}f}"


def _interval(pair: Any) -> str:
    return "–" if not pair else f"[{_signed(pair[0])}, {_signed(pair[1])}]"


def headline(result: Mapping[str, Any]) -> str:
    """The answer in one line: no change, or what changed."""
    if result["no_change"]:
        return "No change: the same choice, and every prompt's predictions are the same." if result["paired"] else \
            "No change in the summary numbers: the same choice and the same performance for every prompt."
    bits = []
    choice = result["choice"]
    if choice["changed"]:
        bits.append(f"the choice changed from {choice['a']} to {choice['b']}")
    changed = result["changed"]
    if changed:
        bits.append(f"{len(changed)} prompt{'s' if len(changed) != 1 else ''} changed measurably ({', '.join(changed[:8])}"
                    f"{' …' if len(changed) > 8 else ''})")
    for what in ("appeared", "disappeared"):
        if result[what]:
            bits.append(f"{len(result[what])} prompt{'s' if len(result[what]) != 1 else ''} {what}")
    if not bits:
        bits.append("predictions changed, but no prompt's performance changed measurably" if result["paired"]
                    else "performance numbers moved (not a paired comparison: see the notes)")
    text = "; ".join(bits)
    return text[0].upper() + text[1:] + "."


def detail_lines(result: Mapping[str, Any]) -> list[str]:
    """What the headline rests on: the choice, the measurable changes, the ranking, the inputs."""
    a, b = result["a"], result["b"]
    lines = [f"A: {a['path']} ({a['kind']}, {a['prompts']} prompts, {a['examples']} examples); "
             f"B: {b['path']} ({b['kind']}, {b['prompts']} prompts, {b['examples']} examples)."]
    choice = result["choice"]
    if choice["changed"] is None:
        lines.append("Choice: not compared (a run without labels has no measured best prompt).")
    elif not choice["changed"]:
        lines.append(f"Choice: {choice['a']} in both runs.")
    level = f"{result['level']:.0%}"
    by_id = {r["id"]: r for r in result["prompts"]}
    for pid in result["changed"]:
        r = by_id[pid]
        lines.append(f"{pid}: {result['metric']} {_n(r.get('a_shared', r['a']))} → {_n(r.get('b_shared', r['b']))}, "
                     f"{_signed(r['delta'])} ({level} paired interval {_interval(r['delta_interval'])}; "
                     f"{r['changed_predictions']} of {r['shared_examples']} predictions changed).")
    rank = result["rank_correlation"]
    if rank["spearman"] is not None:
        lines.append(f"Rank correlation of the {rank['prompts']} prompts' {result['metric']}: Spearman {_n(rank['spearman'])}, "
                     f"Kendall {_n(rank['kendall'])}.")
    for what in ("appeared", "disappeared"):
        if result[what]:
            lines.append(f"{what.capitalize()} (in {'B only' if what == 'appeared' else 'A only'}): {', '.join(result[what])}.")
    if result.get("edited"):
        lines.append(f"Template changed under the same id: {', '.join(result['edited'])}.")
    lines += result.get("notes") or []
    return lines


def table(result: Mapping[str, Any], top: int | None = None, *, short: bool = False) -> tuple[list[str], list[list[str]]]:
    """Headers and rows, the measurable changes first, then by the size of the change. ``short``:
    the runs' columns headed A and B (the terminal names the metric in the table's title)."""
    metric = result["metric"]
    paired = result["paired"]
    headers = ["prompt", f"{metric} A", f"{metric} B", "Δ"] if not short else ["prompt", "A", "B", "Δ"]
    if paired:
        # "changed": how many of the shared examples' predictions differ between the runs.
        headers += [f"{result['level']:.0%} paired interval", "changed", "verdict"]

    def order(r: Mapping[str, Any]) -> tuple[int, float]:
        return (0 if r["id"] in result["changed"] else 1, -abs(r["delta"] or 0.0))

    rows = []
    for r in sorted(result["prompts"], key=order)[:top]:
        cells = [r["id"], _n(r.get("a_shared", r["a"])), _n(r.get("b_shared", r["b"])), _signed(r["delta"])]
        if paired:
            cells += [_interval(r["delta_interval"]), f"{r['changed_predictions']}/{r['shared_examples']}", r["verdict"] or "–"]
        rows.append(cells)
    return headers, rows
