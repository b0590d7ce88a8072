"""The comparison of a lock entry with the same entry computed now: every finding, and which are regressions.

The rules, with ``--tolerance T`` (default 0.02 absolute; ``5%`` is relative to the locked
value) and ``--floor F`` (default ``worst``). A value "drops" when locked − new > T (a drop of
exactly T passes).

With labels (performance = accuracy or macro-F1):

1. per method, the performance of its chosen prompt drops (whether or not the choice changed);
2. per method, the choice changes to a prompt that now performs worse, by more than T, than
   the prompt it chose before;
3. per locked prompt, its performance drops (a prompt renamed without other edits is matched by
   its definition hash);
4. a new prompt performs below the floor: ``worst`` = the worst locked prompt's performance
   minus T, a number = that performance, ``none`` = no floor.

Without labels, per method: the score of the chosen prompt falls below the lower end of the
locked choice's 95 % percentile-bootstrap interval (1000 resamples of the evaluation examples,
seeded by the lock's seed). Methods without an interval (ZPS, Self-Select, FUTE; the lock says
why) use rule 1 on the score with T instead.

Anything else that changed (edited prompts within tolerance, improvements, new prompts above
the floor, removed prompts, other choices) is reported, not failed. A lock whose model
fingerprint or evaluation sample differs from this run's is *not comparable*: that is a usage
error (exit 2), not a regression, because the numbers moved for reasons outside the prompts;
``--update`` accepts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .diff import describe_changes
from .policy import EPS, Policy, Tolerance

REGRESSED = "regressed"
IMPROVED = "improved"
WITHIN = "within tolerance"
UNCHANGED = "unchanged"
NEW = "new"
REMOVED = "removed"
NOT_COMPARABLE = "not comparable"
NOTE = "note"


@dataclass(frozen=True)
class Finding:
    """One thing the comparison found. ``subject`` is ``method``, ``prompt`` or ``lock``;
    ``before``/``after`` are the locked and new numbers (performance, or a label-free score)."""

    kind: str
    subject: str
    name: str
    message: str
    before: float | None = None
    after: float | None = None
    changes: tuple[str, ...] = ()
    chosen: tuple[str | None, str | None] = (None, None)


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _g(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"


def compare_inputs(old: dict[str, Any], new: dict[str, Any]) -> list[Finding]:
    """Whether the run is comparable with the lock at all: same model, same evaluation sample.
    ``new`` needs only ``backend`` and ``dataset`` (and ``versions`` for the notes)."""
    out = []
    ob, nb = old["backend"], new["backend"]
    if ob["fingerprint"] != nb["fingerprint"]:
        out.append(Finding(NOT_COMPARABLE, "lock", "model", (
            f"the model is not the locked one: the lock has {ob['model']} (sha256 {ob['fingerprint'][:12]}), "
            f"this run {nb['model']} (sha256 {nb['fingerprint'][:12]})")))
    od, nd = old["dataset"], new["dataset"]
    if od["sample_sha256"] != nd["sample_sha256"]:
        out.append(Finding(NOT_COMPARABLE, "lock", "data sample", (
            f"the evaluation sample is not the locked one: the lock has {od['n']} examples from "
            f"{od.get('source', '?')}, this run {nd['n']} from {nd.get('source', '?')} with other content")))
    if "versions" in new:  # versions explain moved numbers but do not make them incomparable
        ov, nv = old.get("versions", {}), new["versions"]
        for name in sorted(set(ov) | set(nv)):
            if ov.get(name) != nv.get(name):
                out.append(Finding(NOTE, "lock", name, f"{name} {ov.get(name) or '(none)'} → {nv.get(name) or '(none)'}"))
    return out


def compare(old: dict[str, Any], new: dict[str, Any], policy: Policy | None = None) -> list[Finding]:
    """Every finding for one lock entry against the same entry computed now."""
    policy = policy or Policy()
    out = compare_inputs(old, new)
    if old.get("prompt_set", {}).get("description") != new.get("prompt_set", {}).get("description"):
        out.append(Finding(NOTE, "lock", "description", "the prompt set's description changed (Self-Select shows it to the model)"))
    labels = bool(old["dataset"]["labels"] and new["dataset"]["labels"])
    metric = new["request"]["metric"]
    out += _compare_methods(old, new, policy.tolerance, labels, metric)
    out += _compare_prompts(old, new, policy, labels, metric)
    return out


def _compare_methods(old: dict[str, Any], new: dict[str, Any], tol: Tolerance, labels: bool, metric: str) -> list[Finding]:
    level = (old.get("bootstrap") or {}).get("level", 0.95)
    out = []
    for m, o in old["methods"].items():
        n = new["methods"].get(m)
        if n is None:
            out.append(Finding(NOTE, "method", m, f"{m} did not run"))
            continue
        out.append(_method_finding(m, o, n, new["prompts"], tol, labels, metric, level))
    return out


def _method_finding(m: str, o: dict[str, Any], n: dict[str, Any], new_prompts: dict[str, Any], tol: Tolerance,
                    labels: bool, metric: str, level: float) -> Finding:
    """One method: its choice's performance against the tolerance or, without labels, its
    choice's score against the locked bootstrap interval (the tolerance where there is none)."""
    was, now = o["chosen"], n["chosen"]
    what, fmt = (metric, _f) if labels else ("score", _g)
    before, after = (o["performance"], n["performance"]) if labels else (o["score"], n["score"])
    kw: dict[str, Any] = {"before": before, "after": after, "chosen": (was, now)}
    if before is None or after is None:
        return Finding(NOTE, "method", m, f"{m}: no finite {what} to compare", **kw)
    interval = None if labels else o.get("score_interval")
    if interval:
        lo, hi = interval
        dropped, rose = after < lo - EPS, after > hi + EPS
        rule = f"below {_g(lo)}, the lower end of the locked {level:.0%} bootstrap interval [{_g(lo)}, {_g(hi)}]"
    else:
        dropped, rose = tol.dropped(before, after), tol.rose(before, after)
        rule = f"tolerance {tol}" + ("" if labels else f" (no bootstrap interval for {m})")
    # The previous choice's performance in this run: did the method switch to a worse prompt?
    previous = new_prompts.get(was, {}).get("performance") if labels else None
    head = f"{m}: the chosen prompt's {what}"
    if dropped:
        return Finding(REGRESSED, "method", m, f"{head} fell from {fmt(before)} ({was}) to {fmt(after)} ({now}); {rule}", **kw)
    if now != was and previous is not None and tol.dropped(previous, after):
        msg = f"{m} now picks {now} ({metric} {_f(after)}) instead of {was}, which scores {_f(previous)}; tolerance {tol}"
        return Finding(REGRESSED, "method", m, msg, **kw)
    if rose:
        return Finding(IMPROVED, "method", m, f"{head} rose from {fmt(before)} to {fmt(after)}", **kw)
    if now != was or before != after:
        return Finding(WITHIN, "method", m, f"{m}: choice {was} → {now}, {what} {fmt(before)} → {fmt(after)}", **kw)
    return Finding(UNCHANGED, "method", m, f"{m}: still {now}", **kw)


