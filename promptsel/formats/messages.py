"""The command line's short outputs: one-line confirmations, warnings and errors on stderr, and
the plain listings on stdout that scripts read (``list``, ``cache``, ``--version``).

Machine output goes to stdout, people's output to stderr. Text that may quote the user (paths,
names, messages) is printed as written, never read as rich markup.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def stderr():
    """The console for people's output (tables, progress, messages)."""
    from rich.console import Console

    return Console(stderr=True)


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def print_version(version: str) -> None:
    _out(f"promptsel {version}")


def print_valid(path: Path, prompts: Any, dataset: str | None, console) -> None:
    """``validate``: the prompt file is sound (and fits the dataset)."""
    from rich.text import Text

    cot = sum(p.cot for p in prompts.prompts)
    where = f" and fits dataset {dataset!r}" if dataset is not None else ""
    # One line whatever the width: a long path must not break it (a log, a test reading it).
    console.print(Text.assemble(("OK", "green"), f" {path}: {len(prompts.prompts)} prompts ({cot} CoT){where}."), soft_wrap=True)


def print_expanded(summary: dict[str, Any], console) -> None:
    """``expand``: what was written, and the prompts that got fewer variants than asked."""
    line = (f"Wrote {summary['path']}: {summary['originals']} originals and {summary['variants']} variants "
            f"along {', '.join(summary['axes'])} (seed {summary['seed']}).")
    console.print(line, highlight=False, markup=False, soft_wrap=True)
    if summary["short"]:
        console.print(f"Fewer than {summary['n']} distinct variants for: {', '.join(summary['short'])} "
                      "(their axes allow no more; add values with --grammar).", highlight=False, markup=False, soft_wrap=True)
    console.print(f"Next: promptsel validate {summary['path']}, then promptsel select --prompts {summary['path']} --holdout 0.5.",
                  highlight=False, markup=False, soft_wrap=True)


def print_locked(key: str, lock_file: Path, console) -> None:
    from rich.text import Text

    console.print(Text.assemble("Locked ", (key, "bold"), f" in {lock_file}."), soft_wrap=True)


def print_wrote(path: Path, console) -> None:
    """One line per file written, so a run that scrolled says where its outputs went."""
    console.print(f"Wrote {path}.", highlight=False, markup=False, soft_wrap=True)


def print_map(path: Path, summary: dict[str, Any], console) -> None:
    """``plot``: where the map went and what each panel holds."""
    panels = ", ".join(f"{p['embedder']} ({p['mtes']} MTEs, {p['dtes']} DTEs)" for p in summary["panels"])
    console.print(f"Wrote {path}: {panels}.", highlight=False, markup=False)


def print_registry(rows: list[tuple[str, tuple[str, ...], str]]) -> None:
    """``list``: one line per name, tab-separated from its detail."""
    for name, aliases, detail in rows:
        also = f" (aliases: {', '.join(aliases)})" if aliases else ""
        _out(f"{name}{also}\t{detail}")


def print_cache_info(info: dict[str, Any]) -> None:
    kinds = ", ".join(f"{k}: {v}" for k, v in sorted(info["kinds"].items())) or "empty"
    state = f"damaged ({info['damaged']}); promptsel cache clear removes it" if info["damaged"] else f"{info['entries']} entries ({kinds})"
    _out(f"{info['path']}\n{state}, {info['bytes'] / 1e6:.1f} MB")
    if info["stored"]:
        _out("Also kept: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in info["stored"].items()))


def print_cache_cleared(cleared: Any) -> None:
    if cleared.damaged:
        _out(f"Removed the damaged result cache ({cleared.damaged}).")
    else:
        _out(f"Removed {cleared.results} cached results.")
    for verb, items in (("Removed", cleared.removed), ("Kept", cleared.kept)):
        if items:
            _out(f"{verb}: " + ", ".join(f"{name} {size / 1e6:.1f} MB ({path})" for name, (path, size) in items.items()))
    if cleared.kept:
        _out("promptsel cache clear --all removes those too.")


def print_warning(message: Any) -> None:
    """A warning (a plugin that failed to load) as one readable line, not a code location."""
    sys.stderr.write(f"Warning: {message}\n")


def print_error(message: str) -> None:
    """One line on stderr; the message is printed as written (it may quote user text)."""
    try:
        from rich.text import Text

        stderr().print(Text.assemble(("Error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    except Exception:
        sys.stderr.write(f"Error: {message}\n")
