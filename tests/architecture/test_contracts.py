"""The import contracts of ``pyproject.toml`` hold, and each one catches what it is there for.

``lint-imports`` (Import Linter) checks them on copies of the source laid out the way Python
imports it (``plugins/`` under its installed name, ``promptsel_builtin``). The untouched copy
keeps every contract. Each plant below is written into a copy of its own, and the contract that
forbids it must break with a report that names the planted arrow: the holes issue 19 found
(type-only and ``if not TYPE_CHECKING:`` imports, imports by name, sideways arrows, modules no
layer names, nested plugin packages) and a few more.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="import-linter (the dev extra) needs Python 3.11")

import tomllib  # Python 3.11, as import-linter

from tests.architecture.contracts import imports_by_name, read_table
from tests.paths import ROOT

CONTRACTS = {c["id"]: c["name"] for c in tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]}

#: Contracts the source does not keep yet, and why. The source is to change, not the contract.
NOT_KEPT_YET: dict[str, str] = {}


@dataclass(frozen=True)
class Plant:
    contract: str  #: the id of the contract that must break
    expect: str  #: a line of the report that names the plant (a regular expression)
    append: dict[str, str] = field(default_factory=dict)  #: file in the copy -> text added at its end
    insert: tuple[str, str, str] | None = None  #: (file, pattern, text put right after its first match)


IMPORT_TYPE_CHECKING = "from typing import TYPE_CHECKING\n"

PLANTS = {
    "upward under if not TYPE_CHECKING": Plant(
        "layers", r"promptsel\.model\.data -> promptsel\.selection \(l\.\d+\)",
        append={"promptsel/model/data.py": IMPORT_TYPE_CHECKING + "if not TYPE_CHECKING:\n    import promptsel.selection\n"}),
    "upward under if TYPE_CHECKING (type-only)": Plant(
        "layers", r"promptsel\.model\.scoretable -> promptsel\.selection \(l\.\d+\)",
        append={"promptsel/model/scoretable.py": IMPORT_TYPE_CHECKING + "if TYPE_CHECKING:\n    from promptsel import selection\n"}),
    "upward inside a function": Plant(
        "layers", r"promptsel\.model\.progress -> promptsel\.formats \(l\.\d+\)",
        append={"promptsel/model/progress.py": "def _plant():\n    from .. import formats\n"}),
    "importlib.import_module in a model module": Plant(
        "static-imports", r"^- promptsel\.model\.metrics \(l\.\d+\): importlib\.import_module$",
        append={"promptsel/model/metrics.py": 'import importlib\n\nCLI = importlib.import_module("promptsel.cli")\n'}),
    "__import__ in a model module": Plant(
        "static-imports", r"^- promptsel\.model\.progress \(l\.\d+\): __import__ in _plant\(\)$",
        append={"promptsel/model/progress.py": 'def _plant():\n    return __import__("promptsel.cli")\n'}),
    "an import by name in the public API outside its __getattr__": Plant(
        "static-imports", r"^- promptsel \(l\.\d+\): importlib\.import_module$",
        append={"promptsel/__init__.py": 'CLI = importlib.import_module("promptsel.cli")\n'}),
    "formats import a bundled backend": Plant(
        "plugins-below-formats", r"promptsel\.formats -> promptsel_builtin\.llamacpp \(l\.\d+\)",
        append={"promptsel/formats/__init__.py": "from promptsel_builtin import llamacpp\n"}),
    "a plugin imports gate": Plant(
        "plugins-import-the-api", r"promptsel_builtin\.methods -> promptsel\.gate \(l\.\d+\)",
        append={"promptsel_builtin/methods.py": "import promptsel.gate\n"}),
    "gate imports fute": Plant(
        "layers", r"promptsel\.gate -> promptsel\.fute \(l\.\d+\)",
        append={"promptsel/gate/__init__.py": "import promptsel.fute\n"}),
    "a module no layer names": Plant(
        "layers", r"^- promptsel\.newthing$",
        append={"promptsel/newthing.py": '"""Something new."""\n'}),
    "a nested plugin package imports selection": Plant(
        "plugins-import-the-api", r"promptsel_builtin\.sub\.mod -> promptsel\.selection \(l\.\d+\)",
        append={"promptsel_builtin/sub/__init__.py": "", "promptsel_builtin/sub/mod.py": "import promptsel.selection\n"}),
    "a plugin folder without __init__.py": Plant(
        "static-imports", r"^- promptsel_builtin\.sub\.mod: sub/ has no __init__\.py$",
        append={"promptsel_builtin/sub/mod.py": "import promptsel.selection\n"}),
    "a cycle within a layer": Plant(
        "no-cycle", r"No cycles are allowed in promptsel\.$",
        append={"promptsel/errors.py": "from . import options\n"}),  # options imports errors
    "a model module imports the public API": Plant(
        "public-api", r"promptsel\.model\.progress -> promptsel \(l\.\d+\)",
        append={"promptsel/model/progress.py": "from promptsel import ScoreTable\n"}),
    "the public API exports from cli": Plant(
        "public-api", r"promptsel -> promptsel\.cli \(_EXPORTS l\.\d+\)",
        insert=("promptsel/__init__.py", r"_EXPORTS\b[^=\n]*=\s*\{", '\n    "main": "cli:main",')),
    "the public API's table changed after it is written": Plant(
        "public-api", r"_EXPORTS is changed at l\.\d+: _EXPORTS\['main'\]$",
        append={"promptsel/__init__.py": '_EXPORTS["main"] = "cli:main"\n'}),
}


def source_copy(dest: Path) -> Path:
    """The source as Python imports it, and the contracts, in ``dest``."""
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "promptsel", dest / "promptsel", ignore=skip)
    shutil.copytree(ROOT / "plugins", dest / "promptsel_builtin", ignore=skip)
    shutil.copytree(ROOT / "tests" / "architecture", dest / "tests" / "architecture", ignore=skip)
    (dest / "tests" / "__init__.py").touch()
    shutil.copy(ROOT / "pyproject.toml", dest)
    return dest


def plant(tree: Path, p: Plant) -> None:
    for name, text in p.append.items():
        path = tree / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(text)
    if p.insert:
        name, pattern, text = p.insert
        path = tree / name
        source, count = re.subn(pattern, lambda m: m.group(0) + text, path.read_text(encoding="utf-8"), count=1)
        assert count, f"{pattern!r} is not in {name}: the plant needs a new place"
        path.write_text(source, encoding="utf-8")


#: lint-imports on each (name, tree, contracts) of argv[1] in turn, in one interpreter (each
#: run is mostly start-up), printing {name: [exit status, report]}. Each tree is the working
#: folder, which lint-imports puts first on sys.path: the copy's packages and contract types
#: are the ones read.
LINT_IMPORTS = """
import contextlib, io, json, os, sys
from importlinter.cli import lint_imports
reports = {}
for name, tree, contracts in json.loads(sys.argv[1]):
    os.chdir(tree)
    with contextlib.redirect_stdout(io.StringIO()) as report:
        status = lint_imports(no_cache=True, no_logo=True, limit_to_contracts=tuple(contracts))
    reports[name] = [status, report.getvalue()]
