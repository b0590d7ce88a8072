"""The package's shape: every import goes down the layers the README draws, and none goes round.

Imports are read from the source (``ast``), lazy imports inside functions included: they are
real dependencies too. Imports under ``if TYPE_CHECKING:`` are only for annotations and do not
count.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Lowest first. A module may import its own layer and the layers below it, nothing above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("promptsel.errors", "promptsel.options", "promptsel.registry", "promptsel.hookspecs",
                    "promptsel.version", "promptsel.assets")),
    ("model", ("promptsel.model",)),
    ("contracts", ("promptsel.backend", "promptsel.selector", "promptsel.embedder", "promptsel.surrogate",
                   "promptsel.plugins", "promptsel.hookdoc", "promptsel.contract", "promptsel.testing")),
    ("selection", ("promptsel.selection",)),
    ("fute", ("promptsel.fute",)),
    ("gate", ("promptsel.gate",)),
    ("public API", ("promptsel",)),
    ("bundled plugins", ("promptsel_builtin",)),
    ("formats", ("promptsel.formats",)),
    ("cli", ("promptsel.cli", "promptsel.__main__")),
]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "plugins":
        parts[0] = "promptsel_builtin"
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    files = [*ROOT.joinpath("promptsel").rglob("*.py"), *ROOT.joinpath("plugins").glob("*.py")]
    return {module_name(p): p for p in files}


def layer(name: str) -> int:
    best, index = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, index = len(prefix), i
    assert index is not None, f"{name} is in no layer: add it to LAYERS (and to the README's drawing)"
    return index


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for child in node.body for n in ast.walk(child)}
    return skip


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports at run time (absolute names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports the module pkg.mod when there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def upward_imports(g: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} ({LAYERS[layer(a)][0]}) imports {b} ({LAYERS[layer(b)][0]})"
                  for a, targets in g.items() for b in targets if layer(b) > layer(a))


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(g):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_every_import_goes_down_the_layers():
    assert not upward_imports(graph()), "\n".join(upward_imports(graph()))


def test_the_import_graph_has_no_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_graph_is_read_from_the_source():
    g = graph()
    assert "promptsel.selection.inputs" in g["promptsel.selection.run"]  # from .inputs import ...
    assert "promptsel.fute.embeddings" in g["promptsel.fute.method"]  # a lazy import inside a method
    assert "promptsel.selection.inputs" not in g["promptsel.plugins"]  # only under TYPE_CHECKING
    assert "promptsel" in g["promptsel_builtin.baselines"]


def test_the_checks_catch_a_planted_upward_import_and_a_cycle():
    g = graph()
    g["promptsel.model.data"] = {*g["promptsel.model.data"], "promptsel.formats.terminal"}
    assert upward_imports(g) == ["promptsel.model.data (model) imports promptsel.formats.terminal (formats)"]
    g = graph()
    g["promptsel.errors"] = {"promptsel.options"}
    assert set(find_cycle(g) or []) == {"promptsel.errors", "promptsel.options"}
