"""Prompt sets in TOML: loading, validation against a dataset, and rendering.

A prompt set is a file with set-wide defaults and a list of ``[[prompt]]`` tables. Templates are
Jinja2 (the PromptSource convention), rendered in a sandbox with strict undefined variables so
a misspelt placeholder is an error, never an empty string.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import jinja2
import jinja2.meta
import tomllib
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import PromptFileError

_ENV = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
)

#: Keys a prompt may set; the set-wide ``[defaults]`` table may set all but the first three.
PROMPT_KEYS = ("id", "template", "answer_choices")
OPTION_KEYS = (
    "cot", "chat", "system", "instruction", "cot_instruction", "cot_followup", "target_delimiter", "note",
)
SET_KEYS = ("name", "task", "description", "defaults", "prompt")
#: Keys only a variant has (``promptsel expand`` writes them): the id of the prompt it was made
#: from, and the value it took on each axis. They describe where a prompt came from, never what
#: the model sees.
VARIANT_KEYS = ("parent", "axes")

DEFAULTS: dict[str, Any] = {
    "cot": False,
    "chat": True,
    "system": None,
    "instruction": None,
    "cot_instruction": None,
    "cot_followup": None,
    # Text between the rendered prompt and a label word; chat models answer right after the
    # assistant header, so no delimiter there.
    "target_delimiter": None,
    "note": None,
}


@functools.lru_cache(maxsize=1024)
def _compiled(text: str) -> jinja2.Template:
    """A template compiled once (a scoring pass renders each one for every input)."""
    return _ENV.from_string(text)


@functools.lru_cache(maxsize=1024)
def _rendered_extra(text: str, label_space: str) -> str:
    """An instruction rendered for a prompt (it reads only the label space, so once per prompt)."""
    return _compiled(text).render(label_space=label_space)


@dataclass(frozen=True)
class Prompt:
    id: str
    template: str
    answer_choices: dict[str, list[str]]  # class -> label words (verbalizers)
    cot: bool = False
    chat: bool = True
    system: str | None = None
    instruction: str | None = None
    cot_instruction: str | None = None
    cot_followup: str | None = None
    target_delimiter: str | None = None
    note: str | None = None
    #: The prompt this one is a variant of (``promptsel expand``); None for an original.
    parent: str | None = None
    #: Axis name -> the value this variant took on it (None for an original).
    axes: dict[str, str] | None = None

    #: Fields that name or describe a prompt without changing what the model sees.
    NOT_BEHAVIOUR: ClassVar[tuple[str, ...]] = ("id", "note", "parent", "axes")

    @property
    def delimiter(self) -> str:
        if self.target_delimiter is not None:
            return self.target_delimiter
        return "" if self.chat else " "

    @property
    def label_words(self) -> list[str]:
        return [word for words in self.answer_choices.values() for word in words]

    @property
    def label_space(self) -> str:
        return ", ".join(self.label_words)

    @cached_property
    def template_sha256(self) -> str:
        """Hash of everything that defines the prompt's behaviour (not its note)."""
        data = {k: v for k, v in asdict(self).items() if k not in self.NOT_BEHAVIOUR}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def placeholders(self) -> set[str]:
        return jinja2.meta.find_undeclared_variables(_ENV.parse(self.template))

    def _render(self, key: str, source: str, context: Mapping[str, Any]) -> str:
        # A template can fail only when rendered (a sandbox violation, an undefined name, a
        # division by zero): that is the prompt's fault, said in one line naming it.
        try:
            return _compiled(source).render(**context)
        except Exception as exc:
            detail = str(exc).splitlines()[0].rstrip(".") if str(exc) else ""
            raise PromptFileError(f"prompt {self.id!r}: {key} cannot be rendered ({type(exc).__name__}: {detail}).",
                                  hint="Fix the template; `promptsel validate PROMPTS --dataset NAME` checks it without a model.") from None

    def render_template(self, example: Mapping[str, Any]) -> str:
        """The template instantiated with one input: the raw text SPELL scores."""
        return self._render("template", self.template, example)

    def answer_instruction(self) -> str | None:
        """The answer instruction as the model reads it (its label space filled in)."""
        return self._extra(self.instruction)

    def _extra(self, text: str | None, key: str = "instruction") -> str | None:
        if not text:
            return None
        try:  # once per prompt: it reads only the label space
            return _rendered_extra(text, self.label_space)
        except Exception:
            return self._render(key, text, {"label_space": self.label_space})  # raises, naming the prompt

    def user_turn(self, example: Mapping[str, Any]) -> str:
        """The first user turn: template, then the answer (or reasoning) instruction."""
        body = self.render_template(example)
        extra = self._extra(*((self.cot_instruction, "cot_instruction") if self.cot else (self.instruction, "instruction")))
        return f"{body}\n{extra}" if extra else body

    def messages(self, example: Mapping[str, Any], reasoning: str | None = None) -> list[dict[str, str]]:
        """Chat messages; with ``reasoning`` (CoT), the follow-up turn that asks for the label."""
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        msgs.append({"role": "user", "content": self.user_turn(example)})
        if reasoning is not None:
            msgs.append({"role": "assistant", "content": reasoning})
            follow = self._extra(self.cot_followup, "cot_followup") or self._extra(self.instruction) or ""
            msgs.append({"role": "user", "content": follow})
        return msgs

    def raw_text(self, example: Mapping[str, Any], reasoning: str | None = None) -> str:
        """The prompt as plain text for models used without a chat template."""
        text = "\n\n".join(m["content"] for m in self.messages(example, reasoning) if m["role"] != "system")
        if self.cot and reasoning is None:  # first CoT turn: the model writes its reasoning next
            return text
        return text + "\nAnswer:"


