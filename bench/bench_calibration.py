"""Does calibration help? Accuracy of the prompts and quality of the label-free rules under
``none``, ``cc``, ``pmi`` and ``cbm`` (``promptsel.selection.calibration``).

Two parts:

* ``--fixture`` (no model): the UPS fixture (OPT-2.7B, SST-2 validation, 872 examples; all 100
  prompts and the first 13). Only ``none`` and ``cbm``: the fixture has no content-free scores.
* ``--datasets a,b`` (the default model through llama.cpp, or ``--backend``/``--model``): each
  dataset's evaluation sample and the content-free inputs, scored once through the result cache,
  then every calibration applied to the same table.

Per calibration: mean and best prompt accuracy, and per rule (each baseline and ``consensus``)
the accuracy of its choice (tie-expected), its rate against the best calibrated prompt, and NDCG
(min-max relevance). Usage: ``python -m bench.bench_calibration --fixture [--datasets sst2,cb
--limit 50] [--write]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench.lib import results_md
from bench.lib.shared_dir import shared_path

ROOT = Path(__file__).resolve().parents[1]
RULES = ("mi", "globale", "locale", "zps-log", "zps-prob", "zps-vote", "spell", "consensus")
PROMPTS = {"sst2": "sa.toml", "rotten_tomatoes": "sa.toml", "imdb": "sa.toml", "cb": "nli.toml",
           "anli_r3": "nli.toml", "rte": "rte.toml"}


def shared() -> Path:
    return shared_path()


def evaluate(table) -> dict:
    from promptsel.model import metrics
    from promptsel.model.stats import expected_choice
    from promptsel.plugins import registries
    from promptsel.selector import SelectionContext

    perf = metrics.performance(table.predictions, table.labels)
    out = {"mean": float(perf.mean()), "best": float(perf.max()), "rules": {}}
    for rule in RULES:
        if rule == "spell" and table.prompt_nll is None:
            continue
        scores = registries().selectors.get(rule)().score(table, SelectionContext())
        choice = expected_choice(scores, perf)
        out["rules"][rule] = {"accuracy": choice["performance"], "rate": choice["rate"],
                              "ndcg": metrics.ndcg(scores, perf, "minmax")}
    return out


def fixture_results() -> dict[str, dict[str, dict]]:
    from promptsel.model.scoretable import ScoreTable
    from promptsel.selection.calibration import calibrate

    with np.load(shared() / "fixtures" / "ups_sst2_opt2.7b.npz") as d:
        arrays = {k: d[k] for k in d.files}
    out = {}
    for n in (100, 13):
        table = ScoreTable(prompt_ids=[str(p) for p in arrays["prompt"][:n]], class_names=["negative", "positive"],
                           class_logprobs=arrays["log_prob"][:n], prompt_nll=-np.log(arrays["p_xt"][:n]),
                           labels=arrays["targets"])
        out[f"ups-{n}"] = {kind: evaluate(calibrate(table, kind)) for kind in ("none", "cbm")}
    return out


def model_results(name: str, args: argparse.Namespace) -> tuple[dict[str, dict], float]:
    from promptsel.model.data import Dataset
    from promptsel.model.prompts import load_prompt_set
    from promptsel.model.request import ScoringOptions, SelectRequest
    from promptsel.selection.cache import Cache
    from promptsel.selection.calibration import (
        CONTENT_FREE,
        REFERENCES,
        calibrate,
        reference_inputs,
    )
    from promptsel.selection.inputs import load_dataset, make_backend, resolve_dataset_spec
    from promptsel.selection.scoring import Scorer, build_score_table

    prompt_set = load_prompt_set(ROOT / "prompts" / PROMPTS[name])
    req = SelectRequest(dataset=name, prompts=ROOT / "prompts" / PROMPTS[name], limit=args.limit, seed=0,
                        data_dir=str(shared() / "data"), max_chars=600 if name == "imdb" else None)
    spec = resolve_dataset_spec(name)
    dataset = load_dataset(req, spec)
    backend = make_backend(args.backend, args.model, dict(a.split("=", 1) for a in args.model_arg))
    began = time.perf_counter()
    try:
        scorer = Scorer(backend, Cache(enabled=True))
        table = build_score_table(prompt_set, dataset, scorer, ScoringOptions(), need_nll=True)
        refs = Dataset(name=f"{name}-content-free", split="-", fields=dataset.fields, classes=dataset.classes,
                       examples=reference_inputs("cc", dataset.fields), ids=list(CONTENT_FREE), source="content-free")
        ref_lp = build_score_table(prompt_set, refs, scorer, ScoringOptions(), need_nll=False).class_logprobs  # [P, 3, C]
    finally:
        backend.close()
    seconds = time.perf_counter() - began
    if args.save_tables:
        args.save_tables.mkdir(parents=True, exist_ok=True)
        table.save(args.save_tables / f"{name}.npz")
        np.save(args.save_tables / f"{name}.content_free.npy", ref_lp)
    pmi_rows = [CONTENT_FREE.index(t) for t in REFERENCES["pmi"]]
    out = {
        "none": evaluate(table),
        "cc": evaluate(calibrate(table, "cc", ref_lp)),
        "pmi": evaluate(calibrate(table, "pmi", ref_lp[:, pmi_rows])),
        "cbm": evaluate(calibrate(table, "cbm")),
    }
    return out, seconds


def markdown(results: dict[str, dict[str, dict]]) -> str:
    def f(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"

    lines = ["| setting | calibration | mean acc | best acc | " + " | ".join(f"{r} acc / rate / NDCG" for r in RULES) + " |",
             "|" + "---|" * (4 + len(RULES))]
    for setting, by_kind in results.items():
        for kind, res in by_kind.items():
            cells = []
            for rule in RULES:
                r = res["rules"].get(rule)
                cells.append("n/a" if r is None else f"{f(r['accuracy'])} / {f(r['rate'])} / {f(r['ndcg'])}")
            lines.append(f"| {setting} | {kind} | {f(res['mean'])} | {f(res['best'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixture", action="store_true", help="the UPS fixture, none vs cbm (no model)")
    ap.add_argument("--datasets", default="", help="comma-separated datasets to score with the model")
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--backend", default="llamacpp")
    ap.add_argument("--model", default=None)
    ap.add_argument("-M", "--model-arg", action="append", default=[], help="backend option KEY=VALUE, e.g. n_threads=1")
    ap.add_argument("--save-tables", type=Path,
                    help="save each dataset's ScoreTable (<name>.npz) and content-free log-probs (<name>.content_free.npy) here")
    ap.add_argument("--json", type=Path, help="also write the results to this JSON file (after each dataset)")
    ap.add_argument("--from-json", type=Path, action="append", help="add results saved with --json (repeatable)")
    ap.add_argument("--write", action="store_true", help="append the section to bench/RESULTS.md")
    args = ap.parse_args()
    results: dict[str, dict[str, dict]] = {}
    notes = []
    for path in args.from_json or []:
        saved = json.loads(path.read_text())
        results.update(saved["results"])
        notes += saved["notes"]
    if args.fixture:
        results.update(fixture_results())
    for name in [n.strip() for n in args.datasets.split(",") if n.strip()]:
        if name not in PROMPTS:
            sys.exit(f"error: unknown dataset {name!r}; choose from {', '.join(PROMPTS)}.")
        print(f"[{datetime.now():%H:%M:%S}] {name} ...", file=sys.stderr, flush=True)
        results[name], seconds = model_results(name, args)
        notes.append(f"{name} {seconds:.0f} s")
        print(markdown({name: results[name]}), file=sys.stderr, flush=True)
        if args.json:
            args.json.write_text(json.dumps({"results": results, "notes": notes}, indent=1))
    if not results:
        sys.exit("error: nothing to measure; pass --fixture and/or --datasets.")
    # Folders and files of this machine are shown by name only (no local paths in RESULTS.md).
    command = "python -m bench.bench_calibration " + " ".join(Path(a).name if os.sep in a else a for a in sys.argv[1:])
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join([
        f"### {when}, {platform.machine()}, {os.cpu_count()} cores",
        "",
        f"Command: `{command}`." + (f" Model runs: {args.backend} {args.model or '(default model)'}, "
                                     f"{args.limit} examples per dataset; wall time {', '.join(notes)}." if notes else ""),
        "Per rule: accuracy of its choice (tie-expected) / rate against the best prompt under the same calibration / "
        "NDCG (min-max relevance).",
        "",
        markdown(results),
        "",
    ])
    results_md.publish(body, args.write)


if __name__ == "__main__":
    main()
