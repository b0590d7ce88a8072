"""Prompt variants with the default model: `expand` the README's prompts, then `select --holdout
--adaptive` among them, on Rotten Tomatoes and SST-2 (issue 22's benchmark).

For each dataset, one cold run (an empty cache) of the README's workflow:

    promptsel expand prompts/sa.toml -o variants.toml --n 15 --seed 0
    promptsel select -d DATASET -p variants.toml --limit 200 --holdout 0.5 --adaptive -m mi,globale

through bench/lib/counting.py (tokens as llama.cpp evaluated them), on both cores, one dataset
after the other; SST-2 with `--data-dir` the shared folder's data (``PROMPTSEL_SHARED``, else
``../shared``), Rotten Tomatoes from the quick start's offline source, as the README runs them.
Reported: the number of prompts, the cells scored out of all, the wall time; the chosen prompt against the best original (unexpanded) prompt on the held-out half, with the
paired interval of the difference (the report's ``holdout`` block); and which axes mattered: for
each axis, each value's mean accuracy over the variants that took it, read on the inputs every
prompt was scored on (the adaptive run's common inputs, so that a variant dropped early is not
judged on fewer, luckier or unluckier, inputs than one kept), and the spread between values.
Self-select is left out (it refuses more than 26 prompts) and SPELL too (it would add a pass
over every prompt's text); MI and GlobalE read only the label scores.

    python -m bench.bench_expand --json bench/expand.json [--keep DIR] [--write]
    python -m bench.bench_expand --from-json bench/expand.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.lib import results_md
from bench.lib.cold_run import ROOT, command_line, run_quickstart, without_paths, work_dir
from bench.lib.shared_dir import shared_path

DATASETS = ("rotten_tomatoes", "sst2")
EXPAND = ["prompts/sa.toml", "--n", "15", "--seed", "0"]
SELECT = ["--limit", "200", "--holdout", "0.5", "--adaptive", "-m", "mi,globale"]
#: The issue's goals, fixed before any run.
GOAL_GAIN, GOAL_MINUTES = 0.05, 10.0
#: Shuffles of an axis's values across its variants, for the spread's p-value.
PERMUTATIONS = 2000


def expand(work: Path) -> Path:
    out = work / "variants.toml"
    cmd = [sys.executable, "-m", "promptsel", "expand", str(ROOT / EXPAND[0]), *EXPAND[1:], "-o", str(out)]
    subprocess.run(cmd, check=True, cwd=work, stdout=subprocess.DEVNULL)
    return out


def axis_spread(prompts: list[dict], table: dict) -> dict:
    """Per axis, each value's mean accuracy over the variants that took it (on the inputs every
    prompt read), the spread (largest minus smallest value mean) and its permutation p-value."""
    lp, labels = table["class_logprobs"], table["labels"]
    common = ~np.isnan(lp).any(axis=(0, 2))  # the inputs every prompt was scored on
    acc = (np.nan_to_num(lp[:, common]).argmax(-1) == labels[common]).mean(axis=1)
    by_id = dict(zip(table["prompt_ids"], acc))
    out: dict = {"common_inputs": int(common.sum()), "axes": {}}
    variants = [p for p in prompts if p.get("parent")]
    names = sorted({a for p in variants for a in p.get("axes") or {}})
    rng = np.random.default_rng(0)
    for axis in names:
        taken = [(str(p["axes"].get(axis)), float(by_id[p["id"]])) for p in variants if p["axes"].get(axis) != "n/a"]
        values = np.array([v for v, _ in taken])
        accs = np.array([a for _, a in taken])
        means = {v: {"n": int((values == v).sum()), "mean": float(accs[values == v].mean())} for v in sorted(set(values))}
        spread = _spread(values, accs)
        # Is the spread more than the variants' own scatter? The same spread with the axis's
        # values shuffled across its variants (PERMUTATIONS times): the share at least as large.
        null = np.array([_spread(rng.permutation(values), accs) for _ in range(PERMUTATIONS)])
        out["axes"][axis] = {"values": means, "spread": spread, "p": float((1 + (null >= spread - 1e-12).sum()) / (1 + PERMUTATIONS)),
                             "null_p95": float(np.percentile(null, 95))}
    return out


def _spread(values: np.ndarray, accs: np.ndarray) -> float:
    """The largest value mean minus the smallest (0 for an axis with one value)."""
    means = [accs[values == v].mean() for v in set(values)]
    return float(max(means) - min(means)) if len(means) > 1 else 0.0


def axes_from_kept(dataset: str, work: Path) -> dict:
    """A run's axis spreads from what ``--keep`` kept of it (its report and saved scores)."""
    report = json.loads((work / f"{dataset}.json").read_text())
    with np.load(work / f"{dataset}.scores.npz") as z:
        table = {k: z[k] for k in ("class_logprobs", "labels", "prompt_ids")}
    return axis_spread(report["prompts"], table)


