"""Running ``promptsel`` in process, as the tests of every package do, and the one-line error
that a bad input must give."""

from __future__ import annotations

import pytest

from promptsel.cli import main
from tests.paths import ROOT

#: the bundled sentiment prompt set, as a command-line argument
SA = str(ROOT / "prompts" / "sa.toml")
#: a valid one-prompt set for sst2, which the bad-input tests break one way at a time
GOOD = '[[prompt]]\nid = "a"\ntemplate = "{{text}}"\nanswer_choices = { positive = ["yes"], negative = ["no"] }\n'


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``promptsel ARGV``."""
    with pytest.raises(SystemExit) as exc:
        main([*argv])
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exc.value.code or 0, out, err


def one_line_error(err: str) -> str:
    """The only line of ``err`` (warnings aside), which must start with ``Error: ``."""
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("Warning:")]
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ")
    return lines[0]
