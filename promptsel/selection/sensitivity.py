"""The sensitivity band of the recommended prompt: how much a harmless-looking edit of its format
can cost.

The recommended prompt's family is its original (the prompt without a parent that it is, or
that it was expanded from) and every variant of that original (``promptsel expand``). The band
is the 5th, 50th and 95th percentile of the family's performances (numpy's linear
interpolation), measured where everything else is: the whole sample, or the choosing part with
``--holdout``. Only a prompt set with variants has one, and only with labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..model.prompts import PromptSet

PERCENTILES = (5, 50, 95)


def sensitivity_band(prompt_set: PromptSet | None, performance: Sequence[float | None], recommended: str,
                     metric: str) -> dict[str, Any] | None:
    """The report's ``sensitivity`` block, or None when there is no family or no performance."""
    if prompt_set is None or not prompt_set.has_variants or any(p is None for p in performance):
        return None
    prompt = next(p for p in prompt_set.prompts if p.id == recommended)
    root = prompt.parent or prompt.id
    family = [i for i, p in enumerate(prompt_set.prompts) if root in (p.id, p.parent)]
    if len(family) < 2:
        return None
    values = np.asarray([performance[i] for i in family], dtype=np.float64)
    bands = np.percentile(values, PERCENTILES)
    return {
        "prompt": recommended, "family": root, "n": len(family), "metric": metric,
        **{f"p{q}": float(v) for q, v in zip(PERCENTILES, bands)},
        "min": float(values.min()), "max": float(values.max()),
    }