def run_dataset(dataset: str, variants: Path, work: Path, cpu: int | None = None) -> dict:
    argv = ["select", "--dataset", dataset, "--prompts", str(variants), *SELECT]
    if dataset != "rotten_tomatoes":  # the quick start reads RT from its offline source; the rest from the shared copy
        argv += ["--data-dir", str(shared_path("data"))]
    r = run_quickstart(dataset, ROOT, argv, work, cpu)
    r["cores"] = 1 if cpu is not None else len(os.sched_getaffinity(0))
    r.pop("table")
    report = r["report"]
    r["axes"] = axes_from_kept(dataset, work)
    # Keep what the benchmark reads, not every prompt's row (208 of them).
    r["report"] = {k: report[k] for k in ("dataset", "recommendation", "holdout", "adaptive", "sensitivity", "warnings") if k in report}
    r["n_prompts"] = len(report["prompts"])
    r["n_originals"] = sum(1 for p in report["prompts"] if not p.get("parent"))
    r["argv"] = ["select", "--dataset", dataset, "--prompts", "variants.toml", *SELECT]
    return r


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def render(data: dict) -> str:
    held = "/".join(sorted({str(r["report"]["holdout"]["n_heldout"]) for r in data["runs"].values()}))
    lines = [
        f"Command: `python -m bench.bench_expand {data['command']}`. Variants: `promptsel expand {shlex.join(data['expand'])}`; "
        f"each run `promptsel select -d DATASET -p variants.toml {shlex.join(data['select'])}`, cold (an empty cache), one "
        "dataset after the other, on the cores the table gives (two: alone on the machine; one: pinned, one llama.cpp thread, "
        f"other work pinned to the other core). Held-out accuracies are on the held-out half ({held} examples) with 95 % bootstrap intervals; the "
        "difference's interval is paired. Load: the 1-minute load average at start → end.",
        "",
        "| dataset | prompts (originals) | cells scored | wall time (cores) | tokens evaluated | chosen (held-out) | best original (held-out) | difference [95 %] | optimism | load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in data["runs"].items():
        h, a = r["report"]["holdout"], r["report"]["adaptive"]
        b = h["baseline"]
        ci, bi, di = h["chosen_heldout_interval"], b["heldout_interval"], h["difference_interval"]
        lines.append(
            f"| {name} | {r['n_prompts']} ({r['n_originals']}) | {a['cells_scored']:,} of {a['cells_total']:,} "
            f"({a['cells_scored'] / a['cells_total']:.0%}) | {r['seconds'] / 60:.1f} min ({r.get('cores', 2)}) | {r['counts']['evaluated']:,} "
            f"| {h['chosen']} {h['chosen_heldout']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] | {b['prompt']} {b['heldout']:.3f} "
            f"[{bi[0]:.3f}, {bi[1]:.3f}] | {_pts(h['difference'])} [{_pts(di[0])}, {_pts(di[1])}] pts | {_pts(h['optimism'])} pts "
            f"| {r['load'][0]:.1f} → {r['load'][1]:.1f} |")
    lines += ["", f"Goals: held-out gain ≥ {100 * GOAL_GAIN:.0f} points with the paired interval above 0; "
              f"≤ {GOAL_MINUTES:.0f} minutes a run."]
    for name, r in data["runs"].items():
        h = r["report"]["holdout"]
        gain = h["difference"] >= GOAL_GAIN and h["difference_interval"][0] > 0
        lines.append(f"- {name}: gain goal {'met' if gain else 'missed'} ({_pts(h['difference'])} points, low end "
                     f"{_pts(h['difference_interval'][0])}); time goal {'met' if r['seconds'] <= 60 * GOAL_MINUTES else 'missed'} "
                     f"({r['seconds'] / 60:.1f} min); stop: {r['report']['adaptive'].get('stop_reason')}.")
    lines += ["", "Which axes mattered: each value's mean accuracy over the variants that took it, on the inputs every "
              "prompt was scored on (`n/a` values left out), and the spread between the best and worst value, with its "
              f"permutation p-value (the axis's values shuffled across its variants {PERMUTATIONS:,} times: the share of "
              "spreads at least as large; a spread is always above 0, so only a small p says the axis matters).", ""]
    names = list(data["runs"])
    lines += ["| axis | " + " | ".join(f"{n}: spread (value: mean accuracy (variants))" for n in names) + " |",
              "|---|" + "---|" * len(names)]
    axes = sorted({a for r in data["runs"].values() for a in r["axes"]["axes"]},
                  key=lambda a: -max(r["axes"]["axes"].get(a, {"spread": 0})["spread"] for r in data["runs"].values()))
    for axis in axes:
        cells = []
        for n in names:
            ax = data["runs"][n]["axes"]["axes"].get(axis)
            if ax is None:
                cells.append("–")
                continue
            vals = "; ".join(f"`{json.dumps(v)}` {m['mean']:.3f} ({m['n']})" for v, m in ax["values"].items())
            cells.append(f"**{100 * ax['spread']:.1f}** pts, p = {ax['p']:.3f} ({vals})")
        lines.append(f"| {axis} | " + " | ".join(cells) + " |")
    commons = ", ".join(f"{n} {data['runs'][n]['axes']['common_inputs']}" for n in names)
    lines += ["", f"Inputs every prompt was scored on: {commons}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the runs' numbers here")
    ap.add_argument("--from-json", type=Path, help="render saved results instead of running")
    ap.add_argument("--axes-from", type=Path, help="with --from-json: recompute the axis spreads from this --keep DIR (and rewrite the file)")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--merge", action="store_true", help="add these runs to the --json file's")
    ap.add_argument("--limit", type=int, help="inputs per dataset instead of 200 (a smoke run; not the benchmark)")
    ap.add_argument("--n", type=int, help="variants per prompt instead of 15 (a smoke run; not the benchmark)")
    ap.add_argument("--cpu", type=int, help="pin the runs to this one CPU (one llama.cpp thread), e.g. beside other work on the other")
    ap.add_argument("--keep", type=Path, help="keep each run's stderr, report, variants and scores")
    ap.add_argument("--write", action="store_true", help="append the section to bench/RESULTS.md")
    args = ap.parse_args()
    if args.from_json:
        data = json.loads(args.from_json.read_text())
        if args.axes_from:  # the axis spreads again, from the runs' kept reports and scores
            for name, r in data["runs"].items():
                r["axes"] = axes_from_kept(name, args.axes_from)
            args.from_json.write_text(json.dumps(data, indent=1) + "\n")
    else:
        if args.limit:
            SELECT[SELECT.index("--limit") + 1] = str(args.limit)
        if args.n:
            EXPAND[EXPAND.index("--n") + 1] = str(args.n)
        work = work_dir(args.keep, "promptsel-expand-")
        try:
            variants = expand(work)
            runs = {d: run_dataset(d, variants, work, args.cpu) for d in args.datasets.split(",")}
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        command = command_line(sys.argv[1:])
        if args.merge and args.json and args.json.exists():
            old = json.loads(args.json.read_text())
            runs = {**old["runs"], **runs}
            command = f"{old['command']}`, then `python -m bench.bench_expand {command}"
        data = {"command": command, "expand": EXPAND, "select": SELECT, "runs": runs}
        if args.json:  # no paths of this machine in a committed file
            args.json.write_text(without_paths(json.dumps(data, indent=1), work) + "\n")
    results_md.publish(render(data), args.write)


if __name__ == "__main__":
    main()
