"""Label-free rules compared: every per-input baseline and each way of aggregating them into
``consensus``, on the evidence the project has. The result chooses ``consensus``'s aggregation
and the default label-free rule of the recommendation (``promptsel.selection.recommend.DEFAULT_RULE``).

Evidence (no model runs here; everything is read from files):

* the UPS fixture (``shared/fixtures/ups_sst2_opt2.7b.npz``): real OPT-2.7B log-probs on all
  872 SST-2 validation examples, for all 100 prompts and for the first 13;
* ``bench/quality_reports.json``: every method's per-prompt scores and the prompts' true
  accuracy on six datasets (SmolLM2-135M, 50 examples each, 13 prompts). FUTE is left out (its
  scores there are broken, issue 10); Self-Select is shown for reference, never a member.

Per rule and setting: rate (tie-expected performance of its choice over the best prompt's) and
NDCG (min-max relevance, ties averaged), then their means, and each rule's mean rank by NDCG
over the eight settings. On the fixture, also the rule's choice stability: the share of
bootstrap resamples of the inputs in which the rule, rerun, picks the prompt it picks on all.

Usage: ``python -m bench.bench_consensus [--stability-resamples 200] [--calibrations none,cbm]
[--tables DIR] [--write]`` (``--tables``: the datasets as ``python -m bench.bench_calibration --save-tables``
scored them, which also allows the ``cc`` and ``pmi`` calibrations).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench.lib import results_md
from bench.lib.shared_dir import shared_path

ROOT = Path(__file__).resolve().parents[1]
SINGLES = ("mi", "globale", "locale", "zps-log", "zps-prob", "zps-vote", "spell")
REFERENCE = ("self-select",)  # shown where present, never a consensus member
MEMBER_SETS = {
    "all": SINGLES,
    # The three ZPS ensembles are near-duplicates (identical on every quality dataset): one vote.
    "one-zps": ("mi", "globale", "locale", "zps-log", "spell"),
    "no-zps": ("mi", "globale", "locale", "spell"),
}
AGGREGATIONS = ("borda", "zscore", "copeland")
QUALITY_ORDER = ("sst2", "rotten_tomatoes", "imdb", "cb", "rte", "anli_r3")


def fixture_path() -> Path:
    return shared_path("fixtures", "ups_sst2_opt2.7b.npz")


def fixture_table(n_prompts: int):
    from promptsel.model.scoretable import ScoreTable

    with np.load(fixture_path()) as d:
        return ScoreTable(prompt_ids=[str(p) for p in d["prompt"][:n_prompts]], class_names=["negative", "positive"],
                          class_logprobs=d["log_prob"][:n_prompts], prompt_nll=-np.log(d["p_xt"][:n_prompts]),
                          labels=d["targets"])


def consensus_name(members: str, how: str) -> str:
    return f"consensus[{how},{members}]"


def add_consensus(scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from promptsel_builtin.consensus import aggregate

    out = dict(scores)
    for members, names in MEMBER_SETS.items():
        rows = np.array([scores[n] for n in names if n in scores])
        for how in AGGREGATIONS:
            out[consensus_name(members, how)] = aggregate(rows, how)
    return out


def evaluate(scores: dict[str, np.ndarray], perf: np.ndarray) -> dict[str, dict[str, float | None]]:
    from promptsel.model import metrics
    from promptsel.model.stats import expected_choice

    out = {}
    for rule, s in scores.items():
        choice = expected_choice(s, perf)
        out[rule] = {"rate": choice["rate"], "ndcg": metrics.ndcg(s, perf, "minmax")}
    out["random"] = {"rate": float(np.mean(perf) / np.max(perf)), "ndcg": metrics.random_ndcg(perf, "minmax")}
    return out


def table_setting(table, resamples: int) -> tuple[dict, dict[str, float]]:
    """Every rule on one labelled ScoreTable, and (with ``resamples``) its choice stability."""
    from promptsel.model import metrics
    from promptsel.model.stats import choice_share, resample_indices, resampled_table, win_shares
    from promptsel.plugins import registries
    from promptsel.selector import SelectionContext

    ctx = SelectionContext()
    selectors = {m: registries().selectors.get(m)() for m in SINGLES if m != "spell" or table.prompt_nll is not None}
    scores = add_consensus({m: np.asarray(sel.score(table, ctx), dtype=float) for m, sel in selectors.items()})
    # The registered rule is the variant chosen here: check it is the same arithmetic.
    registered = registries().selectors.get("consensus")().score(table, ctx)
    assert np.allclose(registered, scores[consensus_name("no-zps", "zscore")]), "consensus is not zscore,no-zps"
    perf = metrics.performance(table.predictions, table.labels)
    result = evaluate(scores, perf)
    stability: dict[str, float] = {}
    if resamples:
        draws: dict[str, list[np.ndarray]] = {rule: [] for rule in scores}
        for pick in resample_indices(table.n_examples, resamples, seed=0):
            sub = resampled_table(table, pick)
            again = add_consensus({m: np.asarray(sel.score(sub, ctx), dtype=float) for m, sel in selectors.items()})
            for rule, s in again.items():
                draws[rule].append(s)
        for rule, s in scores.items():
            _, tied = metrics.choose(s)
            stability[rule] = choice_share(win_shares(np.array(draws[rule])), tied)
    return result, stability


def saved_tables(folder: Path, calibration: str):
    """The tables ``python -m bench.bench_calibration --save-tables`` wrote, calibrated."""
    from promptsel.model.scoretable import ScoreTable
    from promptsel.selection.calibration import CONTENT_FREE, REFERENCES, calibrate

    for name in QUALITY_ORDER:
        path = folder / f"{name}.npz"
        if not path.is_file():
            continue
        table = ScoreTable.load(path)
        refs = np.load(folder / f"{name}.content_free.npy")
        rows = [CONTENT_FREE.index(t) for t in REFERENCES[calibration]]
        yield name, calibrate(table, calibration, refs[:, rows] if rows else None)


def quality_settings() -> dict[str, dict]:
    reports = json.loads((ROOT / "bench" / "quality_reports.json").read_text())
    out = {}
    for name in QUALITY_ORDER:
        report = reports[name]
        perf = np.array([p["performance"] for p in report["prompts"]])
        scores = {m: np.array([p["scores"][m] for p in report["prompts"]]) for m in (*SINGLES, *REFERENCE)
                  if all(p["scores"].get(m) is not None for p in report["prompts"])}
        out[name] = evaluate(add_consensus(scores), perf)
    return out


def rules_in_order(settings: dict[str, dict]) -> list[str]:
    seen: dict[str, None] = {}
    for result in settings.values():
        seen.update(dict.fromkeys(result))
    return [r for r in seen if r != "random"] + ["random"]


def mean_rank(settings: dict[str, dict], rules: list[str]) -> dict[str, float]:
    from scipy.stats import rankdata

    ranks: dict[str, list[float]] = {r: [] for r in rules}
    for result in settings.values():
        present = [r for r in rules if r in result and result[r]["ndcg"] is not None]
        values = np.array([result[r]["ndcg"] for r in present])
        for r, k in zip(present, rankdata(-values, method="average")):
            ranks[r].append(float(k))
    return {r: float(np.mean(v)) if v else float("nan") for r, v in ranks.items()}


def table_md(settings: dict[str, dict], stability: dict[str, dict[str, float]]) -> str:
    rules = rules_in_order(settings)
    names = list(settings)
    ranks = mean_rank(settings, [r for r in rules if all(r in settings[s] for s in names)])
    head = ["rule", *(f"{s} rate / NDCG" for s in names), "datasets mean rate / NDCG", "all settings mean rate / NDCG",
            "mean NDCG rank", *(f"stability {s}" for s in stability)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"

    for rule in rules:
        row = [rule]
        for s in names:
            r = settings[s].get(rule)
            row.append("n/a" if r is None else f"{cell(r['rate'])} / {cell(r['ndcg'])}")
        for group in ([s for s in names if s in QUALITY_ORDER], names):
            rs = [settings[s][rule] for s in group if rule in settings[s]]
            if not group:
                row.append("–")
                continue
            if len(rs) < len(group):
                row.append("n/a")
                continue
            row.append(f"{np.mean([r['rate'] for r in rs]):.3f} / {np.mean([r['ndcg'] for r in rs]):.3f}")
        row.append(f"{ranks[rule]:.2f}" if rule in ranks else "n/a")
        row += [cell(stability[s].get(rule)) if rule in stability[s] else "–" for s in stability]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    from promptsel.selection.calibration import calibrate

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stability-resamples", type=int, default=200,
                    help="bootstrap resamples for the choice stability on the fixture (0: skip)")
    ap.add_argument("--calibrations", default="none",
                    help="comma-separated: none and cbm (fixture and tables), cc and pmi (tables only)")
    ap.add_argument("--tables", type=Path,
                    help="folder of tables from python -m bench.bench_calibration --save-tables: the six datasets as scored "
                         "there, instead of the scores saved in quality_reports.json")
    ap.add_argument("--write", action="store_true", help="append the section to bench/RESULTS.md")
    args = ap.parse_args()
    sections = []
    for calibration in [c.strip() for c in args.calibrations.split(",") if c.strip()]:
        settings: dict[str, dict] = {}
        stability: dict[str, dict[str, float]] = {}
        if calibration in ("none", "cbm"):
            for n in (100, 13):
                settings[f"ups-{n}"], stability[f"ups-{n}"] = table_setting(
                    calibrate(fixture_table(n), calibration), args.stability_resamples)
        if args.tables:
            for name, table in saved_tables(args.tables, calibration):
                settings[name], _ = table_setting(table, 0)
        elif calibration == "none":
            settings.update(quality_settings())
        if not args.stability_resamples:
            stability = {}
        sections += [f"Calibration `{calibration}`:", "", table_md(settings, stability), ""]
    # Folders of this machine are shown by name only (no local paths in RESULTS.md).
    command = "python -m bench.bench_consensus " + " ".join(
        Path(a).name if os.sep in a else a for a in sys.argv[1:] if a != "--write") + " --write"
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    source = ("the datasets scored by `python -m bench.bench_calibration --save-tables` (SmolLM2-135M, 50 examples, 13 "
              "prompts)") if args.tables else "the six others = `bench/quality_reports.json` (SmolLM2-135M, 50 examples, 13 prompts)"
    body = "\n".join([
        f"### {when}, {platform.machine()}",
        "",
        f"Command: `{command.replace('  ', ' ')}`. Settings: `ups-100` / `ups-13` = the UPS fixture (OPT-2.7B, SST-2 "
        f"validation, 872 examples) with all 100 prompts / the first 13; {source}. Rate = tie-expected accuracy of "
        "the rule's choice / best accuracy; NDCG = min-max relevance, ties averaged. `consensus[how,members]`: "
        "`how` = zscore (mean standardized score), borda (mean unit rank), copeland (pairwise majority wins); "
        "`members` = all seven per-input baselines, one-zps (ZPS-Log as the only ZPS vote) or no-zps (MI, GlobalE, "
        "LocalE, SPELL). Mean NDCG rank: rank of the rule among all rules by NDCG in each setting (1 = best), "
        "averaged (self-select, missing on the fixture, is left out of the ranks). Stability: share of "
        f"{args.stability_resamples} bootstrap resamples of the fixture's inputs in which the rule, rerun, picks "
        "its full-sample choice (a tied choice: the mean over the tied prompts).",
        "",
        *sections,
    ])
    results_md.publish(body, args.write)


if __name__ == "__main__":
    main()
