"""FUTE's premise as a ladder of prompts of known quality: does the similarity rank them in order?

The premise (Wang et al. 2024): a prompt whose behaviour on the unlabeled corpus U resembles the
dataset's labelling gets the model task embedding (MTE) closest to the dataset task embedding
(DTE). Selection needs more than "sentiment is not length": the better of two sentiment prompts
must rank higher. So the "prompts" here label U with one real labeller of known quality, made
worse by known amounts:

* ``lexicon`` (f = 0): the VADER lexicon's valence (agrees with SST-2's gold labels on 66 % of its
  train split), as a soft label 0.5 + 0.4·valence; ``flip15``, ``flip30``, ``flip45``: the same
  with a hash-deterministic share f of the texts' labels flipped (a text's flip depends on its
  text only, and the flipped sets are nested), so the true quality falls with f;
* ``inverted``: the lexicon's labels swapped (it agrees with the opposite rule);
* ``lexicon75``: the lexicon with its threshold moved so that 75 % of U is called positive (a
  different label mix, nearly the same ranking of texts: a marginal control);
* ``random90``: confident random labels (90/10 by a hash coin);
* ``constant``: every text at the DTE sample's positive share.

The DTEs come from SST-2's train split, which is split (seeded) into two disjoint halves: DTE
``a`` on a sample of the first half, DTE ``b`` on a sample of the second (the same-data control:
two DTEs of one task should rank the ladder alike), and ``null``: half ``a``'s sample with its gold
labels permuted (no task; it should not learn, and every prompt should score near 0 under it).
U is the shared pool with the sentiment sources left out, so U shares no text with the DTEs.

Every MTE also has its permutation null: an MTE trained on the same U with the prompt's targets
shuffled across texts (the same label mix, no relation to the inputs). Embeddings are trained as
:class:`promptsel.fute.embeddings.Fute` trains them (``dte_task``, ``mte_task``) and kept in the
embedding store under content keys, so a rerun costs only what changed.

``similarities`` scores the ladder under every comparison (raw, change, null, ...) from the same
embeddings; ``checks`` states the ladder's conditions. ``tests/fute/test_premise.py`` asserts them
on one seed, ``bench/bench_fute_ladder.py`` measures them on several. An experiment about the
method, not part of it: it lives here, beside its users, and is no part of the installed package.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from promptsel.assets.packages import VADER_SDIST, fetch
from promptsel.fute.embeddings import cosine, diagnosis, dte_task, mte_task, permuted_rows
from promptsel.fute.store import EmbeddingStore
from promptsel.fute.unlabeled import load_corpus, task_exclusions
from promptsel.model.data import Dataset, load_named
from promptsel.plugins import registries
from promptsel.selection.cache import make_key

if TYPE_CHECKING:
    from promptsel.embedder import Embedder
    from promptsel.surrogate import Surrogate, TaskData

#: The ladder's size, small enough for CI on two CPU cores: |U|, each DTE's sample of SST-2
#: train sentences, and the surrogate's token limit (SST-2 sentences fit; longer texts of U are cut).
U_SIZE = 160
DTE_SIZE = 240
MAX_LENGTH = 64
#: The lexicon rungs and their flipped shares f (true quality falls with f).
FLIPS = {"lexicon": 0.0, "flip15": 0.15, "flip30": 0.30, "flip45": 0.45}
PROMPTS = (*FLIPS, "inverted", "lexicon75", "random90", "constant")
#: The prompts that carry nothing of the task (or its opposite): the clean prompt must beat them all.
OFF_TASK = ("inverted", "random90", "constant")
DTES = ("a", "b", "null")
_WORD = re.compile(r"[a-z']+")


@lru_cache(maxsize=1)
def vader_lexicon() -> dict[str, float]:
    """word -> mean valence (−4 … 4) from vaderSentiment 3.3.2's lexicon (MIT, pinned sdist)."""
    with tarfile.open(fetch(VADER_SDIST), "r:gz") as archive:
        member = archive.extractfile("vaderSentiment-3.3.2/vaderSentiment/vader_lexicon.txt")
        assert member is not None
        lines = member.read().decode("utf-8").splitlines()
    return {parts[0]: float(parts[1]) for parts in (line.split("\t") for line in lines) if len(parts) >= 2}


def raw_valence(text: str) -> float:
    lexicon = vader_lexicon()
    return float(sum(lexicon.get(w, 0.0) for w in _WORD.findall(text.lower())))


