"""llamacpp against hf on the same GGUF: same text, same tokens, same numbers within a stated tolerance.

Two comparisons, because they answer different questions:

* ``f32_gguf`` (SmolLM2 cut to two layers, every tensor float32): no quantised kernels anywhere,
  so the two engines must agree closely. Measured max |diff| on 20 chat prompts: 0.0035 nats on
  label words and 0.008 on per-token sequence log-probs (llama.cpp keeps its KV cache in f16).
  Tolerances 0.02 and 0.03. A position off by one, a missing BOS or a wrong template would miss
  them by whole nats, so this is the test of the scoring logic.
* the default Q4_1 model: transformers dequantises Q4_1 to float32 and computes exactly, while
  llama.cpp multiplies Q4_1 weights by activations quantised to Q8_1. Measured on the same 20
  prompts: label-word log-probs differ by up to 0.41 nats (mean 0.11); per-token sequence
  log-probs by up to 0.37; the mean NLL per text (what SPELL uses) by up to 0.021; the choice
  between two label words agreed on 57 of 60 pairs. Tolerances: 0.75 nats per label word,
  0.06 on mean NLL, >= 85 % agreement. (The F32 comparison above shows the gap is the
  quantised kernels, not the backends.)
"""

from __future__ import annotations

import numpy as np
import pytest

from promptsel.backend import ContinuationRequest

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.timeout(1200)]

REVIEWS = [
    "The movie was a delight from start to finish, with sharp writing and warm performances.",
    "A tedious, overlong mess that never figures out what it wants to say.",
    "I laughed, I cried, and I left the theatre wanting to see it again.",
    "The plot is thin and the acting is wooden; even the score feels phoned in.",
    "An ambitious film that mostly succeeds thanks to its fearless lead.",
    "Nothing about this sequel justifies its existence.",
    "Gorgeous cinematography cannot save a script this lazy.",
    "A small, honest story told with great care and humour.",
    "The jokes land, the pacing is brisk, and the cast clearly had fun.",
    "Two hours of my life I will never get back.",
]
TEMPLATES = [
    "Is the sentiment of the following review positive or negative? Answer with one word.\nReview: {}",
    "Review: {}\nDid the reviewer like the movie? Answer yes or no.",
]
WORDS = ("positive", "negative", "yes", "no", "Yes", "No")
MULTI = (" very positive indeed", "negative review")

F32_LABEL_TOL, F32_SEQ_TOL = 0.02, 0.03
Q4_LABEL_TOL, Q4_MEAN_NLL_TOL, Q4_AGREEMENT = 0.75, 0.06, 0.85


def _messages():
    return [[{"role": "user", "content": t.format(r)}] for t in TEMPLATES for r in REVIEWS]


def _compare(llama, hf):
    texts = [llama.render_chat(m) for m in _messages()]
    assert texts == [hf.render_chat(m) for m in _messages()]  # one chat template, two renderers
    for text in texts:
        assert llama._ids(text) == hf._ids(text)  # same tokens, same (absent) BOS
        for word in (*WORDS, *MULTI):
            p_ids = llama._ids(text)
            assert llama._continuation_ids(text, p_ids, word) == hf._continuation_ids(text, p_ids, word)
    requests = [ContinuationRequest(t, WORDS) for t in texts]
    label = (np.array(llama.continuation_logprobs(requests)), np.array(hf.continuation_logprobs(requests)))
    multi_req = [ContinuationRequest(t, MULTI) for t in texts[:4]]
    multi = (np.array(llama.continuation_logprobs(multi_req)), np.array(hf.continuation_logprobs(multi_req)))
    seqs = (llama.sequence_logprobs(texts), hf.sequence_logprobs(texts))
    return label, multi, seqs


@pytest.fixture(scope="module")
def f32_pair(f32_gguf):
    pytest.importorskip("llama_cpp")
    for name in ("torch", "transformers", "gguf", "accelerate"):
        pytest.importorskip(name)
    from promptsel_builtin.hf import HFBackend
    from promptsel_builtin.llamacpp import LlamaCppBackend

    llama, hf = LlamaCppBackend(str(f32_gguf)), HFBackend(str(f32_gguf), device="cpu")
    yield llama, hf
    llama.close()
    hf.close()


def test_float32_gguf_agrees_closely(f32_pair):
    (l_lab, h_lab), (l_multi, h_multi), (l_seq, h_seq) = _compare(*f32_pair)
    assert np.abs(l_lab - h_lab).max() < F32_LABEL_TOL
    assert np.abs(l_multi - h_multi).max() < F32_LABEL_TOL
    for a, b in zip(l_seq, h_seq):
        assert a.shape == b.shape
        assert np.abs(a - b).max() < F32_SEQ_TOL


def test_default_q4_model_agrees_within_quantisation_noise(llamacpp_default, hf_default_gguf):
    (l_lab, h_lab), (l_multi, h_multi), (l_seq, h_seq) = _compare(llamacpp_default, hf_default_gguf)
    assert np.abs(l_lab - h_lab).max() < Q4_LABEL_TOL
    assert np.abs(l_multi - h_multi).max() < Q4_LABEL_TOL
    # the greedy choice between each pair of label words (positive/negative, yes/no, Yes/No)
    agree = [
        (l_lab[:, i] > l_lab[:, i + 1]) == (h_lab[:, i] > h_lab[:, i + 1]) for i in range(0, len(WORDS), 2)
    ]
    assert np.mean(agree) >= Q4_AGREEMENT
    assert (l_lab.argmax(1) == h_lab.argmax(1)).mean() >= Q4_AGREEMENT
    for a, b in zip(l_seq, h_seq):
        assert a.shape == b.shape and np.isfinite(a).all() and np.isfinite(b).all()
        assert abs(a.mean() - b.mean()) < Q4_MEAN_NLL_TOL
