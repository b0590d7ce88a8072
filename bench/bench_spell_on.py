"""SPELL on the raw template (``--spell-on raw``) against SPELL on the prompt as the model sees it
(``--spell-on prompt``): which prompt each picks and how well each ranks the prompts, on the
quality benchmark's datasets and samples (``bench/bench_quality.py``'s requests, so a run after it
reuses its label scores and its raw SPELL scores from the cache and computes only what is new).

Per dataset and text: SPELL's choice, its performance, rate and NDCG, its Spearman with the true
accuracies, and the run's seconds (what was not in the cache yet); then, per text, the rank
correlation of SPELL's prompt scores between every two datasets. ``raw`` is the method as Gonen et al. define it (the instantiated template alone);
``prompt`` reads the template's tokens from the label-scoring pass (after the system turn and the
chat header), so it needs no pass of its own.

Usage: ``python -m bench.bench_spell_on [--datasets a,b] [--limit N] [--write]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from bench.lib import results_md
from bench.lib.quality import DATASETS, fmt, request, shared_data, spearman, timed_select

TEXTS = {"raw": "template", "prompt": "prompt"}


def run(name: str, text: str, args: argparse.Namespace, data: Path) -> dict:
    from promptsel.model.request import ScoringOptions

    return timed_select(request(name, args, data, methods=["spell"], scoring=ScoringOptions(spell_text=TEXTS[text])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default="sst2,rotten_tomatoes,imdb", help="comma-separated (default: the sentiment sets)")
    ap.add_argument("--limit", type=int, default=200, help="eval examples per dataset (default 200)")
    ap.add_argument("--imdb-chars", type=int, default=600, help="IMDB reviews cut to this many characters")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", action="store_true", help="append the tables to bench/RESULTS.md")
    args = ap.parse_args()
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    if unknown := [n for n in names if n not in DATASETS]:
        sys.exit(f"error: unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(DATASETS)}.")
    data = shared_data()
    reports = {(n, t): run(n, t, args, data) for n in names for t in TEXTS}

    command = "python -m bench.bench_spell_on " + " ".join("DIR" if os.path.isabs(a) else a for a in sys.argv[1:])
    lines = [f"### {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores", "",
             f"Command: `{command.strip()}`", "",
             "| dataset | SPELL on | chosen | performance | rate | NDCG | Spearman with accuracy | oracle | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (name, text), r in reports.items():
        s = r["methods"]["spell"]
        lines.append(f"| {name} | {text} | {s['chosen']} | {fmt(s['performance'])} | {fmt(s['rate'])} | {fmt(s['ndcg'])} | "
                     f"{fmt(s['spearman'])} | {r['oracle']['chosen']} {fmt(r['oracle']['performance'])} | "
                     f"{fmt(r['bench_wall_seconds'], 0)} |")
    for text in TEXTS:
        ndcg = [reports[(n, text)]["methods"]["spell"]["ndcg"] for n in names]
        lines.append(f"| *mean* | {text} | | | | {fmt(sum(ndcg) / len(ndcg))} | | | |")
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if DATASETS[a][1] == DATASETS[b][1]]
    if pairs:
        lines += ["", "SPELL's prompt scores, rank correlation between datasets:", "",
                  "| SPELL on | " + " | ".join(f"{a} ~ {b}" for a, b in pairs) + " |", "|---|" + "---|" * len(pairs)]
        for text in TEXTS:
            cells = []
            for a, b in pairs:
                sa, sb = (scores(reports[(n, text)]) for n in (a, b))
                ids = [i for i in sa if i in sb]
                cells.append(fmt(spearman([sa[i] for i in ids], [sb[i] for i in ids])))
            lines.append(f"| {text} | " + " | ".join(cells) + " |")
    lines += ["", "The two texts' prompt scores on one dataset, rank correlation:", "", "| dataset | raw ~ prompt |", "|---|---|"]
    for n in names:
        sr, sp = scores(reports[(n, "raw")]), scores(reports[(n, "prompt")])
        ids = [i for i in sr if i in sp]
        lines.append(f"| {n} | {fmt(spearman([sr[i] for i in ids], [sp[i] for i in ids]))} |")
    text = "\n".join(lines) + "\n"
    results_md.publish(text, args.write)


def scores(report: dict) -> dict[str, float]:
    return {p["id"]: p["scores"]["spell"] for p in report["prompts"] if p["scores"].get("spell") is not None}


if __name__ == "__main__":
    main()
