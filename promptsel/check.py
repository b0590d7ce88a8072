"""``promptsel check``: rerun what a lock describes, compare, and decide passed or regressed.

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

import json
import math
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError
from .lock import (
    describe_changes,
    read_lock,
    request_from_record,
    run_entry,
    sample_sha256,
    write_lock,
)
from .pipeline import SelectRequest, make_backend, resolve_dataset_spec
from .prompts import load_prompt_set
from .scoring import Progress

DEFAULT_FAILED_EXIT_CODE = 100
FAILED_EXIT_CODE_ENV = "PROMPTSEL_FAILED_EXIT_CODE"

REGRESSED = "regressed"
IMPROVED = "improved"
WITHIN = "within tolerance"
UNCHANGED = "unchanged"
NEW = "new"
REMOVED = "removed"
NOT_COMPARABLE = "not comparable"
NOTE = "note"

#: Float noise (and six-digit rounding in the lock) must not turn "exactly the tolerance" into
#: "more than the tolerance".
EPS = 1e-9


# --- policy -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tolerance:
    """How far a value may drop: ``value`` itself, or ``value`` × |locked value| if relative."""

    value: float = 0.02
    relative: bool = False

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        raw = text.strip()
        relative = raw.endswith("%")
        try:
            value = float(raw[:-1] if relative else raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise UsageError(f"--tolerance must be a number such as 0.02 or a percentage such as 5%, got {text!r}.")
        return cls(value / 100 if relative else value, relative)

    def allowed(self, before: float) -> float:
        return self.value * abs(before) if self.relative else self.value

    def dropped(self, before: float, after: float) -> bool:
        return before - after > self.allowed(before) + EPS

    def rose(self, before: float, after: float) -> bool:
        return after - before > self.allowed(before) + EPS

    def __str__(self) -> str:
        return f"{self.value * 100:g}% (relative)" if self.relative else f"{self.value:g} (absolute)"


@dataclass(frozen=True)
class Floor:
    """The least performance a new prompt may have: ``worst`` locked prompt minus the tolerance,
    a fixed ``value``, or ``none``."""

    mode: str = "worst"
    value: float | None = None

    @classmethod
    def parse(cls, text: str) -> Floor:
        raw = text.strip().lower()
        if raw in ("worst", "none"):
            return cls(raw)
        try:
            return cls("value", float(raw))
        except ValueError:
            raise UsageError(f"--floor must be 'worst', 'none' or a number such as 0.6, got {text!r}.") from None

    def __str__(self) -> str:
        if self.mode == "value":
            return f"{self.value:g}"
        return "the worst locked prompt minus the tolerance" if self.mode == "worst" else "none"


@dataclass(frozen=True)
class Policy:
    tolerance: Tolerance = field(default_factory=Tolerance)
    floor: Floor = field(default_factory=Floor)


def failed_exit_code(environ: Mapping[str, str] | None = None) -> int:
    """The exit code for "regressed": 100, or ``PROMPTSEL_FAILED_EXIT_CODE`` (0 reports and passes)."""
    raw = (os.environ if environ is None else environ).get(FAILED_EXIT_CODE_ENV, "").strip()
    if not raw:
        return DEFAULT_FAILED_EXIT_CODE
    try:
        code = int(raw)
    except ValueError:
        code = -1
    if not 0 <= code <= 255:
        raise UsageError(f"{FAILED_EXIT_CODE_ENV} must be an exit code from 0 to 255, got {raw!r}.")
    return code


# --- findings -----------------------------------------------------------------------------

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
        if tol.dropped(before, after):
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
    worst_id = min(old_prompts, key=lambda pid: old_prompts[pid]["performance"])
    worst = old_prompts[worst_id]["performance"]
    value = worst - policy.tolerance.allowed(worst)
    return value, f"the floor {_f(value)} (the worst locked prompt, {worst_id} at {_f(worst)}, minus the tolerance)"


# --- running a check ----------------------------------------------------------------------

@dataclass
class EntryCheck:
    """One lock entry: its findings and, when it ran, the new entry that ``--update`` writes."""

    key: str
    findings: list[Finding]
    new_key: str | None = None
    new: dict[str, Any] | None = None
    metric: str = "accuracy"
    labels: bool = True
    seconds: float = 0.0
    cache: dict[str, Any] | None = None

    def of(self, *kinds: str) -> list[Finding]:
        return [f for f in self.findings if f.kind in kinds]


@dataclass
class CheckResult:
    lock_path: Path
    policy: Policy
    entries: list[EntryCheck]
    updated: bool = False

    @property
    def regressions(self) -> list[Finding]:
        return [f for e in self.entries for f in e.of(REGRESSED)]

    @property
    def not_comparable(self) -> list[Finding]:
        return [f for e in self.entries for f in e.of(NOT_COMPARABLE)]

    @property
    def status(self) -> str:
        """``updated``, ``not comparable``, ``regressed`` or ``passed``: a lock that does not
        match the run outranks a regression, because then nothing was really compared."""
        if self.updated:
            return "updated"
        if self.not_comparable:
            return NOT_COMPARABLE
        return REGRESSED if self.regressions else "passed"

    def as_dict(self) -> dict[str, Any]:
        return {"lock": str(self.lock_path), "status": self.status, "tolerance": str(self.policy.tolerance),
                "floor": str(self.policy.floor),
                "entries": [{"key": e.key, "seconds": round(e.seconds, 3), "cache": e.cache,
                             "findings": [asdict(f) for f in e.findings]} for e in self.entries]}


def select_entries(lock: dict[str, Any], lock_path: Path, prompts: Path | None, dataset: str | None) -> list[str]:
    """The keys of the entries for ``--prompts`` / ``--dataset`` (all without them)."""
    if not lock["entries"]:
        raise UsageError(f"{lock_path} has no entries.", hint="Add one with `promptsel lock --dataset NAME --prompts FILE`.")
    if dataset is not None:
        spec = resolve_dataset_spec(dataset) if not Path(dataset).exists() else None
        dataset = spec.name if spec is not None else dataset
    keys = []
    for key, entry in lock["entries"].items():
        record = entry["request"]
        if prompts is not None and (lock_path.parent / record["prompts"]).resolve() != prompts.resolve():
            continue
        if dataset is not None and dataset not in (record["dataset"], entry["dataset"].get("name")):
            continue
        keys.append(key)
    if not keys:
        wanted = " and ".join(x for x in (prompts and f"prompts {prompts}", dataset and f"dataset {dataset}") if x)
        raise UsageError(f"{lock_path} has no entry for {wanted}; it has: {'; '.join(lock['entries'])}.",
                         hint="Add one with `promptsel lock`.")
    return keys


def _identity(req: SelectRequest) -> dict[str, Any]:
    """This machine's model and sample fingerprints, without scoring anything: a wrong model
    or sample is found before a long run, not after it."""
    digest, sample = sample_sha256(req)
    backend = make_backend(req.backend, req.model, req.model_args)
    try:
        fingerprint, model = backend.fingerprint, backend.model_name
    finally:
        backend.close()
    return {"backend": {"fingerprint": fingerprint, "model": model}, "dataset": {"sample_sha256": digest, **sample},
            "sample": (digest, sample)}


def run_check(
    lock_path: Path, *, prompts: Path | None = None, dataset: str | None = None, model: str | None = None,
    model_args: dict[str, Any] | None = None, data_dir: str | None = None, policy: Policy | None = None,
    update: bool = False, cache: bool = True, progress: Progress | None = None,
) -> CheckResult:
    """Rerun every selected lock entry and compare it with the lock; with ``update``, write the
    new state into the lock instead of judging it. Broken inputs raise (exit 1 or 2) before
    any verdict exists, so a crash can never read as "regressed"."""
    policy = policy or Policy()
    lock = read_lock(lock_path)
    lock_dir = lock_path.parent
    results = []
    for key in select_entries(lock, lock_path, prompts, dataset):
        old = lock["entries"][key]
        req = request_from_record(old["request"], lock_dir, model=model, model_args=model_args, data_dir=data_dir, cache=cache)
        assert req.prompts is not None
        load_prompt_set(req.prompts)  # a broken prompt file: exit 2 now, before anything loads
        now = _identity(req)
        mismatch = [f for f in compare_inputs(old, now) if f.kind == NOT_COMPARABLE]
        labels, metric = bool(old["dataset"]["labels"]), old["request"]["metric"]
        if mismatch and not update:
            results.append(EntryCheck(key, mismatch, metric=metric, labels=labels))
            continue
        started = time.perf_counter()
        new_key, new, report = run_entry(req, lock_dir, progress, sample=now["sample"])
        results.append(EntryCheck(key, compare(old, new, policy), new_key, new, metric=metric, labels=labels,
                                  seconds=time.perf_counter() - started, cache=report.get("cache")))
    if update:
        for r in results:
            del lock["entries"][r.key]
        for r in results:
            assert r.new_key is not None and r.new is not None
            lock["entries"][r.new_key] = r.new
        write_lock(lock_path, lock)
    return CheckResult(lock_path, policy, results, updated=update)


# --- reports ------------------------------------------------------------------------------

_MARK = {REGRESSED: "❌", IMPROVED: "⬆️", WITHIN: "〰️", UNCHANGED: "✅", NEW: "🆕", REMOVED: "➖", NOT_COMPARABLE: "⚠️"}


def _delta(before: float | None, after: float | None, digits: str = ".3f") -> str:
    return "" if before is None or after is None or before == after else format(after - before, "+" + digits)


def method_table(entry: EntryCheck) -> tuple[list[str], list[list[str]]]:
    """Headers and rows (the first cell is the verdict) of the per-method table of an entry:
    each method's choice and the performance (or, without labels, the score) of it."""
    num, digits = (_f, ".3f") if entry.labels else (_g, ".4g")
    headers = ["", "method", "chosen before", "chosen after", f"{entry.metric if entry.labels else 'score'} before", "after", "Δ"]
    rows = [[f.kind, f.name, f.chosen[0] or "", f.chosen[1] or "", num(f.before), num(f.after), _delta(f.before, f.after, digits)]
            for f in entry.findings if f.subject == "method" and f.kind != NOTE]
    return headers, rows