@dataclass(frozen=True)
class PromptSet:
    path: Path
    name: str
    prompts: list[Prompt]
    task: str | None = None
    description: str | None = None
    sha256: str = ""

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.prompts]

    @property
    def has_variants(self) -> bool:
        return any(p.parent is not None for p in self.prompts)

    @cached_property
    def classes(self) -> set[str]:
        return {c for p in self.prompts for c in p.answer_choices}

    def check_dataset(self, fields: Sequence[str], classes: Sequence[str], dataset: str) -> None:
        """Fail before any model runs if placeholders or classes do not fit the dataset."""
        for p in self.prompts:
            unknown = sorted(p.placeholders() - set(fields))
            if unknown:
                close = difflib.get_close_matches(unknown[0], list(fields), n=1)
                hint = f" Did you mean {{{{{close[0]}}}}}?" if close else ""
                raise PromptFileError(
                    f"{self.path}: prompt {p.id!r} uses placeholder {{{{{unknown[0]}}}}} but dataset "
                    f"{dataset!r} has fields: {', '.join(fields)}.{hint}"
                )
            mine, theirs = set(p.answer_choices), set(classes)
            if mine != theirs:
                parts = []
                if theirs - mine:
                    parts.append(f"missing {', '.join(sorted(theirs - mine))}")
                if mine - theirs:
                    parts.append(f"not in the dataset: {', '.join(sorted(mine - theirs))}")
                raise PromptFileError(
                    f"{self.path}: prompt {p.id!r} answer_choices classes do not match dataset "
                    f"{dataset!r} labels ({'; '.join(parts)}). Its labels are: {', '.join(classes)}."
                )

    def check_render(self, fields: Sequence[str]) -> None:
        """Render every prompt (each turn, CoT's follow-up too) on a sample example built from
        ``fields``: a template that fails only when rendered fails here, before any model runs
        (:func:`load_prompt_set` calls it with the templates' own placeholders)."""
        # Long enough for templates that slice or index their input (a few words per field).
        example = {f: f"A sample {f}: the quick brown fox jumps over the lazy dog, twice over, and then rests." for f in fields}
        for p in self.prompts:
            try:
                p.raw_text(example)
                if p.cot:
                    p.raw_text(example, reasoning="sample reasoning")
            except PromptFileError as exc:
                raise PromptFileError(f"{self.path}: {exc.message}", hint=exc.hint) from None


def _fail(path: Path, where: str, message: str) -> PromptFileError:
    return PromptFileError(f"{path}: {where}: {message}")


def _check_keys(path: Path, where: str, table: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _fail(path, where, f"unknown key {key!r}{hint}; allowed: {', '.join(allowed)}")


def _parse_choices(path: Path, where: str, value: Any) -> dict[str, list[str]]:
    # Accept {class = ["w1", "w2"]}, {class = "w"}; class order is the file's order.
    if not isinstance(value, Mapping) or not value:
        raise _fail(path, where, "answer_choices must be a table of class = [label words]")
    choices: dict[str, list[str]] = {}
    for cls, words in value.items():
        words = [words] if isinstance(words, str) else words
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w for w in words):
            raise _fail(path, f"{where}: answer_choices.{cls}", "must be a non-empty list of non-empty strings")
        choices[str(cls)] = list(words)
    return choices


