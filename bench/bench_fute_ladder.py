"""FUTE's premise ladder on several seeds: every comparison's scores and checks, from one training.

Trains (or finds in the embedding store) the ladder of bench/lib/premise.py for each seed and
each embedder setting, then scores it under every comparison: tupate's ``compare`` modes
(``null``, the default; ``change``; ``raw-change``, the paper code's raw prefixes) and the other
null variants measured beside them. Writes every score and check to a JSON file
(``--json``, default bench/fute_ladder.json) and renders the Markdown from it
(``--from-json`` renders without training).

    python -m bench.bench_fute_ladder --seeds 0,1,2,3
    python -m bench.bench_fute_ladder --seeds 1 --settings "lr=0.005,mte_epochs=2,dte_epochs=2"
    python -m bench.bench_fute_ladder --from-json bench/fute_ladder.json

The thresholds are the issue's, fixed before any run. Seed 0 is for choosing between the
comparisons and is never asserted; the margins' spread is taken over the other seeds
(``tests/fute/test_premise.py`` asserts seed 1 with the defaults).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.lib.results_md import publish
from bench.lib.shared_dir import shared_path

DEFAULT_JSON = Path(__file__).resolve().parent / "fute_ladder.json"
COMPARISONS = ("null", "change", "raw-change", "null-vector", "null-both", "raw-null")
#: with tupate's head=in, the same comparisons on each part of the vector as well; raw-change@head
#: is what ``-E tupate.head=only -E tupate.compare=raw`` compares (the trained head, its seeded
#: start kept), the shared part that null-both@head removes
PART_COMPARISONS = ("null@prefix", "null@head", "change@head", "null-both@head", "raw-change@head")
CHECKS = ("order", "inverted", "random", "marginal", "null_dte", "halves")


def parse_settings(text: str) -> list[dict[str, str]]:
    """``"lr=0.02,batch_size=8;lr=0.01"`` -> [{"lr": "0.02", "batch_size": "8"}, {"lr": "0.01"}];
    an empty setting is the defaults."""
    return [dict(kv.split("=", 1) for kv in part.split(",") if kv) for part in text.split(";")]


def measure(seeds: list[int], settings: list[dict[str, str]], shard: tuple[int, int] | None = None, *,
            u_size: int | None = None, dte_size: int | None = None, max_length: int | None = None) -> dict[str, Any] | None:
    from bench.lib import premise
    from promptsel.fute.method import FuteMethod
    from promptsel.fute.options import FuteOptions
    from promptsel.fute.store import EmbeddingStore
    from promptsel.plugins import registries
    from promptsel.surrogate import Surrogate
    from promptsel_builtin import tupate

    data = shared_path("data")
    u_size, dte_size = u_size or premise.U_SIZE, dte_size or premise.DTE_SIZE
    surrogate = Surrogate("minilm", max_length=max_length or premise.MAX_LENGTH)
    method = FuteMethod.for_embedder(registries().embedders.get("tupate"))
    store = EmbeddingStore()
    runs = []
    for setting in settings:
        # "targets" is the ladder's (how sure its labeller is), not tupate's
        tupate_setting = {k: v for k, v in setting.items() if k != "targets"}
        embedder = method.make_embedder(FuteOptions(embedder_options={"tupate": {**tupate_setting, "compare": "null"}}))
        for seed in seeds:
            options = embedder.options.as_dict()
            start = tupate.start(options, surrogate, seed)
            head = len(start) - len(tupate.start({**options, "head": "out"}, surrogate, seed))
            ladder = premise.run(embedder, surrogate, data_dir=data, seed=seed, store=store, start=start, shard=shard,
                                 u_size=u_size, dte_size=dte_size, targets=setting.get("targets", "soft"), head=head,
                                 log=lambda m, s=seed: print(f"seed {s}: {m}", file=sys.stderr, flush=True))
            if ladder is None:  # a shard: its embeddings are in the store
                continue
            results = {c: _plain(premise.checks(ladder, c)) for c in COMPARISONS + (PART_COMPARISONS if head else ())}
            runs.append({"setting": setting, "seed": seed, "seconds": round(ladder.seconds, 1), "computed": ladder.computed,
                         "mix": ladder.mix, "training": ladder.training, "results": results,
                         "passed": {c: premise.passed(r) for c, r in results.items()}})
            print(f"seed {seed} {setting}: " + ", ".join(f"{c} {'pass' if runs[-1]['passed'][c] else 'FAIL'} "
                  f"margin {results[c]['margin']:+.3f}" for c in COMPARISONS), file=sys.stderr, flush=True)
    if shard is not None:
        return None
    return {"created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "surrogate": surrogate.name,
            "u_size": u_size, "dte_size": dte_size, "max_length": surrogate.max_length,
            "prompts": list(premise.PROMPTS), "runs": runs}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (np.floating, float)):
        return round(float(value), 4)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def render(record: dict[str, Any]) -> str:
    from bench.lib import premise

    out = [f"### {record['created']}: the premise ladder, {record['surrogate']}, |U| {record['u_size']}, "
           f"DTEs of {record['dte_size']} SST-2 train sentences, max_length {record['max_length']}", ""]
    for run in record["runs"]:
        name = ", ".join(f"{k}={v}" for k, v in run["setting"].items()) or "defaults"
        out += [f"**seed {run['seed']}, {name}** ({run['computed']} embeddings trained, {run['seconds']:.0f} s; "
                f"DTE held-out gain a/b/null: " + " / ".join(_gain(run["training"][f"dte:{d}"]) for d in premise.DTES) + ")", "",
                "| comparison | " + " | ".join(premise.PROMPTS) + " | margin | " + " | ".join(CHECKS) + " |",
                "|---" * (len(premise.PROMPTS) + len(CHECKS) + 2) + "|"]
        for c, r in run["results"].items():
            marks = []
            for k in CHECKS:
                v = r[k]
                num = v.get("spearman", v.get("gap", v.get("change", v.get("largest"))))
                marks.append(("ok" if v["ok"] else "**fail**") + (f" {num:+.2f}" if isinstance(num, float) else ""))
            out.append(f"| {c} | " + " | ".join(f"{r['scores'][p]:+.3f}" for p in premise.PROMPTS)
                       + f" | {r['margin']:+.3f} | " + " | ".join(marks) + " |")
        out.append("")
    out += _seed_summary(record)
    return "\n".join(out)


def _gain(t: dict[str, Any]) -> str:
    if t.get("gain") is None:
        return "–"
    return f"{t['gain']:+.3f} [{t['gain_low']:+.3f}, {t['gain_high']:+.3f}] of {t['max_gain']:.3f}"


def _seed_summary(record: dict[str, Any]) -> list[str]:
    """Per setting and comparison: the margin's mean and sd over the seeds other than 0."""
    lines = ["| setting | comparison | seeds | margin per seed | mean | sd | mean > 2 sd | all checks pass |", "|---|---|---|---|---|---|---|---|"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in record["runs"]:
        if run["seed"] != 0:
            groups.setdefault(json.dumps(run["setting"], sort_keys=True), []).append(run)
    for key, runs in groups.items():
        name = ", ".join(f"{k}={v}" for k, v in json.loads(key).items()) or "defaults"
        for c in runs[0]["results"]:
            m = np.array([r["results"][c]["margin"] for r in runs])
            sd = float(m.std(ddof=1)) if len(m) > 1 else float("nan")
            lines.append(f"| {name} | {c} | {','.join(str(r['seed']) for r in runs)} | {' / '.join(f'{x:+.3f}' for x in m)} | "
                         f"{m.mean():+.3f} | {sd:.3f} | {'yes' if len(m) > 1 and m.mean() > 2 * sd else 'no'} | "
                         f"{'yes' if all(r['passed'][c] for r in runs) else 'no'} |")
    return lines


def rescore(record: dict[str, Any], path: Path) -> None:
    """Apply ``premise.checks``' bounds again to every stored result; write ``path`` back."""
    from bench.lib import premise  # imports torch's side of the bench: only when asked

    for run in record["runs"]:
        for c, result in run["results"].items():
            run["results"][c] = premise.rescored(result)
            now = premise.passed(run["results"][c])
            if now != run["passed"][c]:
                print(f"{path.name}: seed {run['seed']} {run['setting']} {c}: {'pass' if run['passed'][c] else 'fail'} -> "
                      f"{'pass' if now else 'fail'}", file=sys.stderr)
            run["passed"][c] = now
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--settings", default="", help="tupate settings, ';'-separated (empty: the defaults); "
                    "targets=sharp makes the ladder's labeller confident (bench/lib/premise.py)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write every score and check")
    ap.add_argument("--from-json", type=Path, default=None, help="render this file, train nothing")
    ap.add_argument("--rescore", action="store_true", help="with --from-json: apply the checks' bounds again to "
                    "the stored numbers, write the file back and say which verdicts changed")
    ap.add_argument("--merge", action="store_true", help="add these runs to the JSON file's runs")
    ap.add_argument("--write", action="store_true", help="append the section to bench/RESULTS.md")
    ap.add_argument("--u-size", type=int, default=None, help="|U| (default: the test's)")
    ap.add_argument("--dte-size", type=int, default=None, help="each DTE's sample (default: the test's)")
    ap.add_argument("--max-length", type=int, default=None, help="the surrogate's token limit (default: the test's)")
    ap.add_argument("--shard", default=None, help="I/N: train only every N-th embedding from the I-th into the store "
                    "(run N of these side by side, then once without --shard)")
    args = ap.parse_args()
    if args.from_json:
        record = json.loads(args.from_json.read_text())
        if args.rescore:
            rescore(record, args.from_json)
    else:
        shard = tuple(int(x) for x in args.shard.split("/")) if args.shard else None
        record = measure([int(s) for s in args.seeds.split(",")], parse_settings(args.settings), shard,  # type: ignore[arg-type]
                         u_size=args.u_size, dte_size=args.dte_size, max_length=args.max_length)
        if record is None:
            return
        if args.merge and args.json.is_file():
            old = json.loads(args.json.read_text())
            done = {(json.dumps(r["setting"], sort_keys=True), r["seed"]) for r in record["runs"]}
            record["runs"] = [r for r in old["runs"] if (json.dumps(r["setting"], sort_keys=True), r["seed"]) not in done] + record["runs"]
        args.json.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    publish(render(record), args.write)


if __name__ == "__main__":
    main()
