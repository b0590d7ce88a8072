"""FUTE on prompts of known quality: small offline sentiment classifiers and their variants
(``bench/lib/classifier_prompts.py``) stand in for prompts, so every prompt's accuracy on SST-2
(validation), Rotten Tomatoes (test) and IMDB (test) is measured, not assumed.

The cheap part (default) measures each prompt's accuracy, with a 95 % Wilson interval, and its
predicted-positive share on each dataset and on U, and the Spearman of the accuracies between
datasets. The FUTE part (``--fute tupate``) trains one MTE per prompt on U from the shared pool
(the evaluation datasets' own sources left out, as the paper does: U is out of domain, though it
keeps other sentiment sources such as Yelp and Amazon reviews), labelled by the prompt's p(positive),
and DTEs on the train splits of ``sst2``, ``rotten_tomatoes`` and ``imdb``, plus the same-data
control: two DTEs from disjoint halves of ``sst2``'s train split. It reports NDCG, rate and Spearman
of FUTE's scores with each dataset's accuracies (bootstrap over the evaluation examples; across
seeds), a random pick, and the Spearman of FUTE's scores between DTEs beside the same-data pair.
Every embedding goes through the embedding store: a stopped run resumes.

    python -m bench.bench_fute_classifiers --json bench/fute_classifiers.json           # cheap part
    OMP_NUM_THREADS=1 nice -n 10 python -m bench.bench_fute_classifiers --json bench/fute_classifiers.json --fute tupate \\
        --prompts core --seeds 0 --unlabeled-size 100 --dte-size 200                  # FUTE, smallest
    python -m bench.bench_fute_classifiers --json bench/fute_classifiers.json --fute tupate,taskemb \\
        --seeds 0,1,2 --unlabeled-size 1000                                            # FUTE, the full run
    OMP_NUM_THREADS=1 python -m bench.bench_fute_classifiers --json bench/fute_classifiers.json --fute tupate \
        --compare null-both --head only --mte-targets hard --prompts core --seeds 0    # the setting of RESULTS.md
    python -m bench.bench_fute_classifiers --from-json bench/fute_classifiers.json [--write]

FUTE's score is what a ``select`` with the same embedder options reports (``Fute.score``: the
permutation nulls where the options compare to them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bench.lib import results_md
from bench.lib.classifier_prompts import EPS, build_prompts
from bench.lib.ranking import MEASURES, accuracy_draws, cell, fixed, random_pick
from bench.lib.shared_dir import shared_path

#: Each dataset's evaluation split (SST-2's test split has no labels).
DATASETS = {"sst2": "validation", "rotten_tomatoes": "test", "imdb": "test"}
#: The DTEs: a dataset's train split, or one of two disjoint halves of SST-2's.
HALVES = {"sst2 half A": 0, "sst2 half B": 1}
#: The order the DTEs are trained in: the same-data control right after SST-2's own.
TARGETS = ("sst2", "sst2 half A", "sst2 half B", "rotten_tomatoes", "imdb")
#: ``--prompts core``: a smaller set with the ranking still known (the seven classifiers, one
#: classifier's flip ladder and its inversion, an off-task rule, a constant).
CORE = ("vader", "afinn", "textblob", "nb-imdb", "nb-amazon", "nb-tweets", "nb-nyt", "nb-imdb flip 0.15",
        "nb-imdb flip 0.30", "nb-imdb flip 0.45", "nb-imdb inverted", "rule: more than 20 words", "constant positive")
PAIRS = (("sst2", "rotten_tomatoes"), ("sst2", "imdb"), ("rotten_tomatoes", "imdb"), ("sst2 half A", "sst2 half B"))


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def load(dataset: str, split: str) -> tuple[list[str], np.ndarray]:
    from promptsel.model.data import load_named
    from promptsel.selection.inputs import resolve_dataset_spec

    data = load_named(resolve_dataset_spec(dataset), split, str(shared_path("data")))
    return [ex["text"] for ex in data.examples], np.asarray(data.labels)


def unlabeled(size: int, seed: int):
    """U: ``size`` texts of the shared pool, balanced over its sources, those overlapping the
    sentiment datasets (SST-2, RT, IMDB) left out."""
    from promptsel.fute.unlabeled import load_corpus, task_exclusions

    return load_corpus("pool", size=size, seed=seed, data_dir=str(shared_path("data")), exclude=task_exclusions("sentiment"))


def predicted(p: np.ndarray) -> np.ndarray:
    """Positive when p(positive) > 0.5; a tie is negative, as a score table's argmax breaks it."""
    return (np.asarray(p) > 0.5).astype(int)


