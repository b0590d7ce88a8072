"""Registers the bundled methods: the label-free baselines, their consensus, Self-Select, and
FUTE with every registered embedder, and FUTE's option group. Their code (numpy, scipy, scikit-learn) is imported only
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


@hookimpl
def register_option_groups(register):
    """FUTE's settings (U, the surrogate, the DTE's size, ``-E``, ``--fute-compat``), beside the
    methods that read them: with this plugin, whichever plugins bring the embedders."""
    from promptsel import FuteOptions

    register(FuteOptions)
