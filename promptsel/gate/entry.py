"""A lock entry: what ``promptsel lock`` records about one selection and ``check`` reruns.

An entry records how to rerun the selection (``request``), what it ran on (model fingerprint,
dataset sample fingerprint, versions) and what came out: every prompt's full definition, its
hash, its performance when the data has labels and its score under each method, and each
method's choice.

Paths in ``request`` are relative to the lock file's folder, so a lock works from any working
directory and on any machine (the CI runner's checkout is somewhere else).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from ..model.progress import Progress
from ..model.prompts import Prompt, PromptSet
from ..model.request import ScoringOptions, SelectRequest
from ..model.scoretable import ScoreTable
from ..model.stats import LEVEL, RESAMPLES
from ..plugins import option_groups
from ..selection.inputs import Inputs, resolve_dataset_spec
from ..selection.record import redact_url_credentials
from ..selection.run import select
from ..selector import SelectionContext, Selector
from .bootstrap import bootstrap_intervals
from .lockfile import LockFileError, new_lock, read_lock, rounded, write_lock

#: Versions that differ between a laptop and a CI runner without changing the numbers promptsel
#: computes; recording them would make every re-lock on another machine a diff.
_PLATFORM_VERSIONS = frozenset({"python", "numpy", "scipy", "scikit-learn", "pluggy"})


def definition(prompt: Prompt) -> dict[str, Any]:
    """Everything that decides what the model sees for this prompt: the set's defaults merged
    in, the CoT texts only for CoT prompts. ``answer_choices`` is a list of [class, words] so
    that the class order, which orders ``label_space`` in the instruction, survives sorted-key
    JSON."""
    data = {k: v for k, v in asdict(prompt).items() if k not in prompt.NOT_BEHAVIOUR}
    data["answer_choices"] = [[cls, list(words)] for cls, words in prompt.answer_choices.items()]
    if not prompt.cot:  # a non-CoT prompt never shows these: editing them changes nothing it sees
        del data["cot_instruction"], data["cot_followup"]
    return data


def definition_sha256(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def relative(path: str | Path, base: Path) -> str:
    """``path`` relative to ``base`` with forward slashes (the same lock on every OS)."""
    return Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix()


def request_record(req: SelectRequest, lock_dir: Path, split: str | None) -> dict[str, Any]:
    """How to rerun: the request with paths relative to the lock and machine-local settings
    (data directory, cache) left out."""
    assert req.dataset is not None and req.prompts is not None
    local = resolve_dataset_spec(req.dataset) is None
    record: dict[str, Any] = {
        "prompts": relative(req.prompts, lock_dir),
        "dataset": relative(req.dataset, lock_dir) if local else req.dataset,
        "split": None if local else split,
        "limit": req.limit,
        "seed": req.seed,
        "methods": list(req.methods or []),
        "backend": req.backend,
        "model": req.model,
        # A URL's credentials never go into a file that is committed: pass them at check time.
        "model_args": {k: redact_url_credentials(v) if isinstance(v, str) else v for k, v in req.backend_args.items()},
        "metric": req.metric,
        "max_chars": req.max_chars,
        "scoring": req.scoring.as_dict(),
        "fields": dict(req.fields),
        "label_field": req.label_field,
        "classes": req.classes,
    }
    # Recorded only when set, so a lock without them reads as it always did.
    if req.method_options:
        record["method_options"] = {m: dict(o) for m, o in req.method_options.items()}
    for group in req.groups:  # each option group under its id, as the user changed it
        if group.changed():
            record[group.group_id] = group.changed()
    if req.calibrate != "none":
        record["calibrate"] = req.calibrate
    if req.adaptive:  # check reruns it in the same rounds, with the same order (the seed) and stopping rule
        record["adaptive"] = req.adaptive_settings
    return record


#: The keys of a lock's request that the core reads; every other key is an option group's.
REQUEST_KEYS = frozenset({"prompts", "dataset", "split", "limit", "seed", "methods", "backend", "model", "model_args",
                          "metric", "max_chars", "scoring", "fields", "label_field", "classes", "method_options",
                          "calibrate", "adaptive"})


def request_from_record(record: dict[str, Any], lock_dir: Path, *, model: str | None = None,
                        model_args: dict[str, Any] | None = None, data_dir: str | None = None,
                        cache: bool = True) -> SelectRequest:
    """The request a lock entry describes; ``model``, ``model_args`` and ``data_dir`` say where
    things are on this machine (the fingerprints then tell whether they are the same things)."""
    dataset = record["dataset"]
    if resolve_dataset_spec(dataset) is None:
        dataset = str(lock_dir / dataset)
    unknown = sorted(set(record) - REQUEST_KEYS - {group.group_id for group in option_groups()})
    if unknown:  # settings of a plugin that is not loaded here: rerunning without them would differ
        raise LockFileError(f"The lock's request for {record['prompts']} has settings ({', '.join(unknown)}) that no loaded "
                            "plugin declares.", hint="Install or enable the plugin that wrote them (see `promptsel plugins`), "
                                                     "or re-lock with `promptsel lock`.")
    try:
        groups = tuple(group.parse(record[group.group_id], owner=f"the lock's {group.group_id}")
                       for group in option_groups() if group.group_id in record)
        return SelectRequest(
            dataset=dataset, prompts=lock_dir / record["prompts"], split=record.get("split"), limit=record.get("limit"),
            seed=record["seed"], methods=list(record["methods"]), backend=record["backend"],
            model=model if model is not None else record.get("model"),
            model_args={**record["model_args"], **(model_args or {})}, metric=record["metric"],
            max_chars=record.get("max_chars"), scoring=ScoringOptions.parse(record["scoring"], owner="the lock's scoring"),
            fields=dict(record["fields"]), label_field=record["label_field"], classes=record.get("classes"),
            method_options=dict(record.get("method_options", {})), calibrate=record.get("calibrate", "none"),
            groups=groups, data_dir=data_dir, cache=cache, **_adaptive(record.get("adaptive")),
        )
    except UsageError as exc:  # a hand-edited request: an unknown or mistyped option
        raise LockFileError(f"The lock's request for {record['prompts']} is not valid: {exc.message}",
                            hint="Re-lock it with `promptsel lock`.") from exc


def _adaptive(settings: Any) -> dict[str, Any]:
    """The request fields of a lock's ``adaptive`` settings (none: not adaptive)."""
    if settings is None:
        return {}
    if not isinstance(settings, dict) or set(settings) - set(SelectRequest.ADAPTIVE):
        raise UsageError(f"adaptive must be a table of epsilon, delta, max_inputs and round_size, got {settings!r}.")
    return {"adaptive": True, **settings}


