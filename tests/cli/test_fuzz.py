"""Malformed inputs through the CLI, generated from a seed: nothing wrong may pass silently.

Each case is a known-bad prompt file, data file, ``--scores`` file, lock file or cache (every
generator below breaks something that must be refused; the random part is where and how). A
case runs in process and fails on a traceback, on "Unexpected error", on anything but exactly
one ``Error:`` line with exit code 1 or 2 (``check`` may print what it compared before it), and
on exit 0. Cache rows are the exception by
design: a bad row is a miss, so the run must succeed with exactly the results of an intact
cache and count the row as invalid. User text in errors (a prompt id like ``[/red]p1``) must
come out as written.

``PROMPTSEL_FUZZ_SEED`` replays another seed; the default keeps CI deterministic.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.command_line import run

SEED = int(os.environ.get("PROMPTSEL_FUZZ_SEED", "20240613"))
CLASSES = ("negative", "positive")
REVIEWS = [("a great film", "positive"), ("dull and long", "negative"), ("great fun", "positive"),
           ("a mess", "negative"), ("the cast is great", "positive"), ("tedious", "negative")]


@dataclass
class Case:
    id: str
    kind: str  # prompts | data | scores | lock | cache
    files: dict[str, bytes] = field(default_factory=dict)  # name -> content, written to tmp_path
    argv: list[str] = field(default_factory=list)  # "{tmp}" is replaced by tmp_path
    mutate: Callable[[Any, random.Random], Any] | None = None  # lock JSON or cache database edits
    literal: str | None = None  # user text the error must show as written


# --- prompt files -------------------------------------------------------------------------

def prompt_table(pid: str, template: str = "Review: {{text}}", extra: str = "",
                 choices: str = 'positive = ["yes"], negative = ["no"]') -> str:
    return f'[[prompt]]\nid = {json.dumps(pid)}\ntemplate = {json.dumps(template)}\nanswer_choices = {{ {choices} }}\n{extra}\n'


GOOD_PROMPTS = ('name = "fuzz"\n[defaults]\ninstruction = "Answer ({{ label_space }})."\n\n'
                + prompt_table("p1") + prompt_table("p2", "{{text}} Good or bad?", "chat = false\n")
                + prompt_table("p3", "{{text}} Why?", 'cot = true\ncot_instruction = "Think first."\n'))

WRONG_TYPES = [("id", "5"), ("id", "[]"), ("id", '""'), ("template", "5"), ("template", '"   "'), ("cot", '"yes"'),
               ("chat", "1"), ("answer_choices", '"yes"'), ("answer_choices", "{}"), ("answer_choices", "{ positive = [] }"),
               ("answer_choices", '{ positive = [""] }'), ("answer_choices", "{ positive = [1] }"), ("instruction", "3"),
               ("system", '["a"]'), ("target_delimiter", "false")]
JINJA_SYNTAX = ["{% if %}", "{{ text", "{{ }}", "{% for x in %}{% endfor %}", "{{ text | }}", "{% endif %}", "{{ text }}{% endfor %}"]
RENDER_FAILURES = ["{{ text.__class__ }}", "{{ text }}{{ 1 // 0 }}", "{{ text.__class__.__mro__ }}", "{{ lipsum.__globals__ }}",
                   "{{ cycler.__init__.__globals__ }}", "{{ text }}{{ (text|int) / 0 }}", "{{ text[99] }}"]
TOML_BREAKS = ["[[prompt]\n", "id = \n", 'template = "unterminated\n', "= 5\n", "[defaults\n", 'x = """\n', "a.b.c = \n"]
MARKUP_IDS = ["[/red]p1", "[blink]p2", "[bold]x[/bold]", "[[prompt]]", "promptsel[hub]"]


