"""Prompt sets written as TOML, in the layout :func:`promptsel.model.prompts.load_prompt_set`
reads (``promptsel expand`` writes its variants so).

The standard library reads TOML but does not write it, so this module writes the little TOML a
prompt set needs: strings, booleans, arrays of strings and inline tables of those. Every string
is a basic string with every character TOML does not allow raw escaped, so a template holding
quotes, backslashes, braces or control characters reads back exactly as it was (the tests
round-trip such texts through ``tomllib``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .prompts import DEFAULTS, OPTION_KEYS, Prompt

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
#: TOML's short escapes; every other control character (and DEL) becomes \\uXXXX.
_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def string(text: str) -> str:
    """``text`` as a TOML basic string."""
    out = []
    for ch in text:
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def key(name: str) -> str:
    """A table key, quoted unless it is a bare key."""
    return name if _BARE_KEY.fullmatch(name) else string(name)


def value(v: Any) -> str:
    """A string, boolean, list of those or table of those as a TOML value."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return string(v)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{key(str(k))} = {value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, Sequence):
        return "[" + ", ".join(value(x) for x in v) + "]"
    raise TypeError(f"no TOML value for {type(v).__name__}")


def prompt_table(prompt: Prompt) -> list[str]:
    """One ``[[prompt]]`` table: the prompt's own keys, then every option that differs from the
    format's default (so the table means the same in any file, whatever its ``[defaults]``)."""
    lines = ["[[prompt]]", f"id = {string(prompt.id)}"]
    if prompt.parent is not None:
        lines.append(f"parent = {string(prompt.parent)}")
    if prompt.axes:
        lines.append(f"axes = {value(prompt.axes)}")
    lines.append(f"template = {string(prompt.template)}")
    lines.append(f"answer_choices = {value(prompt.answer_choices)}")
    for name in OPTION_KEYS:
        option = getattr(prompt, name)
        if option != DEFAULTS[name]:
            lines.append(f"{name} = {value(option)}")
    return lines


def prompt_set_toml(prompts: Sequence[Prompt], *, name: str, task: str | None = None, description: str | None = None,
                    header: Sequence[str] = ()) -> str:
    """A whole prompt-set file: ``header`` as comments, the set's keys, then one table per prompt."""
    lines = [f"# {line}".rstrip() for line in header]
    lines.append(f"name = {string(name)}")
    if task is not None:
        lines.append(f"task = {string(task)}")
    if description is not None:
        lines.append(f"description = {string(description)}")
    for prompt in prompts:
        lines += ["", *prompt_table(prompt)]
    return "\n".join(lines) + "\n"
