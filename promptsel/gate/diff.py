"""What changed in a prompt's definition, as short lines a reviewer reads."""

from __future__ import annotations

import json
from typing import Any

_FIELD_ORDER = ("template", "answer_choices", "instruction", "system", "chat", "cot", "cot_instruction", "cot_followup",
                "target_delimiter")


def describe_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One short line per changed field of a prompt definition, e.g.
    ``answer_choices.positive: [yes, Yes] → [no, No]`` or ``template: "…below positive?" → "…below negative?"``."""
    keys = sorted(set(old) | set(new), key=lambda k: (_FIELD_ORDER.index(k) if k in _FIELD_ORDER else len(_FIELD_ORDER), k))
    out = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if key == "answer_choices":
            out += _choice_changes(a or [], b or [])
        elif isinstance(a, str) and isinstance(b, str):
            left, right = text_change(a, b)
            out.append(f"{key}: {left} → {right}")
        elif isinstance(a, str) or isinstance(b, str):  # a text set or cleared (CoT switched on)
            left, right = text_change(a or "", b or "")
            out.append(f"{key}: {left if a is not None else '(none)'} → {right if b is not None else '(none)'}")
        else:
            out.append(f"{key}: {json.dumps(a, ensure_ascii=False)} → {json.dumps(b, ensure_ascii=False)}")
    return out


def _choice_changes(old: list[list[Any]], new: list[list[Any]]) -> list[str]:
    a, b = dict((c, w) for c, w in old), dict((c, w) for c, w in new)
    out = []
    for cls in [*a, *(c for c in b if c not in a)]:
        if cls not in b:
            out.append(f"answer_choices: class {cls} removed")
        elif cls not in a:
            out.append(f"answer_choices: class {cls} added [{', '.join(b[cls])}]")
        elif a[cls] != b[cls]:
            out.append(f"answer_choices.{cls}: [{', '.join(a[cls])}] → [{', '.join(b[cls])}]")
    if not out:  # same words, other class order: label_space in the instruction changes
        out.append(f"answer_choices: class order {', '.join(a)} → {', '.join(b)}")
    return out


def text_change(a: str, b: str, context: int = 12, limit: int = 60) -> tuple[str, str]:
    """The part of two texts that differs, widened to whole words and a little context, quoted
    with newlines shown as ``\\n``: ``("…below positive?", "…below negative?")``."""
    p = 0
    while p < min(len(a), len(b)) and a[p] == b[p]:
        p += 1
    s = 0
    while s < min(len(a), len(b)) - p and a[-1 - s] == b[-1 - s]:
        s += 1
    start = a.rfind(" ", 0, p - context) + 1 if p > context else 0

    def cut(t: str) -> str:
        stop = len(t) - s
        space = t.find(" ", stop + context)
        end = len(t) if stop + context >= len(t) or space < 0 else space
        middle = t[start:end]
        if len(middle) > limit:
            middle = middle[: limit // 2] + "…" + middle[-limit // 2:]
        shown = ("…" if start > 0 else "") + middle + ("…" if end < len(t) else "")
        return '"' + shown.replace("\n", "\\n") + '"'
    return cut(a), cut(b)
