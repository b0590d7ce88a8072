"""TaskEmb (Vu et al. 2020): the task embedding is a diagonal Fisher of the fine-tuned surrogate.

1. Fine-tune the whole surrogate (new head included) on the task: soft targets with BCE for an
   MTE, gold labels with cross-entropy for a DTE (early stopping on a held-out train slice).
2. In eval mode, estimate the diagonal Fisher of the body's parameters (the head is excluded,
   as in both reference codes), with the task's own loss:
   * ``estimator=batch`` (default; the original TaskEmb): F = (1/N) Σ_b (∇ L̄_b)², one squared
     gradient per batch of ``fisher_batch_size`` examples.
   * ``estimator=fute`` (the FUTE code, methods.md §1.5): F = ((1/N) Σ_i ∇ ℓ_i)², the square of
     the mean gradient over the whole set.
3. Pool it into a vector. Token-embedding matrices are left out: only the rows of tokens that
   occur get a gradient, so they measure vocabulary overlap rather than the task, and they are
   most of a small model's parameters. ``pool=unit`` (default) averages each weight matrix's
   Fisher over its inputs, one value per output unit (all-MiniLM-L6-v2: 52,224 values);
   ``pool=none`` keeps every entry (10.8M for MiniLM; large to store).
4. Compare (``normalise``, on the stored vectors): the cosine; Task2Vec's symmetric normalised
   cosine; or each coordinate relative to its mean over the run's embeddings.

Two limits no normalisation lifts. A Fisher is non-negative, so the cosine of two is never below
0: a prompt that answers the opposite of the task cannot score below an unrelated one. And it is
sign-blind: with a binary head, swapping the head's two rows and the labels leaves every body
gradient, so the Fisher, unchanged (``tests/embedders/test_tupate_and_taskemb.py`` pins it): a
prompt and its label-inverted twin fine-tune into mirror images with the same Fisher.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from promptsel import Surrogate, TaskData, TrainConfig, batches, cosine, logits, train


def fisher(model: torch.nn.Module, names: list[str], surrogate: Surrogate, data: TaskData, *,
           estimator: str, batch_size: int) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    model.eval()  # no dropout while measuring
    total = {n: torch.zeros_like(params[n]) for n in names}
    model.zero_grad(set_to_none=True)
    for index in batches(len(data), batch_size, shuffle=False):
        loss = data.loss(logits(model, surrogate, data, index), torch.as_tensor(index))
        if estimator == "batch":
            model.zero_grad(set_to_none=True)
            loss.backward()
            for n in names:
                if params[n].grad is not None:
                    total[n] += params[n].grad.detach() ** 2
        else:  # accumulate Σ_i ∇ℓ_i: the batch mean times the batch size
            (loss * len(index)).backward()
    if estimator == "fute":
        total = {n: (params[n].grad.detach() / len(data)) ** 2 if params[n].grad is not None else total[n] for n in names}
    else:
        total = {n: t / len(data) for n, t in total.items()}
    model.zero_grad(set_to_none=True)
    return total


def body_parameters(model: torch.nn.Module, head: set[str]) -> list[str]:
    """The surrogate's own parameters, without the new head and the token embeddings."""
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    seen: set[int] = set()
    names = []
    for name, param in model.named_parameters():
        if name in head or id(param) in embeddings or id(param) in seen:
            continue
        seen.add(id(param))  # tied weights count once
        names.append(name)
    return names


def pool(values: dict[str, torch.Tensor], how: str) -> np.ndarray:
    parts = [v.reshape(v.shape[0], -1).mean(dim=1) if how == "unit" and v.ndim > 1 else v.reshape(-1) for v in values.values()]
    return torch.cat(parts).numpy().astype(np.float32)


def embed(options: dict[str, Any], surrogate: Surrogate, data: TaskData, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    o = options
    began = time.perf_counter()
    model, head = surrogate.classifier(data.n_classes, seed)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    epochs = int(o["mte_epochs"] if data.kind == "mte" else o["dte_epochs"])
    config = TrainConfig(lr=float(o["lr"]), batch_size=int(o["batch_size"]), epochs=epochs, patience=int(o["patience"]))
    names = body_parameters(model, head)
    info = train(model, params, surrogate, data, config, seed, watch=names)
    trained = time.perf_counter()
    vector = pool(fisher(model, names, surrogate, data, estimator=str(o["estimator"]),
                         batch_size=int(o["fisher_batch_size"])), str(o["pool"]))
    info.update(parameters=len(names), train_seconds=round(trained - began, 3),
                fisher_seconds=round(time.perf_counter() - trained, 3))
    return vector, info


def similarities(mtes: list[np.ndarray], dte: np.ndarray, normalise: str) -> list[float]:
    """Each MTE's similarity with the DTE under ``normalise`` (see the module's step 4)."""
    mtes = [np.asarray(m, dtype=np.float64) for m in mtes]
    dte = np.asarray(dte, dtype=np.float64)
    if normalise == "task2vec":
        out = []
        for m in mtes:
            total = m + dte
            safe = np.where(total > 0, total, 1.0)
            out.append(cosine(np.where(total > 0, m / safe, 0.0), np.where(total > 0, dte / safe, 0.0)))
        return out
    if normalise == "coordinate":
        mean = np.mean([*mtes, dte], axis=0)
        safe = np.where(mean > 0, mean, 1.0)

        def rel(v: np.ndarray) -> np.ndarray:
            return np.where(mean > 0, v / safe - 1.0, 0.0)

        return [cosine(rel(m), rel(dte)) for m in mtes]
    return [cosine(m, dte) for m in mtes]