def prompt_cases(rng: random.Random, n: int) -> list[Case]:
    def set_key(text: str, pid: str, key: str, value: str) -> str:
        """``key = value`` in prompt ``pid`` (replacing the key where the prompt has it)."""
        head, sep, tail = text.partition(f"id = {json.dumps(pid)}\n")
        block, nxt, rest = tail.partition("[[prompt]]")
        block = "\n".join(ln for ln in block.split("\n") if not ln.startswith(f"{key} ="))
        if key == "id":
            return head + f"id = {value}\n" + block + nxt + rest
        return head + sep + f"{key} = {value}\n" + block + nxt + rest

    ops: list[Callable[[], tuple[str, bytes, str | None]]] = []

    def dup_id():
        pid = rng.choice([*MARKUP_IDS, "p1", "same"])
        text = GOOD_PROMPTS.replace('"p1"', json.dumps(pid)).replace('"p3"', json.dumps(pid))
        return "duplicate-id", text.encode(), pid

    def missing_key():
        key, pid = rng.choice(["id", "template", "answer_choices"]), rng.choice(["p1", "p2", "p3"])
        head, sep, tail = GOOD_PROMPTS.partition(f"id = {json.dumps(pid)}\n")
        if key == "id":
            return "missing-id", (head + tail).encode(), None
        lines = [ln for ln in tail.split("\n") if not ln.startswith(f"{key} =")]
        return f"missing-{key}", (head + sep + "\n".join(lines)).encode(), None

    def wrong_type():
        key, value = rng.choice(WRONG_TYPES)
        return f"wrong-{key}", set_key(GOOD_PROMPTS, rng.choice(["p1", "p2"]), key, value).encode(), None

    def unknown_key():
        key = rng.choice(["answer_choice", "tempalte", "cot_instuction", "labels", f"x{rng.randrange(1000)}"])
        where = rng.choice(["top", "defaults", "prompt"])
        if where == "top":
            return "unknown-top-key", f"{key} = 1\n{GOOD_PROMPTS}".encode(), None
        if where == "defaults":
            return "unknown-default-key", GOOD_PROMPTS.replace("[defaults]\n", f"[defaults]\n{key} = 1\n").encode(), None
        return "unknown-prompt-key", GOOD_PROMPTS.replace('id = "p2"\n', f'id = "p2"\n{key} = 1\n').encode(), None

    def jinja_syntax():
        bad = rng.choice(JINJA_SYNTAX)
        key = rng.choice(["template", "instruction"])
        return f"jinja-{key}", set_key(GOOD_PROMPTS, "p2", key, json.dumps(bad)).encode(), None

    def unknown_filter():
        return "unknown-filter", set_key(GOOD_PROMPTS, "p1", "template", json.dumps(f"{{{{ text | f{rng.randrange(999)} }}}}")).encode(), None

    def unknown_placeholder():
        name = rng.choice(["sentence", "review", "input", f"field{rng.randrange(99)}"])
        return "placeholder", set_key(GOOD_PROMPTS, "p3", "template", json.dumps(f"{{{{ {name} }}}}")).encode(), None

    def render_failure():
        bad = rng.choice(RENDER_FAILURES)
        key = rng.choice(["template", "template", "cot_followup"])
        text = set_key(GOOD_PROMPTS, "p3", key, json.dumps(bad.replace("text", "label_space") if key != "template" else bad))
        return f"render-{key}", text.encode(), None

    def instruction_undefined():
        return "instruction-name", set_key(GOOD_PROMPTS, "p1", "instruction", json.dumps(f"Pick {{{{ {rng.choice(['labels', 'text', 'x'])} }}}}")).encode(), None

    def classes_mismatch():
        wrong = rng.choice(["neg", "pos", "neutral", "Positive", "[red]positive"])
        return "classes", GOOD_PROMPTS.replace("negative = [", f"{json.dumps(wrong)} = [", 1).encode(), None

    def cot_without_instruction():
        return "cot-no-instruction", GOOD_PROMPTS.replace('cot_instruction = "Think first."\n', "").encode(), None

    def toml_break():
        lines = GOOD_PROMPTS.splitlines(keepends=True)
        i = rng.randrange(len(lines) + 1)
        return "toml-syntax", "".join([*lines[:i], rng.choice(TOML_BREAKS), *lines[i:]]).encode(), None

    def not_utf8():
        raw = GOOD_PROMPTS.encode()
        i = raw.index(b"Review")
        return "not-utf8", raw[:i] + bytes([rng.choice([0xFF, 0xFE, 0xC3, 0x80])]) + raw[i:], None

    def cut_in_string():
        quotes = [i for i, ch in enumerate(GOOD_PROMPTS) if ch == '"']
        return "truncated", GOOD_PROMPTS[: rng.choice(quotes[::2]) + 2].encode(), None

    def shape():
        return rng.choice([("empty", b"", None), ("no-prompts", b'name = "x"\n', None), ("prompt-not-table", b"prompt = 5\n", None),
                           ("defaults-not-table", b"defaults = 5\n" + GOOD_PROMPTS.split("[defaults]")[1].encode(), None),
                           ("binary", bytes(rng.randrange(256) for _ in range(64)), None)])

    ops = [dup_id, missing_key, wrong_type, unknown_key, jinja_syntax, unknown_filter, unknown_placeholder, render_failure,
           instruction_undefined, classes_mismatch, cot_without_instruction, toml_break, not_utf8, cut_in_string, shape]
    cases = []
    for i in range(n):
        name, content, literal = ops[i % len(ops)]()
        if i % 2:  # half through validate, half through select with the fake backend
            argv = ["validate", "{tmp}/p.toml", "--dataset", "sst2"]
        else:
            argv = ["select", "-d", "{tmp}/data.jsonl", "-p", "{tmp}/p.toml", "-b", "fake", "-m", "mi", "--no-progress", "-q"]
        cases.append(Case(f"prompts-{i:03d}-{name}", "prompts", {"p.toml": content, "data.jsonl": jsonl(REVIEWS)}, argv,
                          literal=literal))
    return cases


