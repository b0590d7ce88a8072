"""Adaptive evaluation replayed on saved score tables: the share of (prompt, input) cells the
best-prompt search reads, and how often its choice is more than epsilon below the best prompt of
the full table, over many seeded input orders; beside a uniform sample of the same size and the
full evaluation.

The UPS fixture (OPT-2.7B, 100 prompts x 872 SST-2 sentences; and the FUTE paper's 13 prompts,
prompt_00-12) is read from the shared folder; more tables saved with ``select --save-scores``
(``--tables A.npz,B.npz``) are replayed the same way. A prompt's score on an input is 1 when its
highest class log-prob is the gold label. Nothing calls a model.

    python -m bench.bench_adaptive --seeds 200 --json DIR/adaptive.json [--write]
    python -m bench.bench_adaptive --from-json DIR/adaptive.json        # render again
    python -m bench.bench_adaptive --through-select --seeds 200 --json DIR/select.json [--tables A.npz]

``--through-select`` replays through the command's own code path instead of the core alone:
``select --scores FILE --adaptive --seed S`` (``run_select``, method ``mi`` only, to keep the
label-free part cheap), and checks that every seed's recommendation and cells read equal the
core search's on the same order.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from bench.lib import results_md
from bench.lib.shared_dir import shared_path
from promptsel.model.request import SelectRequest
from promptsel.model.sequential import search


def fixture_tables() -> dict[str, np.ndarray]:
    with np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz")) as z:
        right = (z["log_prob"].argmax(-1) == z["targets"][None]).astype(float)
        names = [str(p) for p in z["prompt"]]
    paper = [i for i, name in enumerate(names) if name in {f"prompt_{k:02d}" for k in range(13)}]
    return {"UPS OPT-2.7B SST-2, 100 prompts": right, "UPS OPT-2.7B SST-2, prompt_00-12": right[paper]}


def saved_table(path: Path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as z:
        return (z["class_logprobs"].argmax(-1) == z["labels"][None]).astype(float)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson interval of a rate k/n (the wrong-choice rate over seeds)."""
    p = k / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def replay(right: np.ndarray, seeds: int, epsilon: float, delta: float, round_size: int) -> dict:
    n_prompts, n = right.shape
    accuracy = right.mean(axis=1)
    best = accuracy.max()
    shares, wrong, uniform_wrong, reasons, gaps = [], 0, 0, {}, []
    began = time.perf_counter()
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(n)
        decision, cells = search(right, order, epsilon=epsilon, delta=delta, round_size=round_size)
        shares.append(cells / right.size)
        gap = best - accuracy[decision.leader]
        gaps.append(gap)
        wrong += int(gap > epsilon)
        reasons[decision.reason] = reasons.get(decision.reason, 0) + 1
        # The same number of cells spent uniformly: every prompt on the first cells/P inputs.
        k = max(1, round(cells / n_prompts))
        uniform_choice = int(np.argmax(right[:, order[:k]].mean(axis=1)))
        uniform_wrong += int(best - accuracy[uniform_choice] > epsilon)
    return {
        "prompts": n_prompts, "inputs": n, "best": float(best),
        "second": float(np.sort(accuracy)[-2]) if n_prompts > 1 else None,
        "seeds": seeds, "epsilon": epsilon, "delta": delta, "round_size": round_size,
        "cells_share": {"median": float(np.median(shares)), "q10": float(np.quantile(shares, 0.1)),
                        "q90": float(np.quantile(shares, 0.9))},
        "wrong": wrong, "wrong_interval": wilson(wrong, seeds),
        "uniform_wrong": uniform_wrong, "uniform_wrong_interval": wilson(uniform_wrong, seeds),
        "max_gap": float(max(gaps)), "reasons": reasons, "seconds": time.perf_counter() - began,
    }


# --- without labels: when is the label-free rule's choice settled? ---------------------------

def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-300, None))).sum(axis=-1)


