"""Selection quality of every method (the label-free baselines and both FUTE variants) on the
evaluation datasets, with the default model, like Table 3 of the FUTE paper.

Per dataset and method: the chosen prompt, its performance, the rate (performance / best
prompt's), NDCG (min-max relevance) beside the NDCG a random ranking gets, and wall time. Then
averages per task category (sentiment: SST-2, RT, IMDB; NLI: CB, ANLI-R3, RTE), and, per method,
the rank correlation (Spearman) of its prompt scores between every two datasets of the same
task: a method whose ranking does not move when the dataset changes (correlation 1.000) cannot
be telling datasets apart. FUTE's cost is recorded per embedding: each MTE, each DTE, and
whether the second dataset of a task reused the first one's MTEs. ``--save-tables DIR`` keeps
each dataset's ScoreTable, so calibrations and label-free rules can be compared on them later
without the model (``python -m bench.bench_consensus --tables DIR``).

Data comes from the shared data directory (``PROMPTSEL_SHARED`` or ``../shared`` beside the
repository; never copied into the project). ANLI-R3 has no train split offline: its DTE trains
on the validation split while the test split is evaluated. WANLI has no test split offline and
is left out.

Usage: ``python -m bench.bench_quality [--limit N] [--unlabeled-size N] [--datasets a,b] [--write]``.
Everything goes through the user's result cache and embedding store, so an interrupted run
resumes, and a rerun costs only what changed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from bench.lib import results_md
from bench.lib.quality import DATASETS, fmt, request, shared_data, spearman, timed_select


def run_one(name: str, args: argparse.Namespace, data: Path) -> dict:
    from promptsel.fute.options import FuteOptions

    return timed_select(request(
        name, args, data, methods=["all"],
        groups=(FuteOptions(unlabeled="pool", unlabeled_size=args.unlabeled_size, dte_size=args.dte_size),),
        save_scores=args.save_tables / f"{name}.npz" if args.save_tables else None,
    ))


def rows_for(name: str, report: dict) -> list[dict]:
    out = []
    for method, e in report["methods"].items():
        out.append({
            "dataset": name, "method": method, "chosen": e["chosen"], "performance": e["performance"],
            "rate": e["rate"], "ndcg": e["ndcg"], "random_ndcg": report["random"]["ndcg"],
            "seconds": report["timings"]["methods"].get(method),
        })
    return out


def correlation_lines(reports: dict[str, dict]) -> list[str]:
    """Per method, Spearman between its prompt scores on every two datasets of one task (the
    prompts are the same set); ``performance`` is the true accuracies' own correlation."""
    lines = ["", "Rank correlation (Spearman) of each method's prompt scores between datasets of the same task; the",
             "`performance` row is the true accuracies' (how much the best prompts really change):", ""]
    pairs = [(a, b) for i, a in enumerate(reports) for b in list(reports)[i + 1:] if DATASETS[a][1] == DATASETS[b][1]]
    if not pairs:
        return []
    lines += ["| method | " + " | ".join(f"{a} ~ {b}" for a, b in pairs) + " |", "|---|" + "---|" * len(pairs)]
    methods = ["performance", *dict.fromkeys(m for r in reports.values() for m in r["methods"])]
    for method in methods:
        cells = []
        for a, b in pairs:
            pa = {p["id"]: (p["performance"] if method == "performance" else p["scores"].get(method)) for p in reports[a]["prompts"]}
            pb = {p["id"]: (p["performance"] if method == "performance" else p["scores"].get(method)) for p in reports[b]["prompts"]}
            ids = [i for i in pa if pa[i] is not None and pb.get(i) is not None]
            cells.append(fmt(spearman([pa[i] for i in ids], [pb[i] for i in ids])) if len(ids) > 2 else "–")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def recommendation_lines(reports: dict[str, dict]) -> list[str]:
    lines = ["", "The recommendation per dataset (with labels: the best measured prompt; `label-free` is what the",
             "default rule picks without them, and its stability over resamples of the inputs):", "",
             "| dataset | recommended | performance (95 % interval) | indistinguishable | label-free pick | its performance | warnings |",
             "|---|---|---|---|---|---|---|"]
    for name, report in reports.items():
        rec = report.get("recommendation") or {}
        free = rec.get("label_free") or {}
        interval = rec.get("performance_interval") or [None, None]
        alts = ", ".join(a["prompt"] for a in rec.get("indistinguishable") or []) or "none"
        codes = ", ".join(sorted({w["code"] for w in report.get("warnings") or []})) or "none"
        lines.append(f"| {name} | {rec.get('prompt', '–')} | {fmt(rec.get('performance'))} ({fmt(interval[0])}–{fmt(interval[1])}) | "
                     f"{alts} | {free.get('rule', '–')}: {free.get('prompt', '–')} | {fmt(free.get('performance'))} | {codes} |")
    return lines


