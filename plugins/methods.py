"""Registers the bundled methods: the label-free baselines, their consensus, Self-Select, and
FUTE with every registered embedder. Their code (numpy, scipy, scikit-learn) is imported only
when the registries are built, so loading this plugin costs nothing."""

from __future__ import annotations

from promptsel import hookimpl


@hookimpl
def register_selectors(register, embedders):
    from promptsel import FuteMethod

    from . import baselines, consensus, self_select

    for cls in (*baselines.SELECTORS, consensus.Consensus, self_select.SelfSelect):
        register(cls)
    for entry in embedders:
        register(FuteMethod.for_embedder(entry.target))