# --- data files ---------------------------------------------------------------------------

def jsonl(rows, *, text_key: str = "text") -> bytes:
    return "".join(json.dumps({text_key: t, "label": y}) + "\n" for t, y in rows).encode()


def table(rows, sep: str = ",", header: str = "text,label") -> bytes:
    return (header.replace(",", sep) + "\n" + "".join(f"{t}{sep}{y}\n" for t, y in rows)).encode()


def data_cases(rng: random.Random, n: int) -> list[Case]:
    def line_at(raw: bytes, i: int, new: bytes) -> bytes:
        lines = raw.splitlines(keepends=True)
        lines[i] = new
        return b"".join(lines)

    def jsonl_ops():
        raw, i = jsonl(REVIEWS), rng.randrange(len(REVIEWS))
        choice = rng.randrange(11)
        if choice == 0:
            return "not-utf8", line_at(raw, i, b'{"text": "caf\xe9", "label": "positive"}\n'), []
        if choice == 1:
            return "not-object", line_at(raw, i, rng.choice([b"[1, 2]\n", b"5\n", b'"text"\n', b"null\n", b"true\n"])), []
        if choice == 2:
            return "bad-json", line_at(raw, i, rng.choice([b'{"text": "a", }\n', b"{'text': 'a'}\n", b'{"text": "a"\n', b"{]\n"])), []
        if choice == 3:
            return "null-text", line_at(raw, i, b'{"text": null, "label": "negative"}\n'), []
        if choice == 4:
            value = rng.choice(['{"a": 1}', "[1, 2]", '["a"]'])
            return "structured-text", line_at(raw, i, f'{{"text": {value}, "label": "negative"}}\n'.encode()), []
        if choice == 5:
            return "missing-field", line_at(raw, i, b'{"review": "x", "label": "negative"}\n'), []
        if choice == 6:
            return "unknown-label", line_at(raw, i, b'{"text": "x", "label": "neutral"}\n'), ["--classes", "negative,positive"]
        if choice == 7:
            return "one-class", jsonl([(t, "positive") for t, _ in REVIEWS]), []
        if choice == 8:
            return "empty", rng.choice([b"", b"\n\n  \n"]), []
        if choice == 9:
            return "label-object", line_at(raw, i, b'{"text": "x", "label": {"a": 1}}\n'), []
        return "extra-label", line_at(raw, i, b'{"text": "x", "label": "meh"}\n'), []  # a third class the prompts lack

    def table_ops(sep: str):
        raw, i = table(REVIEWS, sep), 1 + rng.randrange(len(REVIEWS))
        choice = rng.randrange(7)
        if choice == 0:
            return "not-utf8", line_at(raw, i, f"caf\xe9 ok{sep}positive\n".encode("latin-1")), []
        if choice == 1:
            return "huge-field", line_at(raw, i, ("x" * (131_072 + rng.randrange(1, 5000)) + f"{sep}positive\n").encode()), []
        if choice == 2:  # label first, then text: a row with one field has no text
            swapped = table([(y, t) for t, y in REVIEWS], sep, "label,text")
            return "short-row", line_at(swapped, i, b"positive\n"), []
        if choice == 3:
            return "no-text-column", table(REVIEWS, sep, "review,label"), []
        if choice == 4:
            return "header-only", f"text{sep}label\n".encode(), []
        if choice == 5:
            return "one-class", table([(t, "negative") for t, _ in REVIEWS], sep), []
        return "unknown-label", line_at(raw, i, f"x{sep}neutral\n".encode()), ["--classes", "negative,positive"]

    cases = []
    for i in range(n):
        suffix = ("jsonl", "csv", "tsv")[i % 3]
        if suffix == "jsonl":
            name, content, extra = jsonl_ops()
        else:
            name, content, extra = table_ops("," if suffix == "csv" else "\t")
        argv = ["select", "-d", f"{{tmp}}/d.{suffix}", "-p", "{tmp}/p.toml", "-b", "fake", "-m", "mi", "--no-progress", "-q", *extra]
        cases.append(Case(f"data-{i:03d}-{suffix}-{name}", "data", {f"d.{suffix}": content, "p.toml": GOOD_PROMPTS.encode()}, argv))
    return cases


