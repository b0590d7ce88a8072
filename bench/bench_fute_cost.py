"""What FUTE's task embeddings cost on this machine, and what the cost buys.

Measured in one run, side by side, without the LLM (its soft labels on U are drawn from a
fixed Dirichlet; the LLM's own cost is U scoring, which the quality benchmark records):

1. seconds per MTE for each embedder and surrogate at |U| = 50, 100, 200 (cost grows with |U|;
   the number of MTEs is the number of prompts, each paid once per model and task);
2. seconds per DTE at train sizes 150 and 300 and 500 (paid once per dataset);
3. determinism: the same MTE computed twice is bit-identical;
4. the premise ladder's margin (bench/lib/premise.py, the same code as tests/fute/test_premise.py):
   the clean lexicon prompt's score minus the best off-task prompt's (inverted, confident random,
   constant) under two DTEs on disjoint halves of SST-2's train split. With ``--settings`` it is
   measured for each embedder setting given, with the seconds it took and whether each DTE
   learned; ``bench/bench_fute_ladder.py`` gives every rung and check on several seeds.

Usage: ``python -m bench.bench_fute_cost [--surrogates minilm,smollm2] [--write]``;
``--premise-only --embedders tupate --settings "lr=0.005,batch_size=16;lr=0.02,batch_size=8"``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench.lib import results_md
from bench.lib.shared_dir import shared_path

ROOT = Path(__file__).resolve().parents[1]


def parse_settings(text: str) -> list[dict[str, str]]:
    """``"lr=0.02,batch_size=8;lr=0.01"`` -> [{"lr": "0.02", "batch_size": "8"}, {"lr": "0.01"}];
    an empty setting is the defaults."""
    return [dict(kv.split("=", 1) for kv in part.split(",") if kv) for part in text.split(";")]


def premise_rows(surrogate_name: str, embedder_id: str, settings: list[dict[str, str]], data: Path,
                 u_size: int, dte_size: int) -> list[tuple]:
    from bench.lib import premise
    from promptsel.fute.method import FuteMethod
    from promptsel.fute.options import FuteOptions
    from promptsel.fute.store import EmbeddingStore
    from promptsel.plugins import registries
    from promptsel.surrogate import Surrogate

    surrogate = Surrogate(surrogate_name, max_length=premise.MAX_LENGTH)
    method = FuteMethod.for_embedder(registries().embedders.get(embedder_id))
    rows = []
    for setting in settings:
        embedder = method.make_embedder(FuteOptions(embedder_options={embedder_id: setting}))
        start = None
        comparisons = ["null" if embedder.compares_to_null() else "change"]
        if embedder_id == "tupate":
            # The paper code's raw comparison of the very same embeddings: shifted by the shared start.
            from promptsel_builtin import tupate

            start = tupate.start(embedder.options.as_dict(), surrogate, 0)
            comparisons.append("raw-change")
        ladder = premise.run(embedder, surrogate, data_dir=data, u_size=u_size, dte_size=dte_size, seed=0,
                             store=EmbeddingStore(), start=start)
        learned = "/".join("yes" if ladder.training[f"dte:{d}"]["learned"] else "NO" for d in ("a", "b"))
        epochs = "/".join(str(ladder.training[f"dte:{d}"]["epochs"]) for d in ("a", "b"))
        name = ", ".join(f"{k}={v}" for k, v in setting.items()) or "defaults"
        for c in comparisons:
            result = premise.checks(ladder, c)
            rows.append((surrogate.name, embedder_id, f"{name}, compared {c}", result["margin"], result["margin_b"], learned,
                         epochs, ladder.seconds if c == comparisons[0] else 0.0))
            print(rows[-1], result["scores"], ladder.training, file=sys.stderr, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--surrogates", default="minilm", help="comma-separated surrogate specs (default minilm)")
    ap.add_argument("--u-sizes", default="50,100,200")
    ap.add_argument("--dte-sizes", default="150,300,500")
    ap.add_argument("--embedders", default="taskemb,tupate")
    ap.add_argument("--premise-only", action="store_true", help="only the premise margin (part 4)")
    ap.add_argument("--settings", default="", help="embedder settings to measure the margin for, ';'-separated")
    ap.add_argument("--premise-u", type=int, default=None, help="|U| for the margin (default: the premise test's)")
    ap.add_argument("--premise-dte", type=int, default=None, help="DTE sample for the margin (default: the test's)")
    ap.add_argument("--write", action="store_true", help="append the tables to bench/RESULTS.md")
    args = ap.parse_args()
    data = shared_path("data")

    from bench.lib import premise
    from promptsel.fute.embeddings import split_heldout
    from promptsel.fute.unlabeled import load_corpus, task_exclusions
    from promptsel.model.data import load_named
    from promptsel.plugins import registries
    from promptsel.surrogate import Surrogate, TaskData

    spec = registries().datasets.get("sst2")
    train = load_named(spec, "train", data)
    settings = parse_settings(args.settings)
    u_size, dte_size = args.premise_u or premise.U_SIZE, args.premise_dte or premise.DTE_SIZE
    rows, margins = [], []
    for name in args.surrogates.split(","):
        surrogate = Surrogate(name)
        t = time.perf_counter()
        surrogate.classifier(2, 0)
        load = time.perf_counter() - t
        for embedder in (registries().embedders.get(e)() for e in args.embedders.split(",")):
            if not args.premise_only:
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
            margins += premise_rows(name, embedder.embedder_id, settings, data, u_size, dte_size)
        if not args.premise_only:
            rows.append((surrogate.name, "(load)", "first load of the surrogate", load, 0, ""))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"### {stamp}, {platform.machine()}, {os.cpu_count()} cores", "",
             f"Command: `python -m bench.bench_fute_cost {shlex.join(sys.argv[1:])}`", ""]
    if rows:
        lines += ["| surrogate | embedder | what | seconds | dimensions | bit-identical rerun |", "|---|---|---|---|---|---|"]
        lines += [f"| {s} | {e} | {w} | {sec:.1f} | {dim or ''} | {same} |" for s, e, w, sec, dim, same in rows]
        lines.append("")
    lines += [f"Premise ladder margin: |U| = {u_size} (pool), {dte_size} SST-2 train sentences per DTE, max_length "
              f"{premise.MAX_LENGTH}, seed 0.", "",
              "| surrogate | embedder | setting | margin, DTE a | margin, DTE b | DTEs learned | DTE epochs | seconds |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {s} | {e} | {w} | {m1:+.3f} | {m2:+.3f} | {ok} | {ep} | {sec:.0f} |" for s, e, w, m1, m2, ok, ep, sec in margins]
    text = "\n".join(lines) + "\n"
    results_md.publish(text, args.write)


if __name__ == "__main__":
    main()
