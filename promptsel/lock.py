"""The lock file: what ``promptsel lock`` records and ``promptsel check`` compares against.

A lock holds one entry per (prompt set, dataset, split, limit, backend + model). An entry
records how to rerun the selection (``request``), what it ran on (model fingerprint, dataset
sample fingerprint, versions) and what came out: every prompt's full definition, its hash, its
performance when the data has labels and its score under each method, and each method's choice.

The format is JSON written with sorted keys, one key per line, short lists on one line and
numbers rounded to six significant digits. JSON rather than TOML because the standard library both reads and writes it
(``tomllib`` only reads, and a hand-written TOML emitter would be one more thing to get wrong);
with one value per line a ``git diff`` of the lock shows exactly which prompt text or number
moved. Rounding makes reruns byte-identical even where the last bits of a float would differ.

Paths in ``request`` are relative to the lock file's folder, so a lock works from any working
directory and on any machine (the CI runner's checkout is somewhere else).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UsageError
from .pipeline import SelectRequest, load_dataset, resolve_dataset_spec, run_select
from .prompts import Prompt, PromptSet, load_prompt_set
from .scoretable import ScoreTable
from .scoring import Progress, ScoringOptions
from .selector import NEEDS_CLASS_LOGPROBS, NEEDS_PROMPT_NLL, SelectionContext

LOCK_VERSION = 1
SIGNIFICANT_DIGITS = 6
ABOUT = ("Written by `promptsel lock`; `promptsel check` reruns every entry and fails on a regression; "
         "`promptsel check --update` accepts the new state. Edit with promptsel, not by hand.")

#: Bootstrap of label-free scores over the evaluation examples (only for data without labels).
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_LEVEL = 0.95
#: Methods whose score of one prompt depends on every other prompt: an interval over examples
#: would not bound the effect of an edit elsewhere in the set, and their 2-means filter refits
#: on every resample (about 20 s for 1000 resamples of the three of them on 2 cores).
ENSEMBLE_METHODS = frozenset({"zps-log", "zps-prob", "zps-vote"})
#: Versions that differ between a laptop and a CI runner without changing the numbers promptsel
#: computes; recording them would make every re-lock on another machine a diff.
_PLATFORM_VERSIONS = frozenset({"python", "numpy", "scipy", "scikit-learn", "pluggy"})


class LockFileError(UsageError):
    """A lock file that is missing, not JSON, or not shaped like a lock."""


# --- values -------------------------------------------------------------------------------

def rounded(value: Any) -> Any:
    """``value`` with every float rounded to six significant digits (non-finite: ``None``)."""
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if not math.isfinite(x):
            return None
        return float(f"{x:.{SIGNIFICANT_DIGITS}g}") + 0.0  # + 0.0 turns -0.0 into 0.0
    if isinstance(value, np.integer):
        return int(value)
    return value


def definition(prompt: Prompt) -> dict[str, Any]:
    """Everything that decides what the model sees for this prompt: the set's defaults merged
    in, the CoT texts only for CoT prompts. ``answer_choices`` is a list of [class, words] so
    that the class order, which orders ``label_space`` in the instruction, survives sorted-key
    JSON."""
    data = {k: v for k, v in asdict(prompt).items() if k not in ("id", "note")}
    data["answer_choices"] = [[cls, list(words)] for cls, words in prompt.answer_choices.items()]
    if not prompt.cot:  # a non-CoT prompt never shows these: editing them changes nothing it sees
        del data["cot_instruction"], data["cot_followup"]
    return data


def definition_sha256(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def relative(path: str | Path, base: Path) -> str:
    """``path`` relative to ``base`` with forward slashes (the same lock on every OS)."""
    return Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix()


def sample_sha256(req: SelectRequest) -> tuple[str, dict[str, Any]]:
    """A fingerprint of the evaluation sample's content (ids, input fields and labels) and a
    description of it. Sample ids alone are not enough: ``test:3`` is a different sentence in
    the offline Rotten Tomatoes source than in a data directory holding Hugging Face's split."""
    assert req.dataset is not None
    spec = resolve_dataset_spec(req.dataset)
    dataset = load_dataset(req, spec)
    rows = [[i, ex] for i, ex in zip(dataset.ids, dataset.examples)]
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    # The path of a data directory or file is machine-specific; the kind of source is not.
    kind = dataset.source.partition(":")[0]
    return digest, {"source": kind if kind in ("data-dir", "file") else dataset.source, "n": len(dataset.examples)}


