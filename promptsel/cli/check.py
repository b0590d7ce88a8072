"""``check``: rerun what the lock describes and fail on a regression (exit 100)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import UsageError
from .flags import ENV, LockOpt, NoProgressOpt, progress


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
    *,
    flags: dict[str, Any],  # -M and --data-dir: generated (flags.with_flags)
    no_cache: Annotated[bool, typer.Option("--no-cache", envvar=ENV + "NO_CACHE", help="Recompute everything (a cold check).")] = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Rerun what the lock describes; exit 100 if a prompt or a choice regressed past the tolerance."""
    from .. import formats
    from ..gate.policy import Floor, Policy, Tolerance, failed_exit_code

    failed_code = failed_exit_code()  # a bad PROMPTSEL_FAILED_EXIT_CODE is a usage error before any run
    policy = Policy(Tolerance.parse(tolerance), Floor.parse(floor))
    outputs = [(path, None) for path in output or []] + ([(junit, ".xml")] if junit is not None else [])
    for path, as_suffix in outputs:
        formats.check_outputs("check", [path], as_suffix)
    from ..formats.messages import stderr
    from ..formats.terminal import print_check
    from ..gate.check import run_check

    console = stderr()
    result = run_check(lock_file, prompts=prompts, dataset=dataset, model=model, model_args=flags["model_args"],
                       data_dir=flags["data_dir"], policy=policy, update=update, cache=not no_cache,
                       progress=progress(console, no_progress))
    for path, as_suffix in outputs:
        formats.write("check", result, path, as_suffix=as_suffix)
    print_check(result, console)
    if result.status == "not comparable":
        raise UsageError(f"{result.not_comparable[0].message}.",
                         hint="Use the locked model and data (--model, --data-dir), or accept them with promptsel check --update.")
    if result.status == "regressed":
        raise typer.Exit(failed_code)
