"""Batched CoT generation vs one prompt at a time: which outputs differ, and by how much.

The CoT prompts of ``prompts/sa.toml`` are scored on a seeded sample of Rotten Tomatoes with the
llamacpp backend (default model, no cache) once per ``-M n_parallel`` setting: 1 (one prompt at a
time, in the main context) and the batched settings given (default 16, the backend's default, and
5, so that batches are composed differently). For every (prompt, input) it compares the generated
reasoning text, the two class log-probs of the follow-up turn and the final label (their argmax)
against the one-at-a-time run.

Usage: ``python -m bench.bench_cot_batch [--limit 30] [--parallel 16,5] [--data-dir DIR] [--write]``;
``--write`` appends the table to bench/RESULTS.md.
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

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=30, help="inputs (seeded, class-stratified sample; default 30)")
    ap.add_argument("--parallel", default="16,5", help="batched n_parallel settings to compare with 1 (default 16,5)")
    ap.add_argument("--data-dir", default=None, help="data directory (default: offline Rotten Tomatoes)")
    ap.add_argument("--write", action="store_true", help="append the results to bench/RESULTS.md")
    args = ap.parse_args()

    import llama_cpp

    from promptsel.model.prompts import load_prompt_set
    from promptsel.model.request import ScoringOptions, SelectRequest
    from promptsel.selection.cache import Cache
    from promptsel.selection.inputs import load_dataset, resolve_dataset_spec
    from promptsel.selection.scoring import Scorer, build_score_table
    from promptsel_builtin.llamacpp import LlamaCppBackend

    prompt_set = load_prompt_set(ROOT / "prompts" / "sa.toml")
    cot = type(prompt_set)(path=prompt_set.path, name=prompt_set.name, prompts=[p for p in prompt_set.prompts if p.cot])
    dataset = load_dataset(SelectRequest(dataset="rotten_tomatoes", limit=args.limit, data_dir=args.data_dir),
                           resolve_dataset_spec("rotten_tomatoes"))
    options = ScoringOptions()

    def run(n_parallel: int) -> dict:
        backend = LlamaCppBackend(n_parallel=n_parallel)
        texts: dict[str, str] = {}
        generate = backend.generate

        def recording(prompts, **kw):  # the reasoning of each first turn, as generated
            out = generate(prompts, **kw)
            texts.update(zip(prompts, out))
            return out

        backend.generate = recording
        began = time.perf_counter()
        table = build_score_table(cot, dataset, Scorer(backend, Cache(enabled=False)), options, need_nll=False)
        seconds = time.perf_counter() - began
        backend.close()
        print(f"n_parallel={n_parallel}: {seconds:.0f} s", file=sys.stderr, flush=True)
        return {"seconds": seconds, "texts": texts, "lp": table.class_logprobs}

    settings = [int(x) for x in args.parallel.split(",") if x.strip()]
    alone = run(1)
    batched = {n: run(n) for n in settings}

    n_in = len(dataset.examples)
    lines = [
        f"### {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, "
        f"llama-cpp-python {llama_cpp.__version__}",
        "",
        f"Command: `{shlex.join(['python', '-m', 'bench.bench_cot_batch', *(a if not Path(a).is_absolute() else 'DIR' for a in sys.argv[1:])])}`; "
        f"the {len(cot.prompts)} CoT prompts of prompts/sa.toml x {n_in} Rotten Tomatoes inputs "
        f"({dataset.split}, seeded sample), default model, greedy, {options.max_new_tokens} new tokens at most, "
        "no cache; each batched run against one-at-a-time decoding (`-M n_parallel=1`).",
        "",
        "| prompt | n_parallel | reasoning texts identical | class log-probs bit-identical | max abs diff (nats) | final labels agree | time (batched / alone) |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, got in batched.items():
        same_text = [got["texts"].get(k) == v for k, v in alone["texts"].items()]
        for pi, p in enumerate(cot.prompts):
            a, b = alone["lp"][pi], got["lp"][pi]
            exact = int(np.all(a == b, axis=1).sum())
            agree = int((a.argmax(axis=1) == b.argmax(axis=1)).sum())
            lines.append(f"| {p.id} | {n} | – | {exact}/{n_in} | {float(np.abs(a - b).max()):.2e} | {agree}/{n_in} | |")
        a, b = alone["lp"], got["lp"]
        agree = int((a.argmax(axis=2) == b.argmax(axis=2)).sum())
        lines.append(f"| all | {n} | {sum(same_text)}/{len(same_text)} | {int(np.all(a == b, axis=2).sum())}/{a.shape[0] * a.shape[1]} "
                     f"| {float(np.abs(a - b).max()):.2e} | {agree}/{a.shape[0] * a.shape[1]} "
                     f"| {got['seconds']:.0f} s / {alone['seconds']:.0f} s |")
    lines.append("")
    results_md.publish("\n".join(lines), args.write)


if __name__ == "__main__":
    main()
