"""``promptsel expand`` on the command line: it writes variants that ``validate`` accepts, says
what it wrote, and refuses bad input in one line."""

from __future__ import annotations

import json

import tomllib

from tests.command_line import SA, one_line_error, run


def test_expand_writes_variants_that_validate_accepts(capsys, tmp_path):
    out = tmp_path / "v.toml"
    code, stdout, err = run(capsys, "expand", SA, "-o", str(out), "--n", "3", "--seed", "4", "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert (summary["originals"], summary["variants"]) == (13, 39)
    assert f"Wrote {out}: 13 originals and 39 variants" in err
    data = tomllib.loads(out.read_text(encoding="utf-8"))
    variants = [p for p in data["prompt"] if "parent" in p]
    assert len(variants) == 39 and all(set(p["axes"]) == set(summary["axes"]) for p in variants)
    assert {p["parent"] for p in variants} == {f"sa{i:02d}" for i in range(1, 14)}
    code, _, err = run(capsys, "validate", str(out), "--dataset", "sst2")
    assert code == 0 and "52 prompts" in " ".join(err.split()), err
    # The same command writes the same file.
    again = tmp_path / "again.toml"
    run(capsys, "expand", SA, "-o", str(again), "--n", "3", "--seed", "4")
    assert again.read_bytes() == out.read_bytes()


def test_expand_with_a_user_grammar_and_chosen_axes(capsys, tmp_path):
    grammar = tmp_path / "g.toml"
    grammar.write_text('[axes]\nseparator = [" >> "]\n[field_names]\ntext = ["Movie review"]\n', encoding="utf-8")
    out = tmp_path / "v.toml"
    code, stdout, err = run(capsys, "expand", SA, "-o", str(out), "--axes", "field_name,separator", "--n", "40",
                            "--grammar", str(grammar), "--json")
    assert code == 0, err
    values = json.loads(stdout)["values"]
    assert "Movie review" in values["field_name"] and " >> " in values["separator"]
    # Not an axis, so each prompt keeps its words: named when they are a shipped verbalizer.
    assert set(values["labels"]) == {"yes/no", "good/bad", "as written"}


def test_expand_refuses_bad_input_in_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "expand", SA, "-o", SA)
    assert code == 2 and "is the prompt file itself" in one_line_error(err)
    code, _, err = run(capsys, "expand", SA, "-o", str(tmp_path / "v.toml"), "--axes", "colour")
    assert code == 2 and "Unknown axis 'colour'" in one_line_error(err)
    bad = tmp_path / "g.toml"
    bad.write_text("[axes]\ncasing = ['shout']\n", encoding="utf-8")
    code, _, err = run(capsys, "expand", SA, "-o", str(tmp_path / "v.toml"), "--grammar", str(bad))
    assert code != 0 and "'shout' is not one of" in one_line_error(err)