# --- scores files -------------------------------------------------------------------------

def npz(**arrays: Any) -> bytes:
    buf = BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def scores_cases(rng: random.Random, n: int) -> list[Case]:
    def base(p: int = 3, k: int = 8, c: int = 2) -> dict[str, Any]:
        r = np.random.default_rng(rng.randrange(2**32))
        return {"class_logprobs": np.log(r.dirichlet([1] * c, size=(p, k))), "prompt_nll": r.uniform(1, 4, size=(p, k)),
                "labels": r.integers(0, c, size=k), "prompt_ids": np.array([f"p{i}" for i in range(p)])}

    def op() -> tuple[str, bytes, list[str], str | None]:
        a = base()
        choice = rng.randrange(24)
        literal = None
        if choice == 0:
            a["class_logprobs"][rng.randrange(3), rng.randrange(8), 0] = rng.choice([np.nan, np.inf, -np.inf])
            name = "lp-not-finite"
        elif choice == 1:
            a["prompt_nll"][rng.randrange(3), rng.randrange(8)] = rng.choice([np.nan, np.inf])
            name = "nll-not-finite"
        elif choice == 2:
            a["class_logprobs"] = a["class_logprobs"][:, :0] if rng.random() < 0.5 else a["class_logprobs"][:0]
            name = "empty"
        elif choice == 3:
            a = {"class_logprobs": np.zeros((3, 8, 1))}
            name = "one-class"
        elif choice == 4:
            a["class_logprobs"] = a["class_logprobs"].astype(str)
            name = "strings"
        elif choice == 5:
            return "objects", _pickled_npz(), [], None
        elif choice == 6:
            a["labels"] = a["labels"] + rng.choice([0.5, 0.25, 0.7])
            name = "float-labels"
        elif choice == 7:
            a["labels"][rng.randrange(8)] = rng.choice([-1, 2, 7])
            name = "label-range"
        elif choice == 8:
            a["labels"] = a["labels"][:-1]
            name = "label-length"
        elif choice == 9:
            pid = rng.choice(["p0", *MARKUP_IDS])
            a["prompt_ids"] = np.array([pid, pid, "p2"])
            name, literal = "duplicate-ids", pid
        elif choice == 10:
            a["prompt_ids"] = np.array(["p0", "p1"])
            name = "id-count"
        elif choice == 11:
            a["class_names"] = np.array(["a", "b", "c"])
            name = "class-count"
        elif choice == 12:
            a["prompt_nll"] = a["prompt_nll"][:, :3]
            name = "nll-shape"
        elif choice == 13:
            a["class_logprobs"] = a["class_logprobs"][0]
            name = "lp-2d"
        elif choice == 14:
            del a["class_logprobs"]
            name = "no-lp"
        elif choice == 15:
            a["labels"] = a["labels"].astype(bool)
            name = "bool-labels"
        elif choice == 16:
            a["labels"] = np.array([str(x) for x in a["labels"]])
            name = "string-labels"
        elif choice == 17:
            a["class_logprobs"] = a["class_logprobs"].astype(complex)
            name = "complex"
        elif choice == 18:
            a["sample_ids"] = np.array(["s0"])
            name = "sample-ids"
        elif choice == 19:
            raw = npz(**a)
            return "truncated", raw[: rng.randrange(10, len(raw) - 10)], [], None
        elif choice == 20:
            return "garbage", bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))), [], None
        elif choice == 21:
            buf = BytesIO()
            np.save(buf, a["class_logprobs"])
            return "npy", buf.getvalue(), [], None
        elif choice == 22:
            return "prompt-count", npz(**a), ["--prompts", "{tmp}/one.toml"], None
        else:
            a["prompt_nll"] = a["prompt_nll"].astype(str)
            name = "nll-strings"
        return name, npz(**a), [], literal

    cases = []
    for i in range(n):
        name, content, extra, literal = op()
        files = {"s.npz": content, "one.toml": prompt_table("only").encode()}
        cases.append(Case(f"scores-{i:03d}-{name}", "scores", files, ["select", "--scores", "{tmp}/s.npz", "-q", *extra],
                          literal=literal))
    return cases


