"""The bundled FUTE embedders. Their classes are light; the torch code lives in
``taskemb.py`` and ``tupate.py`` and is imported only when an embedding is computed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from promptsel.embedder import Embedder
from promptsel.errors import UsageError
from promptsel.hookspecs import hookimpl

if TYPE_CHECKING:
    import numpy as np

    from promptsel.surrogate import Surrogate, TaskData


class TaskEmb(Embedder):
    embedder_id: ClassVar[str] = "taskemb"
    description: ClassVar[str] = "Diagonal Fisher of the fine-tuned surrogate, pooled per output unit (Vu et al. 2020)."
    defaults: ClassVar[dict[str, Any]] = {
        "estimator": "batch",  # the original per-batch Fisher; "fute": the FUTE code's (mean gradient)^2
        "pool": "unit",  # one value per output unit of each weight matrix; "none": every entry
        "lr": 5e-5,
        "batch_size": 16,
        "mte_epochs": 2,
        "dte_epochs": 2,
        "patience": 1,
        "fisher_batch_size": 32,
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for key, allowed in (("estimator", ("batch", "fute")), ("pool", ("unit", "none"))):
            if self.options[key] not in allowed:
                raise UsageError(f"taskemb {key} must be one of {', '.join(allowed)}, not {self.options[key]!r}.")

    def embed(self, surrogate: Surrogate, data: TaskData, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        from .taskemb import embed

        return embed(self.options, surrogate, data, seed)


class TuPaTE(Embedder):
    embedder_id: ClassVar[str] = "tupate"
    description: ClassVar[str] = "Prefix tuning on the frozen surrogate; the prefix averaged over layers (Zhou et al. 2022)."
    defaults: ClassVar[dict[str, Any]] = {
        "prefix_len": 16,
        "dropout": 0.15,
        "lr": 5e-3,
        "batch_size": 16,
        "mte_epochs": 5,
        "dte_epochs": 5,
        "patience": 2,
        "encoder_prefix": False,  # T5: prefix the encoder's self-attention too (the paper: decoder only)
    }

    def embed(self, surrogate: Surrogate, data: TaskData, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        from .tupate import embed

        return embed(self.options, surrogate, data, seed)


@hookimpl
def register_embedders(register):
    register(TaskEmb)
    register(TuPaTE)
