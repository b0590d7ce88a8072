"""``promptsel expand`` on the command line: it writes variants that ``validate`` accepts, says
what it wrote, and refuses bad input in one line."""

from __future__ import annotations

import json

import pytest
import tomllib

from tests.command_line import SA, one_line_error, run


@pytest.mark.option("expand", "-o", "--n", "--seed")
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
    # Another seed draws other variants of the same prompts; another --n writes that many each.
    other = tmp_path / "other.toml"
    run(capsys, "expand", SA, "-o", str(other), "--n", "3", "--seed", "5")
    assert other.read_bytes() != out.read_bytes()
    assert [p["id"] for p in tomllib.loads(other.read_text(encoding="utf-8"))["prompt"]] == [p["id"] for p in data["prompt"]]
    code, stdout, _ = run(capsys, "expand", SA, "-o", str(tmp_path / "one.toml"), "--n", "1", "--seed", "4", "--json")
    assert code == 0 and (json.loads(stdout)["originals"], json.loads(stdout)["variants"]) == (13, 13)


@pytest.mark.option("expand", "--axes", "--grammar")
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
    # Without the grammar the same axes never draw its values; without --axes the labels vary too.
    code, stdout, err = run(capsys, "expand", SA, "-o", str(tmp_path / "plain.toml"), "--axes", "field_name,separator", "--n", "40",
                            "--json")
    assert code == 0, err
    plain = json.loads(stdout)["values"]
    assert "Movie review" not in plain["field_name"] and " >> " not in plain["separator"]
    code, stdout, err = run(capsys, "expand", SA, "-o", str(tmp_path / "all.toml"), "--n", "40", "--json")
    assert code == 0, err
    assert set(json.loads(stdout)["values"]["labels"]) > set(values["labels"])


def test_expand_refuses_bad_input_in_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "expand", SA, "-o", SA)
    assert code == 2 and "is the prompt file itself" in one_line_error(err)
    code, _, err = run(capsys, "expand", SA, "-o", str(tmp_path / "v.toml"), "--axes", "colour")
    assert code == 2 and "Unknown axis 'colour'" in one_line_error(err)
    bad = tmp_path / "g.toml"
    bad.write_text("[axes]\ncasing = ['shout']\n", encoding="utf-8")
    code, _, err = run(capsys, "expand", SA, "-o", str(tmp_path / "v.toml"), "--grammar", str(bad))
    assert code != 0 and "'shout' is not one of" in one_line_error(err)