def quality(prompts: dict[str, Callable], u_texts: list[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Each prompt's accuracy and positive share per dataset and its positive share on U; and
    the [P, N] right/wrong matrices the FUTE part bootstraps."""
    out: dict[str, Any] = {}
    correct: dict[str, np.ndarray] = {}
    for dataset, split in DATASETS.items():
        texts, labels = load(dataset, split)
        rows = {}
        right = []
        for name, prompt in prompts.items():
            pred = predicted(prompt(texts))
            k = int((pred == labels).sum())
            rows[name] = {"accuracy": k / labels.size, "ci": wilson(k, labels.size), "positive": float(pred.mean())}
            right.append(pred == labels)
        out[dataset] = {"split": split, "n": int(labels.size), "positive_gold": float(labels.mean()), "prompts": rows}
        correct[dataset] = np.array(right)
        print(f"quality on {dataset}: done", file=sys.stderr)
    out["U"] = {"n": len(u_texts), "prompts": {name: {"positive": float(predicted(p(u_texts)).mean())} for name, p in prompts.items()}}
    return out, correct


def fute_key(embedder: str, unlabeled_size: int, tupate: dict[str, str], mte_targets: str = "soft") -> str:
    """The results' key: the embedder, tupate's options where given, hard targets, and |U|."""
    part = "".join(f"{k}={v}, " for k, v in tupate.items()) if embedder == "tupate" else ""
    part += "targets=hard, " if mte_targets == "hard" else ""
    return f"fute-{embedder} ({part}U={unlabeled_size})"


def fute_run(prompts: dict[str, Callable], correct: dict[str, np.ndarray], *, embedders: list[str], seeds: list[int],
             unlabeled_size: int, dte_size: int, resamples: int, save: Callable, command: str,
             tupate: dict[str, str] | None = None, mte_targets: str = "soft") -> None:
    """``tupate``: tupate's options (compare, head); FUTE's score is the one a ``select`` with
    them reports (:meth:`Fute.score`), nulls included."""
    from bench.lib.fute_saved import saved_fute
    from promptsel.fute.embeddings import Fute
    from promptsel.fute.options import FuteOptions
    from promptsel.model.data import load_named

    tupate = dict(tupate or {})

    class HalfTrain(Fute):
        """The DTE from one of two disjoint, seeded halves of the train split."""

        half = 0

        def train_sample(self):
            full = load_named(self.spec, self.spec.train_split, self.data_dir)
            order = np.random.default_rng([self.seed, 7]).permutation(len(full.examples))[self.half::2][:self.options.dte_size]
            order = np.sort(order)
            return dataclasses.replace(full, examples=[full.examples[i] for i in order], ids=[full.ids[i] for i in order])

    data_dir = str(shared_path("data"))
    names = list(prompts)
    for seed in seeds:
        corpus = unlabeled(unlabeled_size, seed)
        texts = [row["text"] for row in corpus.inputs(("text",))]
        p = np.clip(np.array([prompts[n](texts) for n in names]), EPS, 1 - EPS)
        logprobs = np.log(np.stack([1 - p, p], axis=-1))
        for embedder_id in embedders:
            from promptsel.plugins import registries

            cls = registries().embedders.get(embedder_id)
            options = FuteOptions(dte_size=dte_size, embedder_options={"tupate": tupate} if embedder_id == "tupate" else {},
                                  mte_targets=mte_targets)  # type: ignore[arg-type]
            embedder = cls(**options.embedder_options_for(cls))
            for target in TARGETS:
                began = time.perf_counter()
                fute = saved_fute(texts=texts, logprobs=logprobs, prompt_ids=names, dataset="sst2" if target in HALVES else target,
                                  data_dir=data_dir, options=options, seed=seed, source="pool",
                                  kind=HalfTrain if target in HALVES else Fute)
                if target in HALVES:
                    fute.half = HALVES[target]  # type: ignore[attr-defined]
                scores = fute.score(embedder)
                truth = "sst2" if target in HALVES else target
                right = correct[truth]
                perf = right.mean(axis=1)
                draws = accuracy_draws(right, resamples, seed)
                diag = fute.diagnostics().get(f"fute-{embedder_id}") or {}
                entry = {"scores": scores.tolist(), "truth": truth, **fixed(scores, perf, draws), "random": random_pick(perf, draws),
                         "u": len(texts), "dte_size": dte_size, "seconds": round(time.perf_counter() - began, 1),
                         "computed": sum(r["status"] == "computed" for r in fute.records),
                         "dte_learned": (diag.get("dte") or {}).get("learned"),
                         "mte_learned": sum(bool(d and d.get("learned")) for d in (diag.get("mte") or {}).values()),
                         "command": command}
                save(lambda r, e=entry, s=seed, t=target, k=embedder_id:
                     r.setdefault("fute", {}).setdefault(fute_key(k, unlabeled_size, tupate, mte_targets), {}).setdefault(str(s), {}).__setitem__(t, e))
                print(f"seed {seed}, {embedder_id}, {target}: NDCG {entry['ndcg']:.3f}, {entry['seconds']} s", file=sys.stderr)


# --- rendering ----------------------------------------------------------------------------

def render(results: dict[str, Any]) -> str:
    from scipy.stats import spearmanr

    q = results["quality"]
    names = list(q["sst2"]["prompts"])
    lines = ["Accuracy [95 % Wilson interval] (predicted-positive share) of each prompt; U: the pool sample the FUTE "
             f"part labels ({q['U']['n']} texts, seed 0).", "",
             "| prompt | " + " | ".join(f"{d} ({q[d]['split']}, n={q[d]['n']}, positive {q[d]['positive_gold']:.2f})"
                                       for d in DATASETS) + " | U positive |",
             "|---|" + "---|" * (len(DATASETS) + 1)]
    for name in names:
        cells = []
        for d in DATASETS:
            r = q[d]["prompts"][name]
            cells.append(f"{r['accuracy']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] ({r['positive']:.2f})")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {q['U']['prompts'][name]['positive']:.2f} |")
    acc = {d: np.array([q[d]["prompts"][n]["accuracy"] for n in names]) for d in DATASETS}
    lines += ["", "Spearman of the prompts' true accuracies between datasets: " + ", ".join(
        f"{a}~{b} {spearmanr(acc[a], acc[b]).statistic:.3f}" for a, b in PAIRS if a in acc and b in acc) + ".", ""]
    for key, per_seed in results.get("fute", {}).items():
        seeds = sorted(per_seed)
        lines += [f"**{key}**, seeds {', '.join(seeds)}: cells are the mean over seeds (range) [95 % bootstrap interval over "
                  "the evaluation examples, bounds averaged over seeds].", "",
                  "| DTE | judged on | FUTE NDCG | FUTE rate | FUTE Spearman | random NDCG | random rate | MTEs learned, DTE learned |",
                  "|---|---|---|---|---|---|---|---|"]
        for target in TARGETS:
            entries = [per_seed[s][target] for s in seeds if target in per_seed[s]]
            if not entries:
                continue
            learned = ", ".join(f"{e['mte_learned']}/{len(e['scores'])}, {e['dte_learned']}" for e in entries)
            lines.append(f"| {target} | {entries[0]['truth']} | " + " | ".join(cell(entries, m) for m in MEASURES) + " | "
                         + " | ".join(cell([e["random"] for e in entries], m) for m in ("ndcg", "rate")) + f" | {learned} |")
        pairs = []
        for a, b in PAIRS:
            rhos = [spearmanr(per_seed[s][a]["scores"], per_seed[s][b]["scores"]).statistic for s in seeds
                    if a in per_seed[s] and b in per_seed[s]]
            if rhos:
                pairs.append(f"{a}~{b} {np.mean(rhos):.3f}" + (f" ({min(rhos):.3f}–{max(rhos):.3f})" if len(rhos) > 1 else ""))
        if pairs:
            lines += ["", "Spearman of FUTE's scores between DTEs (the last pair is the same-data control): " + ", ".join(pairs) + "."]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fute", default="", help="embedders to run FUTE with (tupate,taskemb); none: the cheap part only")
    parser.add_argument("--prompts", default="all", help="FUTE's prompts: all, core (13 of them: see CORE) or names, comma-separated")
    parser.add_argument("--seeds", default="0", help="FUTE seeds (U sample, training, DTE sample), comma-separated")
    parser.add_argument("--unlabeled-size", type=int, default=200, help="texts of U drawn from the pool")
    parser.add_argument("--dte-size", type=int, default=500, help="train examples per DTE")
    parser.add_argument("--compare", help="tupate's compare option (default: tupate's)")
    parser.add_argument("--head", choices=["out", "in", "only"], help="tupate's head option (default: tupate's)")
    parser.add_argument("--mte-targets", choices=["soft", "hard"], default="soft",
                        help="what the MTEs learn from each prompt's p(positive): the probabilities or the decisions")
    parser.add_argument("--resamples", type=int, default=200, help="bootstrap resamples of the evaluation examples")
    parser.add_argument("--json", type=Path, help="the results file: read, updated and written back")
    parser.add_argument("--from-json", type=Path, help="render saved results instead of running")
    parser.add_argument("--write", action="store_true", help="append the section to bench/RESULTS.md")
    args = parser.parse_args()
    if args.from_json:
        results_md.publish(render(json.loads(args.from_json.read_text(encoding="utf-8"))), args.write)
        return
    results: dict[str, Any] = {}

    def save(change: Callable[[dict[str, Any]], None]) -> None:
        nonlocal results
        if args.json and args.json.is_file():
            results = json.loads(args.json.read_text(encoding="utf-8"))
        change(results)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")

    when = f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, {platform.machine()}"
    command = "python -m bench.bench_fute_classifiers " + " ".join(a for a in sys.argv[1:] if a != "--write")
    prompts = build_prompts(load("imdb", "train"))
    u_texts = [row["text"] for row in unlabeled(args.unlabeled_size, 0).inputs(("text",))]
    measured, correct = quality(prompts, u_texts)
    if args.fute:
        if args.prompts != "all":
            chosen = CORE if args.prompts == "core" else args.prompts.split(",")
            unknown = [name for name in chosen if name not in prompts]
            if unknown:
                parser.error(f"unknown prompts: {', '.join(unknown)}; they are: {', '.join(prompts)}")
            keep = [i for i, name in enumerate(prompts) if name in chosen]
            prompts = {name: p for name, p in prompts.items() if name in chosen}
            correct = {d: right[keep] for d, right in correct.items()}
        fute_run(prompts, correct, embedders=[e for e in args.fute.split(",") if e], seeds=[int(s) for s in args.seeds.split(",")],
                 unlabeled_size=args.unlabeled_size, dte_size=args.dte_size, resamples=args.resamples, save=save,
                 command=f"{when}: {command}",
                 tupate={k: v for k, v in (("compare", args.compare), ("head", args.head)) if v}, mte_targets=args.mte_targets)
    else:
        save(lambda r: r.update(quality=measured, meta={"command": command, "when": when}))
    if args.json and args.json.is_file():
        results = json.loads(args.json.read_text(encoding="utf-8"))
    if "quality" in results:
        results_md.publish(render(results), args.write)


if __name__ == "__main__":
    main()
