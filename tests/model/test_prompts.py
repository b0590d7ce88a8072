from __future__ import annotations

import re
from pathlib import Path

import pytest

from promptsel.errors import PromptFileError
from promptsel.model.prompts import load_prompt_set
from tests.paths import ROOT

SA_FIELDS, SA_CLASSES = ("text",), ("negative", "positive")
NLI_FIELDS, NLI_CLASSES = ("premise", "hypothesis"), ("entailment", "neutral", "contradiction")


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "set.toml"
    path.write_text(body, encoding="utf-8")
    return path


MINIMAL = """
[defaults]
system = "Be brief."
instruction = "Answer ({{ label_space }})."

[[prompt]]
id = "a"
template = "Review: {{text}}"
answer_choices = { positive = ["yes", "Yes"], negative = ["no"] }
"""


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "prompts").glob("*.toml")))
def test_every_bundled_prompt_set_loads(name):
    prompt_set = load_prompt_set(ROOT / "prompts" / name)
    assert len(prompt_set.ids) == len(set(prompt_set.ids)) > 0


def test_paper_sets_have_13_prompts_with_cot_versions_of_the_first_three():
    for name, fields, classes in (("sa", SA_FIELDS, SA_CLASSES), ("nli", NLI_FIELDS, NLI_CLASSES)):
        ps = load_prompt_set(ROOT / "prompts" / f"{name}.toml")
        assert len(ps.prompts) == 13
        assert [p.cot for p in ps.prompts] == [False] * 10 + [True] * 3
        for plain, cot in zip(ps.prompts[:3], ps.prompts[10:]):
            assert (plain.template, plain.answer_choices) == (cot.template, cot.answer_choices)
        ps.check_dataset(fields, classes, name)
    sa = load_prompt_set(ROOT / "prompts" / "sa.toml")
    # The released quirks are kept knowingly: 6 == 10 and 3/9 differ by a trailing space.
    assert sa.prompts[5].template == sa.prompts[9].template
    assert sa.prompts[2].template == sa.prompts[8].template + " "


def test_rendering_appends_the_instruction_with_every_label_word(tmp_path):
    prompt = load_prompt_set(write(tmp_path, MINIMAL)).prompts[0]
    assert prompt.label_space == "yes, Yes, no"
    assert prompt.user_turn({"text": "Fine."}) == "Review: Fine.\nAnswer (yes, Yes, no)."
    assert prompt.messages({"text": "Fine."}) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Review: Fine.\nAnswer (yes, Yes, no)."},
    ]
    assert prompt.render_template({"text": "Fine."}) == "Review: Fine."


def test_cot_prompt_has_a_follow_up_turn_after_the_reasoning(tmp_path):
    body = MINIMAL.replace('id = "a"', 'id = "a"\ncot = true\ncot_instruction = "Think ({{label_space}})."\ncot_followup = "So?"')
    prompt = load_prompt_set(write(tmp_path, body)).prompts[0]
    msgs = prompt.messages({"text": "x"}, reasoning="I think yes.")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[1]["content"] == "Review: x\nThink (yes, Yes, no)."
    assert msgs[2]["content"] == "I think yes." and msgs[3]["content"] == "So?"


