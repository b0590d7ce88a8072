"""The selector contract: a label-free method that scores prompts from the ScoreTable."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from .prompts import PromptSet
    from .scoretable import ScoreTable
    from .scoring import Scorer

#: What a selector may need. ``class_logprobs`` and ``prompt_nll`` are ScoreTable arrays;
#: the others are backend capabilities (see promptsel.backend).
NEEDS_CLASS_LOGPROBS = "class_logprobs"
NEEDS_PROMPT_NLL = "prompt_nll"


@dataclass
class SelectionContext:
    """What a selector may use beyond the ScoreTable. ``scorer`` is None with ``--scores``."""

    prompt_set: PromptSet | None = None
    scorer: Scorer | None = None
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)


class Selector(ABC):
    """Base class for methods registered through ``register_selectors``.

    ``needs`` lists ScoreTable arrays and backend capabilities; a method is offered only where
    all of them are available. ``score`` returns one finite score per prompt, higher is better,
    and must not depend on the order of the prompts.
    """

    selector_id: ClassVar[str]
    needs: ClassVar[frozenset[str]] = frozenset({NEEDS_CLASS_LOGPROBS})
    description: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abstractmethod
    def score(self, table: ScoreTable, context: SelectionContext) -> np.ndarray:
        """One score per prompt of ``table`` (shape [P]); higher is better."""
