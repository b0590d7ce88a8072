"""``select``, ``lock`` and ``embed``: the commands that build a request from their flags and run it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import UsageError
from ..model.request import SelectRequest, names
from .flags import ENV, OUTPUT, LockOpt, NoProgressOpt, QuietOpt, SortOpt, TopOpt, progress

#: A select run expected to take longer than this without --limit is told how to try a sample first.
LONG_RUN_SECONDS = 15 * 60
#: What that sample should take.
SAMPLE_SECONDS = 5 * 60
#: A run of at least this many prompts (a set of variants, ``promptsel expand``) that takes longer
#: than SAMPLE_SECONDS is told about ``--adaptive``.
MANY_PROMPTS = 50
#: What the command line says of ``--adaptive`` to a long run of many prompts.
ADAPTIVE_HINT = ("With {prompts} prompts, --adaptive would score every prompt on a few inputs first and stop scoring "
                 "those that are surely worse, often for a fraction of the cells (add it; it works with --holdout too).")


def select(
    ctx: typer.Context,
    request: SelectRequest,
    as_json: Annotated[bool, typer.Option("--json", envvar=ENV + "JSON", help="Write the JSON report to stdout.", metavar="", rich_help_panel=OUTPUT)] = False,
    output: Annotated[Optional[list[Path]], typer.Option("--output", "-o", envvar=ENV + "OUTPUT", help="Write the report to FILE (.json, .md, .html or .csv, one row per prompt, by extension; repeatable).", rich_help_panel=OUTPUT)] = None,
    top: TopOpt = None,
    sort: SortOpt = "performance",
    no_progress: NoProgressOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Score every prompt with every method and show which prompt each method picks."""
    from .. import formats

    formats.check_outputs("select", list(output or []))
    if request.log_samples is not None and request.log_samples.suffix.lower() != ".jsonl":
        raise UsageError(f"--log-samples {request.log_samples}: the sample log is JSON Lines.",
                         hint=f"Name it {request.log_samples.with_suffix('.jsonl').name}.")
    formats.check_writable([p for p in (request.log_samples, request.save_scores) if p is not None])
    from ..formats.messages import print_wrote, stderr
    from ..formats.terminal import print_answer, print_recommendation, print_report, sorted_prompts
    from ..selection.run import run_select

    if sort not in ("performance", "file") and request.methods and sort not in request.methods:
        raise UsageError(f"--sort {sort}: not one of the methods asked for ({', '.join(request.methods)}).",
                         hint="Use performance, file or one of those methods.")
    console = stderr()
    report, _ = run_select(request, progress=progress(console, no_progress, _long_run_advice(ctx, request.limit)))
    sorted_prompts(report, sort)  # a --sort that names no method of the run: said before any output
    if as_json:
        formats.print_json("select", report)
    for path in output or []:
        formats.write("select", report, path)
    for path in [*(output or []), *(p for p in (request.log_samples, request.save_scores) if p is not None)]:
        print_wrote(path, console)
    if not quiet:
        print_report(report, console, top=top, sort=sort)  # its last line is the recommendation
        return
    print_recommendation(report, console)  # -q: no tables; the answer and what weakens it stay
    if report.get("warnings"):
        print_answer(report, console)


def lock(
    request: SelectRequest,
    lock_file: LockOpt = Path("promptsel.lock"),
    no_progress: NoProgressOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run the selection and record it in the lock file that [b]promptsel check[/b] compares against."""
    from ..formats.messages import print_locked, stderr
    from ..formats.terminal import print_report
    from ..gate.entry import lock_selection

    console = stderr()
    key, _, report = lock_selection(request, lock_file, progress(console, no_progress))
    if not quiet:
        print_report(report, console)
    print_locked(key, lock_file, console)


def embed(
    dataset: Annotated[list[str], typer.Option("--dataset", "-d", envvar=ENV + "DATASET", help="Named dataset whose train split gets a dataset task embedding (repeatable).")],
    prompts: Annotated[Optional[Path], typer.Option("--prompts", "-p", envvar=ENV + "PROMPTS", help="Prompt-set TOML file: one model task embedding per prompt.")] = None,
    embedders: Annotated[Optional[list[str]], typer.Option("--embedders", "-e", envvar=ENV + "EMBEDDERS", help="Embedders, comma-separated; default: all (see [b]promptsel list embedders[/b]).")] = None,
    dte_only: Annotated[bool, typer.Option("--dte-only", envvar=ENV + "DTE_ONLY", help="Only the dataset embeddings (no LLM runs).")] = False,
    *,
    request: SelectRequest,  # the request's flags: generated (flags.with_flags)
    as_json: Annotated[bool, typer.Option("--json", envvar=ENV + "JSON", help="Write the record of embeddings as JSON to stdout.")] = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Precompute FUTE's task embeddings (MTEs per prompt, DTEs per dataset) into the store."""
    from .. import embed as run_embed
    from .. import formats
    from ..formats.messages import stderr
    from ..formats.terminal import print_embeddings

    console = stderr()
    result = run_embed(dataclasses.replace(request, prompts=prompts), dataset, names(embedders), dte_only=dte_only,
                       progress=progress(console, no_progress))
    if as_json:
        formats.print_json("embed", result)
    print_embeddings(result, console)


def _long_run_advice(ctx: typer.Context, limit: int | None) -> Any:
    """The advice for a long run without --limit: the same command with a --limit that fits."""

    def sample(seconds: float, plan: Any) -> str | None:
        if limit is not None or seconds <= LONG_RUN_SECONDS or plan.inputs < 100:
            return None
        n = max(50, int(plan.inputs * SAMPLE_SECONDS / seconds) // 50 * 50)
        if n >= plan.inputs:
            return None
        return (f"That is over {LONG_RUN_SECONDS // 60} min. To try a seeded, class-stratified sample of {n} inputs first "
                f"(about {max(1, round(seconds * n / plan.inputs / 60))} min), stop with Ctrl-C (what is done stays cached) "
                f"and run: {_command_line(ctx, ['--limit', str(n)])}")

    def advice(seconds: float, plan: Any) -> str | None:
        adaptive = ADAPTIVE_HINT.format(prompts=plan.prompts) if plan.prompts >= MANY_PROMPTS and seconds > SAMPLE_SECONDS else None
        return " ".join(part for part in (sample(seconds, plan), adaptive) if part) or None

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
        words += [a for item in (value if isinstance(value, (list, tuple)) else [value]) for a in (flag, str(item))]
    return shlex.join(words + extra)
