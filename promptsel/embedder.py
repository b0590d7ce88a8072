"""The embedder contract: a task-embedding method f for FUTE, registered by plugins.

An embedder turns :class:`promptsel.surrogate.TaskData` (an LLM's soft predictions on U for an
MTE, a labeled train split for a DTE) into one vector on a surrogate model. For every
registered embedder a FUTE method named after it ranks prompts by cosine(MTE_p, DTE); the
settings those methods share are FUTE's option group, which FUTE's package declares.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from .options import Options

if TYPE_CHECKING:
    import numpy as np

    from .surrogate import Surrogate, TaskData


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The cosine of two vectors (0 when either is zero), in float64."""
    import numpy as np

    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)) / (na * nb))


class Embedder(ABC):
    """Base class for ``register_embedders``.

    Options are the fields of the nested ``Options`` dataclass (``-E ID.KEY=VALUE``); unknown
    options are a usage error. ``version`` is part of every stored embedding's key: bump it
    when a change alters the numbers, so old embeddings are not reused.
    """

    embedder_id: ClassVar[str]
    description: ClassVar[str] = ""
    #: A known reason its ranking is not evidence with its default options (it fails FUTE's
    #: premise ladder): shown in ``list methods``; :meth:`caveat` says whether it holds for the
    #: options a run used, and the run's report then carries it as ``fute_fails_premise``.
    premise_caveat: ClassVar[str | None] = None
    version: ClassVar[int] = 1

    @dataclasses.dataclass(frozen=True)
    class Options(Options):
        pass

    def __init__(self, **options: Any) -> None:
        self.options = self.Options.parse(options, owner=f"embedder {self.embedder_id!r}")

    def identity(self) -> dict[str, Any]:
        """What makes this embedder's numbers what they are: part of the store key."""
        return {"id": self.embedder_id, "version": self.version, "options": self.options.identity()}

    def similarities(self, mtes: Sequence[np.ndarray], dte: np.ndarray) -> list[float]:
        """Each MTE's similarity with the DTE, as FUTE ranks by it: their cosine, unless the
        embedder compares its vectors otherwise (it sees every MTE of the run at once)."""
        return [cosine(m, dte) for m in mtes]

    def caveat(self) -> str | None:
        """The premise caveat for these options (the class's, unless options lift it)."""
        return self.premise_caveat

    def compares_to_null(self) -> bool:
        """Whether FUTE scores a prompt against its permutation null (an MTE trained on the
        prompt's targets shuffled across U): ``compare=null`` or ``null-both``, for embedders
        with that option."""
        return getattr(self.options, "compare", None) in ("null", "null-both")

    def compares_to_dte_null(self) -> bool:
        """Whether the DTE too is compared as its change from its permutation null (a DTE trained
        on the sample's gold labels shuffled across its texts): ``compare=null-both``."""
        return getattr(self.options, "compare", None) == "null-both"

    @abstractmethod
    def embed(self, surrogate: Surrogate, data: TaskData, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        """One 1-D embedding of ``data`` on ``surrogate``, and a record of how it was trained.

        Must be deterministic for a given seed on the same machine and library versions.
        """

