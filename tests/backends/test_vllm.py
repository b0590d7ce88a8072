"""The vllm backend against a faithful fake of vLLM's offline API (tests/fake_vllm: real numbers
from transformers on the tiny random Llama), checked against the hf backend: log-probs,
generation, option pass-through, error messages, and ``promptsel select --backend vllm``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from promptsel.backend import ContinuationRequest
from promptsel.cli import main
from promptsel.errors import BackendError, UsageError
from promptsel.testing import bind_fixtures, parametrize_backend_checks
from tests.paths import FAKE_VLLM

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

PROMPTS = [
    "Is the sentiment of this review positive or negative? The movie was a delight.",
    "The plot is thin and the acting is wooden. The answer is",
    "The answer is ",  # ends in a space: the label word's first token merges with it
    "<s>Answer yes or no:",  # already starts with the BOS
]
CONTS = (" positive", " negative", "positive", " yes", " wonderful and great")


def _drop_vllm() -> None:
    for name in [n for n in sys.modules if n == "vllm" or n.startswith("vllm.")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def fake_vllm():
    """tests/fake_vllm first on sys.path while this module runs; vllm* forgotten afterwards."""
    _drop_vllm()
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(FAKE_VLLM))
        import vllm

        assert Path(vllm.__file__).is_relative_to(FAKE_VLLM)
        yield vllm
    _drop_vllm()


@pytest.fixture(scope="module")
def tiny_vllm(fake_vllm, tiny_llama_dir):
    from promptsel_builtin.vllm_backend import VLLMBackend

    backend = VLLMBackend(str(tiny_llama_dir), dtype="float32")  # vLLM would run this float32 checkpoint in float16
    yield backend
    backend.close()


def vllm_on_tiny_llama(fake_vllm, tiny_llama_dir):
    from promptsel_builtin.vllm_backend import VLLMBackend

    return VLLMBackend(str(tiny_llama_dir), dtype="float32")


@parametrize_backend_checks({"vllm": vllm_on_tiny_llama})
def test_backend_contract(factory, check, request):
    """The contract every backend keeps (promptsel.contract), on the fake engine."""
    check(bind_fixtures(factory, request))


def test_continuations_agree_with_hf(tiny_vllm, tiny_hf):
    requests = [ContinuationRequest(p, CONTS) for p in PROMPTS]
    tok = tiny_hf._tokenizer()
    assert len(tok(CONTS[-1], add_special_tokens=False)["input_ids"]) > 1  # a multi-token label word
    assert tiny_hf._ids("The answer is positive")[: len(tiny_hf._ids("The answer is "))] != tiny_hf._ids("The answer is ")
    for mode in ("full", "first_token"):
        calls = len(tiny_vllm._engine().generate_calls)
        got = np.array(tiny_vllm.continuation_logprobs(requests, mode=mode))
        assert len(tiny_vllm._engine().generate_calls) == calls + 1  # the whole call is one engine batch
        expected = np.array(tiny_hf.continuation_logprobs(requests, mode=mode))
        np.testing.assert_allclose(got, expected, atol=1e-4)
        assert len(np.unique(got.round(4))) > len(CONTS)  # not a constant
    full = tiny_vllm.continuation_logprobs(requests[:1])[0]
    first = tiny_vllm.continuation_logprobs(requests[:1], mode="first_token")[0]
    assert full[-1] < first[-1]  # the multi-token word adds its later tokens in full mode


def test_sequence_logprobs_agree_with_hf(tiny_vllm, tiny_hf):
    texts = [*PROMPTS, "", "good", "good"]
    got, expected = tiny_vllm.sequence_logprobs(texts), tiny_hf.sequence_logprobs(texts)
    assert [len(a) for a in got] == [len(a) for a in expected]
    assert len(got[4]) == 0 and len(got[5]) >= 1  # "" is the BOS alone; "good" scores its first token
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert tiny_vllm._ids("<s>good") == tiny_vllm._ids("good")  # the BOS is not doubled


def test_generation_is_hf_greedy(tiny_vllm, tiny_hf):
    out = tiny_vllm.generate(PROMPTS[:3], max_tokens=5)
    assert out == tiny_hf.generate(PROMPTS[:3], max_tokens=5)
    assert tiny_vllm.generate(PROMPTS[:1], max_tokens=1) == tiny_hf.generate(PROMPTS[:1], max_tokens=1)
    text = next(t for t in out if len(t) >= 2)
    stop = text[len(text) // 2 :][:2]
    i = out.index(text)
    cut = tiny_vllm.generate([PROMPTS[i]], max_tokens=5, stop=[stop])[0]
    assert cut == tiny_hf.generate([PROMPTS[i]], max_tokens=5, stop=[stop])[0]
    assert stop not in cut and text.startswith(cut)
    assert tiny_vllm.generate([], max_tokens=3) == []


def test_render_chat_uses_the_tokenizer_template(tiny_vllm, tiny_hf):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert tiny_vllm.render_chat(messages) == tiny_hf.render_chat(messages) == "<|system|>Be brief.</s>\n<|user|>Hi</s>\n<|assistant|>"


def test_model_options_reach_vllm_with_their_types(fake_vllm, tiny_llama_dir):
    from promptsel_builtin.vllm_backend import VLLMBackend

    backend = VLLMBackend(
        str(tiny_llama_dir), tensor_parallel_size="2", gpu_memory_utilization="0.5", enforce_eager="true",
        max_model_len="128", seed=3, dtype="float32", max_num_seqs=4.0, logprobs_mode="raw_logprobs", revision=1234,
    )
    assert backend._llm is None  # nothing loads before it is needed
    seen = backend._engine().engine_kwargs
    assert seen["model"] == str(tiny_llama_dir)
    assert (seen["tensor_parallel_size"], seen["max_model_len"], seen["seed"], seen["max_num_seqs"]) == (2, 128, 3, 4)
    assert seen["gpu_memory_utilization"] == 0.5 and seen["enforce_eager"] is True
    assert (seen["dtype"], seen["logprobs_mode"], seen["revision"]) == ("float32", "raw_logprobs", "1234")
    assert seen["enable_prefix_caching"] is False  # off unless asked for
    identity = backend.cache_identity()["options"]
    assert identity["dtype"] == "float32"
    # Parallelism, lengths, the seed, CUDA graphs and the revision (in the fingerprint) do not change scores.
    assert not identity.keys() & {"tensor_parallel_size", "max_model_len", "seed", "max_num_seqs", "gpu_memory_utilization",
                                  "enforce_eager", "revision", "logprobs_mode", "enable_prefix_caching"}
    backend.close()
    on = VLLMBackend(str(tiny_llama_dir), enable_prefix_caching="true")
    assert on._engine().engine_kwargs["enable_prefix_caching"] is True
    on.close()


def test_bad_options_and_models_are_one_line_errors(fake_vllm, tiny_llama_dir, tmp_path):
    from promptsel_builtin.vllm_backend import VLLMBackend

    with pytest.raises(UsageError, match="unexpected keyword argument 'n_threads'"):
        VLLMBackend(str(tiny_llama_dir), n_threads=2).sequence_logprobs(["good"])
    with pytest.raises(UsageError, match="tensor_parallel_size must be an integer"):
        VLLMBackend(str(tiny_llama_dir), tensor_parallel_size="two")
    with pytest.raises(UsageError, match="enforce_eager must be true or false"):
        VLLMBackend(str(tiny_llama_dir), enforce_eager="maybe")
    with pytest.raises(UsageError, match="no default model"):
        VLLMBackend(None)
    with pytest.raises(BackendError, match="Model path not found"):
        VLLMBackend(str(tmp_path / "missing" / "model"))
    with pytest.raises(BackendError, match="could not start") as exc:  # vLLM's own check of max_model_len
        VLLMBackend(str(tiny_llama_dir), max_model_len=100_000).sequence_logprobs(["good"])
    assert "\n" not in str(exc.value)


def test_missing_vllm_is_a_clear_backend_error(monkeypatch, tiny_llama_dir):
    from promptsel_builtin.vllm_backend import VLLMBackend

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    backend = VLLMBackend(str(tiny_llama_dir))
    assert len(backend.fingerprint) == 64  # identity needs no engine
    with pytest.raises(BackendError) as exc:
        backend.continuation_logprobs([ContinuationRequest("Answer:", (" yes",))])
    message = str(exc.value)
    assert "vllm package, which is not installed" in message and "pip install vllm" in message
    assert "CUDA" in message and "\n" not in message


def test_a_wrong_number_of_prompt_logprobs_is_an_error(tiny_vllm, monkeypatch):
    engine = tiny_vllm._engine()
    real = engine.generate

    def short(*args, **kwargs):  # an engine that drops the last prompt position (cf. llama.cpp#27174)
        outputs = real(*args, **kwargs)
        for out in outputs:
            out.prompt_logprobs = out.prompt_logprobs[:-1]
        return outputs

    monkeypatch.setattr(engine, "generate", short)
    with pytest.raises(BackendError, match=r"returned \d+ prompt log-probs for a prompt of \d+ tokens"):
        tiny_vllm.continuation_logprobs([ContinuationRequest("Answer yes or no:", (" maybe",))])

    def other_token(*args, **kwargs):  # a position without the prompt's own token
        outputs = real(*args, **kwargs)
        for out in outputs:
            out.prompt_logprobs[-1] = {-1: next(iter(out.prompt_logprobs[-1].values()))}
        return outputs

    monkeypatch.setattr(engine, "generate", other_token)
    with pytest.raises(BackendError, match="lack the prompt's own token"):
        tiny_vllm.sequence_logprobs(["Answer yes or no: maybe"])


def test_too_long_prompts_are_reported(fake_vllm, tiny_llama_dir):
    from promptsel_builtin.vllm_backend import VLLMBackend

    backend = VLLMBackend(str(tiny_llama_dir), max_model_len=16)
    with pytest.raises(BackendError, match="longer than the maximum model length of 16") as exc:
        backend.sequence_logprobs([" ".join(PROMPTS)])
    assert "-M max_model_len" in str(exc.value)
    backend.close()


def test_fingerprint_is_a_content_hash(tiny_llama_dir, tmp_path):
    from promptsel_builtin.vllm_backend import VLLMBackend

    a = VLLMBackend(str(tiny_llama_dir)).fingerprint
    copy = shutil.copytree(tiny_llama_dir, tmp_path / "renamed")
    assert VLLMBackend(str(copy)).fingerprint == a  # the directory's name does not matter
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert VLLMBackend(str(copy)).fingerprint != a
    hub = VLLMBackend("org/model")
    assert hub.hub and hub.model_name == "org/model"
    assert hub.fingerprint != VLLMBackend("org/model", revision="abc123").fingerprint


def test_registration_and_cheap_import():
    from promptsel.plugins import registries
    from promptsel_builtin import vllm_backend

    assert registries().backends.entry("vllm").target is vllm_backend.VLLMBackend
    assert vllm_backend.VLLMBackend.capabilities == {"continuation_logprobs", "sequence_logprobs", "generate"}
    code = ("import sys, promptsel_builtin.vllm_backend, promptsel_builtin.backends; "
            "assert not {'vllm', 'torch', 'transformers'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the fake refuses what vLLM refuses ---------------------------------------------------------
def test_the_fake_rejects_what_vllm_rejects(tiny_vllm, fake_vllm, tiny_llama_dir):
    llm = tiny_vllm._engine()
    with pytest.raises(TypeError):
        fake_vllm.SamplingParams(max_new_tokens=4)  # a transformers name, not vLLM's
    for bad in ({"max_tokens": 0}, {"prompt_logprobs": -2}, {"temperature": -1.0}, {"stop": [""]}):
        with pytest.raises(ValueError):
            fake_vllm.SamplingParams(**bad)
    greedy = fake_vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
    with pytest.raises(TypeError):
        llm.generate([[1, 5, 7]], greedy)  # bare token lists are not prompts
    with pytest.raises(TypeError):
        llm.generate([{"prompt_token_ids": np.array([1, 5, 7])}], greedy)
    with pytest.raises(ValueError, match="cannot be empty"):
        llm.generate([{"prompt_token_ids": []}], greedy)
    with pytest.raises(ValueError, match="out of vocabulary"):
        llm.generate([{"prompt_token_ids": [1, 10_000]}], greedy)
    with pytest.raises(ValueError, match="greater than max allowed"):
        llm.generate(["good"], fake_vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=21))
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        fake_vllm.LLM(str(tiny_llama_dir), n_gpu_layers=1)


def test_the_fake_prompt_logprobs_shape(tiny_vllm, fake_vllm, tiny_hf):
    llm = tiny_vllm._engine()
    ids = list(tiny_hf._ids("The movie was a delight."))
    params = fake_vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=3)
    (out,) = llm.generate(fake_vllm.TokensPrompt(prompt_token_ids=ids), params, use_tqdm=False)
    assert out.prompt is None and out.prompt_token_ids == ids and out.finished
    assert len(out.prompt_logprobs) == len(ids) and out.prompt_logprobs[0] is None
    for token, entry in zip(ids[1:], out.prompt_logprobs[1:]):
        assert token in entry and 3 <= len(entry) <= 4  # the actual token plus the top 3
        ranks = sorted(lp.rank for lp in entry.values())
        assert ranks[:3] == [1, 2, 3] and (len(entry) == 3 or entry[token].rank > 3)
        assert entry[token].decoded_token == tiny_hf._tokenizer().decode([token])
    np.testing.assert_allclose([e[t].logprob for t, e in zip(ids[1:], out.prompt_logprobs[1:])],
                               tiny_hf.sequence_logprobs(["The movie was a delight."])[0], atol=1e-4)
    assert len(out.outputs) == 1 and len(out.outputs[0].token_ids) == 1
    auto = fake_vllm.LLM(str(tiny_hf.source))
    assert auto.dtype == "float16"  # vLLM runs a float32 checkpoint in float16 by default


# --- end to end through the CLI -----------------------------------------------------------------
PROMPT_SET = '''name = "tiny"
description = "Decide whether a movie review is positive or negative."

[defaults]
chat = false
cot_instruction = "Think briefly, then answer."
cot_followup = "So, positive or negative?"

[[prompt]]
id = "raw"
template = "{{text}} Is the sentiment positive or negative? The answer is"
answer_choices = { positive = ["positive", "good"], negative = ["negative", "bad"] }

[[prompt]]
id = "space"
template = "Review: {{text}} Answer yes or no: "
target_delimiter = ""
answer_choices = { positive = ["yes"], negative = ["no"] }

[[prompt]]
id = "chat"
chat = true
template = "{{text}} Did the reviewer like the movie?"
answer_choices = { positive = ["yes", "Yes"], negative = ["no", "No"] }

[[prompt]]
id = "cot"
chat = true
cot = true
template = "{{text}}"
answer_choices = { positive = ["positive"], negative = ["negative"] }
'''
REVIEWS = [
    ("The movie was a delight from start to finish.", "positive"),
    ("A tedious, overlong mess.", "negative"),
    ("I laughed, I cried, and I left wanting to see it again.", "positive"),
    ("The plot is thin and the acting is wooden.", "negative"),
    ("good great wonderful", "positive"),
    ("bad awful boring terrible", "negative"),
]


def _select(capsys, *argv: str) -> dict:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    assert (exc.value.code or 0) == 0, err
    return json.loads(out)


def test_select_end_to_end_agrees_with_hf(capsys, fake_vllm, tiny_llama_dir, tmp_path):
    data, prompts = tmp_path / "reviews.jsonl", tmp_path / "tiny.toml"
    data.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in REVIEWS))
    prompts.write_text(PROMPT_SET)
    common = ["select", "--dataset", str(data), "--prompts", str(prompts), "--model", str(tiny_llama_dir),
              "--methods", "mi,globale,locale,zps-log,spell", "--max-new-tokens", "4", "--json", "--no-progress", "-q"]
    v = _select(capsys, *common, "--backend", "vllm", "-M", "dtype=float32", "--save-scores", str(tmp_path / "v.npz"))
    h = _select(capsys, *common, "--backend", "hf", "-M", "device=cpu", "--save-scores", str(tmp_path / "h.npz"))
    assert v["backend"]["name"] == "vllm" and v["backend"]["model"] == tiny_llama_dir.name
    assert v["versions"]["vllm"] == fake_vllm.__version__
    assert [p["id"] for p in v["prompts"]] == ["raw", "space", "chat", "cot"]
    sv, sh = np.load(tmp_path / "v.npz"), np.load(tmp_path / "h.npz")
    np.testing.assert_allclose(sv["class_logprobs"], sh["class_logprobs"], atol=1e-4)
    np.testing.assert_allclose(sv["prompt_nll"], sh["prompt_nll"], atol=1e-4)
    assert np.ptp(sv["class_logprobs"]) > 0.01  # the table is not degenerate
    assert {m: e["ranking"] for m, e in v["methods"].items()} == {m: e["ranking"] for m, e in h["methods"].items()}