def test_templates_render_in_a_sandbox_with_strict_undefined(tmp_path):
    with pytest.raises(PromptFileError, match=r"prompt 'a': template cannot be rendered \(SecurityError: access to attribute '__class__'"):
        load_prompt_set(write(tmp_path, MINIMAL.replace("{{text}}", "{{ text.__class__.__mro__ }}")))  # rendered once at load
    prompt = load_prompt_set(write(tmp_path, MINIMAL)).prompts[0]
    with pytest.raises(PromptFileError, match=r"\(UndefinedError: 'text' is undefined\)"):
        prompt.render_template({"sentence": "x"})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[[prompt]]\nid = "a"\ntemplate = "x"\nanswer_choices = { a = ["b"] \n', "invalid TOML"),
        (MINIMAL.replace("answer_choices", "answer_choice"), "unknown key 'answer_choice' (did you mean 'answer_choices'?)"),
        (MINIMAL + "[[prompt]]" + MINIMAL.split("[[prompt]]")[1], "duplicate id 'a'"),
        (MINIMAL.replace('template = "Review: {{text}}"', 'template = "{% if %}"'), "Jinja syntax error"),
        (MINIMAL.replace('["no"]', "[]"), "answer_choices.negative: must be a non-empty list"),
        (MINIMAL.replace('id = "a"\n', ""), "missing required key 'id'"),
        ("name = 'x'\n", "no [[prompt]] tables"),
        (MINIMAL.replace('id = "a"', 'id = "a"\ncot = true'), "cot = true needs a cot_instruction"),
    ],
    ids=["toml", "unknown-key", "duplicate", "jinja", "empty-words", "no-id", "no-prompts", "cot-without-instruction"],
)
def test_invalid_files_name_the_file_and_the_key(tmp_path, body, expected):
    path = write(tmp_path, body)
    with pytest.raises(PromptFileError) as err:
        load_prompt_set(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(PromptFileError, match="not found") as err:
        load_prompt_set(tmp_path / "nope.toml")
    assert err.value.exit_code == 2


def test_placeholders_and_classes_are_checked_against_the_dataset(tmp_path):
    ps = load_prompt_set(write(tmp_path, MINIMAL.replace("{{text}}", "{{sentence}}")))
    with pytest.raises(PromptFileError, match=r"placeholder \{\{sentence\}\}.*fields: text"):
        ps.check_dataset(SA_FIELDS, SA_CLASSES, "sst2")
    ps = load_prompt_set(write(tmp_path, MINIMAL.replace("negative", "neg")))
    with pytest.raises(PromptFileError, match="missing negative; not in the dataset: neg"):
        ps.check_dataset(SA_FIELDS, SA_CLASSES, "sst2")


def test_template_hash_changes_with_behaviour_not_with_notes(tmp_path):
    base = load_prompt_set(write(tmp_path, MINIMAL)).prompts[0]
    noted = load_prompt_set(write(tmp_path, MINIMAL.replace('id = "a"', 'id = "a"\nnote = "hello"'))).prompts[0]
    swapped = load_prompt_set(write(tmp_path, MINIMAL.replace('["yes", "Yes"]', '["Yes", "yes"]'))).prompts[0]
    assert base.template_sha256 == noted.template_sha256
    assert base.template_sha256 != swapped.template_sha256


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ('template = "Review: {{text}}"', 'template = "{{ text.__class__ }}"', "template cannot be rendered (SecurityError"),
        ('template = "Review: {{text}}"', 'template = "{{ text }}{{ 1 // 0 }}"', "template cannot be rendered (ZeroDivisionError"),
        ('template = "Review: {{text}}"', 'template = "{{ text }}"\ncot = true\ncot_instruction = "Think."\n'
                                          'cot_followup = "{{ label_space.__class__ }}"', "cot_followup cannot be rendered (SecurityError"),
    ],
    ids=["sandbox", "zero-division", "cot-followup"],
)
def test_every_prompt_is_rendered_before_any_model_runs(tmp_path, old, new, needle):
    """The syntax is fine; only rendering shows the problem, and loading renders every prompt."""
    with pytest.raises(PromptFileError) as err:
        load_prompt_set(write(tmp_path, MINIMAL.replace(old, new)))
    assert str(tmp_path) in str(err.value) and "prompt 'a'" in str(err.value) and needle in str(err.value)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('instruction = "Answer with {{ labels }}."', "instruction: uses {{labels}}, but only {{label_space}} is known there"),
        ('instruction = "{{ text }}"', "instruction: uses {{text}}"),
        ('template = "{{ text | nosuchfilter }}"', "No filter named 'nosuchfilter'"),
    ],
    ids=["undefined", "field-in-instruction", "unknown-filter"],
)
def test_names_that_cannot_exist_are_refused_when_loading(tmp_path, body, needle):
    text = MINIMAL.replace('template = "Review: {{text}}"', body if body.startswith("template") else f'template = "Review: {{{{text}}}}"\n{body}')
    with pytest.raises(PromptFileError, match=re.escape(needle)):
        load_prompt_set(write(tmp_path, text))
