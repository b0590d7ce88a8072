"""FUTE's premise, measured: does the ranking follow the dataset's labelling rule?

The premise (Wang et al. 2024): a prompt whose behaviour on the unlabeled corpus U resembles the
dataset's labelling gets the model task embedding (MTE) closest to the dataset task embedding
(DTE). This module checks it in FUTE's real setting, with simulated prompts whose behaviour on U
is known:

* two datasets over the same texts (a seeded sample of SST-2's train split) with different
  labelling rules: the gold ``sentiment``, and ``long`` (more than ``LONG_WORDS`` words,
  computed exactly; balanced on SST-2 and on U, and unrelated to sentiment);
* four "prompts" that label U, which shares no text with the dataset: ``lexicon`` (the VADER
  lexicon's valence: agrees with the sentiment rule, 66% on SST-2 train), ``long`` (the length
  rule itself), ``constant`` (always 80% on one class) and ``random`` (seeded coin flips at
  60/40: a prompt at chance, unsure as a weak model at chance is, which moves its embedding
  little; a comparison that measures how far embeddings moved ranks it first everywhere);
* each DTE and MTE trained as :class:`promptsel.fute.embeddings.Fute` trains them (``dte_task`` and
  ``mte_task``: held-out slices, early stopping), compared with FUTE's similarity.

Under each DTE the agreeing prompt should rank first; the *margin* is its score minus the best
other prompt's. ``tests/fute/test_premise.py`` asserts it, ``bench/bench_fute_cost.py``
measures it against cost. An experiment about the method, not part of it: it lives here, beside
its users, and is no part of the installed package.
"""

from __future__ import annotations

import re
import tarfile
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from promptsel.assets.packages import VADER_SDIST, fetch
from promptsel.fute.embeddings import cosine, diagnosis, dte_task, mte_task
from promptsel.fute.unlabeled import load_corpus, task_exclusions
from promptsel.model.data import Dataset, load_named
from promptsel.plugins import registries

if TYPE_CHECKING:
    from promptsel.embedder import Embedder
    from promptsel.surrogate import Surrogate

LONG_WORDS = 20
#: The premise test's size, small enough for CI on two CPU cores (a few minutes per embedder):
#: |U|, the DTE's sample of SST-2 train sentences, and the surrogate's token limit (SST-2
#: sentences fit; longer texts of U are cut, which the length rule survives).
U_SIZE = 160
DTE_SIZE = 240
MAX_LENGTH = 64
#: Each dataset's rule and the prompt that follows it.
AGREEING = {"sentiment": "lexicon", "long": "long"}
PROMPTS = ("lexicon", "long", "constant", "random")
_WORD = re.compile(r"[a-z']+")


@lru_cache(maxsize=1)
def vader_lexicon() -> dict[str, float]:
    """word -> mean valence (−4 … 4) from vaderSentiment 3.3.2's lexicon (MIT, pinned sdist)."""
    with tarfile.open(fetch(VADER_SDIST), "r:gz") as archive:
        member = archive.extractfile("vaderSentiment-3.3.2/vaderSentiment/vader_lexicon.txt")
        assert member is not None
        lines = member.read().decode("utf-8").splitlines()
    return {parts[0]: float(parts[1]) for parts in (line.split("\t") for line in lines) if len(parts) >= 2}


def valence(text: str) -> float:
    """Summed lexicon valence squashed into (−1, 1) as VADER's compound score is (x / √(x² + 15))."""
    lexicon = vader_lexicon()
    x = sum(lexicon.get(w, 0.0) for w in _WORD.findall(text.lower()))
    return float(x / np.sqrt(x * x + 15.0))


def is_long(text: str) -> bool:
    return len(text.split()) > LONG_WORDS