# --- what changed in a prompt ------------------------------------------------------------

_FIELD_ORDER = ("template", "answer_choices", "instruction", "system", "chat", "cot", "cot_instruction", "cot_followup",
                "target_delimiter")


def describe_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One short line per changed field of a prompt definition, e.g.
    ``answer_choices.positive: [yes, Yes] → [no, No]`` or ``template: "…below positive?" → "…below negative?"``."""
    keys = sorted(set(old) | set(new), key=lambda k: (_FIELD_ORDER.index(k) if k in _FIELD_ORDER else len(_FIELD_ORDER), k))
    out = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if key == "answer_choices":
            out += _choice_changes(a or [], b or [])
        elif isinstance(a, str) and isinstance(b, str):
            left, right = text_change(a, b)
            out.append(f"{key}: {left} → {right}")
        elif isinstance(a, str) or isinstance(b, str):  # a text set or cleared (CoT switched on)
            left, right = text_change(a or "", b or "")
            out.append(f"{key}: {left if a is not None else '(none)'} → {right if b is not None else '(none)'}")
        else:
            out.append(f"{key}: {json.dumps(a, ensure_ascii=False)} → {json.dumps(b, ensure_ascii=False)}")
    return out


def _choice_changes(old: list[list[Any]], new: list[list[Any]]) -> list[str]:
    a, b = dict((c, w) for c, w in old), dict((c, w) for c, w in new)
    out = []
    for cls in [*a, *(c for c in b if c not in a)]:
        if cls not in b:
            out.append(f"answer_choices: class {cls} removed")
        elif cls not in a:
            out.append(f"answer_choices: class {cls} added [{', '.join(b[cls])}]")
        elif a[cls] != b[cls]:
            out.append(f"answer_choices.{cls}: [{', '.join(a[cls])}] → [{', '.join(b[cls])}]")
    if not out:  # same words, other class order: label_space in the instruction changes
        out.append(f"answer_choices: class order {', '.join(a)} → {', '.join(b)}")
    return out


def text_change(a: str, b: str, context: int = 12, limit: int = 60) -> tuple[str, str]:
    """The part of two texts that differs, widened to whole words and a little context, quoted
    with newlines shown as ``\\n``: ``("…below positive?", "…below negative?")``."""
    p = 0
    while p < min(len(a), len(b)) and a[p] == b[p]:
        p += 1
    s = 0
    while s < min(len(a), len(b)) - p and a[-1 - s] == b[-1 - s]:
        s += 1
    start = a.rfind(" ", 0, p - context) + 1 if p > context else 0

    def cut(t: str) -> str:
        stop = len(t) - s
        space = t.find(" ", stop + context)
        end = len(t) if stop + context >= len(t) or space < 0 else space
        middle = t[start:end]
        if len(middle) > limit:
            middle = middle[: limit // 2] + "…" + middle[-limit // 2:]
        shown = ("…" if start > 0 else "") + middle + ("…" if end < len(t) else "")
        return '"' + shown.replace("\n", "\\n") + '"'
    return cut(a), cut(b)


# --- bootstrap ----------------------------------------------------------------------------

def no_bootstrap_reason(method: str) -> str | None:
    """Why a method's score gets no interval over examples (``None``: it gets one)."""
    from .fute import is_fute
    from .plugins import registries

    if is_fute(method):
        return "FUTE scores a prompt from its task embedding, not from the evaluation examples"
    if method in ENSEMBLE_METHODS:
        return "a prompt's score depends on every other prompt (the pseudo-label ensemble)"
    needs = registries().selectors.get(method).needs
    if not needs <= {NEEDS_CLASS_LOGPROBS, NEEDS_PROMPT_NLL}:
        return "it asks the model about the prompts instead of scoring the examples"
    return None