def entry_key(record: dict[str, Any], model_name: str) -> str:
    """``prompts/sa.toml | rotten_tomatoes:test | limit=12 | llamacpp:SmolLM2-135M-Instruct.Q4_1``"""
    dataset = record["dataset"] + (f":{record['split']}" if record["split"] else "")
    return f"{record['prompts']} | {dataset} | limit={record['limit'] or 'all'} | {record['backend']}:{model_name}"


def run_entry(inputs: Inputs, lock_dir: Path) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Run the selection on ``inputs`` (opened) and return (key, lock entry, report)."""
    report, table = select(inputs)
    # Record what really ran: without --methods the default set is written out by name.
    record = request_record(replace(inputs.request, methods=list(report["methods"])), lock_dir, report["dataset"]["split"])
    assert inputs.prompt_set is not None and inputs.dataset is not None
    sample = {"sha256": inputs.dataset.content_sha256(), **inputs.dataset.describe_source()}
    entry = make_entry(record, report, table, inputs.prompt_set, sample, make=inputs.selector)
    return entry_key(record, report["backend"]["model"]), entry, report


def make_entry(record: dict[str, Any], report: dict[str, Any], table: ScoreTable, prompt_set: PromptSet,
               sample: dict[str, Any], make: Callable[[str], Selector] | None = None) -> dict[str, Any]:
    """The lock entry of a selection. ``sample``: the evaluation sample's content ``sha256`` and
    its ``source``; ``make(name)``: a method with the run's options (default: its defaults)."""
    methods = list(report["methods"])
    labels = table.labels is not None
    intervals: dict[str, np.ndarray] = {}
    bootstrap = None
    if not labels:  # with labels the gate reads performance; the interval is for label-free runs
        context = SelectionContext(prompt_set=prompt_set, seed=record["seed"])
        intervals, excluded = bootstrap_intervals(table, methods, context, seed=record["seed"], make=make)
        bootstrap = {"resamples": RESAMPLES, "level": LEVEL, "excluded": excluded}
    position = {p.id: i for i, p in enumerate(prompt_set.prompts)}
    prompts = {}
    for prompt, row in zip(prompt_set.prompts, report["prompts"]):
        data = definition(prompt)
        prompts[prompt.id] = {"definition": data, "definition_sha256": definition_sha256(data),
                              "performance": row["performance"], "scores": row["scores"]}
    chosen = {}
    for m, e in report["methods"].items():
        pick = position[e["chosen"]]
        chosen[m] = {
            "chosen": e["chosen"], "tied": e["tied"], "performance": e["performance"],
            "score": report["prompts"][pick]["scores"][m],
            "score_interval": intervals[m][pick].tolist() if m in intervals else None,
        }
    ds, be = report["dataset"], report["backend"]
    return rounded({
        "request": record,
        "dataset": {"name": ds["name"], "split": ds["split"], "n": ds["n"], "labels": labels,
                    "sample_ids_sha256": ds["sample_ids_sha256"], "sample_sha256": sample["sha256"],
                    "source": sample["source"]},
        "backend": {"name": be["name"], "model": be["model"], "fingerprint": be["fingerprint"]},
        "prompt_set": {"name": prompt_set.name, "description": prompt_set.description},
        "versions": {k: v for k, v in report["versions"].items() if k not in _PLATFORM_VERSIONS},
        "prompts": prompts,
        "methods": chosen,
        "bootstrap": bootstrap,
    })


def lock_selection(req: SelectRequest, lock_path: Path, progress: Progress | None = None) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``promptsel lock``: run the selection and write (or replace) its entry in the lock,
    keeping the other entries. An existing lock that cannot be read is an error before the
    run, never silently overwritten."""
    lock = read_lock(lock_path) if lock_path.exists() else new_lock()
    if req.dataset is None or req.prompts is None:
        raise UsageError("lock needs --dataset and --prompts.")
    with Inputs(req, progress) as inputs:
        key, entry, report = run_entry(inputs, lock_path.parent)
    lock["entries"][key] = entry
    write_lock(lock_path, lock)
    return key, entry, report
