"""The hf backend on a tiny random Llama (no downloaded weights): exact log-probs, batching,
tokenization rules, chat rendering, generation, fingerprints and error messages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from promptsel.backend import ContinuationRequest
from promptsel.errors import BackendError, UsageError

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

PROMPTS = [
    "Is the sentiment of this review positive or negative? The movie was a delight.",
    "The plot is thin and the acting is wooden. The answer is",
    "I laughed, I cried.",
    "Answer yes or no:",
    "A tedious, overlong mess that never figures out what it wants to say. Is it good? The answer is",
]
CONTS = (" positive", " negative", " yes", " wonderful and great")


@pytest.fixture(scope="module")
def reference(tiny_llama_dir: Path):
    """The same checkpoint, loaded independently of the backend."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    return tok, model


def manual_logprobs(model, ids: list[int]) -> np.ndarray:
    """log p(ids[i] | ids[:i]) for i >= 1, from one unpadded forward pass in float64."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    lp = torch.log_softmax(logits[:-1], dim=-1)
    return lp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].numpy()


def test_continuations_match_a_manual_forward_pass(tiny_hf, reference):
    tok, model = reference
    got = tiny_hf.continuation_logprobs([ContinuationRequest(p, CONTS) for p in PROMPTS])
    for prompt, row in zip(PROMPTS, got):
        p_ids = tok(prompt)["input_ids"]
        assert p_ids[0] == tok.bos_token_id  # this tokenizer adds a BOS
        for cont, value in zip(CONTS, row):
            joint = tok(prompt + cont)["input_ids"]
            assert joint[: len(p_ids)] == p_ids
            lp = manual_logprobs(model, joint)
            expected = lp[len(p_ids) - 1 :].sum()
            assert value == pytest.approx(expected, abs=1e-4)
    assert len({round(float(v), 6) for row in got for v in row}) > len(CONTS)  # not constant


def test_batched_equals_one_by_one(tiny_hf):
    requests = [ContinuationRequest(p, CONTS) for p in PROMPTS]
    batched = tiny_hf.continuation_logprobs(requests)
    single = [tiny_hf.continuation_logprobs([r])[0] for r in requests]
    np.testing.assert_allclose(np.array(batched), np.array(single), atol=1e-4)
    seq_batched = tiny_hf.sequence_logprobs(PROMPTS)
    for text, lp in zip(PROMPTS, seq_batched):
        np.testing.assert_allclose(lp, tiny_hf.sequence_logprobs([text])[0], atol=1e-4)


def test_first_token_mode_and_multi_token_sums(tiny_hf):
    requests = [ContinuationRequest(p, CONTS) for p in PROMPTS]
    full = tiny_hf.continuation_logprobs(requests, mode="full")
    first = tiny_hf.continuation_logprobs(requests, mode="first_token")
    for prompt, f_row, t_row in zip(PROMPTS, full, first):
        assert f_row[:3] == pytest.approx(t_row[:3], abs=1e-5)  # single-token words
        assert f_row[3] < t_row[3]  # a multi-token word adds negative terms
        # teacher-forced sum = the tail of sequence_logprobs(prompt + continuation)
        n_cont = len(tiny_hf._ids(prompt + CONTS[3])) - len(tiny_hf._ids(prompt))
        tail = tiny_hf.sequence_logprobs([prompt + CONTS[3]])[0][-n_cont:]
        assert f_row[3] == pytest.approx(tail.sum(), abs=1e-4)


def test_sequence_logprobs_positions(tiny_hf, reference):
    tok, model = reference
    for text in PROMPTS:
        ids = tok(text)["input_ids"]
        got = tiny_hf.sequence_logprobs([text])[0]
        # BOS is t_0 and gets no value; every text token, the first included, is scored.
        assert len(got) == len(ids) - 1 == len(tok(text, add_special_tokens=False)["input_ids"])
        np.testing.assert_allclose(got, manual_logprobs(model, ids), atol=1e-4)
    n_good = len(tok("good", add_special_tokens=False)["input_ids"])
    assert [len(a) for a in tiny_hf.sequence_logprobs(["", "good"])] == [0, n_good]


def test_bos_is_not_doubled(tiny_hf):
    assert tiny_hf._ids("<s>good")[:2] != (1, 1)
    assert tiny_hf._ids("<s>good") == tiny_hf._ids("good")


def test_continuation_that_merges_with_the_prompt_is_tokenized_alone(tiny_hf, reference):
    tok, _ = reference
    prompt = "The answer is "  # the trailing space merges with the next word in joint tokenization
    p_ids = tiny_hf._ids(prompt)
    joint = tiny_hf._ids(prompt + "positive")
    assert joint[: len(p_ids)] != p_ids
    cont = tiny_hf._continuation_ids(prompt, p_ids, "positive")
    assert list(cont) == tok("positive", add_special_tokens=False)["input_ids"]
    # and its score is computed after the prompt's own tokens
    value = tiny_hf.continuation_logprobs([ContinuationRequest(prompt, ("positive",))])[0][0]
    assert np.isfinite(value) and value < 0


def test_render_chat_uses_the_tokenizer_template(tiny_hf):
    text = tiny_hf.render_chat([{"role": "user", "content": "Hi"}])
    assert text == "<|user|>Hi</s>\n<|assistant|>"
    assert tiny_hf.render_chat([{"role": "user", "content": "Hi"}], add_generation_prompt=False) == "<|user|>Hi</s>\n"


def test_generate_is_greedy_and_deterministic(tiny_hf, reference):
    tok, model = reference
    out = tiny_hf.generate(PROMPTS[:3], max_tokens=5)
    assert out == tiny_hf.generate(PROMPTS[:3], max_tokens=5)
    # the same as a plain argmax loop
    ids = tok(PROMPTS[0])["input_ids"]
    new = []
    with torch.no_grad():
        for _ in range(5):
            nxt = int(model(torch.tensor([ids + new])).logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            new.append(nxt)
    assert out[0] == tok.decode(new, skip_special_tokens=True)
    assert tiny_hf.generate(PROMPTS[:1], max_tokens=1)[0] == tok.decode(new[:1], skip_special_tokens=True)
    if out[0]:
        stop = out[0][len(out[0]) // 2 :][:2] or out[0]
        cut = tiny_hf.generate(PROMPTS[:1], max_tokens=5, stop=[stop])[0]
        assert stop not in cut and out[0].startswith(cut)


def test_fingerprint_is_a_content_hash(tiny_llama_dir, tmp_path):
    from promptsel_builtin.hf import HFBackend

    copy = shutil.copytree(tiny_llama_dir, tmp_path / "renamed")
    a = HFBackend(str(tiny_llama_dir), device="cpu").fingerprint
    assert HFBackend(str(copy), device="cpu").fingerprint == a  # the name does not matter
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert HFBackend(str(copy), device="cpu").fingerprint != a


def test_model_sources_and_errors(tmp_path):
    from promptsel_builtin.hf import HFBackend

    with pytest.raises(BackendError, match="not found"):
        HFBackend(str(tmp_path / "missing-dir" / "x"), device="cpu")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    backend = HFBackend(str(gguf), device="cpu")
    assert (backend.source, backend.gguf_file, backend.hub) == (str(tmp_path), "m.gguf", False)
    assert backend.model_name == "m"
    with pytest.raises(BackendError, match=r"not found in"):
        HFBackend(str(tmp_path), gguf_file="other.gguf", device="cpu")
    hub = HFBackend("HuggingFaceTB/SmolLM2-135M-Instruct", device="cpu")
    assert hub.hub and hub.model_name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    with pytest.raises(UsageError):
        HFBackend(str(tmp_path), device="cpu", dtype="float8")
    with pytest.raises(UsageError):
        HFBackend(str(tmp_path), device="cpu", batch_size=0)


def test_identity_and_options(tiny_hf):
    identity = tiny_hf.cache_identity()
    assert identity["backend"] == "hf"
    assert identity["options"] == {"device": "cpu", "dtype": "float32"}
    assert {"torch", "transformers"} <= set(tiny_hf.versions())
    assert tiny_hf.capabilities == {"continuation_logprobs", "sequence_logprobs", "generate"}


def test_registration():
    from promptsel.plugins import registries
    from promptsel_builtin import hf

    entry = registries().backends.entry("transformers")
    assert (entry.target, entry.name) == (hf.HFBackend, "hf")


def test_import_is_cheap():
    code = "import sys, promptsel_builtin.hf; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_too_long_text_is_reported(tiny_hf):
    long_text = " ".join(PROMPTS * 20)  # well over the tiny model's 256 positions
    with pytest.raises(BackendError, match="longer than"):
        tiny_hf.sequence_logprobs([long_text])