def bootstrap_intervals(
    table: ScoreTable, methods: list[str], context: SelectionContext, *,
    resamples: int = BOOTSTRAP_RESAMPLES, level: float = BOOTSTRAP_LEVEL, seed: int = 0,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Percentile bootstrap of every prompt's score: resample the examples with replacement
    ``resamples`` times (the same resamples for every method, seeded), rescore, and take the
    central ``level`` interval. Returns {method: [P, 2] intervals} and {method: why excluded}."""
    from .plugins import registries

    rng = np.random.default_rng(seed)
    picks = rng.integers(0, table.n_examples, size=(resamples, table.n_examples))
    intervals: dict[str, np.ndarray] = {}
    excluded: dict[str, str] = {}
    for method in methods:
        reason = no_bootstrap_reason(method)
        if reason is not None:
            excluded[method] = reason
            continue
        selector = registries().selectors.get(method)()
        draws = np.empty((resamples, table.n_prompts))
        for b, pick in enumerate(picks):
            sub = ScoreTable(
                prompt_ids=table.prompt_ids, class_names=table.class_names,
                class_logprobs=table.class_logprobs[:, pick],
                prompt_nll=None if table.prompt_nll is None else table.prompt_nll[:, pick],
                sample_ids=[table.sample_ids[i] for i in pick],
            )
            draws[b] = selector.score(sub, context)
        tail = (1.0 - level) / 2 * 100
        intervals[method] = np.percentile(draws, [tail, 100 - tail], axis=0).T
    return intervals, excluded


# --- entries ------------------------------------------------------------------------------

def request_record(req: SelectRequest, lock_dir: Path, split: str | None) -> dict[str, Any]:
    """How to rerun: the request with paths relative to the lock and machine-local settings
    (data directory, cache) left out."""
    assert req.dataset is not None and req.prompts is not None
    local = resolve_dataset_spec(req.dataset) is None
    return {
        "prompts": relative(req.prompts, lock_dir),
        "dataset": relative(req.dataset, lock_dir) if local else req.dataset,
        "split": None if local else split,
        "limit": req.limit,
        "seed": req.seed,
        "methods": list(req.methods or []),
        "backend": req.backend,
        "model": req.model,
        "model_args": dict(req.model_args),
        "metric": req.metric,
        "max_chars": req.max_chars,
        "scoring": {k: v for k, v in asdict(req.scoring).items() if k != "need_nll"},
        "fields": dict(req.fields),
        "label_field": req.label_field,
        "classes": req.classes,
    }


def request_from_record(record: dict[str, Any], lock_dir: Path, *, model: str | None = None,
                        model_args: dict[str, Any] | None = None, data_dir: str | None = None,
                        cache: bool = True) -> SelectRequest:
    """The request a lock entry describes; ``model``, ``model_args`` and ``data_dir`` say where
    things are on this machine (the fingerprints then tell whether they are the same things)."""
    dataset = record["dataset"]
    if resolve_dataset_spec(dataset) is None:
        dataset = str(lock_dir / dataset)
    try:
        return SelectRequest(
            dataset=dataset, prompts=lock_dir / record["prompts"], split=record.get("split"), limit=record.get("limit"),
            seed=record["seed"], methods=list(record["methods"]), backend=record["backend"],
            model=model if model is not None else record.get("model"),
            model_args={**record["model_args"], **(model_args or {})}, metric=record["metric"],
            max_chars=record.get("max_chars"), scoring=ScoringOptions(**record["scoring"]),
            fields=dict(record["fields"]), label_field=record["label_field"], classes=record.get("classes"),
            data_dir=data_dir, cache=cache,
        )
    except TypeError as exc:  # a hand-edited scoring table with unknown keys
        raise LockFileError(f"The lock's request for {record['prompts']} is not valid: {exc}.",
                            hint="Re-lock it with `promptsel lock`.") from exc


def entry_key(record: dict[str, Any], model_name: str) -> str:
    """``prompts/sa.toml | rotten_tomatoes:test | limit=12 | llamacpp:SmolLM2-135M-Instruct.Q4_1``"""
    dataset = record["dataset"] + (f":{record['split']}" if record["split"] else "")
    return f"{record['prompts']} | {dataset} | limit={record['limit'] or 'all'} | {record['backend']}:{model_name}"


def run_entry(req: SelectRequest, lock_dir: Path, progress: Progress | None = None, *,
              sample: tuple[str, dict[str, Any]] | None = None) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Run the selection ``req`` describes and return (key, lock entry, report). ``sample`` is
    :func:`sample_sha256` of ``req`` when the caller has it already."""
    if req.dataset is None or req.prompts is None:
        raise UsageError("lock needs --dataset and --prompts.")
    prompt_set = load_prompt_set(req.prompts)  # a broken file fails here, before any data loads
    sample_digest, sample_info = sample or sample_sha256(req)
    report, table = run_select(req, progress=progress)
    # Record what really ran: without --methods the default set is written out by name.
    record = request_record(replace(req, methods=list(report["methods"])), lock_dir, report["dataset"]["split"])
    entry = make_entry(record, report, table, prompt_set, sample_digest, sample_info)
    return entry_key(record, report["backend"]["model"]), entry, report


def make_entry(record: dict[str, Any], report: dict[str, Any], table: ScoreTable, prompt_set: PromptSet,
               sample_digest: str, sample: dict[str, Any]) -> dict[str, Any]:
    methods = list(report["methods"])
    labels = table.labels is not None
    intervals: dict[str, np.ndarray] = {}
    bootstrap = None
    if not labels:  # with labels the gate reads performance; the interval is for label-free runs
        context = SelectionContext(prompt_set=prompt_set, seed=record["seed"])
        intervals, excluded = bootstrap_intervals(table, methods, context, seed=record["seed"])
        bootstrap = {"resamples": BOOTSTRAP_RESAMPLES, "level": BOOTSTRAP_LEVEL, "excluded": excluded}
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
                    "sample_ids_sha256": ds["sample_ids_sha256"], "sample_sha256": sample_digest, "source": sample["source"]},
        "backend": {"name": be["name"], "model": be["model"], "fingerprint": be["fingerprint"]},
        "prompt_set": {"name": prompt_set.name, "description": prompt_set.description},
        "versions": {k: v for k, v in report["versions"].items() if k not in _PLATFORM_VERSIONS},
        "prompts": prompts,
        "methods": chosen,
        "bootstrap": bootstrap,
    })