def _pickled_npz() -> bytes:
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # what np.savez writes for an object array
        inner = BytesIO()
        np.save(inner, np.array([[[{"a": 1}, 2]]], dtype=object), allow_pickle=True)
        zf.writestr("class_logprobs.npy", inner.getvalue())
    return buf.getvalue()


# --- lock files ---------------------------------------------------------------------------

LOCK_PROMPTS = ('name = "t"\n[defaults]\nchat = false\n' + prompt_table("yesno", "Is this review positive? {{text}}")
                + prompt_table("goodbad", "{{text}} Was it good or bad?", choices='positive = ["good"], negative = ["bad"]'))


def lock_cases(rng: random.Random, n: int) -> list[Case]:
    def entry(lock):
        return next(iter(lock["entries"].values()))

    def structure(lock, r):
        choice = r.randrange(9)
        if choice == 0:
            return "[1, 2]"
        if choice == 1:
            lock["lock_version"] = r.choice([2, "1", None, 0])
        elif choice == 2:
            lock["entries"] = r.choice([[], "x", None, 5])
        elif choice == 3:
            lock["entries"] = {}
        elif choice == 4:
            lock["entries"]["k"] = r.choice([5, "x", [], None])
            lock["entries"] = {"k": lock["entries"]["k"]}
        elif choice == 5:
            del entry(lock)[r.choice(["request", "dataset", "backend", "prompts", "methods"])]
        elif choice == 6:
            section, name = r.choice([("dataset", "n"), ("dataset", "labels"), ("dataset", "sample_sha256"),
                                      ("backend", "fingerprint"), ("backend", "model")])
            entry(lock)[section][name] = r.choice(["x", 5.5, None, [], {}]) if name != "labels" else "yes"
        elif choice == 7:
            method = next(iter(entry(lock)["methods"].values()))
            method["chosen"] = r.choice(["nope", "[/red]p1", 5])
        else:
            entry(lock)[r.choice(["prompts", "methods"])] = {}
        return lock

    request_edits = [
        ("seed", "abc"), ("seed", -1), ("seed", 1.5), ("seed", True), ("seed", 2**40), ("limit", "x"), ("limit", 0), ("limit", -3),
        ("limit", 2.5), ("methods", "mi"), ("methods", [1]), ("methods", ["nope"]), ("methods", None), ("backend", "nope"),
        ("backend", 5), ("prompts", "missing.toml"), ("prompts", 5), ("prompts", None), ("dataset", "missing.jsonl"), ("dataset", 5),
        ("dataset", None), ("metric", "foo"), ("metric", None), ("max_chars", 0), ("max_chars", "x"), ("max_chars", -5),
        ("scoring", {"bogus": 1}), ("scoring", "x"), ("scoring", {"mode": "bad"}), ("scoring", {"aggregate": "mean"}),
        ("scoring", {"max_new_tokens": 0}), ("fields", "x"), ("fields", {"text": 5}), ("label_field", 5), ("classes", "a,b"),
        ("classes", [1, 2]), ("classes", ["only"]), ("model_args", "x"), ("model_args", [1]), ("split", 5), ("model", 5),
        ("request", None), ("request", "x"),
    ]

    def request(key, value):
        def edit(lock, r):
            if key == "request":
                entry(lock)["request"] = value
            else:
                entry(lock)["request"][key] = value
            return lock
        edit.__name__ = f"request-{key}"
        return edit

    def text(lock, r):
        raw = json.dumps(lock, indent=1)
        choice = r.randrange(4)
        if choice == 0:
            return raw[: r.randrange(1, len(raw) - 1)]
        if choice == 1:
            return raw + "\n<<<<<<< HEAD\n"
        if choice == 2:
            return b"\xff\xfe" + raw.encode()
        return ""

    ops = [*(structure for _ in range(n)), *(text for _ in range(n // 2)), *(request(k, v) for k, v in request_edits)]
    cases = []
    for i, op in enumerate(ops):
        files = {"p.toml": LOCK_PROMPTS.encode(), "data.jsonl": jsonl(REVIEWS)}
        cases.append(Case(f"lock-{i:03d}-{op.__name__}", "lock", files, ["check", "--lock", "{tmp}/promptsel.lock", "--no-progress"],
                          mutate=lambda lock, r, op=op: op(lock, r)))
    return cases


# --- cache rows ---------------------------------------------------------------------------

BAD_VALUES = ['"abc"', "abc", "NaN", "[NaN, -1.0]", "[-1.0, Infinity]", "[-1.0]", "[-1.0, -2.0, -3.0]", '["a", "b"]', "null",
              "{}", "[[1], [2]]", "[true, false]", "[1e999, -1]", "", "[-1.0, -2.0"]


def cache_cases(rng: random.Random, n: int) -> list[Case]:
    def row(db: Path, r: random.Random) -> str:
        with sqlite3.connect(db) as con:
            keys = [k for (k,) in con.execute("SELECT key FROM results WHERE kind = 'continuation' ORDER BY key")]
            key = r.choice(keys)
            choice = r.randrange(4)
            if choice == 0:  # a bad value with a digest made to fit: the value checks must see it
                from promptsel.selection.cache import row_digest

                value = r.choice(BAD_VALUES)
                con.execute("UPDATE results SET value = ?, digest = ? WHERE key = ?", (value, row_digest(key, value), key))
            elif choice == 1:  # a bad value, digest untouched
                con.execute("UPDATE results SET value = ? WHERE key = ?", (r.choice(BAD_VALUES), key))
            elif choice == 2:  # plausible numbers edited by hand: only the digest sees it
                value = json.dumps([round(-r.uniform(0.01, 9), 3) for _ in range(2)])
                con.execute("UPDATE results SET value = ? WHERE key = ?", (value, key))
            else:
                con.execute("UPDATE results SET digest = ? WHERE key = ?", (r.choice(["", "0" * 32, "x"]), key))
        return "row"

    def damaged(db: Path, r: random.Random) -> str:
        data = db.read_bytes()
        choice = r.randrange(3)
        if choice == 0:
            db.write_bytes(bytes(r.randrange(256) for _ in range(r.randrange(100, 5000))))
        elif choice == 1:
            db.write_bytes(data[: r.randrange(100, len(data) // 2)])
        else:
            db.write_bytes(b"SQLite format 3\x00" + bytes(r.randrange(256) for _ in range(len(data) - 16)))
        return "file"

    cases = []
    for i in range(n):
        op = damaged if i % 5 == 4 else row
        files = {"p.toml": GOOD_PROMPTS.encode(), "data.jsonl": jsonl(REVIEWS)}
        argv = ["select", "-d", "{tmp}/data.jsonl", "-p", "{tmp}/p.toml", "-b", "fake", "-m", "mi,globale,spell",
                "--no-progress", "--json", "-q"]
        cases.append(Case(f"cache-{i:03d}-{op.__name__}", "cache", files, argv, mutate=op))
    return cases


def all_cases() -> list[Case]:
    rng = random.Random(SEED)
    return (prompt_cases(rng, 60) + data_cases(rng, 60) + scores_cases(rng, 48) + lock_cases(rng, 12)
            + cache_cases(rng, 30))


CASES = all_cases()


def test_at_least_200_cases():
    assert len(CASES) >= 200 and len({c.id for c in CASES}) == len(CASES)


# --- running them -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def base_lock(tmp_path_factory) -> str:
    """A valid lock of LOCK_PROMPTS on REVIEWS with the fake backend, made once."""
    from promptsel import hookimpl, plugins
    from promptsel.cli import main
    from promptsel.testing import FakeBackend, registered

    class FakePlugin:
        @hookimpl
        def register_backends(self, register):
            register(FakeBackend)

    root = tmp_path_factory.mktemp("lock")
    (root / "p.toml").write_text(LOCK_PROMPTS)
    (root / "data.jsonl").write_bytes(jsonl(REVIEWS))
    plugins.reset()
    try:
        with registered(FakePlugin(), name="fake-backend"), pytest.raises(SystemExit) as done:
            main(["lock", "-d", str(root / "data.jsonl"), "-p", str(root / "p.toml"), "--lock", str(root / "promptsel.lock"),
                  "-b", "fake", "-m", "mi,globale", "--no-progress", "-q"])
            raise SystemExit(0)
        assert done.value.code in (0, None)
    finally:
        plugins.reset()
    return (root / "promptsel.lock").read_text()


def assert_one_clean_error(code: int, err: str, case: Case) -> None:
    assert "Traceback" not in err and "Unexpected error" not in err, err
    assert code in (1, 2), f"exit {code} on invalid input ({case.id}):\n{err}"
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("Warning:")]
    if case.kind == "lock":  # check prints what it could compare before a "not comparable" verdict
        lines = lines[-1:] if sum(ln.startswith("Error: ") for ln in lines) == 1 else lines
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    if case.literal is not None:
        assert case.literal in lines[0], f"{case.literal!r} not shown as written: {lines[0]}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_input_is_one_clean_error(case: Case, tmp_path, capsys, monkeypatch, fake_backend_plugin, request):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "200")
    for name, content in case.files.items():
        (tmp_path / name).write_bytes(content)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.argv]
    rng = random.Random(f"{SEED}:{case.id}")
    if case.kind == "lock":
        lock = case.mutate(json.loads(request.getfixturevalue("base_lock")), rng)
        capsys.readouterr()  # what making the base lock printed
        path = tmp_path / "promptsel.lock"
        if isinstance(lock, bytes):
            path.write_bytes(lock)
        else:
            path.write_text(lock if isinstance(lock, str) else json.dumps(lock))
    if case.kind == "cache":
        check_cache_case(case, argv, tmp_path, capsys, rng)
        return
    code, _, err = run(capsys, *argv)
    assert_one_clean_error(code, err, case)


def check_cache_case(case: Case, argv: list[str], tmp_path: Path, capsys, rng: random.Random) -> None:
    """A bad row is a counted miss (same results as an intact cache); a damaged file is one
    clean error naming it (or, where SQLite never reads the damage, the same results), and
    ``cache info`` / ``cache clear`` work on it."""
    from promptsel.selection.cache import default_path

    code, out, err = run(capsys, *argv)
    assert code == 0, err
    reference = json.loads(out)
    db = default_path()
    what = case.mutate(db, rng)
    code, out, err = run(capsys, *argv)
    assert "Traceback" not in err and "Unexpected error" not in err, err
    if what == "row":
        assert code == 0, err
        report = json.loads(out)
        assert report["methods"] == reference["methods"] and report["prompts"] == reference["prompts"]
        assert report["cache"]["misses"] >= 1 and report["cache"]["invalid"] <= report["cache"]["misses"]
        return
    if code == 0:
        assert json.loads(out)["methods"] == reference["methods"]
    else:
        assert_one_clean_error(code, err, case)
        assert str(db) in err and "promptsel cache clear" in err
    code, out, err = run(capsys, "cache", "info")
    assert code == 0 and "Traceback" not in err, err
    code, out, err = run(capsys, "cache", "clear")
    assert code == 0 and "Traceback" not in err, err
    code, out, err = run(capsys, *argv)
    assert code == 0 and json.loads(out)["methods"] == reference["methods"], err