def prompt_targets(texts: list[str], seed: int) -> dict[str, np.ndarray]:
    """[N, 2] soft class distributions (classes: the rule's "no", "yes") of each simulated prompt."""
    coin = np.random.default_rng(seed + 7).random(len(texts)) < 0.5

    def two(p: Any) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        return np.stack([1.0 - p, p], axis=1)

    return {
        "lexicon": two([0.5 + 0.4 * valence(t) for t in texts]),
        "long": two([0.9 if is_long(t) else 0.1 for t in texts]),
        "constant": two(np.full(len(texts), 0.8)),
        "random": two(np.where(coin, 0.6, 0.4)),
    }


def datasets(data_dir: str | Path | None, size: int, seed: int) -> dict[str, Dataset]:
    """The two labelled samples over the same SST-2 train sentences, in FUTE's class order
    (sentiment: negative, positive; long: short, long)."""
    spec = registries().datasets.get("sst2")
    sample = load_named(spec, "train", data_dir).sample(size, seed)
    long = replace(sample, name="sst2-long", classes=("short", "long"),
                   examples=[{**ex, "label": "long" if is_long(ex["text"]) else "short"} for ex in sample.examples])
    return {"sentiment": sample, "long": long}


@dataclass
class PremiseResult:
    #: dataset rule -> prompt -> similarity of the prompt's MTE with the rule's DTE
    scores: dict[str, dict[str, float]]
    #: "dte:<rule>" or "mte:<prompt>" -> the training diagnosis (epochs, learned, ...)
    training: dict[str, dict[str, Any]]
    #: "dte:<rule>" or "mte:<prompt>" -> the embedding
    vectors: dict[str, np.ndarray]
    seconds: float

    @property
    def margins(self) -> dict[str, float]:
        """Per dataset rule: the agreeing prompt's score minus the best other prompt's."""
        return margins(self.scores)

    @property
    def margin(self) -> float:
        """The smaller of the two margins: positive when both rankings put the agreeing prompt first."""
        return min(self.margins.values())

    def ranking(self, rule: str) -> list[str]:
        return sorted(self.scores[rule], key=lambda p: -self.scores[rule][p])

    def shifted(self, offset: np.ndarray) -> PremiseResult:
        """The same embeddings with ``offset`` added to each, compared again: tupate's raw
        comparison is its default one shifted by the start every embedding shares."""
        vectors = {k: v + offset for k, v in self.vectors.items()}
        return replace(self, scores=similarities(vectors), vectors=vectors)


def similarities(vectors: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    return {rule: {p: cosine(vectors[f"mte:{p}"], vectors[f"dte:{rule}"]) for p in PROMPTS} for rule in AGREEING}


def margins(scores: dict[str, dict[str, float]]) -> dict[str, float]:
    return {rule: s[AGREEING[rule]] - max(v for p, v in s.items() if p != AGREEING[rule]) for rule, s in scores.items()}


def run(embedder: Embedder, surrogate: Surrogate, *, data_dir: str | Path | None, unlabeled: str = "pool",
        u_size: int, dte_size: int, seed: int = 0) -> PremiseResult:
    """Train the two DTEs and the four MTEs and compare them as FUTE does."""
    began = time.perf_counter()
    corpus = load_corpus(unlabeled, size=u_size, seed=seed, data_dir=data_dir, exclude=task_exclusions("sentiment"))
    inputs = corpus.inputs(("text",))
    targets = prompt_targets([x["text"] for x in inputs], seed)
    training: dict[str, dict[str, Any]] = {}
    vectors: dict[str, np.ndarray] = {}
    for rule, sample in datasets(data_dir, dte_size, seed).items():
        vectors[f"dte:{rule}"], info = embedder.embed(surrogate, dte_task(sample, seed), seed)
        training[f"dte:{rule}"] = diagnosis(info)
    for prompt in PROMPTS:
        vectors[f"mte:{prompt}"], info = embedder.embed(surrogate, mte_task(inputs, ("text",), targets[prompt], seed), seed)
        training[f"mte:{prompt}"] = diagnosis(info)
    return PremiseResult(similarities(vectors), training, vectors, time.perf_counter() - began)
