"""The options the README names, per command, and the ones the tests declare they exercise.

A test declares an option with ``@pytest.mark.option("select", "--calibrate")`` (the command as
typed, then the flag as the README spells it, long or short). ``tests/cli/test_readme_options.py``
checks that every option the README names has such a test, so a documented option cannot ship
without one; the marked test runs the command line and asserts what the option changes.

Which command a flag belongs to is read from its context in the README:

- in a code line or an inline code span, the flags after ``promptsel CMD`` are CMD's;
- a span that starts with a flag (``--calibrate none|cc``) belongs to the commands its paragraph
  (or table row) names, as ``promptsel CMD`` or as a span holding only the command's name
  (``Useful `select` options``); one that a paragraph naming no command mentions is met by a
  test of any command that takes it.

Spans and code lines of other programs (``pip install -e``, ``python -m``, ``taskset -c``)
name no promptsel option.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from tests.paths import ROOT, TESTS

FLAG = re.compile(r"(?<![\w-])(-[A-Za-z]|--[a-z][a-z0-9-]*)(?![\w-])")
PROMPTSEL = re.compile(r"\bpromptsel ((?:cache )?[a-z]+)")
SPAN = re.compile(r"`([^`]+)`")


def commands() -> dict[str, dict[str, str]]:
    """Every command (``cache info`` spelled with its group) -> {flag as typed: its parameter's name}."""
    import typer.main

    from promptsel.cli.app import build_app

    found: dict[str, dict[str, str]] = {}

    def walk(group, prefix: tuple[str, ...]) -> None:
        for name, sub in group.commands.items():
            if hasattr(sub, "commands"):
                walk(sub, (*prefix, name))
                continue
            found[" ".join((*prefix, name))] = {
                opt: param.name for param in sub.params for opt in (*param.opts, *param.secondary_opts) if opt.startswith("-")}

    walk(typer.main.get_command(build_app()), ())
    return found


@dataclass(frozen=True)
class Mention:
    """One flag in the README: ``commands`` are those it must be tested with (all of them), or,
    when ``any_of`` is set, the README named no command and one test of any of them will do."""

    flag: str
    commands: tuple[str, ...]
    any_of: bool
    line: int


def _blocks(text: str) -> list[tuple[int, str, bool]]:
    """(first line number, text, is code) of each paragraph, table row and code line."""
    out: list[tuple[int, str, bool]] = []
    para: list[str] = []
    start = 0
    in_code = False

    def flush() -> None:
        if para:
            out.append((start, " ".join(para), False))
            para.clear()

    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            flush()
            in_code = not in_code
        elif in_code:
            # a shell line continued with a backslash is one command
            joined, first = line, i + 1
            while joined.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                joined = joined.rstrip()[:-1] + " " + lines[i]
            out.append((first, joined.split("  #")[0], True))
        elif not line.strip() or line.lstrip().startswith("|"):
            flush()
            if line.strip():
                out.append((i + 1, line, False))
        else:
            if not para:
                start = i + 1
            para.append(line)
        i += 1
    flush()
    return out


def readme_mentions(readme: Path = ROOT / "README.md") -> list[Mention]:
    known = commands()
    mentions: list[Mention] = []
    for line, block, is_code in _blocks(readme.read_text(encoding="utf-8")):
        pieces = [block] if is_code else SPAN.findall(block)
        named = [c for c in (*PROMPTSEL.findall(block), *(p.strip() for p in SPAN.findall(block))) if c in known]
        for piece in pieces:
            own = PROMPTSEL.search(piece)
            if own:
                for f in FLAG.findall(piece[own.end():]):
                    # `promptsel cache info|clear [--all]`: the flag is the group's command that takes it
                    group = own.group(1).split()[0]
                    cmds = (own.group(1),) if f in known.get(own.group(1), {}) else tuple(
                        c for c in known if c.split()[0] == group and f in known[c])
                    mentions.append(Mention(f, cmds or (own.group(1),), False, line))
            elif not is_code and piece.startswith("-"):
                flag = FLAG.match(piece)
                if not flag:
                    continue
                f = flag.group(1)
                own_cmds = tuple(c for c in dict.fromkeys(named) if f in known[c])
                if own_cmds:
                    mentions.append(Mention(f, own_cmds, False, line))
                else:
                    mentions.append(Mention(f, tuple(c for c in known if f in known[c]), True, line))
    return mentions


def declared_options(root: Path = TESTS) -> dict[tuple[str, str], list[str]]:
    """(command, flag as declared) -> the tests that declare it, read from the test files' source
    (``@pytest.mark.option(COMMAND, FLAG, ...)`` on a test function)."""
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted(root.rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for deco in node.decorator_list:
                if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute) and deco.func.attr == "option"
                        and ast.unparse(deco.func.value) == "pytest.mark"):
                    cmd, *flags = (ast.literal_eval(a) for a in deco.args)
                    for flag in flags:
                        found.setdefault((cmd, flag), []).append(f"{path.relative_to(root.parent)}::{node.name}")
    return found