print(json.dumps(reports))
"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """(exit status, report) of lint-imports on the untouched copy (every contract) and on
    each planted copy (its contract only), in two interpreters side by side."""
    jobs = [("untouched", str(source_copy(tmp_path_factory.mktemp("untouched"))), [])]
    for name, p in PLANTS.items():
        tree = source_copy(tmp_path_factory.mktemp("plant"))
        plant(tree, p)
        jobs.append((name, str(tree), [p.contract]))
    # a wide console keeps each reported line whole
    env = {**os.environ, "COLUMNS": "1000", "NO_COLOR": "1"}
    runs = [subprocess.Popen([sys.executable, "-c", LINT_IMPORTS, json.dumps(jobs[i::2])], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    out: dict[str, tuple[int, str]] = {}
    for run in runs:
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
        out.update((name, (status, report)) for name, (status, report) in json.loads(stdout).items())
    return out


@pytest.mark.parametrize("contract", [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=NOT_KEPT_YET[c])) if c in NOT_KEPT_YET else c
    for c in CONTRACTS])
def test_the_source_keeps_the_contract(contract: str, reports: dict[str, tuple[int, str]]) -> None:
    _, report = reports["untouched"]
    assert f"\n{CONTRACTS[contract]} KEPT" in report, report


@pytest.mark.parametrize("name", PLANTS)
def test_the_contract_breaks_on_the_plant(name: str, reports: dict[str, tuple[int, str]]) -> None:
    status, report = reports[name]
    assert status == 1, report
    assert f"\n{CONTRACTS[PLANTS[name].contract]} BROKEN" in report, report
    # the plant itself is reported, not only something the untouched copy had already
    assert re.search(PLANTS[name].expect, report, re.MULTILINE), report


def test_every_contract_has_a_plant() -> None:
    assert {p.contract for p in PLANTS.values()} == set(CONTRACTS)


def test_imports_by_name_are_found_however_spelled_and_where() -> None:
    source = "\n".join([
        "import importlib",
        "import importlib.util as u",
        "from importlib import import_module as load, metadata",
        'importlib.import_module("a")',
        'load("a")',
        'getattr(importlib, "import_module")("a")',
        "def outer():",
        '    __import__("a")',
        "    def inner():",
        '        u.module_from_spec(u.spec_from_file_location("a", "a.py"))',
        'GROUP = (lambda: metadata.entry_points(group="promptsel"))',
    ])
    assert imports_by_name(source) == [
        (3, "from importlib import import_module", ""),
        (4, "importlib.import_module", ""),
        (6, "'import_module'", ""),
        (8, "__import__", "outer"),
        (10, "u.module_from_spec", "inner"),
        (10, "u.spec_from_file_location", "inner"),
        (11, "metadata.entry_points", "<lambda>"),
    ]


def test_finding_a_module_or_reading_a_version_is_not_an_import_by_name() -> None:
    source = '"""Modules are never loaded with import_module here."""\nimport importlib.util\nfrom importlib import metadata\n' \
             'importlib.util.find_spec("torch")\nmetadata.version("numpy")\n'
    assert imports_by_name(source) == []


def test_a_lazy_table_is_read_as_the_strings_it_maps_to() -> None:
    source = "\n".join([
        "T: dict[str, str] = {",
        '    **dict.fromkeys(("A", "B"), "errors"),',
        '    "C": "model.scoretable",',
        '    "D": "selection.run:run_select",',
        "}",
        "def get(name):",
        "    return T.get(name) or T[name] if name in T else [*T]",
    ])
    assert read_table(source, "T") == ([(2, "errors"), (3, "model.scoretable"), (4, "selection.run:run_select")], [])


@pytest.mark.parametrize(("change", "problem"), [
    ('T["E"] = "cli"', "T is changed at l.3: T['E']"),
    ('T.update(E="cli")', "T is changed at l.3: T.update"),
    ('T |= {"E": "cli"}', "T is changed at l.3: T"),
    ('T = {"E": "cli"}', "T is changed at l.3: T"),
    ("del T['C']", "T is changed at l.3: T['C']"),
    ('def f():\n    global T\n    T = {"E": "cli"}', "T is changed at l.5: T"),
])
def test_a_lazy_table_changed_after_it_is_written_cannot_be_read(change: str, problem: str) -> None:
    source = f'T = {{"C": "model.scoretable"}}\n\n{change}\n'
    assert read_table(source, "T")[1] == [problem]


def test_a_lazy_table_of_other_values_cannot_be_read() -> None:
    assert read_table('NAME = "model"\nT = {"C": NAME + ".scoretable"}\n', "T")[1] == ["T l.2: NAME + '.scoretable' is not a string"]
    assert read_table("T = dict(C='model')\n", "T")[1] == ["T is not assigned a dict literal at the top of the module"]
