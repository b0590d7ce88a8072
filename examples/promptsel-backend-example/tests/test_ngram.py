"""What the contract cannot know: the numbers are a real language model's, and the plugin is
installed so that promptsel finds it."""

from __future__ import annotations

import math

import pytest
from promptsel import BackendError, ContinuationRequest, UsageError

from promptsel_ngram.backend import NgramBackend
from promptsel_ngram.model import EOS, NgramMixture, parse_sections

TEXT = "### a\n\nab ab ab\n\nab\n\n### b\n\nba ba\n"


def test_sections_and_documents():
    assert parse_sections(TEXT) == {"a": ["ab ab ab", "ab"], "b": ["ba ba"]}
    assert parse_sections("one\n\ntwo\n") == {"text": ["one", "two"]}


@pytest.mark.parametrize("order", [1, 2, 4])
@pytest.mark.parametrize("history", ["", "ab", "zzz ab", "b"])
def test_next_symbol_distributions_sum_to_one(order, history):
    lm = NgramMixture(TEXT, order)
    _, state = lm.read(lm.start(), history)
    assert math.fsum(math.exp(v) for v in lm.next_logprobs(state).values()) == pytest.approx(1.0, abs=1e-12)


def test_add_one_by_hand():
    # One section, order 1: p(s) = (count(s) + 1) / (N + V). "aab" + EOS: N = 4; V = a, b, EOS, UNK.
    lm = NgramMixture("aab", order=1)
    logps, _ = lm.read(lm.start(), "ab?")
    assert [math.exp(v) for v in logps] == pytest.approx([3 / 8, 2 / 8, 1 / 8])  # "?" is UNK
    assert math.exp(lm.next_logprobs(lm.start())[EOS]) == pytest.approx(2 / 8)


def test_the_input_moves_the_label_scores():
    backend = NgramBackend()
    prompt = "Review: {}\nSentiment:"
    warm = prompt.format("A lovely, funny film with a wonderful cast. I loved it.")
    cold = prompt.format("A dull, boring mess with a wasted cast. I hated it.")
    scores = backend.continuation_logprobs([ContinuationRequest(p, (" positive", " negative")) for p in (warm, cold)])
    assert scores[0][0] > scores[0][1]
    assert scores[1][1] > scores[1][0]


def test_greedy_generation_follows_the_training_text(tmp_path):
    # One document: after "abc" every context of 1 to 3 characters has seen only "d", and after
    # "g" only the end of the document.
    (tmp_path / "abc.txt").write_text("abcdefg\n")
    backend = NgramBackend(str(tmp_path / "abc.txt"), order=4)
    assert backend.generate(["abc", "abc", "abc"], max_tokens=10) == ["defg"] * 3
    assert backend.generate(["abc"], max_tokens=2) == ["de"]
    assert backend.generate(["abc"], max_tokens=10, stop=["f"]) == ["de"]


def test_options_and_errors(tmp_path):
    assert NgramBackend(order="3").cache_identity()["options"] == {"order": 3}
    with pytest.raises(UsageError, match="at least 1"):
        NgramBackend(order=0)
    with pytest.raises(BackendError, match="not found"):
        NgramBackend(str(tmp_path / "missing.txt"))
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(BackendError, match="no documents"):
        NgramBackend(str(tmp_path / "empty.txt")).sequence_logprobs(["x"])
    own = tmp_path / "own.txt"
    own.write_text("hello world\n")
    assert NgramBackend(str(own)).fingerprint != NgramBackend().fingerprint
    with pytest.raises(BackendError, match="empty"):
        NgramBackend().continuation_logprobs([ContinuationRequest("x", ("",))])


def test_promptsel_finds_the_installed_plugin():
    from promptsel.plugins import plugin_infos, registries

    if "ngram" not in {i.name for i in plugin_infos()}:
        pytest.skip("promptsel-ngram is not installed (pip install this directory first)")
    assert registries().backends.get("ngram") is NgramBackend
    assert registries().backends.get("char-ngram") is NgramBackend