def weighted_rule(rule: str, probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """MI or GlobalE [B, P] on B weightings of the inputs (bootstrap counts; [B, n]) of probs
    [P, n, C] at once: the library's definitions (plugins/baselines.py) with a weighted mean."""
    total = weights.sum(axis=1)[:, None, None]
    if rule == "mi":
        mean = np.einsum("bn,pnc->bpc", weights, probs) / total
        return _entropy(mean) - weights @ _entropy(probs).T / total[..., 0]
    one_hot = (probs.argmax(-1)[..., None] == np.arange(probs.shape[-1])).astype(float)  # [P, n, C]
    return _entropy(np.einsum("bn,pnc->bpc", weights, one_hot) / total)


def label_free_stop(probs: np.ndarray, rule: str, order: np.ndarray, rng: np.random.Generator, *, round_size: int,
                    level: float, resamples: int) -> tuple[int, int]:
    """Read the inputs in ``order`` in rounds (every prompt on every input: nothing is dropped
    without labels); after each round, the rule's choice on the inputs read and its bootstrap
    pick share (``resamples`` resamples of those inputs). Stop when the same prompt is chosen
    with a share of at least ``level`` on two consecutive rounds. Returns (choice, inputs read)."""
    n = len(order)
    before = None
    for k in range(round_size, n + round_size, round_size):
        read = order[: min(k, n)]
        sub = probs[:, read]
        choice = int(np.argmax(weighted_rule(rule, sub, np.ones((1, len(read))))[0]))
        counts = rng.multinomial(len(read), np.full(len(read), 1 / len(read)), size=resamples).astype(float)
        share = float((weighted_rule(rule, sub, counts).argmax(axis=1) == choice).mean())
        settled = share >= level
        if settled and before == choice:
            return choice, len(read)
        before = choice if settled else None
    return choice, n


def label_free_replay(probs: np.ndarray, rule: str, seeds: int, *, round_size: int, level: float, resamples: int) -> dict:
    """The bootstrap-stability stop over ``seeds`` input orders: inputs read, and how often the
    choice differs from the rule's choice on the full table (the labels are never read)."""
    full = int(np.argmax(weighted_rule(rule, probs, np.ones((1, probs.shape[1])))[0]))
    read, wrong = [], 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        choice, n = label_free_stop(probs, rule, rng.permutation(probs.shape[1]), rng, round_size=round_size, level=level,
                                    resamples=resamples)
        read.append(n / probs.shape[1])
        wrong += int(choice != full)
    return {"rule": rule, "prompts": probs.shape[0], "inputs": probs.shape[1], "seeds": seeds, "level": level,
            "round_size": round_size, "resamples": resamples, "read_share": {"median": float(np.median(read)),
            "q10": float(np.quantile(read, 0.1)), "q90": float(np.quantile(read, 0.9))},
            "wrong": wrong, "wrong_interval": wilson(wrong, seeds)}


def render_label_free(results: dict[str, dict]) -> str:
    lines = ["## Label-free adaptive stop, replayed (`bench_adaptive --label-free`)", "",
             "| table | rule | stop at pick share | inputs read: median (10–90 %) | choice ≠ the rule's full-table choice (95 % interval) |",
             "|---|---|---|---|---|"]
    for name, r in results.items():
        c = r["read_share"]
        lines.append(f"| {name.rsplit(' / ', 1)[0]} | {r['rule']} | ≥ {r['level']} on two consecutive rounds | {c['median']:.1%} "
                     f"({c['q10']:.1%}–{c['q90']:.1%}) | {r['wrong']}/{r['seeds']} "
                     f"({r['wrong_interval'][0]:.3f}–{r['wrong_interval'][1]:.3f}) |")
    any_r = next(iter(results.values()))
    lines += ["", f"Rounds of {any_r['round_size']} inputs, {any_r['resamples']} bootstrap resamples of the inputs read "
              "after each, seeds as the input orders; labels never read. A measured error rate, not a guarantee."]
    return "\n".join(lines) + "\n"


def fixture_probs() -> dict[str, np.ndarray]:
    with np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz")) as z:
        lp = z["log_prob"] - np.logaddexp.reduce(z["log_prob"], axis=-1, keepdims=True)
        names = [str(p) for p in z["prompt"]]
    paper = [i for i, name in enumerate(names) if name in {f"prompt_{k:02d}" for k in range(13)}]
    return {"UPS OPT-2.7B SST-2, 100 prompts": np.exp(lp), "UPS OPT-2.7B SST-2, prompt_00-12": np.exp(lp[paper])}


def fixture_files(folder: Path) -> dict[str, Path]:
    """The UPS fixture as scores files ``select --scores`` reads (100 prompts; prompt_00-12)."""
    with np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz")) as z:
        names = np.asarray([str(p) for p in z["prompt"]])
        paper = [i for i, name in enumerate(names) if name in {f"prompt_{k:02d}" for k in range(13)}]
        out = {}
        for name, rows in (("UPS OPT-2.7B SST-2, 100 prompts", slice(None)), ("UPS OPT-2.7B SST-2, prompt_00-12", paper)):
            path = folder / f"ups_{len(names[rows])}.npz"
            np.savez(path, class_logprobs=z["log_prob"][rows], labels=z["targets"], prompt_ids=names[rows])
            out[name] = path
    return out


def through_select(path: Path, seeds: int, epsilon: float, delta: float, round_size: int) -> dict:
    """``select --scores PATH --adaptive`` for every seed: cells read, wrong choices, and whether
    each decision equals the core search's on the same order."""
    from promptsel.selection.run import run_select

    right = saved_table(path)
    accuracy = right.mean(axis=1)
    best = accuracy.max()
    shares, wrong, same, reasons = [], 0, 0, {}
    began = time.perf_counter()
    for seed in range(seeds):
        request = SelectRequest(scores=path, adaptive=True, seed=seed, epsilon=epsilon, delta=delta, round_size=round_size,
                                methods=["mi"], recommend="mi")
        report, _ = run_select(request)
        a = report["adaptive"]
        chosen = report["prompts"].index(next(p for p in report["prompts"] if p["id"] == report["recommendation"]["prompt"]))
        shares.append(a["cells_scored"] / a["cells_total"])
        wrong += int(best - accuracy[chosen] > epsilon)
        reasons[a["stop_reason"]] = reasons.get(a["stop_reason"], 0) + 1
        decision, cells = search(right, np.random.default_rng(seed).permutation(right.shape[1]), epsilon=epsilon, delta=delta,
                                 round_size=round_size)
        same += int(decision.leader == chosen and cells == a["cells_scored"] and decision.reason == a["stop_reason"])
    return {
        "prompts": right.shape[0], "inputs": right.shape[1], "best": float(best),
        "second": float(np.sort(accuracy)[-2]) if right.shape[0] > 1 else None, "seeds": seeds, "epsilon": epsilon,
        "delta": delta, "round_size": round_size,
        "cells_share": {"median": float(np.median(shares)), "q10": float(np.quantile(shares, 0.1)),
                        "q90": float(np.quantile(shares, 0.9))},
        "wrong": wrong, "wrong_interval": wilson(wrong, seeds), "same_as_core": same, "reasons": reasons,
        "seconds": time.perf_counter() - began,
    }


def _row(name: str, r: dict, compared: str) -> str:
    """One table's row: what both renderings show, with ``compared`` (their one different column)
    before the stop reasons."""
    c = r["cells_share"]
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(r["reasons"].items()))
    return (f"| {name} | {r['prompts']} × {r['inputs']} | {r['best']:.3f}, {r['second']:.3f} | "
            f"{c['median']:.1%} ({c['q10']:.1%}–{c['q90']:.1%}) | {r['wrong']}/{r['seeds']} "
            f"({r['wrong_interval'][0]:.3f}–{r['wrong_interval'][1]:.3f}) | {compared} | {reasons} |")


