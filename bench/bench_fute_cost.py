"""What FUTE's task embeddings cost on this machine, and how the cost grows.

Measured in one run, side by side, without the LLM (its soft labels on U are drawn from a
fixed Dirichlet; the LLM's own cost is U scoring, which the quality benchmark records):

1. seconds per MTE for each embedder and surrogate at |U| = 50, 100, 200 (cost grows with |U|;
   the number of MTEs is the number of prompts, each paid once per model and task);
2. seconds per DTE at train sizes 150 and 300 and 500 (paid once per dataset);
3. determinism: the same MTE computed twice is bit-identical;
4. separation, a cheap proxy for selection quality: on 96 SST-2 train sentences, the DTE (gold
   labels) against three simulated prompts labelling the same sentences: gold (perfect),
   shuffled gold (unrelated to the text), constant. separation = cos(perfect, DTE) − the larger
   of the other two; positive means the embedding ranks the agreeing prompt first.

Usage: ``python bench/bench_fute_cost.py [--surrogates minilm,smollm2] [--write]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def separation(embedder, surrogate, train, cosine) -> float:
    from promptsel.fute.surrogate import TaskData

    sample = train.sample(96, 0)
    inputs, labels = sample.inputs(), sample.labels
    dte, _ = embedder.embed(surrogate, TaskData("dte", inputs, ("text",), 2, labels=labels), 0)

    def mte(predicted: np.ndarray) -> float:
        soft = np.full((len(inputs), 2), 0.1)
        soft[np.arange(len(inputs)), predicted] = 0.9
        return cosine(embedder.embed(surrogate, TaskData("mte", inputs, ("text",), 2, targets=soft), 0)[0], dte)

    good = mte(labels)
    return good - max(mte(np.random.default_rng(0).permutation(labels)), mte(np.ones_like(labels)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--surrogates", default="minilm", help="comma-separated surrogate specs (default minilm)")
    ap.add_argument("--u-sizes", default="50,100,200")
    ap.add_argument("--dte-sizes", default="150,300,500")
    ap.add_argument("--embedders", default="taskemb,tupate")
    ap.add_argument("--write", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    data = Path(os.environ.get("PROMPTSEL_SHARED") or ROOT.parent / "shared") / "data"

    from promptsel.fute.embeddings import cosine, split_heldout
    from promptsel.fute.surrogate import Surrogate, TaskData
    from promptsel.fute.unlabeled import load_corpus, task_exclusions
    from promptsel.plugins import registries
    from promptsel.selection.data import load_named

    spec = registries().datasets.get("sst2")
    train = load_named(spec, "train", data)
    rows = []
    for name in args.surrogates.split(","):
        surrogate = Surrogate(name)
        t = time.perf_counter()
        surrogate.classifier(2, 0)
        load = time.perf_counter() - t
        for embedder in (registries().embedders.get(e)() for e in args.embedders.split(",")):
            for size in map(int, args.u_sizes.split(",")):
                corpus = load_corpus("pool", size=size, data_dir=data, exclude=task_exclusions("sentiment"))
                inputs = corpus.inputs(("text",))
                targets = np.random.default_rng(0).dirichlet([1.0, 1.0], size=len(inputs))
                task = TaskData("mte", inputs, ("text",), 2, targets=targets)
                t = time.perf_counter()
                first, _ = embedder.embed(surrogate, task, 0)
                seconds = time.perf_counter() - t
                same = ""
                if size == int(args.u_sizes.split(",")[0]):
                    again, _ = embedder.embed(surrogate, task, 0)
                    same = "yes" if np.array_equal(first, again) else "NO"
                rows.append((surrogate.name, embedder.embedder_id, f"MTE, {size} texts of U", seconds, first.size, same))
                print(rows[-1], file=sys.stderr, flush=True)
            for size in map(int, args.dte_sizes.split(",")):
                part, held = split_heldout(train.sample(size, 0), 0)
                heldout = TaskData("dte", held.inputs(), ("text",), 2, labels=held.labels)
                task = TaskData("dte", part.inputs(), ("text",), 2, labels=part.labels, heldout=heldout)
                t = time.perf_counter()
                vector, info = embedder.embed(surrogate, task, 0)
                rows.append((surrogate.name, embedder.embedder_id, f"DTE, {size} train ({info['epochs']} epochs)",
                             time.perf_counter() - t, vector.size, ""))
                print(rows[-1], file=sys.stderr, flush=True)
            rows.append((surrogate.name, embedder.embedder_id, "separation (see 4.)", separation(embedder, surrogate, train, cosine), 0, ""))
            print(rows[-1], file=sys.stderr, flush=True)
        rows.append((surrogate.name, "(load)", "first load of the surrogate", load, 0, ""))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"### {stamp}, {platform.machine()}, {os.cpu_count()} cores", "",
             f"Command: `python bench/bench_fute_cost.py {' '.join(sys.argv[1:])}`", "",
             "| surrogate | embedder | what | seconds | dimensions | bit-identical rerun |", "|---|---|---|---|---|---|"]
    lines += [f"| {s} | {e} | {w} | {sec:.{3 if w.startswith('separation') else 1}f} | {dim or ''} | {same} |"
              for s, e, w, sec, dim, same in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