def _compare_prompts(old: dict[str, Any], new: dict[str, Any], policy: Policy, labels: bool, metric: str) -> list[Finding]:
    tol = policy.tolerance
    old_p, new_p = old["prompts"], new["prompts"]
    gone = [pid for pid in old_p if pid not in new_p]
    by_hash = {old_p[pid]["definition_sha256"]: pid for pid in gone}
    renamed = {pid: by_hash[p["definition_sha256"]] for pid, p in new_p.items()
               if pid not in old_p and p["definition_sha256"] in by_hash}
    floor, floor_text = _floor(policy, old_p) if labels else (None, "")
    out = []
    for pid, n in new_p.items():
        base = pid if pid in old_p else renamed.get(pid)
        after = n["performance"] if labels else None
        if base is None:
            if floor is not None and after is not None and after < floor - EPS:
                msg = f"new prompt {pid}: {metric} {_f(after)} is below {floor_text}"
                out.append(Finding(REGRESSED, "prompt", pid, msg, after=after, changes=("new prompt",)))
            else:
                out.append(Finding(NEW, "prompt", pid, f"new prompt {pid}" + (f": {metric} {_f(after)}" if labels else ""),
                                   after=after, changes=("new prompt",)))
            continue
        o = old_p[base]
        changes = ([f"renamed from {base}"] if base != pid else []) + describe_changes(o["definition"], n["definition"])
        if not labels:
            changes += [f"{m} score {_g(s)} → {_g(n['scores'].get(m))}" for m, s in o["scores"].items()
                        if s != n["scores"].get(m)]
            kind = WITHIN if changes else UNCHANGED
            out.append(Finding(kind, "prompt", pid, f"{pid}: " + ("; ".join(changes) or "unchanged"), changes=tuple(changes)))
            continue
        before = o["performance"]
        what = f" after: {'; '.join(changes)}" if changes else " with an unchanged definition"
        if before is None or after is None:  # as for a method: nothing to judge
            kind, msg = NOTE, f"{pid}: no finite {metric} to compare{what}"
        elif tol.dropped(before, after):
            msg = f"{pid}: {metric} fell from {_f(before)} to {_f(after)}{what}; tolerance {tol}"
            kind = REGRESSED
        elif tol.rose(before, after):
            kind, msg = IMPROVED, f"{pid}: {metric} rose from {_f(before)} to {_f(after)}{what}"
        elif changes or before != after:
            kind, msg = WITHIN, f"{pid}: {metric} {_f(before)} → {_f(after)}{what}"
        else:
            kind, msg = UNCHANGED, f"{pid}: unchanged"
        out.append(Finding(kind, "prompt", pid, msg, before=before, after=after, changes=tuple(changes)))
    for pid in gone:
        if pid not in renamed.values():
            out.append(Finding(REMOVED, "prompt", pid, f"{pid} was removed", before=old_p[pid]["performance"],
                               changes=("removed",)))
    return out


def _floor(policy: Policy, old_prompts: dict[str, Any]) -> tuple[float | None, str]:
    floor = policy.floor
    if floor.mode == "none":
        return None, ""
    if floor.mode == "value":
        assert floor.value is not None
        return floor.value, f"the floor {floor.value:g}"
    # A prompt without a finite number (the lock's None) has no place in "the worst".
    measured = [pid for pid in old_prompts if old_prompts[pid]["performance"] is not None]
    if not measured:
        return None, ""
    worst_id = min(measured, key=lambda pid: old_prompts[pid]["performance"])
    worst = old_prompts[worst_id]["performance"]
    value = worst - policy.tolerance.allowed(worst)
    return value, f"the floor {_f(value)} (the worst locked prompt, {worst_id} at {_f(worst)}, minus the tolerance)"
