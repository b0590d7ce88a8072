"""``promptsel validate PROMPTS --dataset D``: what a prompt set is checked against.

``validate`` takes the dataset options ``select`` takes (``--field``, ``--label-field``,
``--classes`` for a local file; ``--split`` for a named dataset) and reads a local file the way
``select`` does, so a prompt set that validates is one ``select`` accepts. Options that do not
apply to the kind of dataset given are refused rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..model.data import check_classes, load_local
from ..model.prompts import PromptSet, load_prompt_set


@dataclass(frozen=True)
class ValidationTarget:
    """The fields and ordered classes a prompt set must fit, and what they came from."""

    name: str
    fields: tuple[str, ...]
    classes: tuple[str, ...]
    split: str | None = None
    source: str = ""


def validation_target(
    dataset: str,
    *,
    fields: Mapping[str, str] | None = None,
    label_field: str = "label",
    classes: Sequence[str] | None = None,
    split: str | None = None,
) -> ValidationTarget:
    """Resolve ``--dataset`` with select's options: a named dataset gives its spec's fields and
    classes (nothing is loaded); a local file is read exactly as ``select`` reads it."""
    from .inputs import refuse_inapplicable, resolve_dataset_spec

    spec = resolve_dataset_spec(dataset)
    refuse_inapplicable(spec, dataset, fields=fields, label_field=label_field, classes=classes, split=split)
    if spec is not None:
        return ValidationTarget(spec.name, spec.fields, spec.classes, split or spec.eval_split, f"named dataset {spec.name!r}")
    local = load_local(dataset, label_field=label_field, classes=check_classes(classes) if classes else None,
                       rename=dict(fields or {}))
    return ValidationTarget(local.name, local.fields, local.classes, None, f"file {dataset}")


def validate_prompt_set(prompts: str | Path, target: ValidationTarget | None = None) -> PromptSet:
    """Load a prompt set (loading renders every prompt once on a sample input) and, given a
    target, check its placeholders and classes against it; no model runs. Errors are
    PromptFileErrors."""
    prompt_set = load_prompt_set(prompts)
    if target is not None:
        prompt_set.check_dataset(target.fields, target.classes, target.name)
    return prompt_set
