"""The selector contract: a method that scores prompts, registered through ``register_selectors``."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from .backend import ContinuationRequest
from .model.data import Dataset, DatasetSpec
from .model.progress import Progress
from .model.prompts import PromptSet
from .model.request import ScoringMode, SelectRequest
from .model.scoretable import (
    CLASS_LOGPROBS,
    PROMPT_NLL,
    UNLABELED_LOGPROBS,
    ScoreTable,
    UnlabeledScores,
)
from .options import Options

#: What a selector may need. ``class_logprobs`` and ``prompt_nll`` are ScoreTable arrays;
#: the others are backend capabilities (see promptsel.backend).
NEEDS_CLASS_LOGPROBS = CLASS_LOGPROBS
NEEDS_PROMPT_NLL = PROMPT_NLL
#: The prompts' class log-probs on an unlabeled corpus: a backend with label log-probs computes
#: them; a scores file has them when it holds U's arrays (``ScoreTable.unlabeled``).
NEEDS_UNLABELED_LOGPROBS = UNLABELED_LOGPROBS


class ModelAccess(Protocol):
    """What a method may ask of the run's model (Self-Select asks it about the prompts): answers
    go through the run's cache like every other request."""

    def render_chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str: ...

    def continuation_logprobs(self, requests: Sequence[ContinuationRequest], mode: ScoringMode = "full") -> list[np.ndarray]: ...


class RunView(Protocol):
    """What a method may read of the run it is part of, beyond the table (FUTE reads the dataset
    spec and the request's options to build its embeddings)."""

    @property
    def prompt_set(self) -> PromptSet | None: ...

    @property
    def spec(self) -> DatasetSpec | None: ...

    @property
    def dataset(self) -> Dataset | None:
        """The evaluation sample (None with ``--scores``)."""
        ...

    @property
    def table(self) -> ScoreTable | None:
        """The scores file's table with ``--scores`` (its U too); None before a live run scored."""
        ...

    @property
    def request(self) -> SelectRequest: ...

    @property
    def scorer(self) -> ModelAccess | None: ...

    @property
    def progress(self) -> Progress: ...


@dataclass
class SelectionContext:
    """What a selector may use beyond the ScoreTable. ``scorer`` and ``run`` are None with
    ``--scores`` (no backend) and in the gate's bootstrap, which rescores resampled tables."""

    prompt_set: PromptSet | None = None
    scorer: ModelAccess | None = None
    seed: int = 0
    run: RunView | None = None
    progress: Progress | None = None
    #: Work that several methods of one run share (FUTE's corpus and surrogate), by name.
    shared: dict[str, Any] = field(default_factory=dict)
    #: Report sections a method adds beside its scores, by the name in its ``report_section``.
    sections: dict[str, Any] = field(default_factory=dict)
    #: A method's own seconds, when its call also did work shared with other methods (FUTE's
    #: labels on U); without an entry the report times the whole call.
    seconds: dict[str, float] = field(default_factory=dict)
    #: Class log-probs that a method had the model compute on unlabeled inputs (FUTE's U):
    #: ``--save-scores`` writes them with the table, so the saved run replays that method.
    unlabeled: UnlabeledScores | None = None


class Selector(ABC):
    """Base class for methods registered through ``register_selectors``.

    ``needs`` lists ScoreTable arrays and backend capabilities; a method is offered only where
    all of them are available. ``score`` returns one finite score per prompt, higher is better,
    and must not depend on the order of the prompts. Options are the fields of the nested
    ``Options`` dataclass (set from the command line with ``-O ID.KEY=VALUE``).
    """

    selector_id: ClassVar[str]
    needs: ClassVar[frozenset[str]] = frozenset({NEEDS_CLASS_LOGPROBS})
    description: ClassVar[str] = ""
    #: In the default method set; ``False``: runs only when named (costly or needing more inputs).
    default: ClassVar[bool] = True
    #: ``None`` when the score is a function of the evaluation examples, so rerunning the method
    #: on resampled examples gives its uncertainty; otherwise the reason it is not.
    bootstrap: ClassVar[str | None] = None
    #: ``None`` when a prompt's score depends on that prompt alone; otherwise why it depends on
    #: the other prompts of the set (then an interval of one prompt's score cannot bound what
    #: editing another prompt does to it, and the gate holds it to a tolerance instead).
    relative: ClassVar[str | None] = None
    #: The report section this method adds (``context.sections[name]``), if any: the report
    #: always has the key (``null`` when the method did not run), and the writers show
    #: :meth:`section_lines` of it.
    report_section: ClassVar[str | None] = None

    @dataclasses.dataclass(frozen=True)
    class Options(Options):
        pass

    def __init__(self, **options: Any) -> None:
        self.options = self.Options.parse(options, owner=f"method {self.selector_id!r}")

    @classmethod  # noqa: B027 - an optional hook, not an abstract one
    def preflight(cls, inputs: RunView) -> None:
        """Raise a :class:`promptsel.errors.PromptselError` if this method cannot run on
        ``inputs``; called before any model runs (a missing dependency, a missing split)."""

    @classmethod
    def section_lines(cls, section: Any) -> list[str]:
        """Plain sentences on this method's report section, for the terminal and the reports
        (none by default: the section is in the JSON report only)."""
        return []

    @abstractmethod
    def score(self, table: ScoreTable, context: SelectionContext) -> np.ndarray:
        """One score per prompt of ``table`` (shape [P]); higher is better."""

    @classmethod
    def report_warnings(cls, sections: Mapping[str, Any], method_id: str) -> list[dict[str, Any]]:
        """Warnings about this method's own run, for the report's ``warnings`` (default: none).

        Each is a dict with a ``code`` and a plain-text ``message``, optionally a ``severity``
        (``"warning"``, the default, or ``"info"``) and fields of its own. ``sections`` are the
        report sections the run's methods added (``SelectionContext.sections``), ``method_id``
        the name this method ran under: a method that trains something says here when it did
        not learn."""
        return []
