"""What a user asks for, before anything is loaded: the request, its scoring options, and the
option groups that plugins add to it.

Typed options (:mod:`promptsel.options`): a ``Literal`` field accepts only its choices, bounds
are checked, and every instance is checked once, when it is made, whether the command line, a
lock file or code made it. A field that the command line sets declares its flag here, and the
command line is generated from these declarations (``promptsel.cli``). Cheap to import: the
command line reads this module before ``--help`` returns.
"""

from __future__ import annotations

import dataclasses
import json
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from ..options import (
    MODEL_COMMANDS,
    FieldFlag,
    Flag,
    OptionGroup,
    Options,
    field_flags,
    from_flags,
    option,
    pairs,
    scoped_pairs,
)

Metric = Literal["accuracy", "macro_f1"]
#: ``minmax`` relevance, ``raw`` performance, or the formula of the FUTE paper's code (a value
#: users type and reports record, so it keeps its name).
NdcgVariant = Literal["minmax", "raw", "fute"]
Calibration = Literal["none", "cc", "pmi", "cbm"]
ScoringMode = Literal["full", "first_token"]
Aggregate = Literal["sum", "max"]
SpellText = Literal["template", "prompt", "chat"]

G = TypeVar("G", bound=OptionGroup)

#: The commands that run a selection (``select`` alone also reads and writes score files).
RUN = ("select", "lock")
#: ``--spell-on``'s words for the texts SPELL scores.
SPELL_ON = {"raw": "template", "prompt": "prompt"}


def names(values: Iterable[str] | None) -> list[str] | None:
    """Names given comma-separated, repeated, or both; None when none are."""
    out = [m.strip() for v in values or [] for m in v.split(",") if m.strip()]
    return out or None


def model_args(values: list[str] | None) -> dict[str, Any]:
    """``-M KEY=VALUE`` pairs: numbers, booleans and lists read as JSON, anything else a string."""
    out: dict[str, Any] = {}
    for key, value in pairs(values, "-M/--model-arg").items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def backend_args(model_args: Mapping[str, Any], jobs: int | None) -> dict[str, Any]:
    """What a backend is made with: the model arguments, and ``--jobs`` as its concurrency."""
    return dict(model_args) if jobs is None else {**model_args, "concurrency": jobs}


def _method_args(values: list[str] | None) -> dict[str, dict[str, str]]:
    return scoped_pairs(values, "--method-arg", "locale.negate=true")


def _fields(values: list[str] | None) -> dict[str, str]:
    return pairs(values, "--field")


def _classes(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",")] if value else None


@dataclass(frozen=True)
class ScoringOptions(Options):
    """How prompts are scored. Every field is in the cache and embedding keys."""

    owner: ClassVar[str] = "scoring"

    #: ``full``: the whole label word; ``first_token``: its first token only (FUTE's code).
    mode: ScoringMode = option("full", flag=Flag("--scoring", model=True, help="Score the full label word or only its first token."))
    #: How a class's label words combine: ``sum`` of probabilities (logsumexp) or ``max``.
    aggregate: Aggregate = option("sum", flag=Flag(
        "--aggregate", model=True, help="Combine a class's label words by summing probabilities or taking the max."))
    #: What SPELL scores (``--spell-on``): ``template`` (``raw``), the instantiated template alone;
    #: ``prompt``, the template's tokens where the model sees them, after the system turn and the
    #: chat header (read from the label-scoring pass); ``chat``, the whole chat-formatted first
    #: turn (FUTE's code). The texts differ, so each has its own cache entries.
    spell_text: SpellText = option("template", flag=Flag(
        "--spell-on", model=True, type=Literal["raw", "prompt"] | None, default=None, convert=SPELL_ON.get,
        help="What SPELL scores: raw, the instantiated template alone (default; a pass of its own); prompt, the template's "
             "tokens where the model sees them, after the system turn (read from the label-scoring pass)."))
    #: Bound on the reasoning generated for CoT prompts.
    max_new_tokens: int = option(64, minimum=1, flag=Flag(
        "--max-new-tokens", model=True, help="Bound on the reasoning generated for CoT prompts."))

    #: Fields that change only ``prompt_nll`` (SPELL), never a class log-prob.
    NLL_ONLY: ClassVar[frozenset[str]] = frozenset({"spell_text"})

    def label_identity(self) -> dict[str, Any]:
        """The fields that can change a class log-prob (FUTE's model task embeddings use these)."""
        return {k: v for k, v in self.identity().items() if k not in self.NLL_ONLY}


