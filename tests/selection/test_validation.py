"""validate takes select's dataset options and reads a local file the way select does."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptsel.errors import PromptFileError, UsageError
from promptsel.selection.validation import validate_prompt_set, validation_target
from tests.paths import ROOT

SA = ROOT / "prompts" / "sa.toml"


@pytest.fixture
def reviews_csv(tmp_path) -> Path:
    """The README's example: the text in column 'review', the label in 'sentiment'."""
    path = tmp_path / "my.csv"
    path.write_text("review,sentiment,stars\nGreat fun.,positive,5\nDull.,negative,1\n")
    return path


def test_a_local_csv_with_field_and_label_options(reviews_csv):
    target = validation_target(str(reviews_csv), fields={"text": "review"}, label_field="sentiment")
    assert target.classes == ("negative", "positive") and "text" in target.fields
    assert len(validate_prompt_set(SA, target).prompts) == 13
    with pytest.raises(UsageError, match="has no 'label' column"):
        validation_target(str(reviews_csv))  # without the options: what select says too
    with pytest.raises(PromptFileError, match="has fields: review, stars"):
        validate_prompt_set(SA, validation_target(str(reviews_csv), label_field="sentiment"))


def test_classes_name_the_order_and_a_missing_class_is_caught(reviews_csv):
    target = validation_target(str(reviews_csv), fields={"text": "review"}, label_field="sentiment",
                               classes=["positive", "negative"])
    assert target.classes == ("positive", "negative")
    nli = validation_target(str(reviews_csv), fields={"premise": "review", "hypothesis": "stars"}, label_field="sentiment")
    with pytest.raises(PromptFileError, match="do not match"):
        validate_prompt_set(ROOT / "prompts" / "nli.toml", nli)


def test_a_named_dataset_with_a_split(monkeypatch):
    target = validation_target("wanli", split="test")
    assert (target.split, target.fields) == ("test", ("premise", "hypothesis"))
    assert validation_target("cb").split == "validation"


@pytest.mark.parametrize(
    ("dataset", "options", "needle"),
    [
        ("sst2", {"fields": {"text": "review"}}, "--field applies to local data files"),
        ("sst2", {"label_field": "sentiment"}, "--label-field applies to local data files"),
        ("sst2", {"classes": ["a", "b"]}, "--classes applies to local data files"),
        ("{csv}", {"split": "test"}, "--split applies to named datasets"),
        ("{csv}", {"classes": ["positive"], "label_field": "sentiment"}, "--classes needs at least two classes"),
    ],
    ids=["field", "label-field", "classes", "split", "one-class"],
)
def test_options_that_do_not_apply_are_refused(reviews_csv, dataset, options, needle):
    with pytest.raises(UsageError, match=needle):
        validation_target(dataset.replace("{csv}", str(reviews_csv)), **options)
