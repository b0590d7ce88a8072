"""Every bad input named in issue 13, through the CLI: one line, the right exit code (1 runtime,
2 usage), naming the file, line, prompt or option, and user text printed as written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.command_line import GOOD, one_line_error, run
from tests.paths import ROOT

ROWS = '{"text": "fine", "label": "positive"}\n{"text": "bad", "label": "negative"}\n'


def scores(path, **arrays):
    base = {"class_logprobs": np.log(np.full((2, 3, 2), 0.5)), "labels": np.array([0, 1, 0])}
    np.savez(path, **{**base, **arrays})
    return str(path)


CASES = [
    # (files, argv, exit code, what the line must say)
    ({"d.csv": b"text,label\nfine,positive\n\xff bad,negative\n"}, ["select", "-d", "{d.csv}", "-p", "{p.toml}", "-b", "fake"],
     1, "d.csv:3: not UTF-8 text"),
    ({"d.jsonl": (ROWS + "[1, 2]\n").encode()}, ["select", "-d", "{d.jsonl}", "-p", "{p.toml}", "-b", "fake"],
     1, "d.jsonl:3: a JSON list, not an object"),
    ({"d.csv": ("text,label\nfine,positive\n" + "x" * 131_073 + ",negative\n").encode()},
     ["select", "-d", "{d.csv}", "-p", "{p.toml}", "-b", "fake"], 1, "d.csv:3: cannot read this csv row (field larger than field limit (131072))"),
    ({"d.jsonl": ROWS.encode()}, ["select", "-d", "{d.jsonl}", "-p", "{p.toml}", "-b", "fake", "--seed", "-1"], 2, "'--seed'"),
    ({"d.jsonl": ROWS.encode()}, ["select", "-d", "{d.jsonl}", "-p", "{p.toml}", "-b", "fake", "--max-chars", "0"],
     2, "Invalid value for '--max-chars'"),
    ({"d.jsonl": (ROWS + '{"text": null, "label": "negative"}\n').encode()},
     ["select", "-d", "{d.jsonl}", "-p", "{p.toml}", "-b", "fake"], 1, "d.jsonl:3: field 'text' is null or missing, not text"),
    ({"d.csv": b"text,label\nfine,positive\nmeh,\nbad,negative\n"}, ["select", "-d", "{d.csv}", "-p", "{p.toml}", "-b", "fake"],
     1, "d.csv:3: no label, while 2 other examples have one"),
    ({}, ["select", "--scores", "{nan.npz}"], 2, "nan.npz: prompt_nll has NaN or infinite values"),
    ({}, ["select", "--scores", "{empty.npz}"], 2, "empty.npz: class_logprobs has shape (0, 3, 2)"),
    ({}, ["select", "--scores", "{one.npz}"], 2, "one.npz: class_logprobs has one class"),
    ({}, ["select", "--scores", "{str.npz}"], 2, "str.npz: class_logprobs must hold numbers"),
    ({}, ["select", "--scores", "{obj.npz}"], 2, "Object arrays cannot be loaded"),
    ({}, ["select", "--scores", "{float.npz}"], 2, "float.npz: labels must be class indices (whole numbers), got 0.5"),
    ({}, ["select", "--scores", "{dup.npz}"], 2, "prompt ids must be unique; 'a' appears twice"),
    ({"s.toml": GOOD.replace("{{text}}", "{{ text.__class__ }}").encode()}, ["validate", "{s.toml}", "--dataset", "sst2"],
     2, "prompt 'a': template cannot be rendered (SecurityError"),
    ({"u.toml": (GOOD + 'instruction = "Answer {{ choices }}"\n').encode()}, ["validate", "{u.toml}", "--dataset", "sst2"],
     2, "instruction: uses {{choices}}, but only {{label_space}} is known there"),
    ({"e.toml": b'name = "x"\n'}, ["validate", "{e.toml}"], 2, "no [[prompt]] tables"),
    ({}, ["select", "-d", "wanli", "-p", str(ROOT / "prompts" / "nli.toml"), "--data-dir", "{tmp}"], 1, "pip install 'promptsel[hub]'"),
]


@pytest.mark.parametrize(("files", "argv", "code", "needle"), CASES, ids=[
    "csv-not-utf8", "jsonl-not-object", "csv-huge-field", "seed-negative", "max-chars-0", "jsonl-null-text", "some-labels-missing",
    "scores-nan-nll",
    "scores-empty", "scores-one-class", "scores-strings", "scores-objects", "scores-float-labels", "scores-duplicate-ids",
    "render-sandbox", "instruction-undefined", "markup-in-message", "markup-in-hint"])
def test_each_case_is_one_clear_line(capsys, tmp_path, monkeypatch, fake_backend_plugin, files, argv, code, needle):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    files = {"p.toml": GOOD.encode(), **files}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    paths = {"{tmp}": str(tmp_path), **{f"{{{name}}}": str(tmp_path / name) for name in files}}
    paths |= {
        "{nan.npz}": scores(tmp_path / "nan.npz", prompt_nll=np.full((2, 3), np.nan)),
        "{empty.npz}": scores(tmp_path / "empty.npz", class_logprobs=np.zeros((0, 3, 2))),
        "{one.npz}": scores(tmp_path / "one.npz", class_logprobs=np.zeros((2, 3, 1))),
        "{str.npz}": scores(tmp_path / "str.npz", class_logprobs=np.full((2, 3, 2), "x")),
        "{float.npz}": scores(tmp_path / "float.npz", labels=np.array([0.5, 1.0, 0.0])),
        "{dup.npz}": scores(tmp_path / "dup.npz", prompt_ids=np.array(["a", "a"])),
    }
    obj = tmp_path / "obj.npz"
    np.savez(obj, class_logprobs=np.array([[[{"a": 1}, 2]]], dtype=object))
    paths["{obj.npz}"] = str(obj)
    got, _, err = run(capsys, *[paths.get(a, a) for a in argv])
    line = one_line_error(err) if got != 2 or "Usage:" not in err else err
    assert got == code, err
    assert needle in line, line


def test_prompt_ids_that_look_like_markup_are_printed_as_written(capsys, tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, class_logprobs=np.log([[[0.9, 0.1]] * 3, [[0.2, 0.8]] * 3, [[0.5, 0.5]] * 3]), labels=[0, 1, 0],
             prompt_ids=["[/red]p1", "[blink]p2", "p3"])
    code, out, err = run(capsys, "select", "--scores", str(path), "--methods", "mi", "-o", str(tmp_path / "r.md"))
    assert code == 0, err
    assert "[/red]p1" in err and "[blink]p2" in err  # in the tables, not swallowed as style tags
    code, out, err = run(capsys, "select", "--scores", str(path), "--methods", "mi", "--json", "-q")
    assert [p["id"] for p in json.loads(out)["prompts"]] == ["[/red]p1", "[blink]p2", "p3"]
