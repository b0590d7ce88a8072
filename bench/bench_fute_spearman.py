"""Does fute-tupate's ranking depend on the dataset? Its prompt scores on SST-2 and on Rotten
Tomatoes (the non-CoT prompts of prompts/sa.toml, U = the shared pool), their Spearman
correlation, the same for the raw comparison of the very same embeddings (``--fute-compat``'s),
and the true accuracies' on the small eval sample. Before issue 10 it was 1.000 between SST-2,
RT and IMDB: the DTE changed nothing.

Usage: ``python -m bench.bench_fute_spearman [--unlabeled-size 200] [--dte-size 500] [--limit 20]``
(data from ``PROMPTSEL_SHARED`` or ``../shared``; everything goes through the user's cache and
embedding store, so a rerun costs nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.lib.shared_dir import shared_path

ROOT = Path(__file__).resolve().parents[1]


def plain_prompts() -> Path:
    """prompts/sa.toml without its CoT prompts (their generation on U costs most of a run)."""
    head, *blocks = (ROOT / "prompts" / "sa.toml").read_text().split("[[prompt]]")
    kept = [b for b in blocks if "cot = true" not in b]
    path = Path(tempfile.mkdtemp()) / "sa_plain.toml"
    path.write_text(head + "".join("[[prompt]]" + b for b in kept))
    return path


def main() -> None:
    from scipy.stats import spearmanr

    from promptsel.fute.embeddings import cosine
    from promptsel.fute.options import FuteOptions
    from promptsel.fute.store import EmbeddingStore
    from promptsel.model.request import SelectRequest
    from promptsel.selection.run import run_select
    from promptsel.surrogate import Surrogate
    from promptsel_builtin import tupate
    from promptsel_builtin.embedders import TuPaTE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--unlabeled-size", type=int, default=200)
    ap.add_argument("--dte-size", type=int, default=500)
    ap.add_argument("--limit", type=int, default=20, help="eval examples (only for the accuracies' own correlation)")
    args = ap.parse_args()
    data = shared_path("data")
    prompts = plain_prompts()
    reports = {}
    for name in ("sst2", "rotten_tomatoes"):
        began = time.perf_counter()
        req = SelectRequest(dataset=name, prompts=prompts, methods=["fute-tupate"], limit=args.limit, seed=0, data_dir=str(data),
                            groups=(FuteOptions(unlabeled="pool", unlabeled_size=args.unlabeled_size, dte_size=args.dte_size),))
        reports[name], _ = run_select(req)
        print(f"{name}: {time.perf_counter() - began:.0f} s; diagnostics {json.dumps(reports[name]['fute']['diagnostics'])}",
              file=sys.stderr, flush=True)
    ids = [p["id"] for p in reports["sst2"]["prompts"]]
    change = {n: [p["scores"]["fute-tupate"] for p in r["prompts"]] for n, r in reports.items()}
    # The raw comparison of the same embeddings: each shifted by the start they all share.
    store = EmbeddingStore(enabled=True)
    start = tupate.start(TuPaTE().options.as_dict(), Surrogate("minilm"), 0)

    def vector(report: dict, kind: str, prompt: str | None = None) -> np.ndarray:
        entry = next(e for e in report["fute"]["embeddings"] if e["kind"] == kind and (prompt is None or e["prompt"] == prompt))
        return store.get(entry["key"]).vector + start

    raw = {n: [cosine(vector(r, "mte", i), vector(r, "dte")) for i in ids] for n, r in reports.items()}
    accuracy = {n: [p["performance"] for p in r["prompts"]] for n, r in reports.items()}
    lines = ["| prompt | " + " | ".join(ids) + " |", "|---|" + "---|" * len(ids)]
    for label, values in (("change", change), ("raw", raw)):
        for n in reports:
            lines.append(f"| {label}, {n} | " + " | ".join(f"{v:.3f}" for v in values[n]) + " |")
    lines += ["", "| Spearman SST-2 ~ RT | value |", "|---|---|"]
    for label, values in (("fute-tupate (trained − start)", change), ("raw, same embeddings", raw), (f"accuracy ({args.limit} examples)", accuracy)):
        lines.append(f"| {label} | {spearmanr(values['sst2'], values['rotten_tomatoes']).statistic:.3f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
