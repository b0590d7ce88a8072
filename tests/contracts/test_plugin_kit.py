"""The third-party plugin path, end to end: the example plugin in examples/ and promptsel are
installed into a fresh virtual environment, and the environment's own ``promptsel`` must
find the plugin, list it, run ``select`` with it, and pass the plugin's contract tests.

The environment is a plain venv (no system site-packages), so nothing leaks in from this
one: promptsel's package list, its entry points and its dependencies must all be right.
Both projects are built from copies, so that no build output lands in the checkout.
Dependencies come from the package index (pip's cache keeps later runs fast). Without a
network the test is skipped, except under CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.offline import unavailable
from tests.paths import ROOT

EXAMPLE = ROOT / "examples" / "promptsel-backend-example"
DIST, BACKEND_ID = "promptsel-ngram", "ngram"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]  # a fresh venv and pip install

#: pip's words for "the index cannot be reached"; any other install failure is a real failure.
OFFLINE_SIGNS = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
                 "Network is unreachable", "No matching distribution found for setuptools")

REVIEWS = [
    ("A wonderful, warm film with a brilliant cast. I loved it.", "positive"),
    ("Funny and charming from start to finish; a real delight.", "positive"),
    ("Beautifully acted and very moving. Go and see it.", "positive"),
    ("A clever, lovely story with a perfect ending.", "positive"),
    ("Great fun, with lively music and a generous heart.", "positive"),
    ("Smart, tender and full of surprises; the best film this year.", "positive"),
    ("A dull, lifeless film with a silly script. I hated it.", "negative"),
    ("Boring from start to finish; the jokes fall flat.", "negative"),
    ("Badly acted and far too long. Avoid it.", "negative"),
    ("A tedious, confused mess with a terrible ending.", "negative"),
    ("Lazy, noisy and stupid, with no heart at all.", "negative"),
    ("The worst film this year: slow, ugly and empty.", "negative"),
]

# Raw prompts: the n-gram model has no chat template of the usual kind.
PROMPTS = """\
name = "kit"
description = "Decide whether a film review is positive or negative."

[defaults]
chat = false

[[prompt]]
id = "review-sentiment"
template = "Review: {{text}}\\nSentiment:"
answer_choices = { positive = ["positive"], negative = ["negative"] }

[[prompt]]
id = "did-they-like-it"
template = "Did the reviewer like the movie? \\"{{text}}\\"\\nAnswer:"
answer_choices = { positive = ["yes"], negative = ["no"] }

[[prompt]]
id = "bare"
template = "{{text}}\\n"
answer_choices = { positive = ["good"], negative = ["bad"] }
"""

#: What a copy of the checkout leaves out: build output, caches, and what the wheel does not hold.
_BUILD_OUTPUT = ("*.egg-info", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache")
_NOT_PACKAGED = (".git", ".venv", "tests", "bench", "examples", "out")


def _run(argv: list[str], env: dict[str, str], timeout: float = 300, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False, **kw)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | dict[str, str]]:
    work = tmp_path_factory.mktemp("plugin-kit")
    promptsel_src = work / "promptsel-src"
    example_src = work / "example-src"
    shutil.copytree(ROOT, promptsel_src, ignore=shutil.ignore_patterns(*_BUILD_OUTPUT, *_NOT_PACKAGED))
    shutil.copytree(EXAMPLE, example_src, ignore=shutil.ignore_patterns(*_BUILD_OUTPUT))
    # The environment of the subprocesses: this session's promptsel switches removed, a cache
    # of their own, and no bytecode written next to the copied sources.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMPTSEL_", "PYTHON", "VIRTUAL_ENV"))}
    env |= {"PROMPTSEL_CACHE_DIR": str(work / "cache"), "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1", "COLUMNS": "200"}
    home = work / "venv"
    made = _run([sys.executable, "-m", "venv", str(home)], env, timeout=120)
    assert made.returncode == 0, made.stderr
    bin_dir = home / ("Scripts" if os.name == "nt" else "bin")
    installed = _run([str(bin_dir / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                      str(promptsel_src), str(example_src), "pytest"], env, timeout=600)
    if installed.returncode != 0:
        output = installed.stdout + installed.stderr
        if any(sign in output for sign in OFFLINE_SIGNS):
            unavailable(f"the package index cannot be reached: {output.strip().splitlines()[-1]}")
        pytest.fail(f"pip install failed:\n{output}")
    return {"bin": bin_dir, "env": env, "work": work, "example": example_src}


def promptsel(venv, *args: str) -> subprocess.CompletedProcess[str]:
    return _run([str(venv["bin"] / "promptsel"), *args], venv["env"], cwd=venv["work"])


def test_the_fresh_environment_is_isolated(venv):
    # The venv's promptsel is the one installed there, not this checkout's editable install.
    where = _run([str(venv["bin"] / "python"), "-c", "import promptsel, promptsel_ngram; print(promptsel.__file__)"],
                 venv["env"], cwd=venv["work"])
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(venv["work"] / "venv")), where.stdout


def test_plugins_lists_the_example_with_its_distribution(venv):
    result = promptsel(venv, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    row = rows[BACKEND_ID]
    assert row["distribution"] == DIST and row["version"] == "0.1.0" and row["builtin"] is False
    assert row["provides"] == [f"backend:{BACKEND_ID}"] and row["hooks"] == ["register_backends"]
    assert row["module"] == "promptsel_ngram"
    # A fresh install with only promptsel's base dependencies loads every plugin cleanly.
    assert {name: r["error"] for name, r in rows.items() if r["error"]} == {}
    assert "Warning" not in result.stderr


def test_list_backends_shows_it(venv):
    result = promptsel(venv, "list", "backends")
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith(BACKEND_ID))
    assert line.startswith(f"{BACKEND_ID} (aliases: char-ngram)\t")
    assert {"continuation_logprobs", "generate", "sequence_logprobs"} <= set(line.split("\t")[1].split(", "))


def test_select_runs_on_the_plugin_backend(venv):
    work = venv["work"]
    data, prompts = work / "reviews.jsonl", work / "kit.toml"
    data.write_text("".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in REVIEWS))
    prompts.write_text(PROMPTS)
    result = promptsel(venv, "select", "--backend", BACKEND_ID, "--dataset", str(data), "--prompts", str(prompts),
                       "--methods", "mi,globale", "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backend"]["name"] == BACKEND_ID
    ids = ["review-sentiment", "did-they-like-it", "bare"]
    assert [p["id"] for p in report["prompts"]] == ids
    assert list(report["methods"]) == ["mi", "globale"]
    for entry in report["methods"].values():
        assert sorted(entry["ranking"]) == sorted(ids) and entry["chosen"] == entry["ranking"][0]
    # The balanced reviews use the corpus's own words: a real language model beats chance on them.
    assert report["oracle"]["performance"] > 0.5
    # People see the ranking on stderr: a row per prompt.
    for prompt_id in ids:
        assert prompt_id in result.stderr


def test_the_example_passes_its_own_contract_tests_there(venv):
    result = _run([str(venv["bin"] / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(venv["example"] / "tests")],
                  venv["env"], cwd=venv["example"])
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in summary and "skipped" not in summary and "xfail" not in summary, summary
