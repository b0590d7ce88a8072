"""promptsel.files: the one atomic write every output goes through, and the one table reader."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from promptsel import formats
from promptsel.errors import DataError
from promptsel.files import atomic_open, atomic_write
from promptsel.fute.unlabeled import load_corpus
from promptsel.gate.lockfile import write_lock
from promptsel.model.data import load_local
from promptsel.model.scoretable import ScoreTable
from promptsel.selection.samples import write_samples

OLD = b'{"old": "a whole file"}\n'


def old_file(tmp_path: Path, name: str = "out.json") -> Path:
    path = tmp_path / name
    path.write_bytes(OLD)
    return path


def left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_the_new_content_replaces_the_old_and_folders_are_made(tmp_path):
    path = old_file(tmp_path)
    atomic_write(path, "new\nlines\n")
    assert path.read_bytes() == b"new\nlines\n"  # \n stays \n: a file in a repository reads the same everywhere
    deep = tmp_path / "a" / "b" / "c.bin"
    atomic_write(deep, b"\x00\x01")
    assert deep.read_bytes() == b"\x00\x01"
    assert left_in(tmp_path) == ["a", "out.json"]


def test_an_error_while_writing_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = old_file(tmp_path)
    with pytest.raises(RuntimeError, match="disk full"), atomic_open(path) as fh:
        fh.write(b'{"new": "half')
        fh.flush()
        raise RuntimeError("disk full")
    assert path.read_bytes() == OLD
    assert left_in(tmp_path) == ["out.json"]


def test_an_error_before_the_first_write_leaves_no_file_where_there_was_none(tmp_path):
    with pytest.raises(KeyboardInterrupt), atomic_open(tmp_path / "new.json"):
        raise KeyboardInterrupt
    assert left_in(tmp_path) == []


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_a_process_killed_halfway_leaves_the_old_file_whole(tmp_path):
    path = old_file(tmp_path)
    child = textwrap.dedent(f"""
        import os, signal, sys
        from promptsel.files import atomic_open
        with atomic_open({str(path)!r}) as fh:
            fh.write(b'{{"new": "half')
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert path.read_bytes() == OLD
    partial = [p for p in tmp_path.iterdir() if p != path]
    # The half-written bytes went to a hidden temporary file beside it, never into the file.
    assert len(partial) == 1 and partial[0].name.startswith(".out.json.") and partial[0].name.endswith(".partial")
    assert partial[0].read_bytes() == b'{"new": "half'


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_new_file_gets_the_mode_open_would_give_it(tmp_path):
    previous = os.umask(0o027)
    try:
        atomic_write(tmp_path / "report.md", "# report\n")
    finally:
        os.umask(previous)
    assert (tmp_path / "report.md").stat().st_mode & 0o777 == 0o640  # 0666 less the umask, not mkstemp's 0600


def _table() -> ScoreTable:
    return ScoreTable(["p1", "p2"], ["neg", "pos"], np.log(np.full((2, 3, 2), 0.5)))


#: Every writer of a file the user keeps: a report (formats.write), a lock, a sample log, saved scores.
WRITERS = {
    "report": lambda path: formats.write("select", {"new": "report"}, path),
    "lock": lambda path: write_lock(path, {"entries": {}}),
    "samples": lambda path: write_samples(path, _table(), None),
    "scores": lambda path: _table().save(path),
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_every_output_is_written_atomically(tmp_path, monkeypatch, writer):
    """Interrupted at the last step (the move into place), each writer leaves the old file as it
    was: one that wrote the file in place would have changed it already."""
    path = old_file(tmp_path)

    def interrupted(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(os, "replace", interrupted)
        with pytest.raises(KeyboardInterrupt):
            WRITERS[writer](path)
    assert path.read_bytes() == OLD
    assert left_in(tmp_path) == ["out.json"]
    WRITERS[writer](path)  # and without the interruption, the new content arrives
    assert path.read_bytes() != OLD


# --- reading tables ------------------------------------------------------------------------------

BAD_FILES = [
    ("bad.jsonl", b'{"text": "fine"}\n{"text": broken}\n', "bad.jsonl:2: not valid JSON"),
    ("bad.jsonl", b'{"text": "fine"}\n\n["a", "list"]\n', "bad.jsonl:3: a JSON list, not an object"),
    ("bad.jsonl", b'{"text": "fine"}\n{"text": "caf\xe9"}\n', "bad.jsonl:2: not UTF-8 text"),
    ("bad.csv", b'text,label\nfine,a\nbad \xff,b\n', "bad.csv:3: not UTF-8 text"),
    ("bad.tsv", b'text\tlabel\nfine\ta\n' + b'x' * 200_000 + b'\tb\n', "bad.tsv:3: cannot read this tsv row"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES)
def test_a_bad_table_is_the_same_error_for_a_dataset_and_for_the_unlabeled_corpus(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as as_dataset:
        load_local(path)
    with pytest.raises(DataError) as as_corpus:
        load_corpus(str(path))
    assert str(as_dataset.value) == str(as_corpus.value)
    assert str(as_dataset.value).startswith(f"{path.parent}/{message}")


def test_a_text_file_that_is_not_utf8_names_its_line(tmp_path):
    path = tmp_path / "u.txt"
    path.write_bytes("one text\nanother\ncaf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"u\.txt:3: not UTF-8 text"):
        load_corpus(str(path))


def test_the_same_table_reads_the_same_rows_in_every_format(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"text": "a, b", "label": "x"}\n\n{"text": "c", "label": "y"}\n', encoding="utf-8")
    (tmp_path / "d.csv").write_text('\ufefftext,label\n"a, b",x\nc,y\n', encoding="utf-8")
    (tmp_path / "d.tsv").write_text("text\tlabel\na, b\tx\nc\ty\n", encoding="utf-8")
    read = {suffix: load_local(tmp_path / f"d{suffix}").examples for suffix in (".jsonl", ".csv", ".tsv")}
    assert read[".jsonl"] == read[".csv"] == read[".tsv"] == [{"text": "a, b", "label": "x"}, {"text": "c", "label": "y"}]
    assert [r["text"] for r in load_corpus(str(tmp_path / "d.csv"), seed=0).rows] in (["a, b", "c"], ["c", "a, b"])
