"""FUTE's own report warnings, given through ``Selector.report_warnings``: a task embedding
that did not learn (the 95 % interval of its held-out loss gain over the constant predictor
reaches 0) makes the method's ranking noise, and an embedder with a known premise caveat
(``Embedder.premise_caveat``) makes it no evidence; the report says so at the top. U taken from
the evaluation inputs departs from the paper, and the report says that too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .options import UNLABELED_EVAL

#: The code, and its fields: method, parts [{part, ...that part's diagnostics}].
NOT_LEARNED = "fute_not_learned"
#: U is the evaluation task's own inputs (``--unlabeled eval``); fields: method.
IN_DOMAIN = "fute_in_domain"


def in_domain_warnings(section: Mapping[str, Any], method: str) -> list[dict[str, Any]]:
    """``fute_in_domain`` (info) when U was the evaluation inputs with their labels dropped."""
    if (section.get("unlabeled") or {}).get("name") != UNLABELED_EVAL:
        return []
    return [{"code": IN_DOMAIN, "severity": "info", "method": method,
             "message": f"{method}: U is the evaluation inputs with their labels dropped, so it is in-domain, unlike the FUTE "
                        "paper, which keeps every dataset of the task out of U."}]


#: The code, and its fields: method, caveat.
FAILS_PREMISE = "fute_fails_premise"


def fails_premise_warning(caveat: str | None, method: str) -> list[dict[str, Any]]:
    """``fute_fails_premise`` for a method whose embedder states a premise caveat."""
    if not caveat:
        return []
    return [{"code": FAILS_PREMISE, "message": f"{method}: {caveat}.", "method": method, "caveat": caveat}]


def not_learned_warnings(diagnostics: Mapping[str, Any] | None, method: str) -> list[dict[str, Any]]:
    """``fute_not_learned`` from one FUTE method's diagnostics, ``{"dte": {"learned": False,
    ...}, "mte": {prompt id: {...}}}`` (``Fute.diagnostics()[method]``). Every entry with
    ``learned`` false is reported with its other fields (held-out loss, chance loss, epochs,
    ...) as they are."""
    if not diagnostics:
        return []
    parts: list[dict[str, Any]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            if node.get("learned") is False:
                parts.append({"part": path, **{k: v for k, v in node.items() if k != "learned" and _plain(v)}})
                return
            for key, value in node.items():
                walk(value, f"{path}:{key}" if path else str(key))
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(diagnostics, "")
    if not parts:
        return []
    dte = any(p["part"].startswith("dte") for p in parts)
    mtes = [p for p in parts if not p["part"].startswith("dte")]
    what = []
    if dte:
        what.append("the dataset's task embedding (DTE) did not learn: every prompt is compared with an untrained vector")
    if mtes:
        what.append(f"{len(mtes)} prompt embedding(s) (MTE) did not learn: {', '.join(p['part'] for p in mtes[:6])}")
    return [{"code": NOT_LEARNED, "message": f"{method}: " + "; ".join(what) + ". Its ranking is not evidence.",
             "method": method, "parts": parts}]


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))
