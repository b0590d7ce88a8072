"""The embedder contract: a task-embedding method f for FUTE, registered by plugins.

An embedder turns :class:`promptsel.surrogate.TaskData` (an LLM's soft predictions on U for an
MTE, a labeled train split for a DTE) into one vector on a surrogate model. For every
registered embedder the method ``fute-<embedder_id>`` ranks prompts by cosine(MTE_p, DTE).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from .options import Options, option

if TYPE_CHECKING:
    import numpy as np

    from .surrogate import Surrogate, TaskData

FUTE_PREFIX = "fute-"


@dataclasses.dataclass(frozen=True)
class FuteOptions(Options):
    """The settings of a FUTE run that every embedder shares (``select`` and ``embed`` flags)."""

    owner: ClassVar[str] = "FUTE"

    #: U: 'builtin', 'pool', a file, or None (pool when the data dir has one, else builtin).
    unlabeled: str | None = None
    #: Texts drawn from U, balanced over its sources (the paper: 10,000).
    unlabeled_size: int = option(200, minimum=1)
    #: More U sources to leave out (those overlapping the task's datasets always are).
    unlabeled_exclude: tuple[str, ...] = ()
    #: The surrogate model; None: all-MiniLM-L6-v2.
    surrogate: str | None = None
    max_length: int = option(128, minimum=8)
    #: Labeled train examples (a seeded sample) for the dataset task embedding.
    dte_size: int = option(500, minimum=2)
    #: embedder id -> its options as given (``-E tupate.lr=0.01``), checked by the embedder.
    embedder_options: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    #: Compare the trained vectors themselves, as the paper code does (``--fute-compat``), not what
    #: training changed: sets ``compare=raw`` on embedders that have the option, unless given.
    raw_similarity: bool = False

    def embedder_options_for(self, embedder: type[Embedder]) -> dict[str, Any]:
        chosen = dict(self.embedder_options.get(embedder.embedder_id, {}))
        if self.raw_similarity and "compare" in {f.name for f in dataclasses.fields(embedder.Options)}:
            chosen.setdefault("compare", "raw")
        return chosen


class Embedder(ABC):
    """Base class for ``register_embedders``.

    Options are the fields of the nested ``Options`` dataclass (``-E ID.KEY=VALUE``); unknown
    options are a usage error. ``version`` is part of every stored embedding's key: bump it
    when a change alters the numbers, so old embeddings are not reused.
    """

    embedder_id: ClassVar[str]
    description: ClassVar[str] = ""
    version: ClassVar[int] = 1

    @dataclasses.dataclass(frozen=True)
    class Options(Options):
        pass

    def __init__(self, **options: Any) -> None:
        self.options = self.Options.parse(options, owner=f"embedder {self.embedder_id!r}")

    def identity(self) -> dict[str, Any]:
        """What makes this embedder's numbers what they are: part of the store key."""
        return {"id": self.embedder_id, "version": self.version, "options": self.options.identity()}

    @abstractmethod
    def embed(self, surrogate: Surrogate, data: TaskData, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        """One 1-D embedding of ``data`` on ``surrogate``, and a record of how it was trained.

        Must be deterministic for a given seed on the same machine and library versions.
        """

