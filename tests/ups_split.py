"""A scores file with FUTE's U from the UPS fixture (OPT-2.7B, 100 prompts, 872 SST-2 sentences):
the sentences split, seeded and stratified, into U (the texts and OPT's class log-probs on them;
their labels are not written) and an evaluation half (log-probs and labels)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.shared_data import shared_path

#: SST-2's classes in the order of the fixture's class axis (target 1 is "positive").
CLASSES = ("negative", "positive")


def ups_texts() -> list[dict[str, str]]:
    lines = shared_path("fixtures", "ups_sst2_opt2.7b_texts.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def split_rows(targets: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(U rows, evaluation rows): each class's rows shuffled by ``seed`` and cut in half."""
    rng = np.random.default_rng(seed)
    u, evaluation = [], []
    for c in np.unique(targets):
        rows = rng.permutation(np.flatnonzero(targets == c))
        half = len(rows) // 2
        u += rows[:half].tolist()
        evaluation += rows[half:].tolist()
    return np.sort(u), np.sort(evaluation)


def write_ups_with_u(path: Path, *, seed: int = 0, prompts: int = 100, u_size: int | None = None) -> dict[str, np.ndarray]:
    """Write the scores file; returns what it holds (and ``u_rows``/``eval_rows`` of the fixture)."""
    with np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz")) as d:
        log_prob, targets, ids = d["log_prob"][:prompts], d["targets"], d["prompt"][:prompts]
    texts = ups_texts()
    assert len(texts) == len(targets)
    u_rows, eval_rows = split_rows(targets, seed)
    if u_size is not None:
        u_rows = u_rows[:u_size]
    arrays = {
        "class_logprobs": log_prob[:, eval_rows], "labels": targets[eval_rows], "prompt_ids": ids,
        "class_names": np.asarray(CLASSES), "sample_ids": np.asarray([f"sst2-val-{i}" for i in eval_rows]),
        "unlabeled_text": np.asarray([texts[i]["text"] for i in u_rows]), "unlabeled_logprobs": log_prob[:, u_rows],
    }
    np.savez(path, **arrays)
    return {**arrays, "u_rows": u_rows, "eval_rows": eval_rows}
