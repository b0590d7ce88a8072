"""Prompt variants along named axes (``promptsel expand``): the same question, written differently.

Each variant of a prompt draws one value per axis (:data:`promptsel.model.grammar.AXES`) and
records the values it took, and its parent's id, so that a report can say which edits cost
accuracy. What an axis can change is what the prompt format expresses:

* ``labels``: the ``answer_choices`` (a verbalizer of the prompt's task, matched by its classes);
* ``field_name``, ``casing``, ``separator``, ``spacing``, ``order``: the template's text around
  its placeholders. They need a template whose placeholders are plain ``{{ field }}`` and whose
  text holds no other Jinja; for any other template they record ``n/a``. ``order`` needs one
  field with the question on one side of it;
* ``answer_prefix``: a last line of the user turn ("Sentiment:"), appended to the answer
  instruction (the CoT follow-up for CoT prompts). The raw wrapping already ends in the format's
  own "Answer:", so there it is ``n/a``;
* ``instruction``: ``before`` moves the answer instruction, rendered with the variant's label
  space, in front of the template (non-CoT prompts with an instruction);
* ``wrapping``: the ``chat`` flag.

Left out, because the format cannot say them: a prefix inside the assistant's turn (chat models
answer right after the assistant header), and the raw wrapping's "Answer:" line, which is fixed.

Draws are balanced and seeded: for each axis, each variant takes the next value of a shuffled
cycle through its values, so that ``n`` variants of a prompt show every value of an axis with at
most as many values as ``n``. The generator is seeded with the seed and the parent's id, so a
prompt's variants do not depend on the other prompts of the set. A variant that reads the same as
its parent or as an earlier prompt (same model input, ``template_sha256``) is drawn again.
Grammar text is written into templates as literal text (every ``{`` escaped), so a value holding
braces or quotes reaches the model as written.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from ..errors import UsageError
from .grammar import AXES, FIXED, Grammar
from .prompts import Prompt

AS_WRITTEN = "as written"
NONE = "none"
#: An axis that cannot change this prompt (the reason is in the module docstring).
NOT_APPLICABLE = "n/a"
#: Draws tried per wanted variant before giving up on finding more distinct ones.
TRIES_PER_VARIANT = 20

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_JINJA = re.compile(r"\{[{%#]")


def literal(text: str) -> str:
    """``text`` as Jinja source that renders to exactly ``text`` (every ``{`` becomes an
    expression that prints one, so no tag can start)."""
    return text.replace("{", "{{ '{' }}")


@dataclass(frozen=True)
class Structure:
    """A template split at its placeholders: ``texts[0] field[0] texts[1] ... texts[k]``; None
    where the template is more than plain text and placeholders."""

    texts: tuple[str, ...]
    fields: tuple[str, ...]

    @classmethod
    def of(cls, template: str) -> Structure | None:
        parts = _PLACEHOLDER.split(template)
        texts, fields = tuple(parts[0::2]), tuple(parts[1::2])
        if not fields or any(_JINJA.search(t) for t in texts):
            return None
        return cls(texts, fields)

    @property
    def question_side(self) -> str | None:
        """Which side of its one field the text is on; None when that is not one side."""
        if len(self.fields) != 1:
            return None
        before, after = (t.strip() for t in self.texts)
        if before and not after:
            return "question first"
        if after and not before:
            return "input first"
        return None


def _cased(text: str, casing: str) -> str:
    if casing == "lower":
        return text.lower()
    if casing == "upper":
        return text.upper()
    return text[:1].upper() + text[1:]


def axis_values(prompt: Prompt, grammar: Grammar, axes: Sequence[str]) -> dict[str, list[str]]:
    """The values each axis can take for ``prompt``; one value for an axis not in ``axes``:
    the prompt's own, or for casing and separator the grammar's first (used only when another
    axis adds a name or a prefix)."""
    own = own_values(prompt, grammar)
    structure = Structure.of(prompt.template)
    task = grammar.task_for(list(prompt.answer_choices))
    prefixes = [*grammar.axes["answer_prefix"], *(task.answer_prefixes if task else ())]
    values: dict[str, list[str]] = {
        "labels": [own["labels"], *(name for name in (task.verbalizers if task else {}) if name != own["labels"])],
        "field_name": [NONE, *_field_name_values(structure, grammar)] if structure else [NOT_APPLICABLE],
        "casing": list(FIXED["casing"]),
        "separator": list(grammar.axes["separator"]),
        "answer_prefix": [NONE, *dict.fromkeys(prefixes)],
        "spacing": [AS_WRITTEN, *grammar.axes["spacing"]] if structure else [NOT_APPLICABLE],
        "order": list(FIXED["order"]) if own["order"] != NOT_APPLICABLE else [NOT_APPLICABLE],
        "instruction": list(FIXED["instruction"]) if own["instruction"] != NOT_APPLICABLE else [NOT_APPLICABLE],
        "wrapping": list(FIXED["wrapping"]),
    }
    unchanged = {a: v[:1] if a in ("casing", "separator") else [own[a]] for a, v in values.items()}
    return {a: v if a in axes else unchanged[a] for a, v in values.items()}


def own_values(prompt: Prompt, grammar: Grammar) -> dict[str, str]:
    """The value each axis has in ``prompt`` as written."""
    structure = Structure.of(prompt.template)
    task = grammar.task_for(list(prompt.answer_choices))
    labels = next((name for name, words in (task.verbalizers.items() if task else ()) if words == prompt.answer_choices),
                  AS_WRITTEN)
    return {
        "labels": labels,
        "field_name": NONE if structure else NOT_APPLICABLE,
        "casing": NOT_APPLICABLE,
        "separator": NOT_APPLICABLE,
        "answer_prefix": NONE,
        "spacing": AS_WRITTEN if structure else NOT_APPLICABLE,
        "order": (structure.question_side if structure else None) or NOT_APPLICABLE,
        "instruction": "after" if prompt.instruction and not prompt.cot else NOT_APPLICABLE,
        "wrapping": "chat" if prompt.chat else "raw",
    }


def _field_name_values(structure: Structure | None, grammar: Grammar) -> list[str]:
    """Spellings of the template's field names, one value per position in the grammar's lists
    (several fields: their names joined by ``/``)."""
    if structure is None:
        return []
    lists = [grammar.names_for(f) for f in structure.fields]
    return list(dict.fromkeys("/".join(names[i % len(names)] for names in lists) for i in range(max(map(len, lists)))))


def apply(prompt: Prompt, draw: Mapping[str, str], grammar: Grammar) -> tuple[Prompt, dict[str, str]]:
    """``prompt`` rewritten with one value per axis; the values that took effect (``n/a`` for an
    axis that cannot change this variant)."""
    took = dict(draw)
    task = grammar.task_for(list(prompt.answer_choices))
    choices = prompt.answer_choices
    if task is not None and draw["labels"] in task.verbalizers:
        choices = {c: list(task.verbalizers[draw["labels"]][c]) for c in prompt.answer_choices}
    chat = draw["wrapping"] == "chat"
    out = replace(prompt, answer_choices=choices, chat=chat)

    prefix = draw["answer_prefix"]
    if prefix not in (NONE, NOT_APPLICABLE) and not chat:
        took["answer_prefix"] = prefix = NOT_APPLICABLE
    named = draw["field_name"] not in (NONE, NOT_APPLICABLE)
    if not named and prefix in (NONE, NOT_APPLICABLE):
        took["casing"] = took["separator"] = NOT_APPLICABLE

    template = _template(prompt.template, draw, named)
    instruction = prompt.instruction
    if draw["instruction"] == "before":
        rendered = out.answer_instruction() or ""
        joiner = "\n" if draw["spacing"] in (AS_WRITTEN, NOT_APPLICABLE) else draw["spacing"]
        template, instruction = literal(rendered) + joiner + template, None
    if prefix not in (NONE, NOT_APPLICABLE):
        line = literal(_cased(prefix, draw["casing"]) + draw["separator"].rstrip())
        if prompt.cot:
            followup = prompt.cot_followup or prompt.instruction
            out = replace(out, cot_followup=f"{followup}\n{line}" if followup else line)
        else:
            instruction = f"{instruction}\n{line}" if instruction else line
    out = replace(out, template=template, instruction=instruction)
    return out, took


def _template(template: str, draw: Mapping[str, str], named: bool) -> str:
    """The template with its fields named, its spacing and its order as drawn."""
    structure = Structure.of(template)
    if structure is None:
        return template
    names = draw["field_name"].split("/") if named else []
    fields = []
    for i, f in enumerate(structure.fields):
        head = literal(_cased(names[i], draw["casing"]) + draw["separator"]) if named else ""
        fields.append(head + "{{" + f + "}}")
    spacing = draw["spacing"]
    reorder = structure.question_side is not None and draw["order"] != structure.question_side
    if spacing == AS_WRITTEN and not reorder:  # each placeholder replaced in place
        return "".join(t + (fields[i] if i < len(fields) else "") for i, t in enumerate(structure.texts))
    if reorder:
        question = (structure.texts[0] + structure.texts[1]).strip()
        joiner = spacing if spacing != AS_WRITTEN else _joiner(structure)
        pieces = [fields[0], question] if draw["order"] == "input first" else [question, fields[0]]
        return joiner.join(pieces)
    pieces = [p for i, t in enumerate(structure.texts) for p in (t.strip(), fields[i] if i < len(fields) else "") if p]
    return spacing.join(pieces)


def _joiner(structure: Structure) -> str:
    """The whitespace that separated the question from the field (a space when there was none)."""
    before, after = structure.texts
    gap = before[len(before.rstrip()):] if before.strip() else after[: len(after) - len(after.lstrip())]
    return gap or " "


def expand(prompts: Sequence[Prompt], grammar: Grammar, *, axes: Iterable[str] = AXES, n: int = 10,
           seed: int = 0) -> list[Prompt]:
    """The originals followed by up to ``n`` distinct variants of each, in the originals' order.
    Variants of a variant are not made: a prompt that has a parent is kept as it is."""
    axes = list(axes)
    unknown = [a for a in axes if a not in AXES]
    if unknown:
        raise UsageError(f"Unknown axis {unknown[0]!r}; the axes are: {', '.join(AXES)}.")
    taken_ids = {p.id for p in prompts}
    seen = {p.template_sha256 for p in prompts}
    out = list(prompts)
    for parent in prompts:
        if parent.parent is not None:
            continue
        values = axis_values(parent, grammar, axes)
        rng = random.Random(f"{seed}/{parent.id}")
        cycles = {a: _Cycle(v, rng) for a, v in values.items()}
        made = 0
        for _ in range(n * TRIES_PER_VARIANT):
            if made >= n:
                break
            draw = {a: cycles[a].next() for a in AXES}
            variant, took = apply(parent, draw, grammar)
            if variant.template_sha256 in seen:
                continue
            seen.add(variant.template_sha256)
            made += 1
            vid = _new_id(parent.id, made, taken_ids)
            out.append(replace(variant, id=vid, parent=parent.id, axes={a: took[a] for a in AXES}, note=None))
    return out


class _Cycle:
    """An axis's values in shuffled rounds: every value once per round."""

    def __init__(self, values: Sequence[str], rng: random.Random) -> None:
        self.values, self.rng = list(values), rng
        self.queue: list[str] = []

    def next(self) -> str:
        if not self.queue:
            self.queue = self.rng.sample(self.values, len(self.values))
        return self.queue.pop()


def _new_id(parent: str, k: int, taken: set[str]) -> str:
    """``PARENT.vNNN``, numbered on past the ids the set already has (an expanded file expanded again)."""
    while f"{parent}.v{k:03d}" in taken:
        k += 1
    taken.add(f"{parent}.v{k:03d}")
    return f"{parent}.v{k:03d}"