def squash(x: float | np.ndarray) -> Any:
    """Into (−1, 1) as VADER's compound score is: x / √(x² + 15)."""
    return x / np.sqrt(np.square(x) + 15.0)


def valence(text: str) -> float:
    """Summed lexicon valence squashed into (−1, 1)."""
    return float(squash(raw_valence(text)))


def text_uniform(text: str, salt: str) -> float:
    """A number in [0, 1) fixed by the text alone (and a salt): the same text gets the same draw
    in every run, whatever U it is in."""
    return int(hashlib.sha256(f"{salt}\0{text}".encode()).hexdigest()[:13], 16) / 16**13


def two(p: Any) -> np.ndarray:
    """[N] probabilities of the second class -> [N, 2] soft class distributions."""
    p = np.asarray(p, dtype=np.float64)
    return np.stack([1.0 - p, p], axis=1)


#: How sure the lexicon labeller is: ``soft`` (0.5 + 0.4·squash(valence), VADER's compound
#: scale: a text with one mild word gets about 0.6, so a perfect MTE gains little over chance on
#: U) or ``sharp`` (0.5 + 0.45·tanh(valence): one mild word gives about 0.8, as a confident
#: prompt would). A text without a lexicon word is 0.5 in both.
TARGETS = ("soft", "sharp")


def confidence(x: np.ndarray, targets: str = "soft") -> np.ndarray:
    """The lexicon's confidence for summed valences ``x``: a label is 0.5 + 0.4 × this (so
    ``sharp``'s 1.125·tanh gives 0.5 + 0.45·tanh, at most 0.95)."""
    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {TARGETS}, got {targets!r}")
    return 1.125 * np.tanh(x) if targets == "sharp" else squash(x)


def ladder_targets(texts: list[str], positive_share: float, targets: str = "soft") -> dict[str, np.ndarray]:
    """[N, 2] soft class distributions (negative, positive) of every prompt on ``texts``;
    ``positive_share`` is the constant prompt's; ``targets`` how sure the labeller is."""
    x = np.array([raw_valence(t) for t in texts])
    clean = 0.5 + 0.4 * confidence(x, targets)
    flip = np.array([text_uniform(t, "flip") for t in texts])
    out = {name: two(np.where(flip < f, 1.0 - clean, clean)) for name, f in FLIPS.items()}
    out["inverted"] = two(1.0 - clean)
    # Threshold moved so that 75 % of the texts are called positive; ties (texts with no lexicon
    # word share a valence of 0) are broken by a hash, so the share is 75 % whatever the ties.
    order = np.lexsort((flip, x))
    cut = round(0.25 * len(texts))
    rank = np.empty(len(texts), dtype=int)
    rank[order] = np.arange(len(texts))
    margin = np.maximum(np.abs(confidence(x, targets)), 0.05)  # the lexicon's confidence, at least a little
    shifted = np.where(rank >= cut, 0.5 + 0.4 * margin, 0.5 - 0.4 * margin)
    out["lexicon75"] = two(shifted)
    coin = np.array([text_uniform(t, "coin") for t in texts]) < 0.5
    out["random90"] = two(np.where(coin, 0.9, 0.1))
    out["constant"] = two(np.full(len(texts), positive_share))
    return out


