"""Tiny random surrogates of the three architectures FUTE supports (a pytest plugin module).

Each is saved with ``save_pretrained`` as a *base* model (no classification head), the way a
real surrogate comes, so loading it as a sequence classifier adds a new head. No weights are
downloaded; each takes well under a second.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest_backends import TINY_SENTENCES, build_tiny_llama


def _tokenizer(single: str, pair: str, specials: list[str], **named: str):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(TINY_SENTENCES, trainers.WordLevelTrainer(special_tokens=["[UNK]", *specials], show_progress=False))
    vocab = tok.get_vocab()
    tok.post_processor = processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=[(s, vocab[s]) for s in specials if s in single + pair]
    )
    return tok, PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", **named)


def build_tiny_bert(path: Path, *, seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    tok, fast = _tokenizer("[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1", ["[PAD]", "[CLS]", "[SEP]"],
                           pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]")
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=tok.get_vocab()["[PAD]"])
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path


def build_tiny_t5(path: Path, *, seed: int = 0) -> Path:
    import torch
    from transformers import T5Config, T5Model

    tok, fast = _tokenizer("$A </s>", "$A </s> $B </s>", ["<pad>", "</s>"], pad_token="<pad>", eos_token="</s>")
    vocab = tok.get_vocab()
    config = T5Config(vocab_size=tok.get_vocab_size(), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                      num_heads=4, pad_token_id=vocab["<pad>"], eos_token_id=vocab["</s>"], decoder_start_token_id=vocab["<pad>"])
    torch.manual_seed(seed)
    T5Model(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_surrogates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """arch -> model directory, for 'encoder', 'decoder' and 'encoder-decoder'."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("surrogates")
    return {
        "encoder": build_tiny_bert(root / "bert"),
        "decoder": build_tiny_llama(root / "llama"),
        "encoder-decoder": build_tiny_t5(root / "t5"),
    }
