"""The recommendation's fields in the report, as TypedDicts (all JSON-able: floats are plain
floats, intervals ``[low, high]``).

``recommendation`` (:class:`Recommendation`)
    prompt, rule (``"measured"`` with labels, else the label-free rule's name), basis
    (``"labels"`` | ``"label-free"``), metric, performance, performance_interval,
    expected_performance (mean over ``tied``), tied, chance, level, resamples, seed,
    indistinguishable (list of :class:`Alternative`), stability (:class:`Stability`),
    label_free (with labels and a label-free rule's scores: what that rule would have chosen),
    calibration (``none`` | ``cc`` | ``pmi`` | ``cbm``), calibration_prior (class -> the
    recommended prompt's prior that the calibration divides out, when calibrated).
``warnings`` (list of :class:`Warning_`)
    code, severity (``"warning"`` | ``"info"``), message (plain text, one or two sentences),
    plus the code's own fields (``promptsel.selection.warnings.WARNING_CODES``, and the codes
    methods add through ``Selector.report_warnings``).
``prompt_stats`` (dict prompt id -> :class:`PromptStats`)
    performance_interval, lead_interval, indistinguishable, pick_share, top_class, top_share:
    to be merged into the report's per-prompt entries.
``agreement`` (:class:`Agreement`)
    methods, same_choice (probability that two methods choose the same prompt, each picking at
    random among its tied top prompts), spearman (rank correlation of the two methods' scores).
``examples`` (``promptsel.selection.examples.behind_the_choice``)
    recommended, rivals (prompt, role: the runner-up or the label-free pick, disagree: examples
    where its answer differs, and with labels recommended_right / rival_right among those),
    disagreements, shown, examples (the first 20: sample_id, text, gold, predictions: prompt ->
    class and probability), templates (prompt -> template text, when a prompt file was run),
    confusion (with labels: classes, matrix gold × predicted, class_accuracy).
"""

from __future__ import annotations

from typing import Any, TypedDict


class Alternative(TypedDict):
    prompt: str
    performance: float
    lead: float  # recommended minus this prompt, on the full sample
    lead_interval: list[float]


class Stability(TypedDict):
    share: float | None  # share of resamples in which the rule picks the recommended prompt
    cover: list[str]  # fewest prompts whose shares reach cover_level
    cover_level: float
    estimated: bool
    how: str  # how it was estimated, or why it was not


class Recommendation(TypedDict, total=False):
    prompt: str
    rule: str
    basis: str
    metric: str | None
    performance: float | None
    performance_interval: list[float] | None
    expected_performance: float | None
    tied: list[str]
    chance: float | None
    level: float
    resamples: int
    seed: int
    indistinguishable: list[Alternative]
    stability: Stability
    label_free: dict[str, Any] | None
    calibration: str
    calibration_prior: dict[str, float] | None


class Warning_(TypedDict, total=False):
    code: str
    severity: str
    message: str


class PromptStats(TypedDict):
    performance_interval: list[float] | None
    lead_interval: list[float] | None
    indistinguishable: bool | None
    pick_share: float | None
    top_class: str
    top_share: float


class Agreement(TypedDict):
    methods: list[str]
    same_choice: list[list[float]]
    spearman: list[list[float | None]]
