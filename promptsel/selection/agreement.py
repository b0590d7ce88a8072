"""How far the methods of one run agree: the report's ``agreement``."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.stats import spearmanr

from ..model import metrics
from .report_schema import Agreement


def method_agreement(method_scores: Mapping[str, np.ndarray]) -> Agreement:
    """How often two methods choose the same prompt (each picking at random among its tied top
    prompts, so 1.0 means both have the same single choice) and Spearman's rho between their
    scores (None where a side is constant)."""
    names = list(method_scores)
    tops = [set(metrics.choose(method_scores[m])[1]) for m in names]
    keys = [metrics.tie_key(method_scores[m]) for m in names]
    # A method always agrees with itself, ties or not: the diagonal is 1.
    same = [[1.0 if i == j else len(a & b) / (len(a) * len(b)) for j, b in enumerate(tops)] for i, a in enumerate(tops)]
    rho: list[list[float | None]] = []
    for ka in keys:
        row: list[float | None] = []
        for kb in keys:
            if np.unique(ka).size < 2 or np.unique(kb).size < 2:
                row.append(None)
            else:
                value = float(spearmanr(ka, kb).statistic)
                row.append(None if np.isnan(value) else value)
        rho.append(row)
    return Agreement(methods=names, same_choice=same, spearman=rho)
