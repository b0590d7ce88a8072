"""``promptsel expand``'s engine: variants along named axes, seeded, recorded, and written as TOML
that reads back to the same prompts."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from promptsel.errors import PromptFileError, UsageError
from promptsel.model.grammar import AXES, shipped_grammar
from promptsel.model.prompt_toml import prompt_set_toml, string
from promptsel.model.prompts import Prompt, load_prompt_set
from promptsel.model.variants import NOT_APPLICABLE, axis_values, expand, literal
from tests.paths import ROOT

SA = load_prompt_set(ROOT / "prompts" / "sa.toml")
EXAMPLE = {"text": "A fine film."}


def by_id(prompts: list[Prompt]) -> dict[str, Prompt]:
    return {p.id: p for p in prompts}


def test_the_same_seed_gives_the_same_variants_and_another_seed_others():
    grammar = shipped_grammar()
    one = expand(SA.prompts, grammar, n=8, seed=5)
    again = expand(SA.prompts, grammar, n=8, seed=5)
    other = expand(SA.prompts, grammar, n=8, seed=6)
    assert one == again
    assert [p.template_sha256 for p in one] != [p.template_sha256 for p in other]
    # A prompt's variants depend on the seed and the prompt, not on the rest of the set.
    alone = expand([SA.prompts[3]], grammar, n=8, seed=5)
    assert [p.template_sha256 for p in alone[1:]] == [p.template_sha256 for p in one if p.parent == "sa04"]


def test_every_value_of_every_axis_appears():
    grammar = shipped_grammar()
    parent = by_id(SA.prompts)["sa01"]  # one field, the question before it, an instruction, not CoT
    possible = axis_values(parent, grammar, AXES)
    out = expand([parent], grammar, n=60, seed=0)
    seen = {a: {v.axes[a] for v in out[1:]} for a in AXES}
    for axis, values in possible.items():
        assert set(values) <= seen[axis], (axis, set(values) - seen[axis])
    # The shipped grammar's own values, spelled out by hand: all are offered for sa01.
    assert set(possible["labels"]) == {"yes/no", "positive/negative", "good/bad", "great/terrible", "like/dislike"}
    assert set(possible["separator"]) == {": ", " - ", ":\n", " = "}
    assert set(possible["answer_prefix"]) == {"none", "Answer", "Sentiment"}
    assert set(possible["field_name"]) == {"none", "Review", "Text", "Input", "Sentence"}


def test_variants_differ_from_their_parent_and_from_each_other():
    out = expand(SA.prompts, shipped_grammar(), n=10, seed=0)
    hashes = [p.template_sha256 for p in out if p.parent is not None]
    assert len(hashes) == len(set(hashes)) == 130
    assert not set(hashes) & {p.template_sha256 for p in SA.prompts}
    assert [p.id for p in out[:13]] == SA.ids and all(p.parent is None for p in out[:13])


def test_an_axis_left_out_keeps_the_parents_value():
    parent = by_id(SA.prompts)["sa07"]
    out = expand([parent], shipped_grammar(), axes=["labels"], n=10, seed=0)
    # sa07's words (["positive"], ["negative"]) are none of the five shipped verbalizers (those
    # have both cases): five variants are all there is, and its own words are "as written".
    assert len(out) == 1 + 5
    assert axis_values(parent, shipped_grammar(), ["labels"])["labels"][0] == "as written"
    for v in out[1:]:
        assert v.template == parent.template and v.chat == parent.chat and v.instruction == parent.instruction
        assert v.answer_choices != parent.answer_choices
        assert v.axes["field_name"] == "none" and v.axes["wrapping"] == "chat"


def test_what_each_axis_writes():
    grammar = shipped_grammar()
    parent = Prompt(id="p", template="Is it good? \n\n{{text}}", answer_choices={"positive": ["yes"], "negative": ["no"]},
                    instruction="Answer ({{ label_space }}).")
    from promptsel.model.variants import apply

    draw = {"labels": "good/bad", "field_name": "Review", "casing": "upper", "separator": " - ", "answer_prefix": "Sentiment",
            "spacing": "\n", "order": "input first", "instruction": "after", "wrapping": "chat"}
    variant, took = apply(parent, draw, grammar)
    assert variant.render_template(EXAMPLE) == "REVIEW - A fine film.\nIs it good?"
    assert variant.user_turn(EXAMPLE) == "REVIEW - A fine film.\nIs it good?\nAnswer (good, Good, bad, Bad).\nSENTIMENT -"
    assert took == draw
    before, took = apply(parent, {**draw, "instruction": "before", "answer_prefix": "none", "field_name": "none"}, grammar)
    assert before.user_turn(EXAMPLE) == "Answer (good, Good, bad, Bad).\nA fine film.\nIs it good?"
    assert took["casing"] == took["separator"] == NOT_APPLICABLE  # nothing to case or separate
    raw, took = apply(parent, {**draw, "wrapping": "raw"}, grammar)
    assert raw.raw_text(EXAMPLE).endswith("\nAnswer (good, Good, bad, Bad).\nAnswer:")  # the format's own prefix
    assert took["answer_prefix"] == NOT_APPLICABLE


def test_a_template_with_more_than_placeholders_varies_only_in_what_it_can():
    parent = Prompt(id="j", template="{% if text %}{{ text | upper }}{% endif %} ok?", answer_choices={"positive": ["yes"], "negative": ["no"]})
    values = axis_values(parent, shipped_grammar(), AXES)
    for axis in ("field_name", "spacing", "order", "instruction"):
        assert values[axis] == [NOT_APPLICABLE]
    out = expand([parent], shipped_grammar(), n=30, seed=1)
    assert all(v.template == parent.template for v in out[1:])


@pytest.mark.parametrize("text", ['say "hi" {not jinja} }} {{ and {% and {# \\ back\\slash\ttab\nnew', "\x7f\x01 ünïcode 😀"])
def test_literal_text_renders_as_written(text):
    prompt = Prompt(id="x", template=literal(text) + "{{text}}", answer_choices={"a": ["a"]})
    assert prompt.render_template(EXAMPLE) == text + EXAMPLE["text"]
    assert tomllib.loads(f"v = {string(text)}")["v"] == text


def test_user_text_with_braces_and_quotes_survives_expand_and_the_toml(tmp_path: Path):
    source = tmp_path / "odd.toml"
    source.write_text('''
[[prompt]]
id = "odd"
template = 'He said "it {is} fine" \\\\ {{text}} ?'
answer_choices = { positive = ["yes"], negative = ["no"] }
instruction = "Answer ({{ label_space }}) with 'quotes'."
''', encoding="utf-8")
    originals = load_prompt_set(source).prompts
    grammar = shipped_grammar()
    grammar.extend({"axes": {"separator": ['{{ "x" }} "q" ']}, "field_names": {"text": ["{%raw%} R"]}}, "test")
    out = expand(originals, grammar, n=40, seed=2)
    written = tmp_path / "v.toml"
    written.write_text(prompt_set_toml(out, name="v", header=['a "header" {x}']), encoding="utf-8")
    back = load_prompt_set(written).prompts
    assert back == out  # every field, parent and axes included
    odd = [p for p in back if p.axes and p.axes["separator"] == '{{ "x" }} "q" ' and p.axes["field_name"] == "{%raw%} R"]
    assert odd, "the extension's values were drawn"
    casing = odd[0].axes["casing"]
    name = {"title": "{%raw%} R", "lower": "{%raw%} r", "upper": "{%RAW%} R"}[casing]
    assert name + '{{ "x" }} "q" ' + EXAMPLE["text"] in odd[0].render_template(EXAMPLE)
    assert 'He said "it {is} fine" \\' in back[0].render_template(EXAMPLE)


def test_parent_and_axes_are_checked_when_read(tmp_path: Path):
    base = '[[prompt]]\nid = "a"\ntemplate = "{{text}}"\nanswer_choices = { x = ["x"] }\n'
    path = tmp_path / "p.toml"
    path.write_text(base + '\n[[prompt]]\nid = "b"\nparent = "zz"\ntemplate = "{{text}}!"\nanswer_choices = { x = ["x"] }\n')
    with pytest.raises(PromptFileError, match="'zz' is not another prompt of this set"):
        load_prompt_set(path)
    path.write_text(base + '\n[[prompt]]\nid = "b"\naxes = { labels = "x" }\ntemplate = "{{text}}!"\nanswer_choices = { x = ["x"] }\n')
    with pytest.raises(PromptFileError, match="only a variant"):
        load_prompt_set(path)
    path.write_text(base + '\n[[prompt]]\nid = "b"\nparent = "a"\naxes = { labels = 3 }\ntemplate = "{{text}}!"\nanswer_choices = { x = ["x"] }\n')
    with pytest.raises(PromptFileError, match="axes"):
        load_prompt_set(path)


def test_parent_and_axes_do_not_change_what_the_prompt_is():
    a = SA.prompts[0]
    from dataclasses import replace

    assert replace(a, parent="sa02", axes={"labels": "yes/no"}).template_sha256 == a.template_sha256


def test_grammar_extensions_are_checked():
    grammar = shipped_grammar()
    with pytest.raises(PromptFileError, match=r"casing.*'shout' is not one of title, lower, upper"):
        grammar.extend({"axes": {"casing": ["shout"]}}, "mine.toml")
    with pytest.raises(PromptFileError, match=r"unknown key 'axis'.*did you mean 'axes'"):
        grammar.extend({"axis": {}}, "mine.toml")
    with pytest.raises(PromptFileError, match="exactly the classes negative, positive"):
        grammar.extend({"task": [{"name": "sentiment", "verbalizers": [{"name": "v", "words": {"positive": ["p"]}}]}]}, "mine.toml")
    grammar.extend({"task": [{"name": "sentiment", "verbalizers": [{"name": "fab/awful", "words": {"positive": ["fab"], "negative": ["awful"]}}]}]}, "mine.toml")
    assert "fab/awful" in axis_values(SA.prompts[0], grammar, AXES)["labels"]


def test_an_unknown_axis_is_a_usage_error():
    with pytest.raises(UsageError, match="Unknown axis 'colour'"):
        expand(SA.prompts, shipped_grammar(), axes=["colour"])


def test_expanding_an_expanded_set_adds_new_distinct_variants():
    grammar = shipped_grammar()
    once = expand(SA.prompts[:2], grammar, n=3, seed=0)
    twice = expand(once, grammar, n=3, seed=1)
    assert twice[: len(once)] == once  # what was there stays, variants are not expanded
    added = twice[len(once):]
    assert [p.id for p in added] == ["sa01.v004", "sa01.v005", "sa01.v006", "sa02.v004", "sa02.v005", "sa02.v006"]
    assert len({p.template_sha256 for p in twice}) == len(twice)
