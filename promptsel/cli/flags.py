"""The options of ``select``, ``lock`` and ``embed`` (and the few that ``validate``, ``check``
and ``plot`` share with them), generated from their one declaration: the request's fields and
the option groups that plugins register (:mod:`promptsel.model.request`).

typer builds a command from its function's signature, so :func:`with_flags` gives a command
function a generated ``__signature__``: one ``Annotated[..., typer.Option(...)]`` parameter per
flag, where the function has its ``request`` (or ``flags``) parameter. Typer then parses and
checks the flags (choices, bounds, environment variables) and the wrapper hands the function
the request they describe.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import UsageError
from ..model.request import SelectRequest
from ..options import ENV_PREFIX as ENV
from ..options import FieldFlag, OptionGroup

#: The arguments of this invocation (``main`` sets ``argv``), for the report's run record.
INVOCATION: dict[str, list[str]] = {}


#: ``--help`` in panels (issue 23: one panel of 40 options). A request field's panel; a field of a
#: plugin's option group goes to a panel named after the group's owner (FUTE).
DATA, MODEL, METHODS, OUTPUT, ADAPTIVE = "Data", "Model", "Methods", "Output", "Adaptive evaluation"
PANELS = {
    **dict.fromkeys(("dataset", "prompts", "split", "limit", "data_dir", "max_chars", "scores", "fields", "label_field",
                     "classes"), DATA),
    **dict.fromkeys(("backend", "model", "model_args", "jobs", "mode", "aggregate", "spell_text", "max_new_tokens",
                     "cache"), MODEL),
    **dict.fromkeys(("methods", "method_options", "metric", "ndcg", "calibrate", "recommend", "bootstrap", "seed", "holdout",
                     "baseline"), METHODS),
    **dict.fromkeys(("adaptive", "epsilon", "delta", "max_inputs", "round_size"), ADAPTIVE),
    **dict.fromkeys(("save_scores", "log_samples"), OUTPUT),
}


def panel_of(spec: FieldFlag, groups: Sequence[type[OptionGroup]] = ()) -> str:
    if spec.field in PANELS:
        return PANELS[spec.field]
    import dataclasses

    for group in groups:
        if spec.field in {f.name for f in dataclasses.fields(group)}:
            return f"{getattr(group, 'owner', group.group_id)} options"
    return "Other options"


def parameter(spec: FieldFlag, panel: str | None = None) -> inspect.Parameter:
    """The typer parameter of one flag: its names, environment variable, help, bounds, default,
    and its help panel. An on/off flag shows no ``<bool>``: it takes no value."""
    flag = spec.flag
    option = typer.Option(*flag.names, envvar=flag.envvar, help=flag.help, min=spec.minimum, max=spec.maximum,
                          rich_help_panel=panel, metavar="" if spec.type is bool else None)
    return inspect.Parameter(flag.param, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=spec.default,
                             annotation=Annotated[_cli_type(spec.type), option])


def _cli_type(kind: Any) -> Any:
    # ``X | None`` as typer reads it best: Optional[X].
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return Optional[inner]
    return kind


def with_flags(command: str, groups: Sequence[type[OptionGroup]] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: the flags ``command`` takes go into the function's signature where it has a
    ``request`` parameter, which then receives the :class:`SelectRequest` they describe, or a
    ``flags`` parameter, which receives their values by field name (for a command that makes
    no request); a function with neither is returned as it is. With ``--scores``, flags that
    say how the model runs are refused."""
    specs = SelectRequest.flags(command, groups)

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = inspect.signature(fn, eval_str=True)
        marker = next((name for name in ("request", "flags") if name in own.parameters), None)
        if marker is None:  # a command without the request's flags
            return fn
        params = [new for p in own.parameters.values()
                  for new in ([parameter(s, panel_of(s, groups)) for s in specs] if p.name == marker else [p])]
        if "ctx" not in own.parameters:
            params.insert(0, inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context))

        # No annotations here: typer reads the generated signature below, never these.
        def run(ctx, **kwargs):
            values = {s.flag.param: kwargs.pop(s.flag.param) for s in specs}
            if marker == "request":
                if values.get("scores") is not None:
                    refuse_with_scores(ctx, specs)
                kwargs["request"] = SelectRequest.from_flags(values, groups, command=INVOCATION.get("argv"))
            else:
                kwargs["flags"] = {s.field: s.flag.convert(values[s.flag.param]) if s.flag.convert else values[s.flag.param]
                                   for s in specs}
            if "ctx" in own.parameters:
                kwargs["ctx"] = ctx
            return fn(**kwargs)

        functools.update_wrapper(run, fn, assigned=("__module__", "__name__", "__qualname__", "__doc__"), updated=())
        # Without __wrapped__, inspect and typing read this function and its signature below,
        # not the wrapped function's own signature and module.
        del run.__wrapped__
        run.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
        return run

    return wrap


def refuse_with_scores(ctx: typer.Context, specs: Sequence[FieldFlag]) -> None:
    """Flags that say how the model runs or the data loads mean nothing with ``--scores`` (no
    backend, no data file): given on the command line, they are an error, in the order typed."""
    model = {s.flag.param: s.flag.names[0] for s in specs if s.flag.model}
    # ctx.params holds the flags given on the command line first, in the order they were typed.
    # Sources are compared by name: typer may run on a vendored click whose enum is not click's.
    given = [model[name] for name in ctx.params
             if name in model and getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"]
    if given:
        raise UsageError(f"{', '.join(given)} cannot apply with --scores: the scores file already holds the model's log-probs.",
                         hint="Leave them out, or run with --dataset and --prompts instead of --scores.")


# --- options of the commands themselves, not of the request ------------------------------------
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", envvar=ENV + "NO_PROGRESS", help="Hide progress bars.", metavar="",
                                             rich_help_panel=OUTPUT)]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", envvar=ENV + "QUIET", help="Print no table (the recommendation and its warnings stay).",
                                        metavar="", rich_help_panel=OUTPUT)]
TopOpt = Annotated[Optional[int], typer.Option("--top", min=1, envvar=ENV + "TOP", help="Show only the first N prompts of the table (all are in -o files).",
                                               rich_help_panel=OUTPUT)]
SortOpt = Annotated[str, typer.Option("--sort", envvar=ENV + "SORT", help="Order of the prompts: performance (best first; without labels the recommending rule's scores), a method's name (its scores), or file.",
                                      rich_help_panel=OUTPUT)]
LockOpt = Annotated[Path, typer.Option("--lock", envvar=ENV + "LOCK", help="The lock file (commit it).")]


def progress(console: Any, no_progress: bool, long_run: Callable[..., str | None] | None = None) -> Any:
    """Progress on the console, or none with ``--no-progress``."""
    from ..formats.terminal import RichProgress

    return None if no_progress else RichProgress(console, long_run=long_run)
