"""The embedder contract: a task-embedding method f for FUTE, registered by plugins.

An embedder turns :class:`promptsel.surrogate.TaskData` (an LLM's soft predictions on U for an
MTE, a labeled train split for a DTE) into one vector on a surrogate model. For every
registered embedder the method ``fute-<embedder_id>`` ranks prompts by cosine(MTE_p, DTE).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from .surrogate import Surrogate, TaskData

FUTE_PREFIX = "fute-"


class Embedder(ABC):
    """Base class for ``register_embedders``.

    ``defaults`` lists every option with its default; unknown options are a usage error.
    ``version`` is part of every stored embedding's key: bump it when a change alters the
    numbers, so old embeddings are not reused.
    """

    embedder_id: ClassVar[str]
    description: ClassVar[str] = ""
    version: ClassVar[int] = 1
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise UsageError(f"Embedder {self.embedder_id!r} has no option {', '.join(unknown)} (options: {known}).")
        self.options = {k: _coerce(v, self.defaults[k]) for k, v in {**self.defaults, **options}.items()}

    def identity(self) -> dict[str, Any]:
        """What makes this embedder's numbers what they are: part of the store key."""
        return {"id": self.embedder_id, "version": self.version, "options": self.options}

    @abstractmethod
    def embed(self, surrogate: Surrogate, data: TaskData, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        """One 1-D embedding of ``data`` on ``surrogate``, and a record of how it was trained.

        Must be deterministic for a given seed on the same machine and library versions.
        """


def _coerce(value: Any, default: Any) -> Any:
    """Options from the command line arrive as strings: give them the default's type."""
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    try:
        if isinstance(default, bool):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        return type(default)(value)
    except ValueError:
        raise UsageError(f"Option value {value!r} should be a {type(default).__name__}.") from None
