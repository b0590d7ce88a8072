"""The bundled FUTE embedders. Their classes are light; the torch code lives in
``taskemb.py`` and ``tupate.py`` and is imported only when an embedding is computed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from promptsel import Embedder, hookimpl, option

if TYPE_CHECKING:
    import numpy as np

    from promptsel import Surrogate, TaskData


class TaskEmb(Embedder):
    embedder_id: ClassVar[str] = "taskemb"
    # 2: MTEs hold out a slice of U (early stopping, the "learned" check). 3: the epoch chosen on
    # half the held-out slice, the other half judges "learned"
    version: ClassVar[int] = 3
    description: ClassVar[str] = "Diagonal Fisher of the fine-tuned surrogate, pooled per output unit (Vu et al. 2020)."
    premise_caveat: ClassVar[str | None] = (
        "its Fisher vectors are non-negative and sign-blind (a prompt and its label-inverted twin give the same "
        "Fisher), so it cannot rank an inverted prompt below a good one, and it did not pass FUTE's premise "
        "(bench/RESULTS.md): its ranking is not evidence")

    @dataclass(frozen=True)
    class Options(Embedder.Options):
        #: batch: the original per-batch Fisher; fute: the FUTE code's (mean gradient)^2.
        estimator: Literal["batch", "fute"] = "batch"
        #: unit: one value per output unit of each weight matrix; none: every entry.
        pool: Literal["unit", "none"] = "unit"
        lr: float = option(5e-5, minimum=0)
        batch_size: int = option(16, minimum=1)
        mte_epochs: int = option(2, minimum=1)
        dte_epochs: int = option(2, minimum=1)
        patience: int = option(1, minimum=0)
        fisher_batch_size: int = option(32, minimum=1)
        #: How two Fisher vectors are compared: none, their cosine; task2vec, Task2Vec's
        #: symmetric normalisation cos(a / (a + b), b / (a + b)); coordinate, each coordinate
        #: divided by its mean over the run's MTEs and the DTE (the magnitude profile every
        #: fine-tuned copy shares), less 1, then the cosine. On the stored vectors: no retraining.
        normalise: Literal["none", "task2vec", "coordinate"] = "none"

    def identity(self) -> dict[str, Any]:
        # normalise acts on stored vectors: the embeddings themselves do not depend on it.
        ident = super().identity()
        ident["options"] = {k: v for k, v in ident["options"].items() if k != "normalise"}
        return ident

    def similarities(self, mtes: Sequence[np.ndarray], dte: np.ndarray) -> list[float]:
        from .taskemb import similarities

        return similarities(list(mtes), dte, self.options.normalise)

    def embed(self, surrogate: Surrogate, data: TaskData, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        from .taskemb import embed

        return embed(self.options.as_dict(), surrogate, data, seed)


class TuPaTE(Embedder):
    embedder_id: ClassVar[str] = "tupate"
    # 2: what training changed; MTEs hold out a slice of U; CPU defaults. 3: the epoch chosen on
    # half the held-out slice, the other half judges "learned"
    version: ClassVar[int] = 3
    description: ClassVar[str] = "Prefix tuning on the frozen surrogate; the prefix averaged over layers (Zhou et al. 2022)."
    premise_caveat: ClassVar[str | None] = (
        "its default embedding, the trained prefix (head=out), cannot tell a prompt from its label-inverted twin "
        "(the head trained beside it absorbs the sign), and it failed FUTE's premise ladder under every comparison "
        "(bench/RESULTS.md): its ranking is not evidence; -E tupate.head=only -E tupate.compare=null-both is the "
        "setting that passed the ladder")

    @dataclass(frozen=True)
    class Options(Embedder.Options):
        prefix_len: int = option(16, minimum=1)
        dropout: float = option(0.15, minimum=0)
        # CPU defaults chosen on the premise test's margin against its cost (bench/RESULTS.md);
        # at the former 5e-3 and batches of 16 a DTE's held-out loss stayed at chance. The paper:
        # 1e-2 for the DTE and 1e-3 for MTEs, with 120 and 3 epochs on a GPU.
        lr: float = option(2e-2, minimum=0)
        batch_size: int = option(8, minimum=1)
        mte_epochs: int = option(5, minimum=1)
        dte_epochs: int = option(5, minimum=1)
        #: Epochs without a better held-out loss before training stops (MTEs and DTEs).
        patience: int = option(2, minimum=0)
        #: T5: prefix the encoder's self-attention too (the paper: decoder only).
        encoder_prefix: bool = False
        #: null (default): what training changed, scored as cos(MTE, DTE) − cos(MTE_null, DTE),
        #: MTE_null trained on the prompt's targets shuffled across U (it keeps what every MTE
        #: of that label mix shares with the DTE and nothing of the task); change: cos(MTE, DTE)
        #: of the trained prefix minus the shared seeded start; raw: the trained prefix (the
        #: paper code's comparison, which ``--fute-compat`` selects); null-both: cos(MTE − MTE_null,
        #: DTE − DTE_null), DTE_null trained on the sample's gold labels shuffled across its texts.
        compare: Literal["null", "change", "raw", "null-both"] = "null"
        #: out (the paper's): the trained head is not part of the embedding, and since it can
        #: absorb a label inversion the prefix is blind to which way a prompt labels; in: the
        #: head's change follows the prefix's; only: the head's change alone (plugins/tupate.py).
        #: In keys only when set, so embeddings stored before this option stay valid.
        head: Literal["out", "in", "only"] = option("out", key="set")

    def caveat(self) -> str | None:
        # The head's change, each side less its permutation null: the one setting that passed.
        return None if (self.options.head, self.options.compare) == ("only", "null-both") else self.premise_caveat

    def embed(self, surrogate: Surrogate, data: TaskData, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        from .tupate import embed

        return embed(self.options.as_dict(), surrogate, data, seed)


@hookimpl
def register_embedders(register):
    register(TaskEmb)
    register(TuPaTE)

