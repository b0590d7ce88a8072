"""Under CI no test skips (tests/ci_no_skip.py): shown on a tiny suite run in a subprocess with
the shared folder unreachable, a plain skip and a module whose import is missing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import ROOT, TESTS

PROBE = '''
import pytest
from tests.shared_data import shared_path

def test_needs_the_shared_folder():
    assert shared_path("fixtures", "ups_sst2_opt2.7b.npz").exists()

def test_needs_a_browser():
    pytest.skip("headless chromium not found")

@pytest.mark.xfail(strict=True, reason="a declared, still-open bug")
def test_a_known_bug():
    assert 1 + 1 == 3

def test_fine():
    assert True
'''
MISSING_EXTRA = 'import pytest\npytest.importorskip("promptsel_no_such_extra")\n\ndef test_uses_it():\n    pass\n'


def run_probe(tmp_path: Path, ci: str | None, name: str, source: str) -> tuple[int, str]:
    """(exit code, output) of pytest on one test file ``name`` in ``tmp_path``, with this suite's
    CI hook, the environment's CI set to ``ci`` (None: unset) and the shared folder unreachable."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / name).write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PROMPTSEL_SHARED"] = str(tmp_path / "no-shared-folder")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    if ci is not None:
        env["CI"] = ci
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.ci_no_skip", "-p", "no:cacheprovider", "-q",
                           "-c", str(tmp_path / "pytest.ini"), str(tmp_path / name)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def summary(output: str) -> str:
    return output.strip().splitlines()[-1]


@pytest.mark.parametrize("ci", ["true", "yes"])
def test_under_ci_a_missing_shared_folder_or_browser_fails_instead_of_skipping(tmp_path, ci):
    code, out = run_probe(tmp_path, ci, "test_probe.py", PROBE)
    last = summary(out)
    assert code != 0, out
    assert "skipped" not in last, out
    # the shared folder and the browser fail; the declared bug still runs and fails as expected
    assert re.search(r"\b2 failed\b", last) and re.search(r"\b1 passed\b", last) and re.search(r"\b1 xfailed\b", last), out
    assert "Shared data not found" in out and "headless chromium not found" in out


def test_under_ci_a_missing_extra_is_a_collection_error(tmp_path):
    code, out = run_probe(tmp_path, "true", "test_extra.py", MISSING_EXTRA)
    assert code != 0 and re.search(r"\b1 error", summary(out)) and "skipped" not in summary(out), out
    assert "promptsel_no_such_extra" in out


def test_off_ci_the_same_tests_skip(tmp_path):
    code, out = run_probe(tmp_path, None, "test_probe.py", PROBE)
    assert code == 0 and re.search(r"\b2 skipped\b", summary(out)) and re.search(r"\b1 xfailed\b", summary(out)), out
    code, out = run_probe(tmp_path, "false", "test_extra.py", MISSING_EXTRA)
    # 5: pytest's "no test ran", the only module having been skipped whole
    assert code == 5 and re.search(r"\b1 skipped\b", summary(out)), out


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("yes", True), ("TRUE", True), ("on", True),
                                                 ("", False), ("0", False), ("false", False), ("no", False), (None, False)])
def test_in_ci_is_any_value_but_empty_0_false_or_no(monkeypatch, value, expected):
    from tests.offline import in_ci

    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert in_ci() is expected


def test_a_declared_bug_that_gets_fixed_fails_the_run(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_fixed.py").write_text('import pytest\n\n@pytest.mark.xfail(strict=True, reason="bug")\n'
                                             'def test_fixed():\n    assert True\n')
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-c", str(tmp_path / "pytest.ini"), str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "1 failed" in summary(proc.stdout), proc.stdout


def test_ci_is_read_in_one_place():
    """``tests.offline.in_ci`` decides what CI means; no test reads the variable itself (the
    Chromium and server tests once failed only when CI was exactly ``true``)."""
    readers = [str(p.relative_to(ROOT)) for p in TESTS.rglob("*.py")
               if p.name != "offline.py" and re.search(r"""environ(?:\.get\(|\[)\s*["']CI["']""", p.read_text(encoding="utf-8"))]
    assert readers == [], readers


def test_no_test_declares_an_expected_failure_from_inside():
    """Calling ``xfail()`` inside a test stops it before its check runs, so a fix could never show;
    expected failures are declared with ``@pytest.mark.xfail(strict=True, reason=...)``."""
    callers = [str(p.relative_to(ROOT)) for p in TESTS.rglob("*.py") if re.search("pytest" + r"\.xfail\(", p.read_text(encoding="utf-8"))]
    assert callers == [], callers
