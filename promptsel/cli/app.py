"""The ``promptsel`` command line: it parses options, calls the library and hands what comes back
to :mod:`promptsel.formats`, which prints and writes everything.

Machine output goes to stdout, people's output (tables, progress, errors) to stderr. Every
option has a ``PROMPTSEL_*`` environment variable. Errors end in one line and an exit code:
1 runtime, 2 usage; ``PROMPTSEL_DEBUG=1`` shows the traceback. ``check`` exits 100 on a
regression (``PROMPTSEL_FAILED_EXIT_CODE``), never for an error.

The options of ``select``, ``lock`` and ``embed`` are generated from the request's declaration
and the option groups plugins register (:mod:`.flags`); the commands live by group in
:mod:`.run`, :mod:`.check` and :mod:`.tools`. Only light modules are imported at start-up
(``--help`` stays fast); the library loads inside the commands.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from ..errors import PromptselError
from ..version import __version__
from . import check, diff, run, tools
from .flags import INVOCATION, with_flags

INTERRUPTED = 130  # the shell's code for a process ended by SIGINT


def _version(value: bool) -> None:
    if value:
        from ..formats.messages import print_version

        print_version(__version__)
        raise typer.Exit()


def _root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = None,
) -> None:
    """Pick the best zero-shot prompt for a model and a dataset, with or without labels."""


def build_app() -> typer.Typer:
    """The application: its commands, with the flags of every loaded plugin's option groups, and
    the commands plugins add."""
    from ..plugins import option_groups, register_commands

    app = typer.Typer(
        name="promptsel",
        help="Pick the best zero-shot prompt for a model and a dataset, with or without labels.",
        rich_markup_mode="rich",
        context_settings={"help_option_names": ["-h", "--help"]},
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    app.callback()(_root)
    groups = option_groups()
    for command in (run.select, run.embed, tools.expand, tools.plot, tools.validate, run.lock, check.check, diff.diff,
                    tools.plugins, tools.list_):
        app.command(command.__name__.rstrip("_"))(with_flags(command.__name__, groups)(command))
    app.add_typer(tools.cache_app(), name="cache")
    register_commands(app)
    return app


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # Plugin problems are the user's business, but as one readable line, not a code location.
    from ..formats.messages import print_warning

    print_warning(message)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app behind one error boundary."""
    import warnings

    # Recent typer vendors click; find its ClickException whichever click it runs on.
    click_exception = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    warnings.showwarning = _show_warning
    debug = os.environ.get("PROMPTSEL_DEBUG", "") not in ("", "0")
    INVOCATION["argv"] = list(sys.argv[1:] if argv is None else argv)
    try:
        command = typer.main.get_command(build_app())
        _no_bool_metavars(command)
        # Without standalone mode typer returns an exit code instead of exiting; Ctrl-C
        # (KeyboardInterrupt) arrives here as 130.
        code = command(args=argv, prog_name="promptsel", standalone_mode=False)
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
        ctx = getattr(exc, "ctx", None)
        if ctx is not None and exc.exit_code == 2:  # a usage error: one line, and where the options are
            message = exc.format_message().replace("Value error, ", "").rstrip()
            _fail(f"{message}{'' if message.endswith('.') else '.'} See {ctx.command_path} -h.", exc.exit_code)
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


def _no_bool_metavars(command) -> None:
    """On/off flags (``--json``, ``-q``, ``--help``) show no ``<bool>`` in the help: they take no
    value, and ``--json true`` would fail. Every command's flags, and its help option, which the
    command makes on first use and then keeps."""
    for param in command.params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    # The command's own context class: typer may run on a click of its own, not the installed one.
    helper = command.get_help_option(command.context_class(command, help_option_names=["-h", "--help"]))
    if helper is not None and helper.metavar is None:
        helper.metavar = ""
    for sub in (getattr(command, "commands", None) or {}).values():
        _no_bool_metavars(sub)


def _fail(message: str, code: int) -> None:
    from ..formats.messages import print_error

    print_error(message)
    sys.exit(code)
