"""The recommendation: one prompt to use, how sure that is, and warnings when the data cannot tell.

Pure functions over a ScoreTable and the methods' scores. ``decide`` puts them together into
the report fields documented below; the pieces are public for the report, the lock and tests.

With labels, the recommendation is the best measured prompt. A seeded, paired bootstrap over
the examples (the same resampled examples for every prompt) gives each prompt's performance
interval and the interval of the recommended prompt's lead over every other prompt; a prompt
whose lead interval contains 0 is *indistinguishable* from the recommendation. Percentile
intervals, no correction for the many comparisons: "indistinguishable" is the lenient reading
(an honest list of alternatives), not a test that the recommendation is better.

Without labels, a named label-free rule (a method or ``consensus``) recommends its top prompt,
and its *stability* is the share of bootstrap resamples of the inputs in which the same rule,
rerun on the resampled table, picks the same prompt, with the fewest prompts that cover 90 %
of the resampled picks. The default rule depends on the calibration (``DEFAULT_RULES``).
Which methods can be rerun that way is a property of the method (``stability_reason``):

* per-input statistics (MI, GlobalE, LocalE, SPELL, consensus): yes.
* ZPS: yes. A prompt's score depends on the other prompts (the pseudo-label ensemble), but for a
  fixed prompt set it is still a function of the inputs alone, so resampling the inputs and
  rerunning the whole ensemble (its k-means filter included) is exactly the variation of its
  choice over samples. It says nothing about what editing *another* prompt would do, which is
  why ``promptsel lock`` gives ZPS no per-prompt score interval.
* FUTE: no. Its scores come from task embeddings trained on U and the train split; the
  evaluation inputs never enter, so resampling them cannot change its choice. Its real
  variation (seeds, U, training) would need retraining and is not estimated.
* Self-Select: no. It asks the model about the prompt texts; the inputs never enter either.

A method declares this as a class attribute, ``bootstrap: ClassVar[str | None]`` on its
Selector: ``None`` for "rerun me on resampled inputs", or the reason why not. Methods without
the attribute are treated by what they need (table arrays only: rerun; a backend: not).

Ties. When several prompts tie at the top of a ranking, the reported performance is the
expected performance of a uniformly random pick among them (their mean), the same averaging
over tied orders that NDCG uses; so reordering the prompt file cannot change a number.
Bootstrap shares split a tied resample equally among its tied prompts, and the stability of a
tied choice is the mean share of the tied prompts.

Report fields (all JSON-able; floats are plain floats, intervals ``[low, high]``):

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
    plus the code's own fields (see ``WARNING_CODES``).
``prompt_stats`` (dict prompt id -> :class:`PromptStats`)
    performance_interval, lead_interval, indistinguishable, pick_share, top_class, top_share:
    to be merged into the report's per-prompt entries.
``agreement`` (:class:`Agreement`)
    methods, same_choice (probability that two methods choose the same prompt, each picking at
    random among its tied top prompts), spearman (rank correlation of the two methods' scores).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
from scipy.stats import spearmanr

from ..model import metrics
from ..model.scoretable import ScoreTable

if TYPE_CHECKING:
    from ..selector import SelectionContext

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
#: The label-free rule used when the user names none, per calibration, chosen by
#: ``bench/bench_consensus.py`` (bench/RESULTS.md, "Label-free rules and consensus"). On raw
#: scores a prompt's label bias dominates ZPS (and MI on the fixture), and the consensus of MI,
#: GlobalE, LocalE and SPELL did best over eight settings. After CBM, ZPS's pseudo-labels
#: become good and ZPS-Log did best over five settings. After CC or PMI (three datasets each,
#: SmolLM2) hardly any rule beat a random pick; MI, best under PMI and UPS's choice with
#: calibration, is the least bad.
DEFAULT_RULES = {"none": "consensus", "cbm": "zps-log", "cc": "mi", "pmi": "mi"}
DEFAULT_RULE = DEFAULT_RULES["none"]
#: A prompt predicting one class for at least this share of inputs has collapsed.
COLLAPSE_SHARE = 0.95
#: Label-free stability below this: on a fresh sample of the same size the rule would more
#: likely than not pick another prompt, so the choice is more noise than signal.
UNSTABLE_SHARE = 0.5
#: The bootstrap shares the "cover" set of a stability must reach.
COVER_SHARE = 0.9
MEASURED = "measured"

BACKEND_REASON = (
    "it asks the model about the prompts instead of scoring the evaluation inputs, so resampling "
    "the inputs cannot move its choice"
)

WARNING_CODES = {
    "at_chance": "the best prompt's performance interval includes the chance level (fields: chance, interval)",
    "collapsed": "prompts that predict one class for >= 95 % of inputs (fields: prompts [{prompt, class, share}], recommended)",
    "tied_top": "prompts tied at the top of a method's ranking (fields: method, prompts, expected_performance)",
    "no_labels_unstable": "label-free choice stability below 0.5 (fields: rule, share, threshold, cover)",
    "labels_unstable": "with labels: the best prompt measures best in under half the resamples (fields: share, threshold, cover)",
    "stability_unknown": "the label-free rule's stability cannot be estimated (fields: rule, reason)",
    "label_free_disagrees": "with labels: the label-free rule's choice is measurably worse than the best (fields: rule, prompt, lead_interval)",
    "fute_not_learned": "a FUTE task embedding did not learn (fields: method, parts [{part, ...diagnostics}])",
    "calibrated": "info: scores were calibrated; the numbers hold only with the same calibration at inference (fields: calibration)",
    "calibration_helps": "info, with labels and no calibration: CBM would measure better than the best raw prompt's interval (fields: prompt, performance, raw_interval)",
}


# --- schema ------------------------------------------------------------------------------

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


# --- ties --------------------------------------------------------------------------------

def expected_choice(scores: np.ndarray, perf: np.ndarray | None) -> dict[str, Any]:
    """A method's choice as the report states it, independent of the prompt order.

    ``chosen`` is the first of the prompts tied at the top (a name to show), ``tied`` all of
    them; ``performance`` is the mean performance over ``tied`` (what a uniformly random pick
    among them earns, the tie-averaging NDCG uses) and ``rate`` that over the best prompt's.
    Indices refer to the prompts' positions; performance fields are None without ``perf``.
    """
    chosen, tied = metrics.choose(scores)
    out: dict[str, Any] = {"chosen": chosen, "tied": tied, "performance": None, "rate": None}
    if perf is not None:
        perf = np.asarray(perf, dtype=np.float64)
        # Sorted before summing: the mean is then bitwise the same in any prompt order.
        expected = float(np.sort(perf[tied]).mean())
        out["performance"] = expected
        out["rate"] = metrics.performance_rate(expected, perf)
    return out


def win_shares(draws: np.ndarray) -> np.ndarray:
    """For score draws [B, P]: the share of draws each prompt wins, a tie split equally."""
    draws = np.atleast_2d(np.asarray(draws, dtype=np.float64))
    shares = np.zeros(draws.shape[1])
    for row in draws:
        _, tied = metrics.choose(row)
        shares[tied] += 1.0 / len(tied)
    return shares / draws.shape[0]


def choice_share(shares: np.ndarray, tied: Sequence[int]) -> float:
    """Stability of a choice that may be a tie: the mean share of the tied prompts, i.e. the
    chance that a resample's pick equals a random pick among the full sample's tied prompts
    (the share of the one prompt when there is no tie)."""
    return float(np.sort(np.asarray(shares)[list(tied)]).mean())


def cover_set(shares: np.ndarray, level: float = COVER_SHARE) -> list[int]:
    """The fewest prompts whose shares sum to at least ``level`` (largest shares first; among
    equal shares, file order)."""
    order = np.argsort(-np.asarray(shares), kind="stable")
    out, total = [], 0.0
    for i in order:
        if total >= level - 1e-12 or shares[i] <= 0:
            break
        out.append(int(i))
        total += float(shares[i])
    return out


# --- bootstrap ---------------------------------------------------------------------------

def resample_indices(n: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """[resamples, n] example indices drawn with replacement (seeded; the same stream as the
    lock's bootstrap)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(resamples, n))


def resample_weights(picks: np.ndarray, n: int) -> np.ndarray:
    """How often each example is drawn in each resample, [B, n]."""
    weights = np.zeros((picks.shape[0], n))
    for b, pick in enumerate(picks):
        weights[b] = np.bincount(pick, minlength=n)
    return weights


def bootstrap_performance(
    predictions: np.ndarray, labels: np.ndarray, weights: np.ndarray, *,
    metric: str = "accuracy", n_classes: int | None = None,
) -> np.ndarray:
    """Each prompt's performance on each resample, [B, P], from predictions [P, N], labels [N]
    and resample weights [B, N] (``resample_weights``). Paired: every prompt is scored on the
    same resampled examples. A row of ones gives ``metrics.performance`` exactly.

    Macro-F1 per class is 2 TP / (2 TP + FP + FN) = 2 TP / (predicted + actual), 0 when the
    class is neither predicted nor present (sklearn's ``zero_division=0``), averaged over all
    ``n_classes`` classes as ``metrics.performance`` does.
    """
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    weights = np.asarray(weights, dtype=np.float64)
    totals = weights.sum(axis=1)  # [B]
    if metric == "accuracy":
        correct = (predictions == labels).astype(np.float64)  # [P, N]
        return (weights @ correct.T) / totals[:, None]
    if metric == "macro_f1":
        if n_classes is None:
            raise ValueError("macro_f1 needs n_classes.")
        f1 = np.zeros((weights.shape[0], predictions.shape[0]))
        for c in range(n_classes):
            actual = weights @ (labels == c).astype(np.float64)  # [B]
            predicted = weights @ (predictions == c).T.astype(np.float64)  # [B, P]
            hits = weights @ ((predictions == c) & (labels == c)).T.astype(np.float64)  # [B, P]
            denominator = predicted + actual[:, None]
            f1 += np.divide(2 * hits, denominator, out=np.zeros_like(hits), where=denominator > 0)
        return f1 / n_classes
    # Unknown metrics fail the same way metrics.performance does.
    return metrics.performance(predictions, labels, metric=metric, n_classes=n_classes)


def percentile_interval(draws: np.ndarray, level: float = DEFAULT_LEVEL) -> np.ndarray:
    """Central percentile interval of ``draws`` along axis 0: shape draws.shape[1:] + (2,)."""
    tail = (1.0 - level) / 2 * 100
    return np.moveaxis(np.percentile(draws, [tail, 100 - tail], axis=0), 0, -1)


def resampled_table(table: ScoreTable, pick: np.ndarray) -> ScoreTable:
    """``table`` restricted to the examples ``pick`` (with repeats), labels dropped."""
    # A shallow copy with sliced arrays: the rows are already validated and normalised, and
    # rebuilding through ScoreTable() would renormalise them, half the cost of a rerun.
    sub = copy.copy(table)
    sub.class_logprobs = table.class_logprobs[:, pick]
    sub.prompt_nll = None if table.prompt_nll is None else table.prompt_nll[:, pick]
    sub.labels = None
    sub.sample_ids = [table.sample_ids[i] for i in pick]
    return sub


def rerun_draws(table: ScoreTable, rescore: Callable[[ScoreTable], np.ndarray], picks: np.ndarray) -> np.ndarray:
    """A rule's scores on every resample of the inputs, [B, P]."""
    return np.array([np.asarray(rescore(resampled_table(table, pick)), dtype=np.float64) for pick in picks])


# --- methods -------------------------------------------------------------------------------

def stability_reason(method: str) -> str | None:
    """Why a method's choice cannot be bootstrapped over the inputs (``None``: it can)."""
    from ..plugins import registries
    from ..selector import NEEDS_CLASS_LOGPROBS, NEEDS_PROMPT_NLL

    cls = registries().selectors.get(method)
    if cls.bootstrap:  # the inputs never enter its score (FUTE, Self-Select): it says why
        return str(cls.bootstrap)
    if not set(cls.needs) <= {NEEDS_CLASS_LOGPROBS, NEEDS_PROMPT_NLL}:
        return BACKEND_REASON  # a plugin that asks the backend but did not say why
    return None  # a function of the table: rerun it on resampled inputs (ZPS and consensus too)


def rescorer(method: str, context: SelectionContext | None = None, **options: Any) -> Callable[[ScoreTable], np.ndarray]:
    """``table -> scores`` for a registered method (to rerun it on resampled tables)."""
    from ..plugins import registries
    from ..selector import SelectionContext

    selector = registries().selectors.get(method)(**options)
    ctx = context or SelectionContext()
    return lambda table: selector.score(table, ctx)


def default_rule(calibration: str = "none") -> str:
    """The label-free rule ``--recommend`` defaults to under a calibration."""
    return DEFAULT_RULES.get(calibration, DEFAULT_RULE)


# --- chance and collapse -------------------------------------------------------------------

def chance_level(labels: np.ndarray, n_classes: int, metric: str = "accuracy") -> float:
    """What a predictor that ignores the input earns on this sample.

    Accuracy: the majority-class rate (always answering the majority class beats any random
    guessing). Macro-F1: 1 / n_classes, the expected macro-F1 of guessing with the sample's
    class frequencies (each class's F1 is then its frequency); a constant answer earns less.
    """
    if metric == "macro_f1":
        return 1.0 / n_classes
    counts = np.bincount(np.asarray(labels), minlength=n_classes)
    return float(counts.max() / counts.sum())


def class_shares(predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """Share of inputs each prompt assigns to each class, [P, C]."""
    predictions = np.asarray(predictions)
    return (predictions[..., None] == np.arange(n_classes)).mean(axis=1)


# --- the recommendation ------------------------------------------------------------------

def recommend_measured(
    table: ScoreTable, *, metric: str = "accuracy", resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL, seed: int = 0, picks: np.ndarray | None = None,
) -> tuple[Recommendation, dict[str, PromptStats]]:
    """With labels: the best measured prompt, its interval, its lead over every other prompt and
    the stability of "best" over resamples of the examples."""
    if table.labels is None:
        raise ValueError("recommend_measured needs a table with labels.")
    n_classes = len(table.class_names)
    ids = table.prompt_ids
    perf = metrics.performance(table.predictions, table.labels, metric=metric, n_classes=n_classes)
    if picks is None:
        picks = resample_indices(table.n_examples, resamples, seed)
    draws = bootstrap_performance(table.predictions, table.labels, resample_weights(picks, table.n_examples),
                                  metric=metric, n_classes=n_classes)
    intervals = percentile_interval(draws, level)  # [P, 2]
    best, tied = metrics.choose(perf)
    leads = draws[:, [best]] - draws  # [B, P]
    lead_intervals = percentile_interval(leads, level)
    shares = win_shares(draws)
    alternatives: list[Alternative] = []
    indistinguishable = np.zeros(len(ids), dtype=bool)
    for q in range(len(ids)):
        lo, hi = lead_intervals[q]
        if q != best and lo <= 0.0 <= hi:
            indistinguishable[q] = True
            alternatives.append(Alternative(prompt=ids[q], performance=float(perf[q]), lead=float(perf[best] - perf[q]),
                                            lead_interval=[float(lo), float(hi)]))
    alternatives.sort(key=lambda a: -a["performance"])
    cover = cover_set(shares)
    rec = Recommendation(
        prompt=ids[best], rule=MEASURED, basis="labels", metric=metric,
        performance=float(perf[best]), performance_interval=[float(x) for x in intervals[best]],
        expected_performance=float(perf[best]), tied=[ids[i] for i in tied],
        chance=chance_level(table.labels, n_classes, metric), level=level, resamples=int(picks.shape[0]), seed=seed,
        indistinguishable=alternatives,
        stability=Stability(share=choice_share(shares, tied), cover=[ids[i] for i in cover], cover_level=COVER_SHARE,
                            estimated=True, how="share of resamples of the examples in which this prompt measures best"),
        label_free=None,
    )
    stats = _prompt_stats(table, intervals, lead_intervals, indistinguishable, shares, best)
    return rec, stats


def recommend_label_free(
    table: ScoreTable, rule: str, scores: np.ndarray, *,
    rescore: Callable[[ScoreTable], np.ndarray] | None = None, reason: str | None = None,
    resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL, seed: int = 0, picks: np.ndarray | None = None,
) -> tuple[Recommendation, dict[str, PromptStats]]:
    """Without labels: ``rule``'s top prompt (``scores`` on the full table) and the stability of
    that choice, from rerunning ``rescore`` on resamples of the inputs. Without ``rescore`` the
    stability is not estimated and ``reason`` says why."""
    ids = table.prompt_ids
    best, tied = metrics.choose(scores)
    shares = None
    if rescore is not None:
        if picks is None:
            picks = resample_indices(table.n_examples, resamples, seed)
        shares = win_shares(rerun_draws(table, rescore, picks))
        stability = Stability(share=choice_share(shares, tied), cover=[ids[i] for i in cover_set(shares)], cover_level=COVER_SHARE,
                              estimated=True, how=f"share of resamples of the inputs in which {rule}, rerun, picks this prompt")
    else:
        stability = Stability(share=None, cover=[], cover_level=COVER_SHARE, estimated=False,
                              how=reason or "not estimated")
    rec = Recommendation(
        prompt=ids[best], rule=rule, basis="label-free", metric=None, performance=None, performance_interval=None,
        expected_performance=None, tied=[ids[i] for i in tied], chance=None, level=level,
        resamples=0 if picks is None or rescore is None else int(picks.shape[0]), seed=seed,
        indistinguishable=[], stability=stability, label_free=None,
    )
    stats = _prompt_stats(table, None, None, None, shares, best)
    return rec, stats


def _prompt_stats(table: ScoreTable, intervals, lead_intervals, indistinguishable, shares, best: int) -> dict[str, PromptStats]:
    top = class_shares(table.predictions, len(table.class_names))
    out: dict[str, PromptStats] = {}
    for p, pid in enumerate(table.prompt_ids):
        out[pid] = PromptStats(
            performance_interval=None if intervals is None else [float(x) for x in intervals[p]],
            lead_interval=None if lead_intervals is None or p == best else [float(x) for x in lead_intervals[p]],
            indistinguishable=None if indistinguishable is None else bool(indistinguishable[p]),
            pick_share=None if shares is None else float(shares[p]),
            top_class=table.class_names[int(top[p].argmax())],
            top_share=float(top[p].max()),
        )
    return out


# --- warnings ------------------------------------------------------------------------------

def _warning(code: str, message: str, severity: str = "warning", **fields: Any) -> Warning_:
    return Warning_(code=code, severity=severity, message=message, **fields)  # type: ignore[typeddict-item]


def _g(x: float) -> str:
    return f"{x:.3f}"


def at_chance_warning(rec: Recommendation) -> Warning_ | None:
    """``at_chance``: the recommended prompt's interval reaches down to the chance level."""
    interval, chance = rec.get("performance_interval"), rec.get("chance")
    if interval is None or chance is None or interval[0] > chance:
        return None
    return _warning(
        "at_chance",
        f"The best prompt ({rec['prompt']}, {rec['metric']} {_g(rec['performance'] or 0)}, "
        f"{rec['level']:.0%} interval {_g(interval[0])}–{_g(interval[1])}) is not distinguishable from chance "
        f"({_g(chance)}, what ignoring the input earns on this sample): the model may not do this task at all.",
        chance=chance, interval=interval, prompt=rec["prompt"],
    )


def collapsed_warning(table: ScoreTable, recommended: str | None = None, threshold: float = COLLAPSE_SHARE) -> Warning_ | None:
    """``collapsed``: prompts that give one class to at least ``threshold`` of the inputs."""
    shares = class_shares(table.predictions, len(table.class_names))
    hits = []
    for p, pid in enumerate(table.prompt_ids):
        c = int(shares[p].argmax())
        if shares[p, c] >= threshold:
            hits.append({"prompt": pid, "class": table.class_names[c], "share": float(shares[p, c])})
    if not hits:
        return None
    named = ", ".join(f"{h['prompt']} ({h['class']} {h['share']:.0%})" for h in hits[:8])
    more = f" and {len(hits) - 8} more" if len(hits) > 8 else ""
    rec_hit = recommended is not None and any(h["prompt"] == recommended for h in hits)
    lead = f"The recommended prompt {recommended} answers one class for almost every input. " if rec_hit else ""
    return _warning(
        "collapsed",
        f"{lead}{len(hits)} of {table.n_prompts} prompts predict one class for at least {threshold:.0%} of inputs: "
        f"{named}{more}. Their label-free scores measure the collapse, not the task.",
        prompts=hits, recommended=rec_hit, threshold=threshold,
    )


def tied_top_warnings(ids: Sequence[str], method_scores: Mapping[str, np.ndarray], perf: np.ndarray | None) -> list[Warning_]:
    """``tied_top``: one per method whose top score is shared by several prompts."""
    out = []
    for method, scores in method_scores.items():
        choice = expected_choice(scores, perf)
        tied = choice["tied"]
        if len(tied) < 2:
            continue
        names = [ids[i] for i in tied]
        every = " (every prompt: it does not rank them at all)" if len(tied) == len(ids) else ""
        expected = choice["performance"]
        tail = (f" Reported performance is the mean over them, {_g(expected)}, what a random pick among them earns."
                if expected is not None else " Any of them is its choice.")
        out.append(_warning(
            "tied_top",
            f"{method} ties {len(tied)} prompts at the top{every}: {', '.join(names[:8])}{' …' if len(names) > 8 else ''}.{tail}",
            method=method, prompts=names, expected_performance=expected,
        ))
    return out


def stability_warnings(rec: Recommendation, threshold: float = UNSTABLE_SHARE) -> list[Warning_]:
    """``no_labels_unstable`` and ``stability_unknown`` for a label-free recommendation,
    ``labels_unstable`` for a measured one."""
    st = rec["stability"]
    if rec["basis"] != "label-free":
        share = st["share"]
        if share is None or share >= threshold:
            return []
        return [_warning(
            "labels_unstable",
            f"{rec['prompt']} measures best in only {share:.0%} of resamples of the examples; "
            f"{len(st['cover'])} prompts share {st['cover_level']:.0%} of the wins "
            f"({', '.join(st['cover'][:8])}{' …' if len(st['cover']) > 8 else ''}). Label more examples to separate them.",
            share=share, threshold=threshold, cover=st["cover"],
        )]
    if not st["estimated"]:
        return [_warning("stability_unknown",
                         f"How stable {rec['rule']}'s choice is cannot be estimated: {st['how']}. "
                         "Label the sample (even 50 examples) to measure the prompts instead.",
                         severity="info", rule=rec["rule"], reason=st["how"])]
    share = st["share"] or 0.0
    if share >= threshold:
        return []
    return [_warning(
        "no_labels_unstable",
        f"{rec['rule']} picks {rec['prompt']} in only {share:.0%} of resamples of the inputs; "
        f"{len(st['cover'])} prompts are needed to cover {st['cover_level']:.0%} of its choices "
        f"({', '.join(st['cover'][:8])}{' …' if len(st['cover']) > 8 else ''}). Treat these as candidates, not a choice.",
        rule=rec["rule"], share=share, threshold=threshold, cover=st["cover"],
    )]


def label_free_check(rec: Recommendation, table: ScoreTable, rule: str, scores: np.ndarray,
                     stats: Mapping[str, PromptStats]) -> tuple[dict[str, Any], Warning_ | None]:
    """With labels: what the label-free ``rule`` would have chosen, and ``label_free_disagrees``
    when its (tie-expected) choice is measurably worse than the recommendation."""
    ids = table.prompt_ids
    assert table.labels is not None
    perf = metrics.performance(table.predictions, table.labels, metric=rec["metric"] or "accuracy",
                               n_classes=len(table.class_names))
    choice = expected_choice(scores, perf)
    tied = [ids[i] for i in choice["tied"]]
    close = {rec["prompt"], *(a["prompt"] for a in rec["indistinguishable"])}
    worse = [p for p in tied if p not in close]
    summary = {"rule": rule, "prompt": ids[choice["chosen"]], "tied": tied, "performance": choice["performance"],
               "rate": choice["rate"], "agrees": not worse}
    if not worse:
        return summary, None
    lead = stats[worse[0]]["lead_interval"]
    return summary, _warning(
        "label_free_disagrees",
        f"Without labels, {rule} would pick {', '.join(worse)} ({rec['metric']} {_g(choice['performance'] or 0)}), "
        f"measurably worse than {rec['prompt']} (lead interval {_g(lead[0])}–{_g(lead[1])}): "
        "on this model and data, label-free selection is not a substitute for labels.",
        rule=rule, prompts=worse, lead_interval=lead,
    )


def calibration_hint(table: ScoreTable, rec: Recommendation) -> Warning_ | None:
    """``calibration_helps``: CBM costs no model call, so with labels the report can say when it
    would measure better than the raw best prompt's whole interval. A hint, not a default: CBM
    helped every balanced binary set measured and hurt CB (a rare class; bench/RESULTS.md)."""
    from .calibration import calibrate

    assert table.labels is not None and rec["performance_interval"] is not None
    calibrated = calibrate(table, "cbm")
    perf = metrics.performance(calibrated.predictions, table.labels, metric=rec["metric"] or "accuracy",
                               n_classes=len(table.class_names))
    best, _ = metrics.choose(perf)
    high = rec["performance_interval"][1]
    if perf[best] <= high:
        return None
    return _warning(
        "calibration_helps",
        f"With --calibrate cbm, {table.prompt_ids[best]} would measure {_g(float(perf[best]))}, above the whole interval "
        f"of the best raw prompt ({_g(rec['performance_interval'][0])}–{_g(high)}). It is free (no model call); "
        "using the prompt then means dividing its class probabilities by its prior.",
        severity="info", prompt=table.prompt_ids[best], performance=float(perf[best]), raw_interval=rec["performance_interval"],
    )


def fute_warnings(diagnostics: Mapping[str, Any] | None, method: str | None = None) -> list[Warning_]:
    """``fute_not_learned`` from FUTE's diagnostics.

    Accepts ``{"dte": {"learned": False, ...}, "mte": {...}}``, where ``mte`` may also map prompt
    ids to such entries, and the same keyed by FUTE method (``{"fute-tupate": {"dte": ...}}``).
    Every entry with ``learned`` false is reported with its other fields (held-out loss, chance
    loss, epochs, ...) as they are."""
    if not diagnostics:
        return []
    if any(str(k).startswith("fute-") for k in diagnostics):
        return [w for m, d in diagnostics.items() for w in fute_warnings(d, str(m))]
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
    name = method or "FUTE"
    dte = any(p["part"].startswith("dte") for p in parts)
    mtes = [p for p in parts if not p["part"].startswith("dte")]
    what = []
    if dte:
        what.append("the dataset's task embedding (DTE) did not learn: every prompt is compared with an untrained vector")
    if mtes:
        what.append(f"{len(mtes)} prompt embedding(s) (MTE) did not learn: {', '.join(p['part'] for p in mtes[:6])}")
    return [_warning("fute_not_learned", f"{name}: " + "; ".join(what) + ". Its ranking is not evidence.",
                     method=name, parts=parts)]


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


# --- agreement -----------------------------------------------------------------------------

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


# --- all of it ---------------------------------------------------------------------------

def decide(
    table: ScoreTable,
    method_scores: Mapping[str, np.ndarray],
    *,
    rule: str | None = None,
    metric: str = "accuracy",
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    context: SelectionContext | None = None,
    rescore: Callable[[ScoreTable], np.ndarray] | None = None,
    fute_diagnostics: Mapping[str, Any] | None = None,
    calibration: str = "none",
    calibration_priors: np.ndarray | None = None,
    raw: ScoreTable | None = None,
) -> dict[str, Any]:
    """The report's ``recommendation``, ``warnings``, ``prompt_stats`` and ``agreement``.

    ``method_scores`` are the scores every method gave on the full table (as in the report).
    ``rule`` is the label-free rule (default ``default_rule(calibration)``); it decides without labels and is
    checked against the measurement with labels. Its scores come from ``method_scores[rule]``
    or, when absent, from running it. ``rescore`` overrides how the rule is rerun on resampled
    tables (default: the registered method, when ``stability_reason`` allows). The same seeded
    resamples serve every bootstrap here. ``calibration`` names the calibration the table went
    through (``promptsel.selection.calibration``); it is recorded and, unless ``none``, warned about, and
    ``calibration_priors`` [P, C] (``calibration.priors``) gives the recommended prompt's prior,
    which a user needs to apply the same calibration when deploying it. ``raw`` is the table
    before calibration: collapse is judged on it, because calibration rebalances a collapsed
    prompt's answers on this sample without making it read the input.
    """
    rule = rule or default_rule(calibration)
    picks = resample_indices(table.n_examples, resamples, seed)
    rule_scores = method_scores.get(rule)
    reason = stability_reason(rule)
    if rescore is None and reason is None:
        rescore = rescorer(rule, context)
    if rule_scores is None and rescore is not None:
        rule_scores = np.asarray(rescore(table), dtype=np.float64)
    perf = None
    warnings: list[Warning_] = []
    if table.labels is not None:
        rec, stats = recommend_measured(table, metric=metric, level=level, seed=seed, picks=picks)
        perf = metrics.performance(table.predictions, table.labels, metric=metric, n_classes=len(table.class_names))
        if rule_scores is not None:
            rec["label_free"], disagree = label_free_check(rec, table, rule, rule_scores, stats)
        else:
            disagree = None
        warnings += [w for w in (at_chance_warning(rec), collapsed_warning(raw or table, rec["prompt"])) if w]
        warnings += stability_warnings(rec)
        warnings += [disagree] if disagree else []
        if calibration == "none":
            warnings += [w for w in (calibration_hint(table, rec),) if w]
    else:
        if rule_scores is None:
            raise ValueError(f"No scores for the rule {rule!r}: run it first or pass its scores in method_scores.")
        rec, stats = recommend_label_free(table, rule, rule_scores, rescore=rescore, reason=reason,
                                          level=level, seed=seed, picks=picks)
        warnings += [w for w in (collapsed_warning(raw or table, rec["prompt"]),) if w]
        warnings += stability_warnings(rec)
        if len(rec["tied"]) > 1 and rule not in method_scores:
            warnings += tied_top_warnings(table.prompt_ids, {rule: rule_scores}, None)
    warnings += tied_top_warnings(table.prompt_ids, method_scores, perf)
    warnings += fute_warnings(fute_diagnostics)
    rec["calibration"] = calibration
    rec["calibration_prior"] = None
    if calibration_priors is not None:
        row = np.asarray(calibration_priors)[table.prompt_ids.index(rec["prompt"])]
        rec["calibration_prior"] = {c: float(v) for c, v in zip(table.class_names, row)}
    if calibration != "none":
        warnings.append(_warning(
            "calibrated",
            f"Class probabilities were calibrated ({calibration}) before every method, so performance and choices are "
            "those of calibrated prompts: use the same calibration with the chosen prompt (divide its class "
            "probabilities by its prior and renormalise), or its accuracy will differ.",
            severity="info", calibration=calibration,
        ))
    return {
        "recommendation": rec,
        "warnings": warnings,
        "prompt_stats": stats,
        "agreement": method_agreement(method_scores) if method_scores else None,
    }
