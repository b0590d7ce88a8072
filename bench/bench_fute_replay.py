"""FUTE against the label-free rules and a random pick on a real LLM's saved predictions: the UPS
fixture (OPT-2.7B, SST-2 validation, 100 prompts and the FUTE paper's 13, prompt_00-12), split
into U and an evaluation half (``bench/lib/ups_split.py``) with 5 seeds.

Per method, prompt set and split: NDCG (min-max relevance, ties averaged), rate (tie-expected
accuracy of the choice over the best prompt's) and Spearman of the scores with accuracy on the
evaluation half, each with a 95 % bootstrap interval over the evaluation sentences (the label-free
rules rescored on every resample; FUTE's scores do not read the evaluation sentences and stay
fixed), and the spread across the splits. Beside them, the noise ceiling: what the true ranking
(the evaluation half's accuracies) itself gets against each resample's accuracies.

The label-free part (MI, GlobalE, LocalE, ZPS-Log, consensus, random, the ceiling) is numpy on
the fixture and runs whole by default. FUTE (``--fute tupate,taskemb``) trains one MTE per prompt
on U, labelled by OPT's saved predictions (``bench/lib/fute_saved.py``), and one DTE on
``sst2``'s train split; every embedding goes through the embedding store, so a stopped run resumes
and a wider one reuses what is done. Its results are added to the JSON beside the label-free ones.

    python -m bench.bench_fute_replay --json bench/fute_replay.json                 # label-free, 5 splits, 100 and 13
    OMP_NUM_THREADS=1 nice -n 10 python -m bench.bench_fute_replay --json bench/fute_replay.json --fute tupate,taskemb \\
        --prompts 13 --splits 0 --unlabeled-size 200                                   # FUTE, smallest
    # FUTE on two cores: train disjoint halves of the prompts side by side (every run with the same
    # FUTE options: --compare, --head, --mte-targets, --dte-size), then score what is stored
    OMP_NUM_THREADS=1 python -m bench.bench_fute_replay --fute tupate --prompts 100 --splits 0 --shard 0/2 &
    OMP_NUM_THREADS=1 python -m bench.bench_fute_replay --fute tupate --prompts 100 --splits 0 --shard 1/2
    python -m bench.bench_fute_replay --json bench/fute_replay.json --fute tupate --prompts 100 --splits 0
    python -m bench.bench_fute_replay --from-json bench/fute_replay.json [--write]     # render again
    python -m bench.bench_fute_replay --write-fixture DIR/split0.npz --splits 0       # a --scores file with U
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bench.lib import results_md
from bench.lib.ranking import MEASURES, cell, measures, random_pick, summarise
from bench.lib.ranking import fixed as fixed_scores
from bench.lib.shared_dir import shared_path
from bench.lib.ups_split import PAPER_PROMPTS, Fixture, load_fixture, split_arrays, write_split

LABEL_FREE = ("mi", "globale", "locale", "zps-log", "consensus")
RANDOM, CEILING = "random", "ceiling (true ranking)"
PROMPT_SETS = {"100": None, "13": PAPER_PROMPTS}


def table_of(arrays: dict[str, np.ndarray]):
    from promptsel.model.scoretable import ScoreTable

    return ScoreTable(prompt_ids=[str(p) for p in arrays["prompt_ids"]], class_names=[str(c) for c in arrays["class_names"]],
                      class_logprobs=arrays["class_logprobs"], prompt_nll=arrays["prompt_nll"], labels=arrays["labels"],
                      sample_ids=[str(s) for s in arrays["sample_ids"]])


class Bootstrap:
    """One split's evaluation half and its resamples (the same ones for every method)."""

    def __init__(self, arrays: dict[str, np.ndarray], resamples: int, seed: int) -> None:
        from promptsel.model import metrics
        from promptsel.model.stats import bootstrap_performance, resample_indices, resample_weights

        self.table = table_of(arrays)
        self.perf = metrics.performance(self.table.predictions, self.table.labels)
        self.picks = resample_indices(self.table.n_examples, resamples, seed=seed)
        self.perf_draws = bootstrap_performance(self.table.predictions, self.table.labels,
                                                resample_weights(self.picks, self.table.n_examples))

    def fixed(self, scores: np.ndarray) -> dict[str, Any]:
        """Scores that do not read the evaluation sentences (FUTE's, the true ranking)."""
        return fixed_scores(scores, self.perf, self.perf_draws)

    def label_free(self, method: str) -> dict[str, Any]:
        from promptsel.model.stats import resampled_table
        from promptsel.plugins import registries
        from promptsel.selector import SelectionContext

        selector = registries().selectors.get(method)()
        point = np.asarray(selector.score(self.table, SelectionContext()), dtype=float)
        draws = [measures(np.asarray(selector.score(resampled_table(self.table, pick), SelectionContext()), dtype=float), p)
                 for pick, p in zip(self.picks, self.perf_draws)]
        return {**summarise(measures(point, self.perf), draws), "scores": point.tolist()}

    def random(self) -> dict[str, Any]:
        return random_pick(self.perf, self.perf_draws)

    def ceiling(self) -> dict[str, Any]:
        """The true ranking against each resample's accuracies. Its value on the whole half is 1
        by construction, so the mean over the resamples stands in its place."""
        draws = [measures(self.perf, p) for p in self.perf_draws]
        return summarise({m: float(np.mean([d[m] for d in draws if d[m] is not None])) for m in MEASURES}, draws)


