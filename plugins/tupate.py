"""TuPaTE (Zhou et al. 2022): the task embedding is a trained attention prefix.

Deep prefix tuning is implemented here, not through ``past_key_values``: the meaning of a
tuple cache passed to T5 changed between transformers releases (methods.md §1.4: cross-
attention slots untrained in some versions, replacing the encoder in others). Instead every
chosen self-attention layer owns two trainable tensors, ``prefix_key`` and ``prefix_value``
of shape [kv_heads, prefix_len, head_dim], and promptsel's attention function prepends them
to the layer's keys and values (after rotary embeddings, so the prefix has no position)
before calling the model's own eager attention. The mask (and T5's position bias) is widened
so every query sees the whole prefix.

Only the prefix and the new classification head train; the surrogate stays frozen. The
embedding is the prefix averaged over layers: [2, kv_heads, prefix_len, head_dim] flattened
(methods.md §6; for T5 only the decoder's self-attention by default, as in the paper's code).

By default the embedding is what training changed: the trained prefix minus the seeded start
that every MTE and DTE of a run shares (``compare=change``, and ``compare=null``, the default,
which FUTE also scores against each prompt's permutation null; ``compare=null-both`` compares
the DTE to its own null too: promptsel/fute/embeddings.py). The raw trained prefix (the paper
code's, ``compare=raw`` or ``--fute-compat``) keeps that shared start, and the cosine of two raw
prefixes then says mostly how far each one moved, not what it learned (issue 10).

The paper leaves the head out of the embedding. A head trained beside the prefix can absorb a
label inversion (its two rows swap), so a prompt and its label-inverted twin need the same
prefix: the prefix alone cannot tell which way a prompt labels (measured on the premise ladder,
bench/RESULTS.md). ``head=in`` appends the head's parameters (their change, as for the prefix)
to the embedding, ``head=only`` keeps them alone (the prefix still trains); the head starts from
the run's seed in every MTE and DTE, so its rows mean the same classes in all of them.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
import torch

from promptsel import PromptselError, Surrogate, TaskData, TrainConfig, train

ATTENTION = "promptsel_prefix"
#: Attention modules that attend to another sequence; they never get a prefix.
CROSS = ("encdecattention", "crossattention", "cross_attn", "encoder_attn")


def _register_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    # Masks are built exactly as for eager attention (additive, always materialised).
    if ATTENTION not in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
        AttentionMaskInterface.register(ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["eager"])
    AttentionInterface.register(ATTENTION, prefix_attention)


def _eager(module: torch.nn.Module) -> Any:
    """The model's own eager attention (T5 adds its position bias there, Llama repeats KV heads)."""
    fn = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
    if fn is None:
        raise PromptselError(f"tupate cannot add a prefix to {type(module).__name__}: its model has no eager attention function.")
    return fn


def prefix_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, **kwargs: Any) -> Any:
    shapes = getattr(module, "_promptsel_probe", None)
    if shapes is not None:  # shape probe: record what this layer's keys look like
        shapes.append((module, tuple(key.shape)))
    pk = module._parameters.get("prefix_key")
    if pk is not None:
        pv = module._parameters["prefix_value"]
        batch, plen = key.shape[0], pk.shape[1]
        drop = getattr(module, "_promptsel_dropout", 0.0)
        pk = torch.nn.functional.dropout(pk, drop, module.training).unsqueeze(0).expand(batch, -1, -1, -1)
        pv = torch.nn.functional.dropout(pv, drop, module.training).unsqueeze(0).expand(batch, -1, -1, -1)
        if attention_mask is None and getattr(module, "is_causal", False) and query.shape[2] > 1:
            q, k = query.shape[2], key.shape[2]
            causal = torch.ones(q, k, dtype=torch.bool, device=query.device).tril(k - q)
            attention_mask = torch.zeros(q, k, dtype=query.dtype).masked_fill(~causal, torch.finfo(query.dtype).min)[None, None]
        key, value = torch.cat([pk.to(key.dtype), key], dim=2), torch.cat([pv.to(value.dtype), value], dim=2)
        if attention_mask is not None:
            attention_mask = _widen(attention_mask, plen)
        if kwargs.get("position_bias") is not None:
            kwargs["position_bias"] = _widen(kwargs["position_bias"], plen)
    return _eager(module)(module, query, key, value, attention_mask, **kwargs)


def _widen(mask: torch.Tensor, plen: int) -> torch.Tensor:
    """Prepend ``plen`` always-visible key positions to a mask or bias [..., q, k]."""
    fill = torch.ones if mask.dtype == torch.bool else torch.zeros
    return torch.cat([fill((*mask.shape[:-1], plen), dtype=mask.dtype, device=mask.device).expand(*mask.shape[:-1], plen), mask], dim=-1)


