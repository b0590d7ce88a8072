"""Golden files: what ``select`` and ``lock``/``check`` write, byte for byte.

The files in ``tests/golden/`` were written by the code of commit 13184d8, before the package
was reorganised into subsystems (issue #14), and the reorganisation had to leave them
unchanged. A later change that means to alter these outputs regenerates them on purpose with
``PROMPTSEL_REGEN_GOLDEN=1 python -m pytest tests/end_to_end/test_golden.py`` and says so in its commit.

Inputs: the released OPT-2.7B SST-2 log-probs (13 prompts, ``--scores``), and the fake backend
on a small labelled and unlabelled data file. Timings, the platform's library versions and the
run record (time, command, revisions) change from run to run and machine to machine, so they
are masked in the JSON reports and in the Markdown reports' run record; the JSON reports' floats
are kept to 12 significant digits (``rounded``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from tests.command_line import run
from tests.fake_project import DATA, PROMPTS
from tests.paths import GOLDEN
from tests.shared_data import shared_path

REGENERATE = os.environ.get("PROMPTSEL_REGEN_GOLDEN") == "1"
MASKED = "<masked>"


def masked(report: dict) -> dict:
    report = dict(report)
    for key in ("timings", "versions", "run"):
        if key in report:
            report[key] = MASKED
    return rounded(report)


def rounded(value):
    """Floats to 12 significant digits. NumPy picks its SIMD kernels by CPU, and the order of a
    float sum with them: the same release gave -123.88668252190482 on one machine and
    -123.8866825219048 on another (2026-12-07). Twelve digits keep every real change visible."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


#: The Markdown report's run record: when, the command as typed, the checkout's revision (absent
#: outside a git checkout) and the platform's versions, the fields the JSON masks: masked whole.
RUN_RECORD = re.compile(r"^## Run record\n\n(?:- .*\n)*", re.M)


def masked_md(text: str) -> str:
    return RUN_RECORD.sub(f"## Run record\n\n{MASKED}\n", text)


def same_as_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGENERATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} is missing: regenerate with PROMPTSEL_REGEN_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    d = np.load(shared_path("fixtures", "ups_sst2_opt2.7b.npz"))
    np.savez(tmp_path / "ups13.npz", class_logprobs=d["log_prob"][:13], prompt_nll=-np.log(d["p_xt"][:13]),
             labels=d["targets"], prompt_ids=d["prompt"][:13])
    (tmp_path / "data.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in DATA))
    (tmp_path / "unlabeled.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t, _ in DATA))
    (tmp_path / "prompts.toml").write_text(PROMPTS)
    monkeypatch.chdir(tmp_path)
    # A cache of its own: the session's shared cache must not learn prompts other tests edit.
    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_select_from_scores_json_and_markdown(capsys, workdir):
    code, out, err = run(capsys, "select", "--scores", "ups13.npz", "--json", "-o", "report.md", "--no-progress", "-q")
    assert code == 0, err
    report = json.loads(out)
    # A scores file is fingerprinted by its bytes, which np.savez writes differently from one
    # NumPy release to another: checked here against the file, masked in the golden file.
    assert report["backend"]["fingerprint"] == hashlib.sha256(Path("ups13.npz").read_bytes()).hexdigest()
    report["backend"] = {**report["backend"], "fingerprint": MASKED}
    same_as_golden("select_scores.json", json.dumps(masked(report), indent=2) + "\n")
    same_as_golden("select_scores.md", masked_md(Path("report.md").read_text(encoding="utf-8")))


def test_select_with_a_backend_json_and_markdown(capsys, workdir, fake_backend_plugin):
    code, out, err = run(capsys, "select", "-d", "data.jsonl", "-p", "prompts.toml", "-b", "fake", "--json",
                         "-o", "report.md", "--no-progress", "-q", "--no-cache")
    assert code == 0, err
    same_as_golden("select_fake.json", json.dumps(masked(json.loads(out)), indent=2) + "\n")
    same_as_golden("select_fake.md", masked_md(Path("report.md").read_text(encoding="utf-8")))


def test_lock_and_check(capsys, workdir, fake_backend_plugin):
    for data, extra in (("data.jsonl", ()), ("unlabeled.jsonl", ("--classes", "positive,negative"))):
        code, _, err = run(capsys, "lock", "-d", data, *extra, "-p", "prompts.toml", "-b", "fake",
                           "-m", "mi,globale,locale,zps-log,spell", "--no-progress", "-q")
        assert code == 0, err
    same_as_golden("promptsel.lock", Path("promptsel.lock").read_text(encoding="utf-8"))
    Path("prompts.toml").write_text(PROMPTS.replace("Was it good or bad?", "Good or bad?"))
    code, _, err = run(capsys, "check", "--no-progress", "-o", "check.md", "--tolerance", "0.5")
    assert code == 0, err
    # The check's own run time is the one number that is not a function of its inputs.
    same_as_golden("check.md", re.sub(r"Ran in [0-9.]+ s", "Ran in <masked> s", Path("check.md").read_text(encoding="utf-8")))
