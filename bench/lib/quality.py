"""What the quality benchmark and its variants share: the datasets, the request for one dataset,
a timed ``run_select``, and the number formats of their tables (``bench_quality``,
``bench_spell_on``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.lib.shared_dir import shared_path

ROOT = Path(__file__).resolve().parents[2]  # the repository
#: dataset -> (prompt set, task category); IMDB reviews are cut to --imdb-chars characters.
DATASETS = {
    "sst2": ("sa.toml", "sentiment"),
    "rotten_tomatoes": ("sa.toml", "sentiment"),
    "imdb": ("sa.toml", "sentiment"),
    "cb": ("nli.toml", "nli"),
    "anli_r3": ("nli.toml", "nli"),
    "rte": ("rte.toml", "nli"),
}


def shared_data() -> Path:
    return shared_path("data")


def request(name: str, args: argparse.Namespace, data: Path, **fields):
    """The benchmark's request for one dataset: its prompt set, the seeded sample of ``--limit``
    examples, IMDB cut to ``--imdb-chars``; ``fields`` add to it or replace."""
    from promptsel.model.request import SelectRequest

    prompts, _ = DATASETS[name]
    return SelectRequest(dataset=name, prompts=ROOT / "prompts" / prompts, limit=args.limit, seed=args.seed,
                         data_dir=str(data), max_chars=args.imdb_chars if name == "imdb" else None, **fields)


def timed_select(req) -> dict:
    from promptsel.selection.run import run_select

    began = time.perf_counter()
    report, _ = run_select(req)
    report["bench_wall_seconds"] = time.perf_counter() - began
    return report


def spearman(a: list[float], b: list[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(set(a)) < 2 or len(set(b)) < 2:
        return None
    return float(spearmanr(a, b).statistic)


def fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"