def label_free_run(fixture: Fixture, splits: list[int], resamples: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, n in PROMPT_SETS.items():
        rows = out[name] = {}
        for seed in splits:
            arrays = split_arrays(fixture.subset(n), seed)
            boot = Bootstrap(arrays, resamples, seed)
            result = {m: boot.label_free(m) for m in LABEL_FREE}
            result[RANDOM] = boot.random()
            result[CEILING] = boot.ceiling()
            rows[str(seed)] = {"n_eval": boot.table.n_examples, "best": float(boot.perf.max()),
                               "worst": float(boot.perf.min()), "methods": result}
            print(f"prompts {name}, split {seed}: done", file=sys.stderr)
    return out


def fute_key(embedder: str, compare: str, unlabeled_size: int | None, head: str | None = None,
             mte_targets: str = "soft") -> str:
    part = (f", head={head}" if head else "") + (f", targets={mte_targets}" if mte_targets != "soft" else "")
    return f"fute-{embedder} (compare={compare}{part}, U={unlabeled_size or 'all'})"


def shard_of(arrays: dict[str, np.ndarray], shard: tuple[int, int]) -> dict[str, np.ndarray]:
    """Every ``n``-th prompt from the ``k``-th (``shard`` = (k, n)): the arrays with a prompt axis cut."""
    k, n = shard
    rows = np.arange(k, arrays["prompt_ids"].size, n)
    per_prompt = ("class_logprobs", "prompt_nll", "prompt_ids", "unlabeled_logprobs")
    return {name: a[rows] if name in per_prompt else a for name, a in arrays.items()}


def fute_run(fixture: Fixture, *, embedders: list[str], prompt_sets: list[str], splits: list[int],
             unlabeled_size: int | None, compare: str, resamples: int, dte_size: int, save: Any, command: str,
             head: str | None = None, mte_targets: str = "soft", shard: tuple[int, int] | None = None) -> None:
    from bench.lib.fute_saved import fill_store, fute_scores

    data_dir = str(shared_path("data"))
    for name in prompt_sets:
        for seed in splits:
            arrays = split_arrays(fixture.subset(PROMPT_SETS[name]), seed, unlabeled_size)
            boot = Bootstrap(arrays, resamples, seed)
            for embedder in embedders:
                # tupate compares what training changed unless told; taskemb has no such option.
                options = {"compare": compare, **({"head": head} if head else {})} if embedder == "tupate" else {}
                if shard:
                    # Training only, into the store; the run without --shard scores and saves.
                    trained = fill_store(embedder, shard_of(arrays, shard), dataset="sst2", data_dir=data_dir, seed=seed,
                                         with_dte=shard[0] == 0, embedder_options=options, dte_size=dte_size,
                                         mte_targets=mte_targets)
                    print(f"prompts {name}, split {seed}, {embedder}, shard {shard[0]}/{shard[1]}: {trained} trained", file=sys.stderr)
                    continue
                began = time.perf_counter()
                scores, section = fute_scores(embedder, arrays, dataset="sst2", data_dir=data_dir, seed=seed,
                                              embedder_options=options, dte_size=dte_size, mte_targets=mte_targets)
                entry = {**boot.fixed(scores), "scores": scores.tolist(), "u": int(arrays["unlabeled_text"].size),
                         "dte_size": dte_size, "seconds": round(time.perf_counter() - began, 1), "command": command,
                         "computed": sum(e["status"] == "computed" for e in section["embeddings"]),
                         "diagnostics": section["diagnostics"].get(f"fute-{embedder}")}
                key = fute_key(embedder, compare if embedder == "tupate" else "-", unlabeled_size,
                               head if embedder == "tupate" else None, mte_targets)
                save(lambda r, name=name, seed=seed, key=key, entry=entry:
                     r.setdefault("fute", {}).setdefault(name, {}).setdefault(str(seed), {}).__setitem__(key, entry))
                print(f"prompts {name}, split {seed}, {key}: NDCG {entry['ndcg']:.3f}, {entry['seconds']} s", file=sys.stderr)


# --- rendering ----------------------------------------------------------------------------

def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [f"Resamples per split: {meta['resamples']}. Cells: mean over the splits (range over the splits) "
             "[95 % bootstrap interval over evaluation sentences, the splits' bounds averaged]. A random pick's Spearman is 0 "
             "in expectation (–).", ""]
    for name, rows in results["label_free"].items():
        splits = list(rows)
        lines += [f"**{name} prompts** (splits {', '.join(splits)}; evaluation half {rows[splits[0]]['n_eval']} "
                  f"sentences; best accuracy {np.mean([r['best'] for r in rows.values()]):.3f}, worst "
                  f"{np.mean([r['worst'] for r in rows.values()]):.3f}, mean over splits)", "",
                  "| method | NDCG | rate | Spearman with accuracy |", "|---|---|---|---|"]
        for method in rows[splits[0]]["methods"]:
            values = [rows[s]["methods"][method] for s in splits]
            lines.append(f"| {method} | " + " | ".join(cell(values, m) for m in MEASURES) + " |")
        fute = results.get("fute", {}).get(name, {})
        keys = sorted({k for per in fute.values() for k in per})
        for key in keys:
            done = [s for s in fute if key in fute[s]]
            values = [fute[s][key] for s in done]
            lines.append(f"| {key}, splits {', '.join(done)} | " + " | ".join(cell(values, m) for m in MEASURES) + " |")
            if done != splits:
                # The label-free rules on the same splits only, for a like-for-like reading.
                for method in (RANDOM, "consensus", CEILING):
                    same = [rows[s]["methods"][method] for s in done if s in rows]
                    lines.append(f"| ↳ {method}, same splits | " + " | ".join(cell(same, m) for m in MEASURES) + " |")
        lines.append("")
    for name, per in results.get("fute", {}).items():
        for seed, entries in per.items():
            for key, e in entries.items():
                diag = e.get("diagnostics") or {}
                mte = diag.get("mte") or {}
                learned = sum(bool(d and d.get("learned")) for d in mte.values())
                dte = (diag.get("dte") or {}).get("learned")
                lines.append(f"- {name} prompts, split {seed}, {key}: U {e['u']} texts, DTE {e['dte_size']} `sst2` train "
                             f"examples (learned: {dte}); MTEs learned {learned}/{len(mte)}; {e['computed']} embeddings "
                             f"trained in this entry's run, {e['seconds']} s (timing under load, not a measurement).")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", default="0,1,2,3,4", help="split seeds, comma-separated")
    parser.add_argument("--prompts", default="100,13", help="prompt sets: 100, 13 or both (FUTE only; the label-free part runs both)")
    parser.add_argument("--resamples", type=int, default=200, help="bootstrap resamples of the evaluation half per split")
    parser.add_argument("--fute", default="", help="embedders to run FUTE with (tupate,taskemb); none: the label-free part")
    parser.add_argument("--unlabeled-size", type=int, help="texts of U (a seeded draw from the 436; default all)")
    parser.add_argument("--compare", default="change", help="tupate's compare option (change, raw, or a newer mode)")
    parser.add_argument("--head", choices=["out", "in", "only"], help="tupate's head option (default: tupate's)")
    parser.add_argument("--dte-size", type=int, default=500, help="sst2 train examples for the DTE")
    parser.add_argument("--mte-targets", choices=["soft", "hard"], default="soft",
                        help="what the MTEs learn from OPT's labels on U: its probabilities (the paper's) or its decisions")
    parser.add_argument("--shard", help="K/N: only train (into the store) every N-th prompt from the K-th, for N "
                        "processes side by side (shard 0 also trains the DTEs); then run without it to score and save")
    parser.add_argument("--json", type=Path, help="the results file: read, updated and written back")
    parser.add_argument("--from-json", type=Path, help="render saved results instead of running")
    parser.add_argument("--write-fixture", type=Path, help="write the --scores file (with U) of the first split here and stop")
    parser.add_argument("--write", action="store_true", help="append the section to bench/RESULTS.md")
    args = parser.parse_args()
    splits = [int(s) for s in args.splits.split(",") if s]
    prompt_sets = [p for p in args.prompts.split(",") if p]
    if any(p not in PROMPT_SETS for p in prompt_sets):
        parser.error(f"--prompts takes {' or '.join(PROMPT_SETS)}")
    shard = None
    if args.shard:
        try:
            k, n = (int(x) for x in args.shard.split("/"))
        except ValueError:
            parser.error("--shard takes K/N, for example 0/2")
        if not 0 <= k < n:
            parser.error("--shard K/N needs 0 <= K < N")
        shard = (k, n)
    if args.write_fixture:
        arrays = write_split(args.write_fixture, splits[0], n_prompts=PROMPT_SETS[prompt_sets[0]], unlabeled_size=args.unlabeled_size)
        print(f"{args.write_fixture}: {arrays['class_logprobs'].shape[0]} prompts, U {arrays['unlabeled_text'].size} texts")
        return
    if args.from_json:
        results = json.loads(args.from_json.read_text(encoding="utf-8"))
        results_md.publish(render(results), args.write)
        return
    results: dict[str, Any] = {}

    def save(change: Callable[[dict[str, Any]], None]) -> None:
        """Apply ``change`` to the results file as it is now: a FUTE run and a label-free run may
        share one file, each writing only its own part."""
        nonlocal results
        if args.json and args.json.is_file():
            results = json.loads(args.json.read_text(encoding="utf-8"))
        change(results)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")

    fixture = load_fixture()
    command = "python -m bench.bench_fute_replay " + " ".join(a for a in sys.argv[1:] if a != "--write")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.fute:
        fute_run(fixture, embedders=[e for e in args.fute.split(",") if e], prompt_sets=prompt_sets, splits=splits,
                 unlabeled_size=args.unlabeled_size, compare=args.compare, resamples=args.resamples, dte_size=args.dte_size,
                 save=save, command=f"{when}, {platform.machine()}: {command}", head=args.head, mte_targets=args.mte_targets, shard=shard)
    else:
        label_free = label_free_run(fixture, splits, args.resamples)
        save(lambda r: r.update(label_free=label_free))
        save(lambda r: r.setdefault("meta", {}).update(resamples=args.resamples, command=command,
                                                        when=f"{when}, {platform.machine()}"))
    if "label_free" in results:
        results_md.publish(render(results), args.write)


if __name__ == "__main__":
    main()
