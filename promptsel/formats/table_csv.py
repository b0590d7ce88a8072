"""``-o report.csv``: one row per prompt, for a spreadsheet or pandas.

Columns: the prompt, whether it is recommended, its measured performance and interval, its lead
interval and whether it is indistinguishable from the recommended prompt, its pick share, its
most predicted class and that class's share, then each method's score and rank. Empty cells
where a number does not apply (no labels, a method that did not score it)."""

from __future__ import annotations

import csv
import io
from typing import Any


def select_rows(report: dict[str, Any]) -> str:
    methods = list(report.get("methods") or {})
    metric = report.get("metric") or "performance"
    ranks = {m: {pid: i + 1 for i, pid in enumerate(report["methods"][m].get("ranking") or [])} for m in methods}
    recommended = (report.get("recommendation") or {}).get("prompt")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["prompt", "recommended", metric, f"{metric}_low", f"{metric}_high", "lead_low", "lead_high",
                     "indistinguishable", "pick_share", "top_class", "top_share",
                     *(f"{m}_{what}" for m in methods for what in ("score", "rank"))])
    for p in report.get("prompts") or []:
        interval = p.get("performance_interval") or [None, None]
        lead = p.get("lead_interval") or [None, None]
        writer.writerow([p["id"], p["id"] == recommended, _cell(p.get("performance")), _cell(interval[0]), _cell(interval[1]),
                         _cell(lead[0]), _cell(lead[1]), _cell(p.get("indistinguishable")), _cell(p.get("pick_share")),
                         _cell(p.get("top_class")), _cell(p.get("top_share")),
                         *(v for m in methods for v in (_cell((p.get("scores") or {}).get(m)), _cell(ranks[m].get(p["id"]))))])
    return out.getvalue()


def _cell(value: Any) -> Any:
    # Full precision (repr) for numbers: a spreadsheet rounds for display, not the file.
    return "" if value is None else value
