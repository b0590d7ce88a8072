"""``promptsel check``: rerun what a lock describes, compare each entry, decide passed or regressed.

The rules are :mod:`promptsel.gate.compare`'s; the outputs (Markdown, JUnit, JSON) are
:mod:`promptsel.formats`'.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..model.progress import Progress
from ..selection.inputs import Inputs, resolve_dataset_spec
from .compare import NOT_COMPARABLE, REGRESSED, Finding, compare, compare_inputs
from .entry import request_from_record, run_entry
from .lockfile import read_lock, write_lock
from .policy import Policy


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
        labels, metric = bool(old["dataset"]["labels"]), old["request"]["metric"]
        # A broken prompt file or data fails here (exit 2), before any model loads; a wrong
        # model or sample is found from their fingerprints before anything is scored.
        with Inputs(req, progress) as inputs:
            mismatch = [f for f in compare_inputs(old, inputs.identity()) if f.kind == NOT_COMPARABLE]
            if mismatch and not update:
                results.append(EntryCheck(key, mismatch, metric=metric, labels=labels))
                continue
            started = time.perf_counter()
            new_key, new, report = run_entry(inputs, lock_dir)
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
