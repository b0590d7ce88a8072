"""What a user asks for, before anything is loaded: the request and its scoring options.

Plain dataclasses, cheap to import (the command line builds them before ``--help`` returns).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from ..embedder import FuteOptions
from ..options import Options, option


@dataclass(frozen=True)
class ScoringOptions(Options):
    """How prompts are scored. Every field is in the cache and embedding keys."""

    owner: ClassVar[str] = "scoring"

    #: ``full``: the whole label word; ``first_token``: its first token only (FUTE's code).
    mode: Literal["full", "first_token"] = "full"
    #: How a class's label words combine: ``sum`` of probabilities (logsumexp) or ``max``.
    aggregate: Literal["sum", "max"] = "sum"
    #: What SPELL scores (``--spell-on``): ``template`` (``raw``), the instantiated template alone;
    #: ``prompt``, the template's tokens where the model sees them, after the system turn and the
    #: chat header (read from the label-scoring pass); ``chat``, the whole chat-formatted first
    #: turn (FUTE's code). The texts differ, so each has its own cache entries.
    spell_text: Literal["template", "prompt", "chat"] = "template"
    #: Bound on the reasoning generated for CoT prompts.
    max_new_tokens: int = option(64, minimum=1)

    #: Fields that change only ``prompt_nll`` (SPELL), never a class log-prob.
    NLL_ONLY: ClassVar[frozenset[str]] = frozenset({"spell_text"})

    @classmethod
    def fute_compat(cls, **kw: Any) -> ScoringOptions:
        return cls(mode="first_token", aggregate="max", spell_text="chat", **kw)

    def label_identity(self) -> dict[str, Any]:
        """The fields that can change a class log-prob (FUTE's model task embeddings use these)."""
        return {k: v for k, v in self.identity().items() if k not in self.NLL_ONLY}



@dataclass
class SelectRequest:
    """Everything a user asked for, as given (paths, names, options); nothing loaded yet."""

    dataset: str | None = None
    prompts: Path | None = None
    backend: str = "llamacpp"
    model: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    methods: list[str] | None = None
    #: method id -> its options as given (``-O locale.negate=true``).
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    split: str | None = None
    limit: int | None = None
    seed: int = 0
    data_dir: str | None = None
    scores: Path | None = None
    save_scores: Path | None = None
    metric: str = "accuracy"
    ndcg: str = "minmax"
    cache: bool = True
    scoring: ScoringOptions = field(default_factory=ScoringOptions)
    #: For local data files: template field -> column, the label column and the classes.
    fields: dict[str, str] = field(default_factory=dict)
    label_field: str = "label"
    classes: list[str] | None = None
    #: Truncate each input text to this many characters at a word boundary (long reviews).
    max_chars: int | None = None
    fute: FuteOptions = field(default_factory=FuteOptions)
    #: Divide each prompt's class prior out before every method: none | cc | pmi | cbm.
    calibrate: str = "none"
    #: The label-free rule that recommends without labels (a method or ``consensus``); None:
    #: the default for the calibration (``promptsel.selection.recommend.DEFAULT_RULES``).
    recommend: str | None = None
    #: Bootstrap resamples of the examples for intervals and stability.
    bootstrap: int = 1000
    #: Write one JSON line per evaluation example (inputs, gold label, every prompt's prediction).
    log_samples: Path | None = None
    #: The command line that made this request (the CLI sets it; the report records it).
    command: list[str] | None = None
