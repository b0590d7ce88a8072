"""The plugin surface of promptsel: seven registration hooks, each taking a ``register`` callback.

Every hook is called with keyword arguments only. An implementation may accept fewer arguments
than the spec lists (pluggy's opt-in arguments), so new arguments never break old plugins.
The reference page ``docs/hooks.md`` is generated from these docstrings (``python -m
promptsel.hookdoc``) and a test keeps the two in sync.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer

    from .registry import Registry

hookspec = pluggy.HookspecMarker("promptsel")
hookimpl = pluggy.HookimplMarker("promptsel")

#: ``register(cls, aliases=())``: records ``cls`` under its id attribute and any aliases.
Register = Callable[..., None]


@hookspec
def register_backends(register: Register) -> None:
    """Register LLM backends.

    Call ``register(BackendClass, aliases=("name", ...))`` once per backend class. The class
    subclasses :class:`promptsel.backend.Backend`, names itself in ``backend_id`` and declares
    ``capabilities``. Import heavy libraries inside the class, never at module import time,
    so that ``promptsel --help`` stays fast.

    :param register: records the backend under ``cls.backend_id`` and its aliases.
    """


@hookspec
def register_selectors(register: Register, embedders: Registry[Any]) -> None:
    """Register prompt-selection methods.

    Call ``register(SelectorClass, aliases=(...))``. The class subclasses
    :class:`promptsel.selector.Selector`, names itself in ``selector_id``, declares what it
    ``needs`` and returns one score per prompt (higher is better) from ``score``. Class
    attributes tell the rest of promptsel what the method is: ``default`` (in the default set,
    or only when named), ``bootstrap`` (``None`` when its scores are a function of the
    evaluation examples, otherwise why not), ``relative`` (why a prompt's score depends on the
    other prompts, if it does) and its ``Options`` dataclass. A method that has something to
    say about its own run (an embedding that did not learn) returns report warnings from the
    classmethod ``report_warnings(sections, method_id)``.

    A method that adds a section to the report (``context.sections[name]``) names it in
    ``report_section``: the report then always has that key (``null`` when the method did not
    run), and the terminal, Markdown and HTML reports show the lines its ``section_lines``
    classmethod makes of it.

    :param register: records the selector under ``cls.selector_id`` and its aliases.
    :param embedders: the registered FUTE embedders (already complete when this hook runs), for
        methods built on them: promptsel's own plugin registers FUTE's method for each.
    """


@hookspec
def register_embedders(register: Register) -> None:
    """Register task-embedding methods for FUTE.

    Call ``register(EmbedderClass, aliases=(...))``. The class subclasses
    :class:`promptsel.embedder.Embedder`, names itself in ``embedder_id``, declares its options
    in a nested ``Options`` dataclass and implements ``embed(surrogate, data, seed)``, which
    returns a 1-D vector and a record of the training (``data`` is a
    :class:`promptsel.surrogate.TaskData`: soft targets for a model task embedding, gold labels
    and a held-out slice for a dataset task embedding). For every embedder a FUTE method named
    after it becomes available to ``promptsel select``. Import torch inside ``embed``, not at
    module import time.

    :param register: records the embedder under ``cls.embedder_id`` and its aliases.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register named datasets.

    Call ``register(spec, aliases=(...))`` with a :class:`promptsel.model.data.DatasetSpec`: its
    fields, ordered classes, default eval and train splits and where its data can be found.

    :param register: records the dataset under ``spec.name`` and its aliases.
    """


@hookspec
def register_option_groups(register: Register) -> None:
    """Register option groups: settings that a family of methods shares, with their flags.

    Call ``register(GroupClass)``. The class is a frozen dataclass deriving from
    :class:`promptsel.options.OptionGroup` that names itself in ``group_id``; each field
    declared with ``option(default, flag=Flag("--name", help=...))`` becomes a flag of
    ``select``, ``lock`` and ``embed`` (or of the commands the flag names), with the
    environment variable ``PROMPTSEL_NAME``, the field's default, its bounds and, for a
    ``Literal``, its choices. The request carries the parsed group (``request.group(GroupClass)``);
    a lock records the fields that differ from their defaults under ``group_id``. ``adjust`` may
    change the request after parsing, for a switch that sets other options. This hook runs
    when the command line starts: keep the module that defines the class light.

    :param register: records the group under ``cls.group_id``.
    """


@hookspec
def register_prompt_grammar(register: Register) -> None:
    """Add values to the grammar that ``promptsel expand`` draws prompt variants from.

    Call ``register(table)`` with a mapping in the layout of the shipped grammar
    (``promptsel/assets/expand.toml``): ``axes`` (lists of separators, spacings, answer
    prefixes), ``field_names`` (placeholder -> names to write before it) and ``task`` (a list of
    tables with ``name``, ``classes``, ``answer_prefixes`` and ``verbalizers``, each verbalizer
    ``{name = ..., words = {class = [label words]}}``). Values are added to the shipped ones and
    to those of plugins registered before; nothing is removed. A dataset plugin uses it to ship
    the label words of its task; a task is matched to a prompt by its classes. A user adds a
    file of the same layout with ``promptsel expand --grammar FILE``.

    :param register: records one grammar table (called as often as the plugin likes).
    """


@hookspec
def register_commands(cli: typer.Typer) -> None:
    """Add subcommands to the ``promptsel`` command line.

    Decorate functions with ``@cli.command()``; keep the import of anything heavy inside them.

    :param cli: the root typer application.
    """


def spec_names() -> list[str]:
    """The hook names, in the order they are documented."""
    return [name for name, obj in globals().items() if callable(obj) and _is_spec(obj)]


def _is_spec(obj: Any) -> bool:
    return hasattr(obj, "promptsel_spec")
