"""promptsel's own Import Linter contract types: the arrows the built-in contracts cannot see.

Import Linter's graph holds every ``import`` statement, those inside functions and under
``if TYPE_CHECKING:`` included. Three kinds of arrow are missing from it, and these contracts
(declared in ``pyproject.toml`` beside the built-in ones) close them:

* ``public_api``: ``promptsel/__init__`` loads its names lazily from a literal table
  (``_EXPORTS``), so its arrows are strings. They are read here as imports, and the public API
  is held to its place in the layers: only the modules above it import it, and it reaches none
  of them, neither by an import nor by a name in its table.
* ``static_imports``: a module imported by name (``importlib.import_module``, ``__import__``,
  a loader, an entry point) is an arrow that no graph shows; only the declared modules may do
  that. And a source file in a folder without ``__init__.py`` is in no graph at all: it fails
  too, or its imports would pass unread.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable
from pathlib import Path

import grimp
from importlinter import Contract, ContractCheck, fields, output
from rich.markup import escape

#: Names that import a module by name, load one from a file, or load plugin code by name. Any
#: mention counts, not only a call: ``getattr(importlib, "import_module")`` is the same import.
IMPORT_BY_NAME = frozenset({
    "import_module", "__import__",  # importlib, builtins
    "spec_from_file_location", "spec_from_loader", "module_from_spec", "exec_module",
    "load_module", "LazyLoader", "SourceFileLoader", "SourcelessFileLoader", "ExtensionFileLoader",
    "run_module", "run_path",  # runpy
    "resolve_name",  # pkgutil
    "entry_points", "load_setuptools_entrypoints",  # importlib.metadata, pluggy
})

#: What may be done to a lazy table besides reading it by key: nothing that changes it.
TABLE_READS = frozenset({"get", "items", "keys", "values"})


def imports_by_name(source: str) -> list[tuple[int, str, str]]:
    """Where ``source`` imports by name, as (line, the code that does it, the innermost function
    it is in or ``""``), in line order."""
    # each form below spells the name out, so a file without any of them needs no parsing
    if not any(name in source for name in IMPORT_BY_NAME):
        return []
    tree = ast.parse(source)
    function: dict[int, str] = {}
    for node in ast.walk(tree):  # outer functions come first, so inner ones overwrite them
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            name = getattr(node, "name", "<lambda>")
            function.update((id(inner), name) for inner in ast.walk(node) if inner is not node)
    found: set[tuple[int, str, str]] = set()
    for node in ast.walk(tree):
        codes: list[str] = []
        if isinstance(node, ast.Name) and node.id in IMPORT_BY_NAME:
            codes = [node.id]
        elif isinstance(node, ast.Attribute) and node.attr in IMPORT_BY_NAME:
            codes = [ast.unparse(node)]
        elif isinstance(node, ast.ImportFrom):
            codes = [f"from {node.module} import {a.name}" for a in node.names if a.name in IMPORT_BY_NAME]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in IMPORT_BY_NAME:
            codes = [repr(node.value)]
        found |= {(node.lineno, code, function.get(id(node), "")) for code in codes}
    return sorted(found)


def read_table(source: str, table: str) -> tuple[list[tuple[int, str]], list[str]]:
    """The strings a module-level dict literal ``table`` maps its names to, as (line, string),
    and what keeps the table from being read that way (empty when nothing does).

    Entries are ``"name": "string"`` or ``**dict.fromkeys((names...), "string")``. The table
    must be assigned once and never changed afterwards, or the strings read here would not be
    the ones used at run time.
    """
    tree = ast.parse(source)
    values: list[tuple[int, str]] = []
    problems: list[str] = []
    literal = next((node for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                    and any(_is_name(t, table) for t in _targets(node))), None)
    if literal is None or not isinstance(literal.value, ast.Dict):
        return [], [f"{table} is not assigned a dict literal at the top of the module"]
    for key, value in zip(literal.value.keys, literal.value.values):
        if key is None and _is_fromkeys(value):
            values.append((value.lineno, value.args[1].value))
        elif _is_str(key) and _is_str(value):
            values.append((value.lineno, value.value))
        else:
            problems.append(f"{table} l.{value.lineno}: {ast.unparse(value)} is not a string")

    for node in ast.walk(tree):
        changed = (
            (_is_name(node, table) and not isinstance(node.ctx, ast.Load) and node not in _targets(literal))
            or (isinstance(node, ast.Subscript) and _is_name(node.value, table) and not isinstance(node.ctx, ast.Load))
            or (isinstance(node, ast.Attribute) and _is_name(node.value, table) and node.attr not in TABLE_READS)
        )
        if changed:
            problems.append(f"{table} is changed at l.{node.lineno}: {ast.unparse(node)}")
    return values, problems


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return node.targets if isinstance(node, ast.Assign) else [node.target]


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _is_str(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _is_fromkeys(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and ast.unparse(node.func) == "dict.fromkeys"
            and len(node.args) == 2 and not node.keywords and _is_str(node.args[1]))


def source_files(root_packages: Iterable[str]) -> dict[str, Path]:
    """Every ``.py`` file below each root package (its folder, found the way Import Linter
    finds it), by the module name the file would have."""
    files: dict[str, Path] = {}
    for root in root_packages:
        spec = importlib.util.find_spec(root)
        if spec is None or not spec.submodule_search_locations:
            raise ValueError(f"Cannot find the package {root}.")
        for base in map(Path, spec.submodule_search_locations):
            for path in sorted(base.rglob("*.py")):
                parts = path.relative_to(base).with_suffix("").parts
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                files[".".join((root, *parts))] = path
    return files


def _lines(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    return ", ".join(str(d["line_number"]) for d in graph.get_import_details(importer=importer, imported=imported))


def _check_modules_exist(graph: grimp.ImportGraph, names: Iterable[str]) -> None:
    missing = sorted(set(names) - graph.modules)
    if missing:
        raise ValueError(f"Module {', '.join(missing)} does not exist.")


def _render(groups: dict[str, list[str]], guidance: str | None) -> None:
    # Import Linter prints through rich: brackets in code (``T["x"]``) are not markup
    for heading, lines in groups.items():
        if lines:
            output.print_error(escape(heading), bold=False)
            output.new_line()
            for line in lines:
                output.print_error(escape(f"- {line}"), bold=False)
            output.new_line()
    if guidance:
        output.print(escape(guidance))
        output.new_line()


class PublicApiContract(Contract):
    """``module``, a package's ``__init__`` that loads its names lazily from the dict literal
    ``table`` (public name -> ``"submodule[:name]"``, relative to the package), is a layer of
    its own: only the modules ``above`` it (and their descendants) import it, and it reaches
    none of them, by an import or by a name in its table. Every name in the table must be a
    module."""

    type_name = "public_api"

    module = fields.ModuleField()
    table = fields.StringField()
    above = fields.SetField(subfield=fields.ModuleField())
    broken_contract_guidance = fields.TextField(required=False)

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        api = self.module.name  # type: ignore[attr-defined]
        above = {m.name for m in self.above}  # type: ignore[attr-defined]
        _check_modules_exist(graph, {api, *above})

        def is_above(name: str) -> bool:
            return any(name == a or name.startswith(a + ".") for a in above)

        importers = [f"{m} -> {api} (l.{_lines(graph, m, api)})"
                     for m in sorted(graph.find_modules_that_directly_import(api)) if not is_above(m)]
        upward = [f"{api} -> {m} (l.{_lines(graph, api, m)})"
                  for m in sorted(graph.find_modules_directly_imported_by(api)) if is_above(m)]
        path = source_files(self.session_options["root_packages"])[api]
        named, unreadable = read_table(path.read_text(encoding="utf-8"), self.table)  # type: ignore[arg-type]
        unknown = []
        for line, value in named:
            target = f"{api}.{value.partition(':')[0]}"
            if target not in graph.modules:
                unknown.append(f"{self.table} l.{line}: {value!r} names no module ({target})")
            elif is_above(target):
                upward.append(f"{api} -> {target} ({self.table} l.{line})")
        problems = {
            f"Only {', '.join(sorted(above))} may import {api}; these lie below it:": importers,
            f"{api} imports modules above it:": upward,
            f"{self.table} cannot be read as imports:": unreadable + unknown,
        }
        return ContractCheck(kept=not any(problems.values()), metadata={"problems": problems})

    def render_broken_contract(self, check: ContractCheck) -> None:
        _render(check.metadata["problems"], self.broken_contract_guidance)  # type: ignore[arg-type]


class StaticImportsContract(Contract):
    """Every source file below the root packages is a module of the graph, and only where
    ``declared`` is code imported by name (``IMPORT_BY_NAME``): ``"module"`` allows it anywhere
    in the module, ``"module:function"`` only inside that function (the innermost ``def``)."""

    type_name = "static_imports"

    declared = fields.SetField(subfield=fields.StringField(), required=False)
    broken_contract_guidance = fields.TextField(required=False)

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        declared = [entry.partition(":")[::2] for entry in self.declared or ()]  # type: ignore[attr-defined]
        _check_modules_exist(graph, {module for module, _ in declared})

        def allowed(module: str, function: str) -> bool:
            return any(module == m and f in ("", function) for m, f in declared)

        unread, by_name = [], []
        for name, path in source_files(self.session_options["root_packages"]).items():
            if name not in graph.modules:
                unread.append(f"{name}: {path.parent.name}/ has no __init__.py")
            by_name += [f"{name} (l.{line}): {code}" + (f" in {function}()" if function else "")
                        for line, code, function in imports_by_name(path.read_text(encoding="utf-8"))
                        if not allowed(name, function)]
        problems = {
            "Files no contract reads (a folder without __init__.py is no package):": unread,
            "Imports by name outside the declared modules (no graph sees where they point):": by_name,
        }
        return ContractCheck(kept=not any(problems.values()), metadata={"problems": problems})

    def render_broken_contract(self, check: ContractCheck) -> None:
        _render(check.metadata["problems"], self.broken_contract_guidance)  # type: ignore[arg-type]
