"""The README quick start live, with and without ``--adaptive``, side by side: both cold (an empty
cache each), at the same time, each pinned to a CPU of its own (one llama.cpp thread each), so a
busy machine slows both alike and their ratio still means something. Tokens are counted as
llama.cpp evaluated them (``bench/lib/counting.py``, generation steps included), wall and CPU
time per run, and whether the two recommendations agree (each in the other's set of prompts that
could not be told apart). The full run's saved table is the default-model RT table that
``bench_adaptive --tables`` replays.

    python -m bench.bench_adaptive_live --json bench/adaptive_live.json [--keep DIR] [--write]
    python -m bench.bench_adaptive_live --from-json bench/adaptive_live.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.lib import results_md
from bench.lib.cold_run import ROOT, command_line, run_quickstart, without_paths, work_dir

QUICK_START = ["select", "--dataset", "rotten_tomatoes", "--prompts", "prompts/sa.toml", "--limit", "200"]


def agree(full: dict, adaptive: dict) -> dict:
    """Each run's choice and whether it lies in the other's set of prompts not told apart from it."""
    def close(report: dict) -> set[str]:
        rec = report["recommendation"]
        return {rec["prompt"], *(a["prompt"] for a in rec.get("indistinguishable") or [])}

    f, a = full["recommendation"]["prompt"], adaptive["recommendation"]["prompt"]
    return {"full": f, "adaptive": a, "same": f == a, "adaptive_in_full_set": a in close(full),
            "full_in_adaptive_set": f in close(adaptive)}


def render(data: dict) -> str:
    runs = data["runs"]
    lines = [
        f"Command: `python -m bench.bench_adaptive_live {data['command']}`; each run is "
        f"`promptsel {shlex.join(data['quick_start'])}` (with `--adaptive` for the second), cold, both at once, "
        "one CPU and one llama.cpp thread each. Load: the 1-minute load average at start → end; others: the CPU "
        "(in cores) the rest of the machine used meanwhile (the other run included).",
        "",
        "| run | wall time | CPU time | tokens evaluated (llama.cpp) | cells scored | stop | load start → end | others |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        block = r["report"].get("adaptive") or {}
        cells = f"{block['cells_scored']:,} of {block['cells_total']:,}" if block else "all"
        lines.append(f"| {name} | {r['seconds'] / 60:.1f} min | {r['cpu'] / 60:.1f} min | {r['counts']['evaluated']:,} | {cells} "
                     f"| {block.get('stop_reason', '–')} | {r['load'][0]:.1f} → {r['load'][1]:.1f} | "
                     f"{'–' if r['others'] is None else format(r['others'], '.2f')} |")
    full, adaptive = runs["full"], runs["adaptive"]
    a = data["agreement"]
    lines += [
        "",
        f"Ratios (full / adaptive): tokens evaluated {full['counts']['evaluated'] / adaptive['counts']['evaluated']:.2f}×, "
        f"wall time {full['seconds'] / adaptive['seconds']:.2f}×. Recommendations: full {a['full']}, adaptive {a['adaptive']} "
        f"(same: {a['same']}; adaptive's in the full run's indistinguishable set: {a['adaptive_in_full_set']}; "
        f"full's among the adaptive survivors: {a['full_in_adaptive_set']}).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the runs' numbers and reports here")
    ap.add_argument("--from-json", type=Path, help="render saved results instead of running")
    ap.add_argument("--keep", type=Path, help="keep each run's stderr, report and scores (the full run's is the RT table)")
    ap.add_argument("--write", action="store_true", help="append the section to bench/RESULTS.md")
    args = ap.parse_args()
    if args.from_json:
        data = json.loads(args.from_json.read_text())
    else:
        work = work_dir(args.keep, "promptsel-adaptive-live-")
        argv = [str(ROOT / a) if "/" in a and (ROOT / a).exists() else a for a in QUICK_START]
        try:
            with ThreadPoolExecutor(2) as pool:
                later = pool.submit(run_quickstart, "full", ROOT, argv, work, 0)
                adaptive = run_quickstart("adaptive", ROOT, [*argv, "--adaptive"], work, 1)
                runs = {"full": later.result(), "adaptive": adaptive}
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        for r in runs.values():
            r.pop("table", None)
        command = command_line(sys.argv[1:])
        data = {"command": command, "quick_start": QUICK_START, "runs": runs,
                "agreement": agree(runs["full"]["report"], runs["adaptive"]["report"])}
        if args.json:  # no paths of this machine in a committed file
            args.json.write_text(without_paths(json.dumps(data, indent=1), work) + "\n")
    results_md.publish(render(data), args.write)


if __name__ == "__main__":
    main()
