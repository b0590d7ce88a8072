"""Small offline sentiment classifiers used as "prompts" of known quality, and the variants built
from them (label flips, inversion, temperature, off-task rules, constants).

Each prompt maps texts to p(positive), so its labels on FUTE's U are soft targets [M, 2] and its
accuracy on any labelled dataset is measured, not assumed. Classifiers:

* ``vader``, ``afinn``, ``textblob``: lexicons from PyPI (vaderSentiment, afinn, textblob),
  no training; compound, summed valence and polarity squashed into (0, 1);
* ``nb-imdb``: multinomial naive Bayes on the IMDB train split (``shared/data/imdb/train.jsonl``);
* ``nb-amazon``, ``nb-tweets``, ``nb-nyt``: naive Bayes on the VADER archive's Amazon review,
  tweet and NYT editorial snippets, labelled by the sign of their crowd valence (0 dropped).
  The archive's movie-review snippets are Rotten Tomatoes (and so largely SST-2) sentences:
  they are never trained on, and any training text equal to one of them is dropped.

No classifier here is trained on SST-2 or Rotten Tomatoes text.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable, Sequence

import numpy as np

Prompt = Callable[[Sequence[str]], np.ndarray]
LEXICONS = ("vader", "afinn", "textblob")
VADER_SOURCES = {"amazon": "amazonReviewSnippets_GroundTruth.txt", "tweets": "tweets_GroundTruth.txt",
                 "nyt": "nytEditorialSnippets_GroundTruth.txt"}
VADER_RT = "movieReviewSnippets_GroundTruth.txt"
EPS = 1e-4


def squash(x: np.ndarray, scale: float) -> np.ndarray:
    """A score centred on 0 (0 = no opinion) as p(positive); ``scale`` sets how fast it saturates."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float) / scale))


def lexicon(name: str) -> Prompt:
    if name == "vader":
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        vader = SentimentIntensityAnalyzer()
        return lambda texts: squash([vader.polarity_scores(t)["compound"] for t in texts], 0.25)
    if name == "afinn":
        from afinn import Afinn

        afinn = Afinn()
        return lambda texts: squash([afinn.score(t) for t in texts], 2.0)
    if name == "textblob":
        from textblob import TextBlob

        return lambda texts: squash([TextBlob(t).sentiment.polarity for t in texts], 0.25)
    raise ValueError(name)


def naive_bayes(texts: Sequence[str], labels: np.ndarray) -> Prompt:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(CountVectorizer(lowercase=True, binary=True), MultinomialNB())
    model.fit(list(texts), np.asarray(labels))
    return lambda xs: model.predict_proba(list(xs))[:, 1]


def vader_archive() -> dict[str, tuple[list[str], np.ndarray]]:
    """The VADER archive's Amazon, tweet and NYT snippets with sign-of-valence labels (1 positive),
    without texts that are Rotten Tomatoes snippets."""
    from promptsel import VADER_SDIST, fetch

    with tarfile.open(fetch(VADER_SDIST), "r:gz") as outer:
        member = outer.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        assert member is not None
        inner_bytes = member.read()
    rows: dict[str, list[tuple[float, str]]] = {}
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        for source, name in {**VADER_SOURCES, "rt": VADER_RT}.items():
            member = inner.extractfile(f"hutto_ICWSM_2014/{name}")
            assert member is not None
            # Lines are "id<TAB>mean valence<TAB>text" with CRLF endings.
            parts = (line.split("\t", 2) for line in member.read().decode("utf-8").splitlines())
            rows[source] = [(float(p[1]), p[2].strip()) for p in parts if len(p) == 3]
    rt = {text.lower() for _, text in rows.pop("rt")}
    out = {}
    for source, pairs in rows.items():
        kept = [(v, t) for v, t in pairs if v != 0 and t.lower() not in rt]
        out[source] = ([t for _, t in kept], np.array([int(v > 0) for v, _ in kept]))
    return out


def hashed_share(texts: Sequence[str], share: float, salt: str) -> np.ndarray:
    """A deterministic ``share`` of the texts, chosen by a hash of each text (the same texts on
    every run and machine, independent of their order)."""
    def unit(t: str) -> float:
        return int(hashlib.sha256(f"{salt}\x00{t}".encode()).hexdigest()[:8], 16) / 16**8

    return np.array([unit(t) < share for t in texts])


def flipped(base: Prompt, share: float, salt: str) -> Prompt:
    def run(texts: Sequence[str]) -> np.ndarray:
        p = base(texts)
        return np.where(hashed_share(texts, share, salt), 1 - p, p)
    return run


def tempered(base: Prompt, temperature: float) -> Prompt:
    """The same decisions with another confidence: logit(p) / temperature."""
    def run(texts: Sequence[str]) -> np.ndarray:
        p = np.clip(base(texts), EPS, 1 - EPS)
        return squash(np.log(p / (1 - p)), temperature)
    return run


def rule(predicate: Callable[[str], bool], confidence: float = 0.8) -> Prompt:
    return lambda texts: np.array([confidence if predicate(t) else 1 - confidence for t in texts])


def constant(p: float) -> Prompt:
    return lambda texts: np.full(len(texts), p)


def remembered(prompt: Prompt) -> Prompt:
    """``prompt`` computed once per list of texts (its variants call it again on the same list)."""
    seen: dict[str, np.ndarray] = {}

    def run(texts: Sequence[str]) -> np.ndarray:
        key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()
        if key not in seen:
            seen[key] = np.asarray(prompt(texts), dtype=float)
        return seen[key]
    return run


def build_prompts(imdb_train: tuple[list[str], np.ndarray]) -> dict[str, Prompt]:
    """Every prompt by name: the seven classifiers, then the variants of two of them."""
    prompts: dict[str, Prompt] = {name: remembered(lexicon(name)) for name in LEXICONS}
    prompts["nb-imdb"] = remembered(naive_bayes(*imdb_train))
    for source, (texts, labels) in vader_archive().items():
        prompts[f"nb-{source}"] = remembered(naive_bayes(texts, labels))
    for base in ("nb-imdb", "vader"):
        for share in (0.15, 0.3, 0.45):
            prompts[f"{base} flip {share:.2f}"] = flipped(prompts[base], share, salt=base)
        prompts[f"{base} inverted"] = (lambda b: lambda texts: 1 - b(texts))(prompts[base])
    prompts["nb-imdb T=0.25"] = tempered(prompts["nb-imdb"], 0.25)
    prompts["nb-imdb T=4"] = tempered(prompts["nb-imdb"], 4.0)
    prompts["rule: more than 20 words"] = rule(lambda t: len(t.split()) > 20)
    prompts["rule: is a question"] = rule(lambda t: "?" in t)
    prompts["constant positive"] = constant(0.7)
    prompts["constant negative"] = constant(0.3)
    return prompts
