"""The quick start on the real default model (SmolLM2-135M GGUF through llama.cpp), small."""

from __future__ import annotations

import json

import pytest

from promptsel.cli import main
from tests.paths import ROOT

METHODS = {"mi", "globale", "locale", "zps-log", "zps-prob", "zps-vote", "spell", "consensus", "self-select"}

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.timeout(1800)]


def select(capsys, *extra: str) -> dict:
    with pytest.raises(SystemExit) as exc:
        main(["select", "--dataset", "rotten_tomatoes", "--prompts", str(ROOT / "prompts" / "sa.toml"),
              "--limit", "12", "--max-new-tokens", "12", "--json", "--no-progress", *extra])
        raise SystemExit(0)
    out, err = capsys.readouterr()
    assert exc.value.code in (0, None), err
    return json.loads(out)


def test_rotten_tomatoes_quick_start_offline_then_warm(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cold = select(capsys)
    assert cold["dataset"]["source"].startswith("offline:vaderSentiment")
    assert cold["dataset"]["n"] == 12 and len(cold["dataset"]["sample_ids"]) == 12
    assert cold["backend"]["name"] == "llamacpp" and len(cold["backend"]["fingerprint"]) == 64
    assert [p["id"] for p in cold["prompts"]] == [f"sa{i:02d}" for i in range(1, 14)]
    assert set(cold["methods"]) == METHODS
    for p in cold["prompts"]:
        assert 0.0 <= p["performance"] <= 1.0
    for e in cold["methods"].values():
        assert e["chosen"] in {p["id"] for p in cold["prompts"]}
        assert 0.0 < e["rate"] <= 1.0
    assert cold["oracle"]["performance"] == max(p["performance"] for p in cold["prompts"])
    assert cold["cache"]["misses"] > 0
    warm = select(capsys)
    assert warm["cache"]["misses"] == 0  # everything served from the cache
    assert [p["scores"] for p in warm["prompts"]] == [p["scores"] for p in cold["prompts"]]