def _variant_keys(path: Path, where: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """``parent`` and ``axes`` of a variant, checked (the parent's existence is checked once all
    ids are known)."""
    out: dict[str, Any] = {}
    if "parent" in entry:
        if not isinstance(entry["parent"], str) or not entry["parent"]:
            raise _fail(path, f"{where}: parent", "must be the id of another prompt")
        out["parent"] = entry["parent"]
    if "axes" in entry:
        axes = entry["axes"]
        if not isinstance(axes, Mapping) or not all(isinstance(v, str) for v in axes.values()):
            raise _fail(path, f"{where}: axes", "must be a table of axis = \"value\" strings")
        if "parent" not in entry:
            raise _fail(path, f"{where}: axes", "only a variant (a prompt with a parent) has axes")
        out["axes"] = {str(k): v for k, v in axes.items()}
    return out


def load_prompt_set(path: str | Path) -> PromptSet:
    """Read and validate a prompt-set TOML file (file and key are named in every error)."""
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"Prompt file not found: {path}.", hint="Pass an existing .toml file to --prompts.")
    raw_bytes = path.read_bytes()
    try:
        data = tomllib.loads(raw_bytes.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PromptFileError(f"{path}: invalid TOML: {exc}.", hint="Fix the syntax at that line.") from exc
    _check_keys(path, "top level", data, SET_KEYS)
    defaults = dict(DEFAULTS)
    set_defaults = data.get("defaults", {})
    if not isinstance(set_defaults, Mapping):
        raise _fail(path, "defaults", "must be a table")
    _check_keys(path, "defaults", set_defaults, OPTION_KEYS)
    defaults.update(set_defaults)
    entries = data.get("prompt")
    if not isinstance(entries, list) or not entries:
        raise _fail(path, "prompt", "no [[prompt]] tables; add at least one with id, template and answer_choices")
    prompts: list[Prompt] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"prompt[{i}]" + (f" ({entry.get('id')!r})" if isinstance(entry, Mapping) and "id" in entry else "")
        if not isinstance(entry, Mapping):
            raise _fail(path, where, "must be a table")
        _check_keys(path, where, entry, PROMPT_KEYS + OPTION_KEYS + VARIANT_KEYS)
        for key in PROMPT_KEYS:
            if key not in entry:
                raise _fail(path, where, f"missing required key {key!r}")
        pid, template = entry["id"], entry["template"]
        if not isinstance(pid, str) or not pid:
            raise _fail(path, where, "id must be a non-empty string")
        if pid in seen:
            raise _fail(path, where, f"duplicate id {pid!r}; ids must be unique")
        seen.add(pid)
        if not isinstance(template, str) or not template.strip():
            raise _fail(path, where, "template must be a non-empty string")
        options = {k: entry.get(k, defaults[k]) for k in OPTION_KEYS}
        for key in ("cot", "chat"):
            if not isinstance(options[key], bool):
                raise _fail(path, f"{where}: {key}", "must be true or false")
        for key in OPTION_KEYS[2:]:
            if options[key] is not None and not isinstance(options[key], str):
                raise _fail(path, f"{where}: {key}", "must be a string")
        prompt = Prompt(id=pid, template=template, answer_choices=_parse_choices(path, where, entry["answer_choices"]), **options,
                        **_variant_keys(path, where, entry))
        for key, text in (("template", prompt.template), *((k, options[k]) for k in ("instruction", "cot_instruction", "cot_followup"))):
            if text is None:
                continue
            try:
                _ENV.from_string(text)  # compiled, not only parsed: an unknown filter fails here
            except jinja2.TemplateSyntaxError as exc:
                raise _fail(path, f"{where}: {key}", f"Jinja syntax error at line {exc.lineno}: {exc.message}") from exc
        for key in ("instruction", "cot_instruction", "cot_followup"):
            text = options[key]
            names = jinja2.meta.find_undeclared_variables(_ENV.parse(text)) if text else set()
            unknown = sorted(names - {"label_space", *_ENV.globals})  # Jinja's own globals (range, ...) are known
            if unknown:
                raise _fail(path, f"{where}: {key}", f"uses {{{{{unknown[0]}}}}}, but only {{{{label_space}}}} is known there "
                                                     "(the input's fields belong in the template)")
        if prompt.cot and not prompt.cot_instruction:
            raise _fail(path, where, "cot = true needs a cot_instruction (in the prompt or [defaults])")
        prompts.append(prompt)
    for i, prompt in enumerate(prompts):
        if prompt.parent is not None and (prompt.parent not in seen or prompt.parent == prompt.id):
            raise _fail(path, f"prompt[{i}] ({prompt.id!r}): parent",
                        f"{prompt.parent!r} is not another prompt of this set; a variant's parent must be in the same file "
                        "(promptsel expand writes the originals too)")
    prompt_set = PromptSet(
        path=path,
        name=str(data.get("name") or path.stem),
        prompts=prompts,
        task=data.get("task"),
        description=data.get("description"),
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
    )
    # Render once with the placeholders the templates use: a template that can only fail when
    # rendered (a sandbox violation, a division by zero) fails here, whatever the command.
    prompt_set.check_render(sorted(set().union(*(p.placeholders() for p in prompts))))
    return prompt_set
