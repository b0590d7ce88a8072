"""``promptsel expand`` as a library call: a prompt file in, a file of its originals and their
variants out (:mod:`promptsel.model.variants` makes them; the grammar is the shipped one, then
every plugin's, then the user's files)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..files import atomic_write
from ..model.grammar import AXES, Grammar, read_grammar_file, shipped_grammar
from ..model.prompt_toml import prompt_set_toml
from ..model.prompts import load_prompt_set
from ..model.variants import expand
from ..plugins import grammar_extensions


def load_grammar(files: Sequence[Path] = ()) -> Grammar:
    """The shipped grammar, extended by every plugin and then by ``files``, in that order."""
    grammar = shipped_grammar()
    for plugin, table in grammar_extensions():
        grammar.extend(table, f"plugin {plugin!r}")
    for path in files:
        grammar.extend(read_grammar_file(path), str(path))
    return grammar


def expand_file(prompts: Path, output: Path, *, axes: Sequence[str] | None = None, n: int = 10, seed: int = 0,
                grammar_files: Sequence[Path] = ()) -> dict[str, Any]:
    """Write the originals of ``prompts`` and up to ``n`` variants of each to ``output``; what
    was written, as a JSON-able summary."""
    if output.resolve() == prompts.resolve():
        raise UsageError(f"-o {output} is the prompt file itself.", hint="Write the variants to a new file.")
    prompt_set = load_prompt_set(prompts)
    grammar = load_grammar(grammar_files)
    chosen = list(axes or AXES)
    out = expand(prompt_set.prompts, grammar, axes=chosen, n=n, seed=seed)
    header = [f"Written by `promptsel expand` from {prompts} (seed {seed}, up to {n} variants per prompt,",
              f"axes {', '.join(chosen)}). Originals first; each variant names its parent and its axis values."]
    atomic_write(output, prompt_set_toml(out, name=f"{prompt_set.name}-variants", task=prompt_set.task,
                                         description=prompt_set.description, header=header))
    load_prompt_set(output)  # what was written reads back, or this is a bug worth an error now
    variants = [p for p in out if p.parent is not None and p.id not in set(prompt_set.ids)]
    made: dict[str, int] = {}
    for v in variants:
        made[v.parent or ""] = made.get(v.parent or "", 0) + 1
    values: dict[str, list[str]] = {a: sorted({(v.axes or {}).get(a, "") for v in variants}) for a in AXES}
    return {
        "path": str(output), "source": str(prompts), "seed": seed, "n": n, "axes": chosen,
        "originals": sum(p.parent is None for p in prompt_set.prompts), "variants": len(variants),
        "per_parent": made, "short": sorted(p.id for p in prompt_set.prompts if p.parent is None and made.get(p.id, 0) < n),
        "values": values, "grammar": grammar.sources,
    }
