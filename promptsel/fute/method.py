"""FUTE as a method: ``fute-<embedder>`` for every registered embedder, a selector like the others.

Its score is cosine(MTE_p, DTE) (see :mod:`promptsel.fute.embeddings`). The methods of one run
share one :class:`~promptsel.fute.embeddings.Fute` (the corpus U, its labels by every prompt,
the surrogate), kept in the selection context, and add the ``fute`` section to the report.
U's labels come from the backend, or from a scores file that holds them (``--scores`` with
``--dte-dataset``: no backend runs; see :mod:`promptsel.fute.sources`).
This module imports neither torch nor transformers: they load when an embedding is trained.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..embedder import Embedder
from ..errors import CapabilityError
from ..selector import NEEDS_UNLABELED_LOGPROBS, RunView, SelectionContext, Selector
from .options import FUTE_PREFIX, UNLABELED_EVAL, FuteOptions

if TYPE_CHECKING:
    from ..model.scoretable import ScoreTable

#: What training a surrogate needs, and the extra that installs it.
TRAINING_MODULES = ("torch", "transformers")
HF_EXTRA = "pip install 'promptsel[hf]'"


def check_training_installed(what: str = "FUTE") -> None:
    """Fail before any model runs when torch or transformers is missing (not after scoring)."""
    missing = [m for m in TRAINING_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise CapabilityError(f"{what} trains a surrogate model and needs {' and '.join(missing)}, which is not installed.",
                              hint=f"Install the hf extra: {HF_EXTRA}.")


class FuteMethod(Selector):
    """cosine(MTE_p, DTE) with one embedder. Subclassed per embedder by :meth:`for_embedder`."""

    embedder: ClassVar[type[Embedder]]
    #: It trains a surrogate and needs a labeled train split: it runs when named (or ``all``).
    default = False
    #: Every prompt's labels on the unlabeled corpus U: the backend computes them, or a scores
    #: file holds them.
    needs = frozenset({NEEDS_UNLABELED_LOGPROBS})
    #: The evaluation inputs never enter its score (task embeddings trained on U and the train
    #: split), so resampling them cannot move its choice. Its real variation (seeds, U, training)
    #: would need retraining and is not estimated.
    bootstrap = "FUTE scores a prompt from its task embedding, not from the evaluation examples"
    #: Where its embeddings came from and what they cost (:meth:`Fute.report`).
    report_section = "fute"

    @classmethod
    def for_embedder(cls, embedder: type[Embedder]) -> type[FuteMethod]:
        name = FUTE_PREFIX + embedder.embedder_id
        description = (f"FUTE: cosine(MTE, DTE) with embedder {embedder.embedder_id} (needs a backend, or a scores file with "
                       "U's arrays, and a labeled train split)")
        caveat = getattr(embedder, "premise_caveat", None)  # a plugin's embedder may not derive from Embedder
        if caveat:
            description += f"; caution: {caveat}"
        return type(f"Fute[{embedder.embedder_id}]", (cls,),
                    {"selector_id": name, "embedder": embedder, "description": description, "__module__": cls.__module__})

    @classmethod
    def make_embedder(cls, options: FuteOptions) -> Embedder:
        return cls.embedder(**options.embedder_options_for(cls.embedder))

    @classmethod
    def preflight(cls, inputs: RunView) -> None:
        from .sources import check_sources

        cls.make_embedder(inputs.request.group(FuteOptions))  # bad embedder options fail now
        check_sources(inputs, cls.selector_id)
        check_training_installed(cls.selector_id)

    def score(self, table: ScoreTable, context: SelectionContext) -> np.ndarray:
        from ..model.stats import fixed_ranking_ndcg
        from .sources import fute_for_run, to_save

        fute = context.shared.get("fute")
        if fute is None:
            if context.run is None:
                raise CapabilityError(f"{self.selector_id} needs a backend and a dataset; it cannot rescore a table alone.")
            fute = context.shared["fute"] = fute_for_run(context.run)
        embedder = self.make_embedder(fute.options)
        values = fute.score(embedder)
        req = context.run.request if context.run is not None else None
        if req is not None and req.save_scores is not None and not fute.saved:
            fute.u_targets()  # all MTEs reused: label U anyway (through the cache), so the saved run replays FUTE
            context.unlabeled = to_save(fute.corpus, fute.spec.fields, fute.u_logprobs)
            context.unlabeled.check(table.n_prompts, len(table.class_names))
        section = fute.report()
        # Its ranking does not depend on the evaluation examples: the interval of its NDCG is the
        # sample's uncertainty about the prompts' true performance (training variation not included).
        before = context.sections.get(self.report_section) or {}
        quality = dict(before.get("quality") or {})
        # The premise caveat of the options this run used, per method (report_warnings reads it).
        caveat = embedder.caveat() if hasattr(embedder, "caveat") else getattr(embedder, "premise_caveat", None)
        section["caveats"] = {**(before.get("caveats") or {}), self.selector_id: caveat}
        if req is not None:
            quality[self.selector_id] = fixed_ranking_ndcg(values, table, metric=req.metric, variant=req.ndcg,
                                                           resamples=req.bootstrap, seed=req.seed)
        section["quality"] = quality
        context.sections[self.report_section] = section
        # Its own time is its embeddings'; labelling U is shared with the other FUTE methods.
        context.seconds[self.selector_id] = sum(r["seconds"] for r in fute.records if r["embedder"] == embedder.embedder_id)
        return values

    @classmethod
    def report_warnings(cls, sections: Mapping[str, Any], method_id: str) -> list[dict[str, Any]]:
        """``fute_fails_premise`` when the embedder has a known premise caveat, ``fute_not_learned``
        when one of this method's task embeddings did not learn, ``fute_in_domain`` when U is the
        evaluation inputs."""
        from .warnings import fails_premise_warning, in_domain_warnings, not_learned_warnings

        section = sections.get(cls.report_section) or {}
        diagnostics = section.get("diagnostics") or {}
        embedder = getattr(cls, "embedder", None)  # the base class has none; a plugin's may lack the caveat
        caveats = section.get("caveats") or {}
        # The run's options decide; a report without them (older, or no run yet) gets the default's.
        said = caveats[method_id] if method_id in caveats else getattr(embedder, "premise_caveat", None)
        caveat = fails_premise_warning(said, method_id)
        return caveat + not_learned_warnings(diagnostics.get(method_id), method_id) + in_domain_warnings(section, method_id)

    @classmethod
    def section_lines(cls, section: dict[str, Any]) -> list[str]:
        """One line on where FUTE's embeddings came from and what they cost."""
        counts: dict[tuple[str, str], int] = {}
        seconds = 0.0
        for e in section["embeddings"]:
            counts[e["kind"], e["status"]] = counts.get((e["kind"], e["status"]), 0) + 1
            seconds += e["seconds"]
        parts = [f"{n} {kind.upper()}{'s' if n != 1 else ''} {status}" for (kind, status), n in sorted(counts.items())]
        u = section.get("unlabeled")
        where = f"; U: {u['name']}, {u['size']} texts from {len(u['sources'])} sources" if u else ""
        if u and section.get("labels") == "saved":
            where = f"; U: {u['size']} texts and their saved labels from the scores file {u['origin']}"
        elif u and u["name"] == UNLABELED_EVAL:
            where = f"; U: {u['size']} evaluation inputs, labels dropped (in-domain, unlike the paper)"
        if section.get("mte_targets") == "hard":
            where += "; MTEs trained on the LLM's decisions (--mte-targets hard)"
        dte = section.get("dte")
        if dte:
            where += f"; DTE: {dte['dataset']} {dte['split']} ({section['dte_size']} examples, from {dte['from']})"
        lines = [f"FUTE: {', '.join(parts)} ({seconds:.1f} s training){where}; surrogate {section['surrogate']['name']}"]
        for method, q in sorted((section.get("quality") or {}).items()):
            if q and q["ndcg"] is not None and q["ndcg_interval"] is not None:
                low, high = q["ndcg_interval"]
                lines.append(f"{method}: NDCG {q['ndcg']:.3f} [{low:.3f}, {high:.3f}] ({q['level']:.0%} over {q['resamples']} "
                             "resamples of the evaluation examples; FUTE's own training variation is not included)")
        return lines
