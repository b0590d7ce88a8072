"""The grammar of ``promptsel expand``: the values each axis can take, read from TOML.

The shipped grammar is ``promptsel/assets/expand.toml`` (its comments say what each axis does).
Extensions in the same layout (a user's ``--grammar`` file, a plugin's ``register_prompt_grammar``
table) add values to it; an extension never removes one. Values are kept in the order they
were first given, so the same grammar and seed always give the same variants.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import tomllib

from ..errors import PromptFileError

#: The axes, in the order they are applied and recorded.
AXES = ("labels", "field_name", "casing", "separator", "answer_prefix", "spacing", "order", "instruction", "wrapping")
#: Axes whose values promptsel interprets (an extension may not invent one); the others are free text.
FIXED = {
    "casing": ("title", "lower", "upper"),
    "order": ("question first", "input first"),
    "instruction": ("after", "before"),
    "wrapping": ("chat", "raw"),
}
#: The ``[axes]`` lists of the grammar (labels and field names have their own tables).
LISTED = ("separator", "spacing", "answer_prefix", *FIXED)
TOP_KEYS = ("axes", "field_names", "task")
TASK_KEYS = ("name", "classes", "answer_prefixes", "verbalizers")


@dataclass
class Task:
    """A task's own values: found by its classes."""

    name: str
    classes: frozenset[str]
    answer_prefixes: list[str] = field(default_factory=list)
    #: name -> class -> label words
    verbalizers: dict[str, dict[str, list[str]]] = field(default_factory=dict)


@dataclass
class Grammar:
    axes: dict[str, list[str]] = field(default_factory=lambda: {name: [] for name in LISTED})
    field_names: dict[str, list[str]] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    #: Where each part came from, in order (shown by ``expand``).
    sources: list[str] = field(default_factory=list)

    def task_for(self, classes: Sequence[str]) -> Task | None:
        return next((t for t in self.tasks if t.classes == frozenset(classes)), None)

    def names_for(self, field_name: str) -> list[str]:
        return self.field_names.get(field_name) or [field_name.replace("_", " ").capitalize()]

    def extend(self, data: Mapping[str, Any], source: str) -> None:
        """Add the values of ``data`` (the grammar's TOML layout); errors name ``source``."""
        _keys(source, "top level", data, TOP_KEYS)
        axes = _table(source, "axes", data.get("axes", {}))
        _keys(source, "axes", axes, LISTED)
        for name, values in axes.items():
            values = _strings(source, f"axes.{name}", values)
            unknown = [v for v in values if name in FIXED and v not in FIXED[name]]
            if unknown:
                raise PromptFileError(f"{source}: axes.{name}: {unknown[0]!r} is not one of {', '.join(FIXED[name])} "
                                      "(promptsel interprets this axis's values itself).")
            _add(self.axes[name], values)
        for name, values in _table(source, "field_names", data.get("field_names", {})).items():
            _add(self.field_names.setdefault(str(name), []), _strings(source, f"field_names.{name}", values))
        tasks = data.get("task", [])
        if not isinstance(tasks, list):
            raise PromptFileError(f"{source}: task: must be an array of [[task]] tables.")
        for i, entry in enumerate(tasks):
            self._add_task(source, f"task[{i}]", _table(source, f"task[{i}]", entry))
        self.sources.append(source)

    def _add_task(self, source: str, where: str, entry: Mapping[str, Any]) -> None:
        _keys(source, where, entry, TASK_KEYS)
        if not isinstance(entry.get("name"), str) or not entry["name"]:
            raise PromptFileError(f"{source}: {where}: needs a name.")
        classes = frozenset(_strings(source, f"{where}.classes", entry.get("classes", [])))
        task = next((t for t in self.tasks if t.name == entry["name"]), None)
        if task is None:
            if not classes:
                raise PromptFileError(f"{source}: {where}: a new task needs its classes.")
            task = Task(entry["name"], classes)
            self.tasks.append(task)
        elif classes and classes != task.classes:
            raise PromptFileError(f"{source}: {where}: task {task.name!r} has classes {', '.join(sorted(task.classes))}, "
                                  f"not {', '.join(sorted(classes))}.")
        _add(task.answer_prefixes, _strings(source, f"{where}.answer_prefixes", entry.get("answer_prefixes", [])))
        verbalizers = entry.get("verbalizers", [])
        if not isinstance(verbalizers, list):
            raise PromptFileError(f"{source}: {where}.verbalizers: must be a list of {{ name = ..., words = {{ class = [...] }} }}.")
        for j, item in enumerate(verbalizers):
            at = f"{where}.verbalizers[{j}]"
            item = _table(source, at, item)
            _keys(source, at, item, ("name", "words"))
            words = _table(source, f"{at}.words", item.get("words"))
            if not isinstance(item.get("name"), str) or set(words) != task.classes:
                raise PromptFileError(f"{source}: {at}: needs a name and label words for exactly the classes "
                                      f"{', '.join(sorted(task.classes))}.")
            task.verbalizers.setdefault(item["name"], {c: _strings(source, f"{at}.words.{c}", w, nonempty=True)
                                                       for c, w in words.items()})


def _add(target: list[str], values: Sequence[str]) -> None:
    target.extend(v for v in values if v not in target)


def _keys(source: str, where: str, table: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise PromptFileError(f"{source}: {where}: unknown key {key!r}{hint}; allowed: {', '.join(allowed)}.")


def _table(source: str, where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PromptFileError(f"{source}: {where}: must be a table.")
    return value


def _strings(source: str, where: str, value: Any, nonempty: bool = False) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or (nonempty and not value):
        raise PromptFileError(f"{source}: {where}: must be a list of non-empty strings.")
    return list(value)


def read_grammar_file(path: str | Path) -> dict[str, Any]:
    """A grammar extension file, parsed (one-line errors for a missing file or bad TOML)."""
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"Grammar file not found: {path}.", hint="Pass an existing .toml file to --grammar.")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PromptFileError(f"{path}: invalid TOML: {exc}.", hint="Fix the syntax at that line.") from exc


def shipped_grammar() -> Grammar:
    """The grammar promptsel ships (``promptsel/assets/expand.toml``)."""
    grammar = Grammar()
    text = resources.files("promptsel.assets").joinpath("expand.toml").read_text(encoding="utf-8")
    grammar.extend(tomllib.loads(text), "promptsel/assets/expand.toml")
    return grammar