def interval_lines(reports: dict[str, dict], tables: Path, resamples: int) -> list[str]:
    """Each method's NDCG over ``resamples`` bootstrap draws of the eval examples: the methods that
    read the eval examples are rerun on each draw, the others (FUTE, Self-Select: their scores come
    from U, the train split or the model) keep their scores while the accuracies they are judged
    by move. ``above random``: the share of draws where the method's NDCG beats a random ranking's."""
    import numpy as np

    from promptsel.model import metrics
    from promptsel.model.scoretable import ScoreTable
    from promptsel.model.stats import resample_indices, resampled_table
    from promptsel.plugins import registries
    from promptsel.selector import SelectionContext

    names = [n for n in reports if (tables / f"{n}.npz").is_file()]
    if not names:
        return []
    lines = ["", f"How much of this is the sample: each method's NDCG over {resamples:,} bootstrap resamples of the eval",
             "examples (methods that read them rerun on each; FUTE and Self-Select keep their scores while the",
             "accuracies move): the 90 % interval, and the share of resamples where it beats a random ranking:", "",
             "| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    ctx, cells = SelectionContext(), {}
    for name in names:
        table, report = ScoreTable.load(tables / f"{name}.npz"), reports[name]
        fixed = {m: np.array([p["scores"][m] for p in report["prompts"]], dtype=float) for m in report["methods"]}
        classes = {m: registries().selectors.get(m) for m in report["methods"]}
        rerun = {m: cls() for m, cls in classes.items() if cls.bootstrap is None}
        predictions = table.predictions
        draws: dict[str, list[float]] = {m: [] for m in report["methods"]}
        wins = dict.fromkeys(report["methods"], 0)
        for pick in resample_indices(table.n_examples, resamples, seed=0):
            sub = resampled_table(table, pick)
            perf = metrics.performance(predictions[:, pick], table.labels[pick])
            chance = metrics.random_ndcg(perf, "minmax")
            for m in report["methods"]:
                value = metrics.ndcg(np.asarray(rerun[m].score(sub, ctx), dtype=float) if m in rerun else fixed[m], perf, "minmax")
                if value is not None:
                    draws[m].append(value)
                    wins[m] += chance is not None and value > chance
        for m, values in draws.items():
            lo, hi = np.percentile(values, [5, 95]) if values else (None, None)
            cells.setdefault(m, []).append(f"{fmt(lo)}–{fmt(hi)}, {wins[m] / resamples:.0%}" if values else "–")
    return lines + [f"| {m} | " + " | ".join(c) + " |" for m, c in cells.items()]


def mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return sum(values) / len(values) if values else None


def markdown(reports: dict[str, dict], args: argparse.Namespace, command: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"### {stamp}, {platform.machine()}, {os.cpu_count()} cores", "", f"Command: `{command}`", ""]
    first = next(iter(reports.values()))
    fute = first.get("fute") or {}
    u = fute.get("unlabeled") or {}
    lines += [
        f"Model: {first['backend']['model']} ({first['backend']['name']}). Eval: a seeded, class-stratified sample of "
        f"{args.limit} examples per dataset (IMDB cut to {args.imdb_chars} characters). U: {u.get('name')}, "
        f"{u.get('size')} texts from {len(u.get('sources', {}))} sources. Surrogate: {fute.get('surrogate', {}).get('name')}. "
        f"DTE: {args.dte_size} train examples (10 % held out for early stopping).",
        "",
        "| dataset | method | chosen | performance | rate | NDCG | random NDCG | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    all_rows = []
    for name, report in reports.items():
        rows = rows_for(name, report)
        all_rows += rows
        for r in rows:
            lines.append(f"| {name} | {r['method']} | {r['chosen']} | {fmt(r['performance'])} | {fmt(r['rate'])} | "
                         f"{fmt(r['ndcg'])} | {fmt(r['random_ndcg'])} | {fmt(r['seconds'], 1)} |")
        lines.append(f"| {name} | *oracle* | {report['oracle']['chosen']} | {fmt(report['oracle']['performance'])} | 1.000 | 1.000 | | |")
    lines += ["", "Averages per task category (the paper's Table 3 layout):", "",
              "| category | method | datasets | performance | rate | NDCG | random NDCG |", "|---|---|---|---|---|---|---|"]
    for category in ("sentiment", "nli"):
        names = [n for n in reports if DATASETS[n][1] == category]
        if not names:
            continue
        methods = list(dict.fromkeys(r["method"] for r in all_rows))
        for method in methods:
            rs = [r for r in all_rows if r["method"] == method and r["dataset"] in names]
            lines.append(f"| {category} | {method} | {len(rs)} | {fmt(mean(rs, 'performance'))} | {fmt(mean(rs, 'rate'))} | "
                         f"{fmt(mean(rs, 'ndcg'))} | {fmt(mean(rs, 'random_ndcg'))} |")
    lines += correlation_lines(reports)
    if args.save_tables and args.bootstrap:
        lines += interval_lines(reports, args.save_tables, args.bootstrap)
    lines += recommendation_lines(reports)
    lines += ["", "Time per dataset. Eval scoring (LLM on the eval split) is shared by every method; a baseline's own",
              "seconds above are only its arithmetic on that table. FUTE's: training per embedding (`reused` = read",
              "from the store), U scoring (LLM on U, once per model, prompt set and task), and FUTE in all:", "",
              "| dataset | eval scoring s | MTEs computed | MTEs reused | DTEs computed | s per MTE (mean) | s per DTE (mean) | U scoring s | total FUTE s |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, report in reports.items():
        f = report.get("fute") or {"embeddings": [], "timings": {}}
        emb = f["embeddings"]
        mc = [e for e in emb if e["kind"] == "mte" and e["status"] == "computed"]
        dc = [e for e in emb if e["kind"] == "dte" and e["status"] == "computed"]
        mr = [e for e in emb if e["kind"] == "mte" and e["status"] == "reused"]
        avg = lambda es: fmt(sum(e["seconds"] for e in es) / len(es), 1) if es else "–"  # noqa: E731
        fute_seconds = sum(s for m, s in report["timings"]["methods"].items() if m.startswith("fute-"))
        fute_seconds += f["timings"].get("unlabeled_scoring", 0.0)
        lines.append(f"| {name} | {fmt(report['timings'].get('scoring'), 1)} | {len(mc)} | {len(mr)} | {len(dc)} | {avg(mc)} | {avg(dc)} | "
                     f"{fmt(f['timings'].get('unlabeled_scoring'), 1)} | {fmt(fute_seconds, 1)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated (default: all six)")
    ap.add_argument("--limit", type=int, default=100, help="eval examples per dataset (default 100)")
    ap.add_argument("--unlabeled-size", type=int, default=200, help="|U| (default 200)")
    ap.add_argument("--dte-size", type=int, default=500, help="train examples for a DTE (default 500)")
    ap.add_argument("--imdb-chars", type=int, default=600, help="IMDB reviews cut to this many characters")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write every report to this JSON file")
    ap.add_argument("--save-tables", type=Path, help="keep each dataset's ScoreTable in this folder (NAME.npz)")
    ap.add_argument("--bootstrap", type=int, default=1000,
                    help="resamples of the eval examples for each method's NDCG interval (needs --save-tables; 0: none)")
    ap.add_argument("--write", action="store_true", help="append the tables to bench/RESULTS.md")
    ap.add_argument("--from-json", type=Path, action="append",
                    help="only render the tables from reports saved with --json (repeatable: runs of different datasets)")
    args = ap.parse_args()
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        sys.exit(f"error: unknown dataset {unknown[0]!r}; choose from {', '.join(DATASETS)}.")
    reports = {}
    if args.from_json:
        saved = {k: v for path in args.from_json for k, v in json.loads(path.read_text()).items()}
        reports = {n: saved[n] for n in names if n in saved}
        names = []
    data = shared_data()
    if args.save_tables:
        args.save_tables.mkdir(parents=True, exist_ok=True)
    for name in names:
        print(f"[{datetime.now():%H:%M:%S}] {name} ...", file=sys.stderr, flush=True)
        reports[name] = run_one(name, args, data)
        r = reports[name]
        print(f"[{datetime.now():%H:%M:%S}] {name}: {r['bench_wall_seconds']:.0f} s; " + ", ".join(
            f"{m}={e['chosen']}:{fmt(e['performance'])}" for m, e in r["methods"].items()), file=sys.stderr, flush=True)
        if args.json:
            args.json.write_text(json.dumps(reports, indent=1))
    # no paths of this machine in RESULTS.md
    command = "python -m bench.bench_quality " + " ".join("DIR" if os.path.isabs(a) else a for a in sys.argv[1:])
    text = markdown(reports, args, command)
    results_md.publish(text, args.write)


if __name__ == "__main__":
    main()
