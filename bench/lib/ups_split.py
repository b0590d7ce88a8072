"""The UPS fixture (OPT-2.7B, 100 prompts x 872 SST-2 validation sentences) split into FUTE's
unlabeled corpus U and an evaluation half, and written as a ``select --scores`` file.

The split is seeded and stratified by the gold label (each class halved), so every split's
evaluation half has the fixture's class balance. The gold labels decide only which half a
sentence falls in: U carries the sentences and OPT-2.7B's predictions on them, never a label.

U here is in-domain (SST-2 validation sentences), which departs from the FUTE paper: it keeps
sources of the evaluation task out of U. It is also a real use: a user's unlabelled inputs.

The file holds the evaluation half as a score table (``class_logprobs`` [P, N, C], ``labels``,
``prompt_ids``, ``class_names``, ``sample_ids``, ``prompt_nll`` from the fixture's ``p_xt``) and U
as ``unlabeled_text`` [M] and ``unlabeled_logprobs`` [P, M, C] (the arrays ``select --scores``
reads for FUTE, issue 20). ``sample_ids`` and ``unlabeled_ids`` are the sentences' positions
in the fixture (``val-<i>``).

    python -m bench.lib.ups_split --seed 0 [--unlabeled-size 200] [--prompts 13] -o DIR/ups_split0.npz
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import log_softmax

from bench.lib.shared_dir import shared_path

FIXTURE = "ups_sst2_opt2.7b"
#: The fixture's classes, in the order of its log-prob columns and targets (0 = negative).
CLASS_NAMES = ("negative", "positive")
#: The FUTE paper's 13 sentiment prompts are the fixture's first 13.
PAPER_PROMPTS = 13


@dataclass(frozen=True)
class Fixture:
    """The fixture as arrays: log-probs normalised over the classes."""

    prompt_ids: list[str]
    logprobs: np.ndarray  # [P, 872, C]
    prompt_nll: np.ndarray  # [P, 872]
    labels: np.ndarray  # [872]
    texts: list[str]

    def subset(self, n_prompts: int | None) -> Fixture:
        """The first ``n_prompts`` prompts (all with None)."""
        k = n_prompts or len(self.prompt_ids)
        return Fixture(self.prompt_ids[:k], self.logprobs[:k], self.prompt_nll[:k], self.labels, self.texts)


def load_fixture() -> Fixture:
    with np.load(shared_path("fixtures", f"{FIXTURE}.npz")) as z:
        logprobs = log_softmax(z["log_prob"].astype(np.float64), axis=-1)
        prompt_nll = -np.log(z["p_xt"])
        labels = z["targets"].astype(np.int64)
        prompt_ids = [str(p) for p in z["prompt"]]
    rows = [json.loads(line) for line in shared_path("fixtures", f"{FIXTURE}_texts.jsonl").read_text(encoding="utf-8").splitlines() if line]
    texts = [r["text"] for r in rows]
    # The texts file must be in the order of the arrays: its labels are checked against the targets.
    if len(rows) != labels.size or any(CLASS_NAMES.index(r["label"]) != y for r, y in zip(rows, labels)):
        raise SystemExit(f"error: {FIXTURE}_texts.jsonl is not in the order of {FIXTURE}.npz (labels differ).")
    return Fixture(prompt_ids, logprobs, prompt_nll, labels, texts)


def split_indices(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(U, evaluation) positions: each class shuffled with ``seed`` and halved (an odd class
    gives its extra sentence to the evaluation half). Both sorted."""
    rng = np.random.default_rng(seed)
    u, ev = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        half = members.size // 2
        u.append(members[:half])
        ev.append(members[half:])
    return np.sort(np.concatenate(u)), np.sort(np.concatenate(ev))


def unlabeled_sample(u: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """``size`` of U's positions, a seeded draw that ignores the labels (all with None)."""
    if size is None or size >= u.size:
        return u
    return np.sort(np.random.default_rng([seed, 1]).choice(u, size=size, replace=False))


def split_arrays(fixture: Fixture, seed: int, unlabeled_size: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of one split's ``--scores`` file."""
    u, ev = split_indices(fixture.labels, seed)
    u = unlabeled_sample(u, unlabeled_size, seed)
    return {
        "class_logprobs": fixture.logprobs[:, ev],
        "prompt_nll": fixture.prompt_nll[:, ev],
        "labels": fixture.labels[ev],
        "prompt_ids": np.asarray(fixture.prompt_ids, dtype=str),
        "class_names": np.asarray(CLASS_NAMES, dtype=str),
        "sample_ids": np.asarray([f"val-{i}" for i in ev], dtype=str),
        "unlabeled_text": np.asarray([fixture.texts[i] for i in u], dtype=str),
        "unlabeled_logprobs": fixture.logprobs[:, u],
        "unlabeled_ids": np.asarray([f"val-{i}" for i in u], dtype=str),
    }


def write_split(path: Path, seed: int, *, n_prompts: int | None = None, unlabeled_size: int | None = None) -> dict[str, np.ndarray]:
    arrays = split_arrays(load_fixture().subset(n_prompts), seed, unlabeled_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--unlabeled-size", type=int, help="texts of U to keep (a seeded draw; default: all 436)")
    parser.add_argument("--prompts", type=int, help="the first N prompts (13: the FUTE paper's; default: all 100)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .npz to write")
    args = parser.parse_args()
    arrays = write_split(args.output, args.seed, n_prompts=args.prompts, unlabeled_size=args.unlabeled_size)
    p, n, _ = arrays["class_logprobs"].shape
    print(f"{args.output}: {p} prompts, {n} evaluation sentences, U {arrays['unlabeled_text'].size} texts (seed {args.seed})")


if __name__ == "__main__":
    main()