# --- the file -----------------------------------------------------------------------------

def new_lock() -> dict[str, Any]:
    return {"about": ABOUT, "lock_version": LOCK_VERSION, "entries": {}}


def dumps(lock: dict[str, Any]) -> str:
    """JSON with sorted keys, one key per line, and short lists without objects on one line
    (``"answer_choices": [["positive", ["yes", "Yes"]], ...]``): an edited label word is then a
    one-line diff, not a five-line one."""
    return _dump(lock, 0) + "\n"


_INLINE_WIDTH = 100


def _has_dict(value: Any) -> bool:
    return isinstance(value, dict) or (isinstance(value, list) and any(_has_dict(v) for v in value))


def _dump(value: Any, level: int) -> str:
    pad, end = "  " * (level + 1), "  " * level
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {_dump(value[k], level + 1)}" for k in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(value, list):
        inline = json.dumps(value, ensure_ascii=False, sort_keys=True)
        if not _has_dict(value) and len(inline) <= _INLINE_WIDTH:
            return inline
        return "[\n" + ",\n".join(pad + _dump(v, level + 1) for v in value) + "\n" + end + "]"
    return json.dumps(value, ensure_ascii=False)


def write_lock(path: Path, lock: dict[str, Any]) -> None:
    """Write atomically: an interrupted write never leaves half a lock in the repository."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(dumps(lock))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: The fields ``check`` reads, with their JSON types: a hand edit or a bad merge that breaks one
#: is a usage error naming it, never a KeyError in the middle of a comparison.
_NUMBER = (int, float, type(None))
_SECTIONS: dict[str, dict[str, tuple[type, ...]]] = {
    "request": {"prompts": (str,), "dataset": (str,), "methods": (list,), "backend": (str,), "model_args": (dict,),
                "scoring": (dict,), "seed": (int,), "metric": (str,), "fields": (dict,), "label_field": (str,),
                "split": (str, type(None)), "limit": (int, type(None)), "model": (str, type(None)),
                "max_chars": (int, type(None)), "classes": (list, type(None))},
    "dataset": {"n": (int,), "labels": (bool,), "sample_sha256": (str,)},
    "backend": {"fingerprint": (str,), "model": (str,)},
}
_PER_PROMPT = {"definition": (dict,), "definition_sha256": (str,), "performance": _NUMBER, "scores": (dict,)}
_PER_METHOD = {"chosen": (str,), "performance": _NUMBER, "score": _NUMBER}


def _check_fields(path: Path, key: str, where: str, table: Any, fields: dict[str, tuple[type, ...]]) -> None:
    for name, types in fields.items():
        value = table.get(name) if isinstance(table, dict) else None
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise LockFileError(f"{path}: entry {key!r} has no valid {where}.{name}.", hint="Re-lock it with `promptsel lock`.")


def _check_entry(path: Path, key: str, entry: Any) -> None:
    for section, fields in _SECTIONS.items():
        if not isinstance(entry, dict) or not isinstance(entry.get(section), dict):
            raise LockFileError(f"{path}: entry {key!r} has no {section!r} table.", hint="Re-lock it with `promptsel lock`.")
        _check_fields(path, key, section, entry[section], fields)
    request = entry["request"]
    texts = {"methods": request["methods"], "classes": request.get("classes") or [], "fields": list(request["fields"].values())}
    for name, values in texts.items():
        if not all(isinstance(v, str) for v in values):
            raise LockFileError(f"{path}: entry {key!r} has no valid request.{name} (names must be strings).",
                                hint="Re-lock it with `promptsel lock`.")
    for kind, fields in (("prompts", _PER_PROMPT), ("methods", _PER_METHOD)):
        table = entry.get(kind)
        if not isinstance(table, dict) or not table:
            raise LockFileError(f"{path}: entry {key!r} has no {kind}.", hint="Re-lock it with `promptsel lock`.")
        for name, item in table.items():
            _check_fields(path, key, f"{kind}.{name}", item, fields)
    for method, item in entry["methods"].items():
        if item["chosen"] not in entry["prompts"]:
            raise LockFileError(f"{path}: entry {key!r}: {method} chose {item['chosen']!r}, which is not one of its prompts.",
                                hint="Re-lock it with `promptsel lock`.")


def read_lock(path: Path) -> dict[str, Any]:
    """Read and check a lock; every problem is one :class:`LockFileError` naming the file."""
    if not path.is_file():
        raise LockFileError(f"No lock file at {path}.",
                            hint="Create it with `promptsel lock --dataset NAME --prompts FILE` and commit it.")
    try:
        lock = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LockFileError(f"{path} is not a valid lock file ({exc}).",
                            hint="Restore it from git (a merge conflict?) or write a new one with `promptsel lock`.") from exc
    if not isinstance(lock, dict) or not isinstance(lock.get("entries"), dict):
        raise LockFileError(f"{path} is not a promptsel lock file (no 'entries' table).")
    if lock.get("lock_version") != LOCK_VERSION:
        raise LockFileError(f"{path} has lock_version {lock.get('lock_version')!r}; this promptsel reads version {LOCK_VERSION}.",
                            hint="Write it again with `promptsel check --update`, or use the promptsel that wrote it.")
    for key, entry in lock["entries"].items():
        _check_entry(path, key, entry)
    return lock


def lock_selection(req: SelectRequest, lock_path: Path, progress: Progress | None = None) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``promptsel lock``: run the selection and write (or replace) its entry in the lock,
    keeping the other entries. An existing lock that cannot be read is an error before the
    run, never silently overwritten."""
    lock = read_lock(lock_path) if lock_path.exists() else new_lock()
    key, entry, report = run_entry(req, lock_path.parent, progress)
    lock["entries"][key] = entry
    write_lock(lock_path, lock)
    return key, entry, report