def prompt_table(entry: EntryCheck) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the prompts that changed: what changed and, with labels, the
    performance before and after (without labels the score changes are in "what changed")."""
    rows = [[f.kind, f.name, "; ".join(f.changes), _f(f.before), _f(f.after), _delta(f.before, f.after)]
            for f in entry.findings if f.subject == "prompt" and f.kind != UNCHANGED]
    if entry.labels:
        return ["", "prompt", "what changed", f"{entry.metric} before", "after", "Δ"], rows
    return ["", "prompt", "what changed"], [row[:3] for row in rows]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return lines


def _cache_line(entry: EntryCheck) -> str:
    if entry.new is None:
        return "Not run: the lock does not match this run's inputs."
    hits, misses = (entry.cache or {}).get("hits", 0), (entry.cache or {}).get("misses", 0)
    return f"Ran in {entry.seconds:.1f} s; {hits} of {hits + misses} model results came from the cache."


def to_markdown(result: CheckResult) -> str:
    """The check as Markdown, written to be read in a pull-request comment."""
    n = len(result.regressions)
    title = {
        "passed": "## ✅ promptsel check passed",
        REGRESSED: f"## ❌ promptsel check failed: {n} regression{'s' if n != 1 else ''}",
        NOT_COMPARABLE: "## ⚠️ promptsel check could not compare: the lock does not match this run",
        "updated": f"## 🔄 promptsel check --update: {result.lock_path.name} rewritten",
    }[result.status]
    lines = [title, "", f"Lock `{result.lock_path.name}` · tolerance {result.policy.tolerance} · "
             f"floor for new prompts: {result.policy.floor}.", ""]
    headings = (("Accepted regressions", "Accepted new inputs") if result.updated else ("Regressions", "Not comparable"))
    for heading, kind in zip(headings, (REGRESSED, NOT_COMPARABLE)):
        # With several lock entries, say which one each finding belongs to.
        found = [(e, f) for e in result.entries for f in e.of(kind)]
        where = (lambda e: f"`{e.key}`: ") if len(result.entries) > 1 else (lambda e: "")
        if found:
            lines += [f"### {heading}", "", *(f"- {where(e)}{_cell(f.message)}." for e, f in found), ""]
    if result.not_comparable and not result.updated:
        lines += ["Use the locked model and data (`--model`, `--data-dir`), or accept the new inputs with "
                  "`promptsel check --update` and commit the lock.", ""]
    for entry in result.entries:
        lines += [f"### `{entry.key}`", "", _cache_line(entry), ""]
        if entry.new is None:
            continue
        for headers, rows in (method_table(entry), prompt_table(entry)):
            if rows:
                lines += [*_table(headers, [[f"{_MARK.get(r[0], '')} {r[0]}", *r[1:]] for r in rows]), ""]
        same = sum(1 for f in entry.of(UNCHANGED) if f.subject == "prompt")
        lines += [f"{same} prompt{'s' if same != 1 else ''} unchanged."]
        notes = entry.of(NOTE)
        if notes:
            lines += ["", "Notes: " + "; ".join(_cell(f.message) for f in notes) + "."]
        lines += [""]
    lines += ["<details><summary>How promptsel check decides</summary>", "", *_RULES_MD, "", "</details>", ""]
    if result.status in (REGRESSED, NOT_COMPARABLE):
        lines += ["If the change is intended, run `promptsel check --update` and commit the lock.", ""]
    return "\n".join(lines)


_RULES_MD = [
    "A check fails when, beyond the tolerance: a method's chosen prompt performs worse; a method switches to a prompt "
    "that performs worse than its previous choice does now; a locked prompt performs worse; or a new prompt performs "
    "below the floor. Without labels it fails when a method's chosen prompt scores below the lower end of the locked "
    "95% bootstrap interval of its choice's score (ZPS, Self-Select and FUTE: the tolerance instead). A different "
    "model or evaluation sample is an error (not comparable), not a regression.",
]


def to_junit(result: CheckResult) -> str:
    """JUnit XML: a test suite per lock entry, a test case per method and per prompt; a
    regression is a ``failure``, a lock that does not match is an ``error``."""
    root = ET.Element("testsuites", name="promptsel check")
    total = failures = errors = 0
    for entry in result.entries:
        cases = [f for f in entry.findings if f.kind != NOTE]
        suite = ET.SubElement(root, "testsuite", name=entry.key, tests=str(len(cases)), time=f"{entry.seconds:.3f}",
                              failures=str(len(entry.of(REGRESSED))), errors=str(len(entry.of(NOT_COMPARABLE))))
        for f in cases:
            case = ET.SubElement(suite, "testcase", classname=f"promptsel.check.{f.subject}", name=f"{f.subject} {f.name}")
            if f.kind == REGRESSED:
                ET.SubElement(case, "failure", type="regressed", message=f.message).text = f.message
            elif f.kind == NOT_COMPARABLE:
                ET.SubElement(case, "error", type="not-comparable", message=f.message).text = f.message
            elif f.kind == REMOVED:
                ET.SubElement(case, "skipped", message=f.message)
        notes = entry.of(NOTE)
        if notes:
            ET.SubElement(suite, "system-out").text = "\n".join(f.message for f in notes)
        total += len(cases)
        failures += len(entry.of(REGRESSED))
        errors += len(entry.of(NOT_COMPARABLE))
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_outputs(result: CheckResult, paths: list[Path], junit: Path | None) -> None:
    """``-o FILE.md`` / ``-o FILE.json`` and ``--junit FILE.xml``."""
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result.as_dict(), indent=2) + "\n" if path.suffix.lower() == ".json" else to_markdown(result)
        path.write_text(text, encoding="utf-8")
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(to_junit(result), encoding="utf-8")