def render_select(results: dict[str, dict]) -> str:
    lines = [
        "## Adaptive evaluation through `select --scores --adaptive` (`bench_adaptive --through-select`)", "",
        "| table | P × N | best, second | cells read: median (10–90 %) | wrong choices (95 % interval) | "
        "same decision as the core search | stopped because |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(_row(name, r, f"{r['same_as_core']}/{r['seeds']}"))
    any_r = next(iter(results.values()))
    lines += ["", f"epsilon {any_r['epsilon']}, delta {any_r['delta']}, rounds of {any_r['round_size']} inputs, seeds "
              f"0–{any_r['seeds'] - 1} (the seed draws the input order)."]
    return "\n".join(lines) + "\n"


def render(results: dict[str, dict]) -> str:
    lines = [
        "## Adaptive evaluation, replayed (`bench_adaptive`)", "",
        "| table | P × N | best, second | cells read: median (10–90 %) | wrong choices (95 % interval) | "
        "uniform sample, same cells: wrong | stopped because |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(_row(name, r, f"{r['uniform_wrong']}/{r['seeds']} "
                                   f"({r['uniform_wrong_interval'][0]:.3f}–{r['uniform_wrong_interval'][1]:.3f})"))
    any_r = next(iter(results.values()))
    lines += ["", f"epsilon {any_r['epsilon']}, delta {any_r['delta']}, a decision after every "
              f"{any_r['round_size']} inputs; a wrong choice is one more than epsilon below the best "
              "prompt of the full table. The full evaluation reads 100 % and is never wrong by this "
              "definition."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--epsilon", type=float, default=0.01)
    parser.add_argument("--delta", type=float, default=0.05)
    parser.add_argument("--round-size", type=int, default=10)
    parser.add_argument("--tables", default="", help="more saved tables (.npz from select --save-scores), comma-separated")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--from-json", type=Path, help="render saved results instead of running")
    parser.add_argument("--write", action="store_true", help="append the section to bench/RESULTS.md")
    parser.add_argument("--through-select", action="store_true", help="replay through select --scores --adaptive")
    parser.add_argument("--label-free", action="store_true", help="replay the label-free bootstrap-stability stop")
    parser.add_argument("--level", type=float, default=0.9, help="--label-free: the pick share that counts as settled")
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--rules", default="mi,globale", help="--label-free: the rules, comma-separated (mi, globale)")
    args = parser.parse_args()
    if args.label_free:
        if args.from_json:
            results = json.loads(args.from_json.read_text(encoding="utf-8"))
        else:
            results = {f"{name} / {rule}": label_free_replay(probs, rule, args.seeds, round_size=args.round_size,
                                                             level=args.level, resamples=args.resamples)
                       for name, probs in fixture_probs().items() for rule in args.rules.split(",")}
            if args.json:
                args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
        results_md.publish(render_label_free(results), args.write)
        return
    if args.through_select:
        import tempfile

        if args.from_json:
            results = json.loads(args.from_json.read_text(encoding="utf-8"))
        else:
            with tempfile.TemporaryDirectory() as folder:
                files = fixture_files(Path(folder))
                files.update({Path(p).stem: Path(p) for p in args.tables.split(",") if p})
                results = {name: through_select(path, args.seeds, args.epsilon, args.delta, args.round_size)
                           for name, path in files.items()}
            if args.json:
                args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
        results_md.publish(render_select(results), args.write)
        return
    if args.from_json:
        results = json.loads(args.from_json.read_text(encoding="utf-8"))
    else:
        tables = fixture_tables()
        tables.update({Path(p).stem: saved_table(Path(p)) for p in args.tables.split(",") if p})
        results = {name: replay(right, args.seeds, args.epsilon, args.delta, args.round_size) for name, right in tables.items()}
        if args.json:
            args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    results_md.publish(render(results), args.write)


if __name__ == "__main__":
    main()