@dataclass(frozen=True)
class SelectRequest(Options):
    """Everything a user asked for, as given (paths, names, options); nothing loaded yet.

    The fields are in the order ``--help`` lists their flags; the scoring options' flags come at
    ``scoring``, the registered option groups' at ``groups``.
    """

    owner: ClassVar[str] = "request"

    dataset: str | None = option(None, flag=Flag(
        "--dataset", "-d", commands=RUN,
        help="A named dataset (see [b]promptsel list datasets[/b]) or a local .jsonl/.csv/.tsv file."))
    prompts: Path | None = option(None, flag=Flag("--prompts", "-p", commands=RUN, help="Prompt-set TOML file."))
    backend: str = option("llamacpp", flag=Flag("--backend", "-b", model=True, help="LLM backend (see [b]promptsel list backends[/b])."))
    model: str | None = option(None, flag=Flag(
        "--model", commands=(*MODEL_COMMANDS, "validate"), model=True,
        help="Model path or id for the backend; default: the embedded SmolLM2-135M-Instruct."))
    #: Backend options (``-M KEY=VALUE``), checked by the backend.
    model_args: dict[str, Any] = option(factory=dict, flag=Flag(
        "--model-arg", "-M", commands=(*MODEL_COMMANDS, "validate", "check"), env="MODEL_ARGS", type=list[str] | None,
        default=None, convert=model_args, model=True, help="Backend option KEY=VALUE (repeatable), e.g. -M n_threads=2."))
    #: Requests in flight at once: the backend's ``concurrency`` (see :attr:`backend_args`).
    jobs: int | None = option(None, minimum=1, flag=Flag(
        "--jobs", "-j", commands=(*RUN, "validate"), model=True,
        help="Requests in flight at once, for backends that talk to a server (openai)."))
    methods: list[str] | None = option(None, flag=Flag(
        "--methods", "-m", commands=RUN, type=list[str] | None, convert=names,
        help="Methods to run, comma-separated or repeated; default: every label-free method the backend allows; FUTE methods "
             "(fute-taskemb, fute-tupate) when named; all: everything."))
    #: method id -> its options as given (``-O locale.negate=true``).
    method_options: dict[str, dict[str, Any]] = option(factory=dict, flag=Flag(
        "--method-arg", "-O", commands=RUN, env="METHOD_ARGS", type=list[str] | None, default=None, convert=_method_args,
        help="Method option ID.KEY=VALUE (repeatable), e.g. -O locale.negate=true, -O zps-log.filter=false, "
             "-O self-select.permutations=3."))
    split: str | None = option(None, flag=Flag("--split", commands=RUN, help="Split to evaluate; default: the dataset's eval split."))
    limit: int | None = option(None, minimum=1, flag=Flag(
        "--limit", "-n", commands=RUN, model=True, help="Use a seeded, class-stratified sample of N examples."))
    seed: int = option(0, minimum=0, maximum=2**32 - 1, flag=Flag(
        "--seed", commands=(*MODEL_COMMANDS, "plot", "expand"), help="Seed for sampling, seeded methods and FUTE's training."))
    data_dir: str | None = option(None, flag=Flag(
        "--data-dir", commands=(*MODEL_COMMANDS, "check"), help="Directory with <name>/<split>.jsonl files."))
    #: Truncate each input text to this many characters at a word boundary (long reviews).
    max_chars: int | None = option(None, minimum=1, flag=Flag(
        "--max-chars", commands=RUN, model=True,
        help="Cut each input text to N characters at a word boundary (long reviews on a CPU)."))
    scores: Path | None = option(None, flag=Flag(
        "--scores", commands=("select",), help="Rank prompts from log-probs computed elsewhere (.npz); no backend runs."))
    save_scores: Path | None = option(None, flag=Flag(
        "--save-scores", commands=("select",), help="Write the ScoreTable to this .npz file."))
    metric: Metric = option("accuracy", flag=Flag("--metric", commands=RUN, help="Performance metric."))
    ndcg: NdcgVariant = option("minmax", flag=Flag(
        "--ndcg", commands=RUN, help="NDCG variant: minmax relevance (default), raw accuracy, or the FUTE code's formula."))
    scoring: ScoringOptions = option(factory=ScoringOptions)
    #: For local data files: template field -> column, the label column and the classes.
    fields: dict[str, str] = option(factory=dict, flag=Flag(
        "--field", commands=(*RUN, "validate"), env="FIELDS", type=list[str] | None, default=None, convert=_fields, model=True,
        help="For a local file: template field NAME=COLUMN (repeatable)."))
    label_field: str = option("label", flag=Flag(
        "--label-field", commands=(*RUN, "validate"), model=True, help="For a local file: the label column."))
    classes: list[str] | None = option(None, flag=Flag(
        "--classes", commands=(*RUN, "validate"), type=str | None, convert=_classes, model=True,
        help="For a local file: the classes, comma-separated, in order."))
    #: The settings of the option groups plugins registered (``request.group(cls)``).
    groups: tuple[OptionGroup, ...] = ()
    #: Divide each prompt's class prior out before every method.
    calibrate: Calibration = option("none", flag=Flag(
        "--calibrate", commands=RUN,
        help="Divide each prompt's class prior out before every method: cc (content-free inputs, Zhao et al.), pmi (the "
             "empty input, as UPS), cbm (the mean over the evaluation inputs, as UPS), or none."))
    #: The label-free rule that recommends without labels (a method or ``consensus``); None:
    #: the default for the calibration (``promptsel.selection.recommend.DEFAULT_RULES``).
    recommend: str | None = option(None, flag=Flag(
        "--recommend", commands=RUN,
        help="The label-free rule that recommends a prompt without labels: a method or consensus; default: consensus "
             "(zps-log when calibrated), from bench/RESULTS.md."))
    #: Bootstrap resamples of the examples for intervals and stability.
    bootstrap: int = option(1000, minimum=10, flag=Flag(
        "--bootstrap", commands=RUN, help="Bootstrap resamples of the examples for the recommendation's intervals and stability."))
    #: Hold this share of the examples out of the choice (seeded, class-stratified) and report the
    #: chosen prompt's performance on them (``promptsel.selection.holdout``).
    holdout: float | None = option(None, minimum=0.01, maximum=0.99, flag=Flag(
        "--holdout", commands=("select",),
        help="Choose on the rest of the examples and confirm on this share of them, held out (seeded, class-stratified): the "
             "chosen prompt's held-out performance beside the best original prompt's, with the paired interval of the difference."))
    #: The prompt ``--holdout`` compares the chosen one with; None: the best original (a prompt
    #: without a parent) on the choosing part.
    baseline: str | None = option(None, flag=Flag(
        "--baseline", commands=("select",),
        help="With --holdout: the prompt to compare the chosen one with (default: the best original, unexpanded prompt)."))
    cache: bool = option(True, flag=Flag(
        "--no-cache", commands=RUN, default=False, convert=operator.not_, model=True,
        help="Do not read or write the result cache (recompute everything)."))
    #: Write one JSON line per evaluation example (inputs, gold label, every prompt's prediction).
    log_samples: Path | None = option(None, flag=Flag(
        "--log-samples", commands=("select",),
        help="Write one JSON line per example to FILE.jsonl: its id, input and its hash, gold label, and every prompt's "
             "predicted class, class probabilities and whether it is correct."))
    #: ``--adaptive`` (issue 21): score in seeded rounds and stop when the best prompt is known
    #: (``promptsel.selection.adaptive``); accuracy with labels only.
    adaptive: bool = option(False, flag=Flag(
        "--adaptive", commands=RUN,
        help="Score in seeded rounds (a random order of the inputs from --seed) and stop when the best prompt is known at "
             "confidence 1 - delta, to within epsilon (accuracy, with labels)."))
    epsilon: float = option(0.01, minimum=0.0, maximum=1.0, flag=Flag(
        "--epsilon", commands=RUN, help="With --adaptive: stop once the leader is surely within this much accuracy of the best."))
    delta: float = option(0.05, minimum=1e-9, maximum=0.5, flag=Flag(
        "--delta", commands=RUN, help="With --adaptive: the chance that the answer is more than epsilon below the best."))
    max_inputs: int | None = option(None, minimum=1, flag=Flag(
        "--max-inputs", commands=RUN, help="With --adaptive: read at most N inputs (a stop there carries no guarantee)."))
    round_size: int = option(10, minimum=1, flag=Flag(
        "--round-size", commands=RUN, help="With --adaptive: inputs per round (each round scores them on every surviving prompt)."))
    #: The command line that made this request (the CLI sets it; the report records it).
    command: list[str] | None = None

    #: The settings of an adaptive run (besides the seed, which orders its inputs).
    ADAPTIVE: ClassVar[tuple[str, ...]] = ("epsilon", "delta", "max_inputs", "round_size")

    @property
    def adaptive_settings(self) -> dict[str, Any] | None:
        """``--adaptive``'s settings as the lock and the run record keep them; None when not adaptive."""
        return {name: getattr(self, name) for name in self.ADAPTIVE} if self.adaptive else None

    @property
    def backend_args(self) -> dict[str, Any]:
        """The arguments the backend is made with (``-M``, and ``--jobs`` as its concurrency)."""
        return backend_args(self.model_args, self.jobs)

    def group(self, cls: type[G]) -> G:
        """This request's settings of option group ``cls``; its defaults when it has none."""
        return next((g for g in self.groups if isinstance(g, cls)), None) or cls()

    @classmethod
    def flags(cls, command: str, groups: Sequence[type[OptionGroup]] = ()) -> list[FieldFlag]:
        """The flags ``command`` takes, in the order of the fields (the scoring options' at
        ``scoring``, the option groups' at ``groups``)."""
        own = {spec.field: spec for spec in field_flags(cls, command)}
        out: list[FieldFlag] = []
        for f in dataclasses.fields(cls):
            if f.name == "scoring":
                out += field_flags(ScoringOptions, command)
            elif f.name == "groups":
                out += [spec for group in groups for spec in field_flags(group, command)]
            elif f.name in own:
                out.append(own[f.name])
        return out

    @classmethod
    def from_flags(cls, values: Mapping[str, Any], groups: Sequence[type[OptionGroup]] = (), **fixed: Any) -> SelectRequest:
        """The request a command's parsed flags describe (``values`` by parameter name; flags
        left at their defaults set nothing), with ``fixed`` fields that no flag sets. Then each
        option group adjusts it (a preset such as a compatibility switch)."""
        own, scoring = from_flags(cls, values), from_flags(ScoringOptions, values)
        chosen = tuple(group.parse(from_flags(group, values)) for group in groups)
        request = cls.parse({**own, **fixed, "scoring": ScoringOptions.parse(scoring), "groups": chosen})
        given = frozenset([*own, *(f"scoring.{name}" for name in scoring)])
        for group in chosen:
            request = group.adjust(request, given)
        return request
