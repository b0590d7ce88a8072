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
``holdout`` (:class:`Holdout`, only with ``select --holdout``)
    the chosen prompt and a baseline on held-out examples (``promptsel.selection.holdout``).
``sensitivity`` (:class:`Sensitivity`, only for a prompt set with variants)
    percentiles over the recommended prompt's family (``promptsel.selection.sensitivity``).
A variant's entry in ``prompts`` also has ``parent`` and ``axes`` (axis -> value).
``adaptive`` (:class:`Adaptive`; only in reports of ``--adaptive`` runs, absent otherwise)
    cells_scored, cells_total, rounds, stop_reason (``one_left`` | ``within_epsilon`` |
    ``exhausted`` | ``budget``), stop_meaning, guaranteed (false after a ``budget`` stop),
    epsilon, delta, max_inputs, round_size, inputs_read, inputs_total, common_inputs (the
    inputs every prompt was scored on: what label-free methods read), survivors (prompt
    indices), expected_cells (the estimate printed after the first round, live runs), tokens
    (live runs: requests, cached, tokens, evaluate, generate summed over the rounds' plans),
    order, bounds, guarantee. Each prompt's entry then has ``n`` (its inputs) and ``dropped``
    (the round after which it was dropped, or null), and its performance is over its own n.
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


class HoldoutBaseline(TypedDict):
    prompt: str
    how: str  # the best original on the choosing part, or named with --baseline
    choosing: float
    heldout: float
    heldout_interval: list[float]


class Holdout(TypedDict):
    fraction: float
    metric: str
    n_choosing: int
    n_heldout: int
    heldout_ids: list[str]
    chosen: str
    chosen_choosing: float
    chosen_heldout: float
    chosen_heldout_interval: list[float]
    baseline: HoldoutBaseline
    difference: float  # chosen minus baseline, held out
    difference_interval: list[float]  # paired bootstrap
    optimism: float  # chosen_choosing - chosen_heldout
    level: float
    resamples: int
    seed: int


class AdaptiveHoldoutBlock(Holdout, total=False):
    """The ``holdout`` block of an adaptive run (``selection.adaptive_holdout``): its optimism
    mixes the winner's curse and the adaptive stop, and says so."""

    optimism_meaning: str


class Sensitivity(TypedDict):
    prompt: str
    family: str
    n: int
    metric: str
    p5: float
    p50: float
    p95: float
    min: float
    max: float


class Adaptive(TypedDict):
    cells_scored: int
    cells_total: int
    rounds: int
    stop_reason: str
    stop_meaning: str
    guaranteed: bool
    epsilon: float
    delta: float
    max_inputs: int | None
    round_size: int
    inputs_read: int
    inputs_total: int
    common_inputs: int
    survivors: list[int]
    expected_cells: int | None
    tokens: dict[str, int] | None
    order: str
    bounds: str
    guarantee: str


class AdaptiveHoldout(Adaptive, total=False):
    """With ``--holdout`` (``selection.adaptive_holdout``): the rounds' cells, the held-out pass's
    cells (both in ``cells_scored``) and the held-out inputs (in ``cells_total``); for a prompt
    set with variants, why there is no sensitivity band."""

    search_cells: int
    heldout_cells: int
    heldout_inputs: int
    sensitivity: str