def add_prefix(model: torch.nn.Module, surrogate: Surrogate, *, prefix_len: int, dropout: float,
               encoder: bool, generator: torch.Generator) -> list[torch.nn.Module]:
    """Give every chosen self-attention layer a trainable prefix; return those layers in order."""
    _register_attention()
    model.set_attn_implementation(ATTENTION)
    names = {id(m): n for n, m in model.named_modules()}
    probe: list[tuple[torch.nn.Module, tuple[int, ...]]] = []
    for _, m in model.named_modules():
        m._promptsel_probe = probe
    try:
        with torch.no_grad():
            enc = surrogate.encode([{"text": "a b c"}], ("text",))
            model.eval()
            model(**enc, use_cache=False)
    finally:
        for _, m in model.named_modules():
            m.__dict__.pop("_promptsel_probe", None)
    layers, seen = [], set()
    for module, shape in probe:
        name = names[id(module)].lower()
        if id(module) in seen or any(c in name for c in CROSS):
            continue
        if surrogate.arch == "encoder-decoder" and not encoder and "decoder" not in name:
            continue
        seen.add(id(module))
        heads, dim = shape[1], shape[3]
        for slot in ("prefix_key", "prefix_value"):
            tensor = torch.empty(heads, prefix_len, dim)
            # xavier-uniform per layer as the paper's code; the generator makes it reproducible
            bound = float(np.sqrt(6.0 / (prefix_len * dim + heads * dim)))
            tensor.uniform_(-bound, bound, generator=generator)
            module.register_parameter(slot, torch.nn.Parameter(tensor))
        module._promptsel_dropout = dropout
        layers.append(module)
    if not layers:
        raise PromptselError(f"tupate found no self-attention layer in surrogate {surrogate.name!r} that it can give a prefix.")
    return layers


def pooled(layers: list[torch.nn.Module]) -> torch.Tensor:
    """The prefix averaged over layers: [2, kv_heads, prefix_len, head_dim] flattened."""
    with torch.no_grad():
        return torch.stack([torch.stack([m.prefix_key, m.prefix_value]) for m in layers]).mean(dim=0).reshape(-1)


def prefixed(options: dict[str, Any], surrogate: Surrogate, n_classes: int, seed: int) -> tuple[torch.nn.Module, set[str], list[torch.nn.Module]]:
    """A frozen copy of the surrogate with a new head and the seeded prefix: (model, head, layers)."""
    model, head = surrogate.classifier(n_classes, seed)
    for p in model.parameters():
        p.requires_grad_(False)
    layers = add_prefix(model, surrogate, prefix_len=int(options["prefix_len"]), dropout=float(options["dropout"]),
                        encoder=bool(options["encoder_prefix"]), generator=torch.Generator().manual_seed(seed))
    return model, head, layers


def embedding(model: torch.nn.Module, head: set[str], layers: list[torch.nn.Module], options: dict[str, Any]) -> torch.Tensor:
    """The embedding's parameters: the pooled prefix (``head=out``), then the head's parameters
    in name order (``head=in``), or those alone (``head=only``)."""
    where = options.get("head", "out")
    parts = [] if where == "only" else [pooled(layers)]
    if where != "out":
        parts += [p.detach().reshape(-1) for n, p in sorted(model.named_parameters()) if n in head]
    return torch.cat(parts).clone()


def start(options: dict[str, Any], surrogate: Surrogate, seed: int, n_classes: int = 2) -> np.ndarray:
    """The seeded parameters every embedding of a run starts from, laid out as the embedding
    is: ``compare=raw``'s vector is ``compare=change``'s plus this."""
    return embedding(*prefixed(options, surrogate, n_classes, seed), options).numpy().astype(np.float32)


def embed(options: dict[str, Any], surrogate: Surrogate, data: TaskData, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    return fit(*prefixed(options, surrogate, data.n_classes, seed), options, surrogate, data, seed)


def fit(model: torch.nn.Module, head: set[str], layers: list[torch.nn.Module], options: dict[str, Any],
        surrogate: Surrogate, data: TaskData, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Train the prefix and the head of ``prefixed``'s model on ``data``; the embedding, and
    the training's diagnosis."""
    o = options
    began = time.perf_counter()
    start = embedding(model, head, layers, o)
    params = [(n, p) for n, p in model.named_parameters() if n in head or n.endswith(("prefix_key", "prefix_value"))]
    for _, p in params:
        p.requires_grad_(True)
    epochs = int(o["mte_epochs"] if data.kind == "mte" else o["dte_epochs"])
    config = TrainConfig(lr=float(o["lr"]), batch_size=int(o["batch_size"]), epochs=epochs, patience=int(o["patience"]))
    info = train(model, params, surrogate, data, config, seed, watch=[n for n, _ in params if n not in head])
    trained = embedding(model, head, layers, o)
    vector = (trained if o["compare"] == "raw" else trained - start).numpy().astype(np.float32)
    info.update(layers=len(layers), shape=[2, *layers[0].prefix_key.shape], train_seconds=round(time.perf_counter() - began, 3))
    return vector, info