def dte_samples(data_dir: str | Path | None, size: int, seed: int) -> dict[str, Dataset]:
    """DTE ``a`` and ``b``: seeded samples of two disjoint halves of SST-2's train split; ``null``:
    ``a``'s sample with its gold labels permuted (seeded)."""
    spec = registries().datasets.get("sst2")
    full = load_named(spec, "train", data_dir)
    order = np.random.default_rng(seed + 101).permutation(len(full.examples))
    halves = [sorted(order[: len(order) // 2]), sorted(order[len(order) // 2 :])]
    a, b = (replace(full, examples=[full.examples[i] for i in h], ids=[full.ids[i] for i in h]).sample(size, seed)
            for h in halves)
    perm = np.random.default_rng(seed + 202).permutation(len(a.examples))
    labels = [a.examples[i]["label"] for i in perm]
    null = replace(a, name="sst2-null", examples=[{**ex, "label": lab} for ex, lab in zip(a.examples, labels)])
    return {"a": a, "b": b, "null": null}


def _content(data: TaskData) -> str:
    digest = hashlib.sha256()
    for part in (data, data.heldout):
        assert part is not None
        digest.update(repr([sorted(x.items()) for x in part.inputs]).encode())
        digest.update(np.ascontiguousarray(part.targets if part.targets is not None else part.labels).tobytes())
    return digest.hexdigest()


@dataclass
class Ladder:
    #: "dte:<name>", "mte:<prompt>", "null:<prompt>" -> the embedding (what training changed)
    vectors: dict[str, np.ndarray]
    #: the same keys -> the training diagnosis (epochs, learned, gain, ...)
    training: dict[str, dict[str, Any]]
    #: the shared start (tupate's seeded prefix; zeros for an embedder without one): raw = vector + start
    start: np.ndarray
    #: prompt -> (share called positive, share called negative) on U
    mix: dict[str, tuple[float, float]]
    seconds: float
    computed: int
    #: how many of each vector's last coordinates are the classifier head's (tupate ``head=in``)
    head: int = 0


def run(embedder: Embedder, surrogate: Surrogate, *, data_dir: str | Path | None, unlabeled: str = "pool",
        u_size: int = U_SIZE, dte_size: int = DTE_SIZE, seed: int = 0, store: EmbeddingStore | None = None,
        start: np.ndarray | None = None, log: Callable[[str], None] | None = None,
        shard: tuple[int, int] | None = None, targets: str = "soft", head: int = 0) -> Ladder | None:
    """Train (or find in ``store``) the three DTEs, the eight MTEs and their nulls (``targets``:
    :data:`TARGETS`). With
    ``shard=(i, n)`` only every n-th embedding from the i-th is trained, into ``store``, and
    nothing is returned: n processes then fill the store together, and a last run reads it."""
    began = time.perf_counter()
    store = store or EmbeddingStore(enabled=False)
    corpus = load_corpus(unlabeled, size=u_size, seed=seed, data_dir=data_dir, exclude=task_exclusions("sentiment"))
    inputs = corpus.inputs(("text",))
    samples = dte_samples(data_dir, dte_size, seed)
    share = float(np.mean(samples["a"].labels == 1))
    labels = ladder_targets([x["text"] for x in inputs], share, targets)
    tasks: dict[str, TaskData] = {f"dte:{k}": dte_task(s, seed) for k, s in samples.items()}
    for p in PROMPTS:
        tasks[f"mte:{p}"] = mte_task(inputs, ("text",), labels[p], seed)
        tasks[f"null:{p}"] = mte_task(inputs, ("text",), permuted_rows(labels[p], seed), seed)
    vectors: dict[str, np.ndarray] = {}
    training: dict[str, dict[str, Any]] = {}
    computed = 0
    for index, (name, data) in enumerate(tasks.items()):
        if shard is not None and index % shard[1] != shard[0]:
            continue
        key = make_key("premise", {"embedder": embedder.identity()},
                       {"surrogate": surrogate.identity(), "content": _content(data), "seed": seed})
        found = store.get(key)
        if found is None:
            t = time.perf_counter()
            vector, info = embedder.embed(surrogate, data, seed)
            found = store.put(key, vector, {"kind": "premise", "name": name, "train": info,
                                            "seconds": round(time.perf_counter() - t, 3)})
            computed += 1
            if log:
                log(f"{name}: {found.meta['seconds']:.0f} s {diagnosis(info)}")
        vectors[name], training[name] = found.vector.astype(np.float64), diagnosis(found.meta.get("train") or {})
    if shard is not None:
        return None
    mix = {p: (float(np.mean(t[:, 1] > 0.5)), float(np.mean(t[:, 1] < 0.5))) for p, t in labels.items()}
    if start is None:
        start = np.zeros_like(next(iter(vectors.values())))
    return Ladder(vectors, training, np.asarray(start, dtype=np.float64), mix, time.perf_counter() - began, computed, head)


# --- the comparisons ---------------------------------------------------------------------

def _shift(v: np.ndarray, s: np.ndarray, raw: bool) -> np.ndarray:
    return v + s if raw else v


#: comparison -> (M, M_null, D, D_null) -> score; "raw" variants add the shared start first.
COMPARISONS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]] = {
    "change": lambda m, mn, d, dn: cosine(m, d),
    "null": lambda m, mn, d, dn: cosine(m, d) - cosine(mn, d),
    "null-vector": lambda m, mn, d, dn: cosine(m - mn, d),
    "null-both": lambda m, mn, d, dn: cosine(m - mn, d - dn),
}


def similarities(ladder: Ladder, comparison: str, dte: str = "a") -> dict[str, float]:
    """Every prompt's score under DTE ``dte`` with one comparison: ``change``, ``null``,
    ``null-vector``, ``null-both``, or any of them prefixed ``raw-`` (the shared start added to
    every vector first; ``raw-change`` is tupate's ``compare=raw``), and suffixed ``@head`` or
    ``@prefix`` to compare only that part of vectors that hold both (``Ladder.head``)."""
    comparison, _, part = comparison.partition("@")
    raw = comparison.startswith("raw-")
    fn = COMPARISONS[comparison.removeprefix("raw-")]
    s, v = ladder.start, ladder.vectors
    if part:
        if not ladder.head:
            raise ValueError(f"@{part}: these embeddings hold no head")
        cut = slice(-ladder.head, None) if part == "head" else slice(None, -ladder.head)
        s, v = s[cut], {k: x[cut] for k, x in v.items()}
    d = _shift(v[f"dte:{dte}"], s, raw)
    dn = _shift(v["dte:null"], s, raw)
    return {p: fn(_shift(v[f"mte:{p}"], s, raw), _shift(v[f"null:{p}"], s, raw), d, dn) for p in PROMPTS}


def spearman(a: Any, b: Any) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def margin(scores: dict[str, float]) -> float:
    """The clean prompt's score minus the best off-task prompt's."""
    return scores["lexicon"] - max(scores[p] for p in OFF_TASK)


#: The Spearman bounds hold with this slack: over four rungs Spearman moves in steps of 0.2, and
#: one adjacent swap, which "≥ 0.8" allows, computes as 0.7999999999999999 (found 2026-12-07 on
#: the head ladder's seed 3; every committed ladder result was re-scored with it).
SLACK = 1e-9


def _spearman_check(spearman: float, bound: float) -> dict[str, Any]:
    return {"spearman": spearman, "ok": bool(spearman >= bound - SLACK)}


#: check -> its Spearman bound: ``order`` over the four rungs, ``halves`` over the eight prompts.
SPEARMAN_BOUNDS = {"order": 0.8, "halves": 0.9}


def checks(ladder: Ladder, comparison: str) -> dict[str, Any]:
    """The ladder's conditions under one comparison, each with the numbers behind it.

    * ``order``: Spearman(score, 1 − f) over the four lexicon rungs ≥ 0.8;
    * ``inverted``: inverted < 0 < clean;
    * ``random``: clean − confident random ≥ 0.1;
    * ``marginal``: the 75 %-positive lexicon moves by at most half the clean − random gap;
    * ``null_dte``: the null DTE did not learn, and every prompt's score under it lies inside
      the null band, ± half the clean − random gap under DTE ``a``;
    * ``halves``: DTEs ``a`` and ``b`` rank the eight prompts with Spearman ≥ 0.9.

    Under ``null-both`` the null DTE less itself is 0, so ``null_dte`` holds there trivially.
    """
    s = similarities(ladder, comparison, "a")
    sb = similarities(ladder, comparison, "b")
    sn = similarities(ladder, comparison, "null")
    gap = s["lexicon"] - s["random90"]
    rungs = list(FLIPS)
    order = spearman([s[p] for p in rungs], [1 - FLIPS[p] for p in rungs])
    halves = spearman([s[p] for p in PROMPTS], [sb[p] for p in PROMPTS])
    band = abs(gap) / 2
    return {
        "scores": s, "scores_b": sb, "scores_null": sn, "margin": margin(s), "margin_b": margin(sb),
        "order": _spearman_check(order, SPEARMAN_BOUNDS["order"]),
        "inverted": {"ok": bool(s["inverted"] < 0 < s["lexicon"])},
        "random": {"gap": gap, "ok": bool(gap >= 0.1)},
        "marginal": {"change": s["lexicon75"] - s["lexicon"], "ok": bool(abs(s["lexicon75"] - s["lexicon"]) <= band)},
        "null_dte": {"learned": ladder.training["dte:null"].get("learned"), "band": band,
                     "largest": max(abs(v) for v in sn.values()),
                     "ok": bool(ladder.training["dte:null"].get("learned") is False and max(abs(v) for v in sn.values()) < band)},
        "halves": _spearman_check(halves, SPEARMAN_BOUNDS["halves"]),
    }


def rescored(result: dict[str, Any]) -> dict[str, Any]:
    """A stored result of :func:`checks` with its Spearman bounds applied again (``SLACK``)."""
    return {**result, **{c: _spearman_check(result[c]["spearman"], bound) for c, bound in SPEARMAN_BOUNDS.items()}}


def passed(result: dict[str, Any]) -> bool:
    return all(v["ok"] for v in result.values() if isinstance(v, dict) and "ok" in v)
