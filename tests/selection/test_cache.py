"""The result cache reads nothing back blindly: damaged or edited rows are misses, recomputed
and rewritten; a damaged database file is one clear error that ``cache clear`` fixes."""

from __future__ import annotations

import gc
import json
import sqlite3

import numpy as np
import pytest

from promptsel.errors import CacheError
from promptsel.model.data import Dataset
from promptsel.model.prompts import load_prompt_set
from promptsel.selection.cache import Cache, finite_numbers, row_digest
from promptsel.selection.scoring import Scorer, build_score_table
from promptsel.testing import FakeBackend

PROMPTS = """
[[prompt]]
id = "p1"
template = "Review: {{text}}"
answer_choices = { negative = ["no"], positive = ["yes", "Yes"] }

[[prompt]]
id = "p2"
template = "{{text}} Good or bad?"
answer_choices = { negative = ["bad"], positive = ["good"] }
"""


@pytest.fixture
def setup(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(PROMPTS)
    ds = Dataset(name="toy", split="test", fields=("text",), classes=("negative", "positive"),
                 examples=[{"text": "a great film", "label": "positive"}, {"text": "dull", "label": "negative"}],
                 ids=["test:0", "test:1"], source="memory")
    return load_prompt_set(path), ds


def rows(db) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT key, kind, value FROM results ORDER BY key").fetchall()


def edit(db, key: str, value: str, *, digest: bool = False) -> None:
    """Overwrite a row's value by hand, with a matching digest when ``digest``."""
    with sqlite3.connect(db) as con:
        if digest:
            con.execute("UPDATE results SET value = ?, digest = ? WHERE key = ?", (value, row_digest(key, value), key))
        else:
            con.execute("UPDATE results SET value = ? WHERE key = ?", (value, key))


def score(ps, ds, db) -> tuple[np.ndarray, Cache, FakeBackend]:
    backend, cache = FakeBackend(), Cache(db)
    table = build_score_table(ps, ds, Scorer(backend, cache))
    cache.close()
    return table.class_logprobs, cache, backend


@pytest.mark.parametrize(
    ("value", "digest"),
    [
        ("[-1.5, -2.5, -0.5]", True),  # three values for two continuations (shape), digest made to fit
        ('"abc"', True),  # a string where numbers belong (dtype)
        ("[NaN, -1.0]", True),  # NaN (finiteness)
        ("[-1.0, Infinity]", True),
        ("[true, -1.0]", True),  # a boolean is not a number
        ("abc", True),  # not JSON at all
        ("[-0.123, -4.56]", False),  # right shape, digits changed by hand: only the digest sees it
    ],
    ids=["shape", "string", "nan", "inf", "bool", "not-json", "edited-digits"],
)
def test_a_bad_row_is_a_counted_miss_recomputed_and_rewritten(setup, tmp_path, value, digest):
    ps, ds = setup
    db = tmp_path / "c.sqlite"
    reference, _, _ = score(ps, ds, db)
    key = next(k for k, kind, v in rows(db) if kind == "continuation" and len(json.loads(v)) == 2)
    before = dict((k, v) for k, _, v in rows(db))[key]
    edit(db, key, value, digest=digest)
    again, cache, backend = score(ps, ds, db)
    np.testing.assert_array_equal(again, reference)  # the bad value was never used
    assert cache.invalid == 1 and cache.misses == 1
    assert len(backend.calls) == 1  # only that row was recomputed
    assert dict((k, v) for k, _, v in rows(db))[key] == before  # and rewritten
    _, cache, backend = score(ps, ds, db)
    assert cache.invalid == 0 and backend.calls == []


def test_rows_from_before_digests_are_misses_once(setup, tmp_path):
    """An old cache (no digest column) is migrated: its rows are recomputed once, then kept."""
    ps, ds = setup
    db = tmp_path / "c.sqlite"
    reference, _, _ = score(ps, ds, db)
    n = len(rows(db))
    with sqlite3.connect(db) as con:  # the schema of promptsel 0.1.0, with its rows
        con.execute("CREATE TABLE old AS SELECT key, kind, value, created FROM results")
        con.execute("DROP TABLE results")
        con.execute("ALTER TABLE old RENAME TO results")
    again, cache, backend = score(ps, ds, db)
    np.testing.assert_array_equal(again, reference)
    assert cache.misses == n and cache.invalid == 0 and len(backend.calls) == n
    _, cache, backend = score(ps, ds, db)
    assert cache.hits == n and backend.calls == []


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_file_is_one_error_and_clear_removes_it(setup, tmp_path, damage):
    ps, ds = setup
    db = tmp_path / "c.sqlite"
    score(ps, ds, db)
    cache = Cache(db)
    for i in range(30):  # enough rows for several pages
        cache.put_many("continuation", {f"k{i}": [float(i)] * 200})
    cache.close()  # the last connection closed: the WAL is checkpointed into the file
    assert not (tmp_path / "c.sqlite-wal").exists()
    data = db.read_bytes()
    db.write_bytes(b"\x13garbage, not sqlite" * 300 if damage == "garbage" else data[: len(data) // 2 + 100])
    with pytest.raises(CacheError) as err:
        score(ps, ds, db)
    message = str(err.value)
    assert str(db) in message and "damaged" in message and "promptsel cache clear" in message and "\n" not in message
    info = Cache(db).info()
    assert info["damaged"] and info["bytes"] > 0
    cleared = Cache(db).clear()
    assert cleared.results is None and cleared.damaged
    assert not db.exists()
    score(ps, ds, db)  # a fresh cache works again
    assert Cache(db).info()["damaged"] is None


def test_clear_says_what_it_keeps_and_all_removes_it(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(root))
    monkeypatch.setenv("PROMPTSEL_ASSETS_DIR", str(root / "assets"))
    (root / "models").mkdir(parents=True)
    (root / "models" / "m.gguf").write_bytes(b"x" * 1000)
    (root / "assets").mkdir()
    (root / "assets" / "a.whl").write_bytes(b"y" * 300)
    (root / "embeddings").mkdir()
    (root / "embeddings" / "e.npz").write_bytes(b"z" * 20)
    Cache().put_many("generate", {"k": "text"})
    cleared = Cache().clear()
    assert cleared.results == 1
    assert {name: size for name, (_, size) in cleared.kept.items()} == {"models": 1000, "archives": 300, "embeddings": 20}
    assert (root / "models" / "m.gguf").exists()
    assert Cache().info()["stored"] == {"models": 1000, "archives": 300, "embeddings": 20}
    cleared = Cache().clear(all=True)
    assert set(cleared.removed) == {"models", "archives", "embeddings"} and cleared.kept == {}
    assert not (root / "models").exists() and not (root / "assets").exists() and not (root / "embeddings").exists()


def test_archives_outside_the_cache_dir_are_never_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PROMPTSEL_ASSETS_DIR", str(tmp_path / "mine"))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.whl").write_bytes(b"y")
    Cache().clear(all=True)
    assert (tmp_path / "mine" / "a.whl").exists()


def test_finite_numbers():
    assert finite_numbers([1, -2.5]) and finite_numbers([-1.0], 1) and finite_numbers([])
    assert not finite_numbers([-1.0], 2) and not finite_numbers("ab") and not finite_numbers([float("nan")])
    assert not finite_numbers([True]) and not finite_numbers([[1.0]]) and not finite_numbers({"a": 1})


# --- through the CLI ----------------------------------------------------------------------

GOOD = '[[prompt]]\nid = "a"\ntemplate = "{{text}}"\nanswer_choices = { positive = ["yes"], negative = ["no"] }\n'


@pytest.fixture
def no_garbage_collector():
    """Only what the code closes is closed (the collector would also close what it forgets)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_the_report_counts_invalid_rows_and_a_damaged_file_is_one_line(capsys, tmp_path, monkeypatch, fake_backend_plugin,
                                                                       no_garbage_collector):
    """A run closes its cache: a connection left open keeps reading the pages it had in its
    write-ahead log and would not see the damaged file."""
    from promptsel.selection.cache import default_path
    from tests.command_line import one_line_error, run

    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "fine", "label": "positive"}\n{"text": "bad", "label": "negative"}\n')
    prompts = tmp_path / "p.toml"
    prompts.write_text(GOOD)
    argv = ["select", "--dataset", str(data), "--prompts", str(prompts), "--backend", "fake", "--methods", "mi",
            "--json", "-q", "--no-progress"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    first = json.loads(out)
    db = default_path()
    key = next(k for k, kind, _ in rows(db) if kind == "continuation")
    edit(db, key, "[-0.01, -9.0]")  # digits changed by hand, digest left as it was
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    report = json.loads(out)
    assert report["cache"]["invalid"] == 1 and report["cache"]["misses"] == 1
    assert report["methods"] == first["methods"]

    db.write_bytes(b"not a database at all" * 100)
    code, _, err = run(capsys, *argv)
    assert code == 1 and str(db) in one_line_error(err) and "promptsel cache clear" in err
    code, out, err = run(capsys, "cache", "info")
    assert code == 0 and "damaged" in out
    code, out, err = run(capsys, "cache", "clear")
    assert code == 0 and "Removed the damaged result cache" in out and not db.exists()
    code, out, err = run(capsys, *argv)
    assert code == 0, err


@pytest.mark.option("cache clear", "--all")
def test_cache_clear_lists_what_it_keeps(capsys, tmp_path, monkeypatch):
    from tests.command_line import run

    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path))
    (tmp_path / "embeddings").mkdir()
    (tmp_path / "embeddings" / "e.npz").write_bytes(b"z" * 2_500_000)
    code, out, _ = run(capsys, "cache", "clear")
    assert code == 0 and "Kept: embeddings 2.5 MB" in out and "--all" in out
    code, out, _ = run(capsys, "cache", "clear", "--all")
    assert code == 0 and "Removed: embeddings 2.5 MB" in out and not (tmp_path / "embeddings").exists()


@pytest.mark.option("select", "--scoring")
def test_one_cache_serves_first_token_then_full_scoring_as_a_fresh_full_run_does(capsys, tmp_path, monkeypatch, fake_backend_plugin):
    """The scoring mode is part of every cache key: label words of two words score differently
    by their first word and in full, so a key without the mode would serve the first-token rows
    to the full run."""
    from tests.command_line import run

    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in [
        ("a great film", "positive"), ("great fun", "positive"), ("dull and long", "negative"), ("a mess", "negative")]))
    prompts = tmp_path / "p.toml"
    prompts.write_text('[[prompt]]\nid = "two"\ntemplate = "{{text}} It was"\n'
                       'answer_choices = { positive = ["very good"], negative = ["quite bad indeed"] }\n'
                       '[[prompt]]\nid = "other"\ntemplate = "Review: {{text}}"\n'
                       'answer_choices = { positive = ["so positive"], negative = ["negative"] }\n')
    base = ("select", "-d", str(data), "-p", str(prompts), "-b", "fake", "-m", "mi,locale", "--json", "-q", "--no-progress")

    def scores(*extra: str) -> list[dict]:
        code, out, err = run(capsys, *base, *extra)
        assert code == 0, err
        return [e["scores"] for e in json.loads(out)["prompts"]]

    first = scores("--scoring", "first_token")
    cached_full = scores("--scoring", "full")
    fresh_full = scores("--scoring", "full", "--no-cache")
    assert first != fresh_full  # the two modes differ on these label words
    assert cached_full == fresh_full


# -- mutants that survived tests/mutation/run.sh (tests/mutation/RESULTS.md), killed here --------

def test_info_and_clear_count_what_the_file_holds(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "c"))
    from promptsel.selection.cache import default_path

    assert default_path() == tmp_path / "c" / "results.sqlite"
    cache = Cache(tmp_path / "r.sqlite")
    empty = Cache(tmp_path / "none.sqlite").info()
    assert (empty["path"], empty["entries"], empty["bytes"], empty["kinds"], empty["damaged"]) == (
        str(tmp_path / "none.sqlite"), 0, 0, {}, None)
    cache.put_many("a", {"k1": 1, "k2": [2.0]})
    cache.put_many("b", {"k3": {"x": 3}})
    cache.put_many("b", {})  # nothing to write
    info = cache.info()
    assert (info["path"], info["entries"], info["kinds"]) == (str(tmp_path / "r.sqlite"), 3, {"a": 2, "b": 1})
    files = [p for p in tmp_path.glob("r.sqlite*")]
    assert info["bytes"] == sum(p.stat().st_size for p in files) > 0
    cleared = cache.clear()
    assert (cleared.results, cleared.damaged) == (3, None)
    assert Cache(tmp_path / "none.sqlite").clear().results == 0  # no file: nothing deleted
    cache.close()


def test_the_stored_files_are_measured_and_removed_by_all(tmp_path, monkeypatch):
    root = tmp_path / "c"
    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(root))
    (root / "embeddings" / "sub").mkdir(parents=True)
    (root / "embeddings" / "a.npz").write_bytes(b"x" * 10)
    (root / "embeddings" / "sub" / "b.npz").write_bytes(b"y" * 5)
    (root / "embeddings" / "link").symlink_to(root / "embeddings" / "a.npz")  # not counted twice
    stored = Cache(root / "results.sqlite").info()["stored"]
    assert stored["embeddings"] == 15
    kept = Cache(root / "results.sqlite").clear().kept
    assert kept["embeddings"] == (str(root / "embeddings"), 15) and (root / "embeddings").exists()
    removed = Cache(root / "results.sqlite").clear(all=True).removed
    assert removed["embeddings"] == (str(root / "embeddings"), 15) and not (root / "embeddings").exists()


@pytest.mark.parametrize(("name", "text", "damaged"), [
    ("SQLITE_CORRUPT", "database disk image is malformed", True),
    ("SQLITE_NOTADB", "file is not a database", True),
    ("", "database disk image is malformed", True),  # before Python 3.11: no sqlite_errorname
    ("SQLITE_CORRUPT", "some other words", True),
    ("SQLITE_BUSY", "database is locked", False),
    ("", "attempt to write a readonly database", False),
])
def test_only_an_unreadable_file_counts_as_damage(name, text, damaged):
    from promptsel.selection.cache import _damage

    exc = sqlite3.DatabaseError(text)
    if name:
        exc.sqlite_errorname = name
    assert _damage(exc) == (text if damaged else None)


def test_the_key_is_the_sha256_of_sorted_unescaped_json():
    """The key's format is pinned: a change would silently turn every user's cache into misses,
    and key order in the identity or payload must not matter. The expected text is written out."""
    import hashlib

    from promptsel.selection.cache import make_key

    want = hashlib.sha256('["mte", {"a": 1, "b": "é"}, {"x": [1, 2], "y": null}]'.encode()).hexdigest()
    assert make_key("mte", {"b": "é", "a": 1}, {"y": None, "x": [1, 2]}) == want
    assert make_key("mte", {"a": 1, "b": "é"}, {"x": [1, 2], "y": None}) == want
    assert len(row_digest("k", "[1]")) == 32  # 16 bytes, hex


def test_every_damaged_row_is_counted_and_a_closed_cache_reopens(tmp_path):
    cache = Cache(tmp_path / "r.sqlite")
    cache.put_many("a", {"k1": [1.0], "k2": [2.0], "k3": [3.0]})
    cache.close()
    with sqlite3.connect(tmp_path / "r.sqlite") as db:
        db.execute("UPDATE results SET value = '[9.0]' WHERE key IN ('k1', 'k2')")  # digests no longer match
    db.close()
    reader = Cache(tmp_path / "r.sqlite")
    assert reader.get_many(["k1", "k2", "k3"]) == {"k3": [3.0]}
    assert (reader.invalid, reader.hits, reader.misses) == (2, 1, 2)
    reader.close()
    assert reader.get_many(["k3"]) == {"k3": [3.0]}  # from memory
    reader.put_many("a", {"k4": [4.0]})  # writes through a connection opened again
    reader.close()
    assert Cache(tmp_path / "r.sqlite").get_many(["k4"]) == {"k4": [4.0]}


def test_a_disabled_cache_neither_reads_nor_writes_the_file(tmp_path):
    """--no-cache: results live in memory for the run; the file on disk is left alone."""
    from promptsel.selection.cache import DamagedCache

    Cache(tmp_path / "r.sqlite").put_many("a", {"k1": [1.0]})
    off = Cache(tmp_path / "r.sqlite", enabled=False)
    assert off.get_many(["k1"]) == {} and off.misses == 1
    Cache(tmp_path / "new.sqlite", enabled=False).put_many("a", {"k2": [2.0]})
    assert not (tmp_path / "new.sqlite").exists()
    err = DamagedCache(tmp_path / "r.sqlite", "file is not a database")
    assert err.hint == "Remove it with `promptsel cache clear` (results are recomputed), or run with --no-cache."
