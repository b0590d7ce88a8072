"""``diff``: compare two runs (JSON reports or --save-scores files) prompt by prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from .flags import ENV, QuietOpt


def diff(
    a: Annotated[Path, typer.Argument(help="The first run: a --save-scores file (paired intervals) or a JSON report (summary numbers).", show_default=False)],
    b: Annotated[Path, typer.Argument(help="The second run, of the same prompts (matched by id).", show_default=False)],
    metric: Annotated[Literal["accuracy", "macro_f1"], typer.Option("--metric", envvar=ENV + "METRIC", help="What to compare score files on.")] = "accuracy",
    top: Annotated[Optional[int], typer.Option("--top", min=1, help="Show only the N prompts that changed most.")] = None,
    seed: Annotated[int, typer.Option("--seed", envvar=ENV + "SEED", help="Seed of the paired bootstrap.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", envvar=ENV + "JSON", help="Write the comparison as JSON to stdout.")] = False,
    output: Annotated[Optional[list[Path]], typer.Option("--output", "-o", envvar=ENV + "DIFF_OUTPUT", help="Write the comparison to FILE (.json, .md or .html; repeatable).")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Compare two runs: did the choice change, which prompts changed measurably (paired intervals), rank correlation."""
    from .. import formats

    formats.check_outputs("diff", list(output or []))
    from ..formats.messages import print_wrote, stderr
    from ..formats.terminal import print_diff
    from ..gate.rundiff import diff_runs, load_side

    result = diff_runs(load_side(a, metric), load_side(b, metric), seed=seed)
    console = stderr()
    if as_json:
        formats.print_json("diff", result)
    for path in output or []:
        formats.write("diff", result, path)
        print_wrote(path, console)
    print_diff(result, console, top=top, quiet=quiet)
