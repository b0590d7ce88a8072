"""``promptsel lock`` / ``promptsel check`` on the real default model (SmolLM2-135M GGUF through
llama.cpp): three non-CoT prompts of prompts/sa.toml on 48 Rotten Tomatoes test sentences from
the shared data (on the first 12 the model is at chance with every prompt; on 48, sa07 and sa08
are well above it, 0.62-0.67, which the swapped-label-words test needs).
The lock is written once (cold); every test then works on its own copy."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from promptsel.cli import main
from tests.paths import ROOT
from tests.shared_data import shared_path

PROMPT_IDS = ("sa02", "sa07", "sa08")
TOLERANCE = 0.02
LIMIT = 48

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.timeout(1200)]


def run(capsys, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main([*argv])
        raise SystemExit(0)
    _, err = capsys.readouterr()
    return exc.value.code or 0, err


def subset(ids: tuple[str, ...]) -> str:
    """prompts/sa.toml with only the prompts ``ids`` (the header and defaults kept)."""
    head, *blocks = (ROOT / "prompts" / "sa.toml").read_text().split("[[prompt]]")
    kept = [b for b in blocks if re.search(r'^id = "([^"]+)"', b.strip()).group(1) in ids]
    assert len(kept) == len(ids)
    return head + "".join("[[prompt]]" + b for b in kept)


@pytest.fixture(scope="module")
def locked(tmp_path_factory, default_gguf) -> dict:
    """A repository with sa3.toml and its promptsel.lock; ``seconds``: the cold lock."""
    pytest.importorskip("llama_cpp")
    repo = tmp_path_factory.mktemp("repo")
    (repo / "sa3.toml").write_text(subset(PROMPT_IDS))
    data_dir = str(shared_path("data"))
    argv = ["lock", "--lock", str(repo / "promptsel.lock"), "-d", "rotten_tomatoes", "--data-dir", data_dir,
            "-p", str(repo / "sa3.toml"), "--limit", str(LIMIT), "-m", "mi,globale", "--no-progress", "-q"]
    started = time.perf_counter()
    with pytest.raises(SystemExit) as exc:
        main(argv)
        raise SystemExit(0)
    assert exc.value.code in (0, None)
    return {"repo": repo, "data_dir": data_dir, "seconds": time.perf_counter() - started}


@pytest.fixture
def repo(locked, tmp_path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(locked["repo"], copy)
    return copy


def check(capsys, repo: Path, data_dir: str, *extra: str) -> tuple[int, str, float]:
    started = time.perf_counter()
    code, err = run(capsys, "check", "--lock", str(repo / "promptsel.lock"), "--data-dir", data_dir, "--no-progress",
                    "-o", str(repo / "check.md"), "-o", str(repo / "check.json"), *extra)
    return code, err, time.perf_counter() - started


def test_unchanged_prompts_pass_and_a_warm_check_is_fast(capsys, locked, repo):
    entry = next(iter(json.loads((repo / "promptsel.lock").read_text())["entries"].values()))
    assert entry["backend"]["name"] == "llamacpp" and entry["dataset"]["n"] == LIMIT and entry["dataset"]["source"] == "data-dir"
    assert sorted(entry["prompts"]) == list(PROMPT_IDS)
    # The cold side is the lock itself (the same scoring with an empty cache); a cold check with
    # --no-cache would only cost the suite minutes more.
    code, err, warm = check(capsys, repo, locked["data_dir"])
    assert code == 0, err
    result = json.loads((repo / "check.json").read_text())
    assert result["status"] == "passed" and result["entries"][0]["cache"]["misses"] == 0
    # Fast because nothing is recomputed (no wall-clock bound here: the machine's load decides
    # times; the misses above are what makes it fast).
    assert result["entries"][0]["cache"]["hits"] > 0
    print(f"\nlock (cold cache) {locked['seconds']:.1f} s; check (warm) {warm:.1f} s")


def test_swapped_label_words_exit_100_naming_the_prompt(capsys, locked, repo):
    entry = next(iter(json.loads((repo / "promptsel.lock").read_text())["entries"].values()))
    perf = {pid: p["performance"] for pid, p in entry["prompts"].items()}
    victim = max(perf, key=perf.get)
    # Swapping a binary prompt's label words turns accuracy a into exactly 1 - a, so it is a
    # regression only for a prompt above chance; the model is weak, but one of these is.
    assert perf[victim] > 0.5 + TOLERANCE, perf
    words = entry["prompts"][victim]["definition"]["answer_choices"]
    (pos_cls, pos_words), (neg_cls, neg_words) = words
    toml = (repo / "sa3.toml").read_text()
    old = f"answer_choices = {{ {pos_cls} = {json.dumps(pos_words)}, {neg_cls} = {json.dumps(neg_words)} }}"
    # Same class order in the file, so label_space (and every rendered text) stays the same.
    new = f"answer_choices = {{ {neg_cls} = {json.dumps(pos_words)}, {pos_cls} = {json.dumps(neg_words)} }}"
    block = toml.index(f'id = "{victim}"')
    at = toml.index(old, block)
    (repo / "sa3.toml").write_text(toml[:at] + new + toml[at + len(old):])
    code, err, seconds = check(capsys, repo, locked["data_dir"])
    assert code == 100, err
    assert f"REGRESSED {victim}: accuracy fell from {perf[victim]:.3f} to {1 - perf[victim]:.3f}" in " ".join(err.split())
    md = (repo / "check.md").read_text()
    assert md.startswith("## ❌ promptsel check failed")
    assert f"| ❌ regressed | {victim} | answer_choices.{pos_cls}:" in md
    print(f"\nswapped {victim}: check {seconds:.1f} s\n{md}")


def test_a_broken_prompt_file_is_exit_2(capsys, locked, repo):
    (repo / "sa3.toml").write_text((repo / "sa3.toml").read_text().replace("[[prompt]]", "[[prompt]", 1))
    code, err, _ = check(capsys, repo, locked["data_dir"])
    assert code == 2, err
    assert "sa3.toml: invalid TOML" in err and "Traceback" not in err
    assert not (repo / "check.md").exists()
