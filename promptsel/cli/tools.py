"""The commands around a run: ``expand`` a prompt set into variants, ``validate`` a prompt set
or probe a backend, ``plot`` the stored task embeddings, list ``plugins`` and registered names, inspect or clear the ``cache``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from ..errors import UsageError
from .flags import ENV

JsonOpt = Annotated[bool, typer.Option("--json", help="Write JSON to stdout.")]


def cache_app() -> typer.Typer:
    cache = typer.Typer(help="Inspect or clear the result cache.", no_args_is_help=True)
    cache.command("info")(cache_info)
    cache.command("clear")(cache_clear)
    return cache


def validate(
    prompts: Annotated[Optional[Path], typer.Argument(help="Prompt-set TOML file.")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", envvar=ENV + "DATASET", help="Check placeholders and classes against this dataset.")] = None,
    split: Annotated[Optional[str], typer.Option("--split", envvar=ENV + "SPLIT", help="For a named dataset: the split the prompts will be run on.")] = None,
    backend: Annotated[Optional[str], typer.Option("--backend", "-b", help="Probe this backend: prompt log-probs, determinism, an obvious example, which methods it can serve.")] = None,
    *,
    flags: dict[str, Any],  # the model's and a local file's flags: generated (flags.with_flags)
    as_json: Annotated[bool, typer.Option("--json", help="Write the probe's result as JSON to stdout.")] = False,
) -> None:
    """Check a prompt set (and that it fits a dataset), or probe a backend, before any long run."""
    if prompts is None and backend is None:
        raise UsageError("validate needs a prompt-set file, --backend NAME, or both.")
    from .. import formats
    from ..formats.messages import print_valid, stderr

    if prompts is not None:
        from ..selection.validation import validate_prompt_set, validation_target

        target = None if dataset is None else validation_target(
            dataset, fields=flags["fields"], label_field=flags["label_field"], split=split, classes=flags["classes"])
        print_valid(prompts, validate_prompt_set(prompts, target), dataset, stderr())
    if backend is None:
        return
    from ..formats.terminal import print_probe
    from ..model.request import backend_args
    from ..selection.inputs import make_backend
    from ..selection.probe import probe

    instance = make_backend(backend, flags["model"], backend_args(flags["model_args"], flags["jobs"]))
    try:
        result = probe(instance)
    finally:
        instance.close()
    if as_json:
        formats.print_json("validate", result)
    print_probe(result, stderr())
    if result.failed:
        raise typer.Exit(1)


def expand(
    prompts: Annotated[Path, typer.Argument(help="Prompt-set TOML file to expand.")],
    output: Annotated[Path, typer.Option("--output", "-o", envvar=ENV + "EXPAND_OUTPUT", help="Prompt-set TOML file to write: the originals and their variants.")],
    axes: Annotated[Optional[list[str]], typer.Option("--axes", envvar=ENV + "AXES", help="Axes to vary, comma-separated or repeated; default: all (labels, field_name, casing, separator, answer_prefix, spacing, order, instruction, wrapping).")] = None,
    n: Annotated[int, typer.Option("--n", envvar=ENV + "EXPAND_N", min=1, help="Variants per prompt (fewer when the axes allow fewer distinct ones).")] = 10,
    grammar: Annotated[Optional[list[Path]], typer.Option("--grammar", envvar=ENV + "GRAMMAR", help="A grammar TOML file whose values are added to the shipped ones (repeatable).")] = None,
    *,
    flags: dict[str, Any],  # --seed: generated (flags.with_flags)
    as_json: Annotated[bool, typer.Option("--json", help="Write a summary as JSON to stdout.")] = False,
) -> None:
    """Write variants of each prompt along named axes (label words, field names, separators, spacing, order, wrapping), each naming its parent."""
    from .. import formats
    from ..formats.messages import print_expanded, stderr
    from ..model.request import names
    from ..selection.expansion import expand_file

    formats.check_writable([output])
    summary = expand_file(prompts, output, axes=names(axes), n=n, seed=flags["seed"], grammar_files=list(grammar or []))
    if as_json:
        formats.print_json("expand", summary)
    print_expanded(summary, stderr())


def plot(
    output: Annotated[Path, typer.Option("--output", "-o", envvar=ENV + "PLOT_OUTPUT", help="PNG file to write.")] = Path("promptsel-map.png"),
    projection: Annotated[Literal["pca", "tsne"], typer.Option("--projection", envvar=ENV + "PROJECTION", help="PCA (distances kept) or t-SNE (neighbours kept).")] = "pca",
    embedder: Annotated[Optional[str], typer.Option("--embedder", "-e", envvar=ENV + "PLOT_EMBEDDER", help="Only this embedder's panel.")] = None,
    task: Annotated[Optional[str], typer.Option("--task", envvar=ENV + "PLOT_TASK", help="Only this task (e.g. sentiment, nli).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", envvar=ENV + "PLOT_MODEL", help="Only this LLM's model task embeddings.")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", envvar=ENV + "PLOT_DATASET", help="Only this dataset's embedding and the prompts of its task.")] = None,
    title: Annotated[Optional[str], typer.Option("--title", envvar=ENV + "PLOT_TITLE", help="Figure title.")] = None,
    *,
    flags: dict[str, Any],  # --seed: generated (flags.with_flags)
    as_json: Annotated[bool, typer.Option("--json", envvar=ENV + "JSON", help="Write a summary as JSON to stdout.")] = False,
) -> None:
    """Draw the stored task embeddings (MTEs and DTEs) as a map: the paper's Figure 4."""
    from .. import formats

    formats.check_outputs("plot", [output])
    from .. import EmbeddingStore
    from ..formats.messages import print_map, stderr
    from ..formats.plot import filter_entries, plot_embeddings

    entries = filter_entries(EmbeddingStore().entries(), embedder=embedder, task=task, model=model, dataset=dataset)
    summary = plot_embeddings(entries, output, projection=projection, title=title, seed=flags["seed"])
    if as_json:
        formats.print_json("plot", summary)
    print_map(output, summary, stderr())


def plugins(
    as_json: JsonOpt = False,
    all_: Annotated[bool, typer.Option("--all/--no-all", help="Include the bundled plugins (--no-all: only third-party ones).")] = True,
) -> None:
    """List the loaded plugins, what they register, and any that failed to load."""
    from .. import formats
    from ..plugins import plugin_rows

    rows = plugin_rows(include_builtin=all_)
    if as_json:
        formats.print_json("plugins", rows)
        return
    from ..formats.messages import stderr
    from ..formats.terminal import print_plugins

    print_plugins(rows, stderr())


def list_(kind: Annotated[Literal["methods", "backends", "datasets", "embedders"], typer.Argument(help="What to list.")]) -> None:
    """List registered methods, backends, datasets or embedders."""
    from ..formats.messages import print_registry
    from ..plugins import registry_rows

    print_registry(registry_rows(kind))


def cache_info(as_json: JsonOpt = False) -> None:
    """Where the cache is and what it holds."""
    from .. import formats
    from ..formats.messages import print_cache_info
    from ..selection.cache import Cache

    info = Cache().info()
    if as_json:
        formats.print_json("cache", info)
        return
    print_cache_info(info)


def cache_clear(
    all_: Annotated[bool, typer.Option("--all", help="Also remove the downloaded models and archives and the task embeddings.")] = False,
) -> None:
    """Delete every cached result (and with --all everything else promptsel keeps)."""
    from ..formats.messages import print_cache_cleared
    from ..selection.cache import Cache

    print_cache_cleared(Cache().clear(all=all_))
