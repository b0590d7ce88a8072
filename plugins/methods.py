"""Registers the bundled label-free methods. Their code (numpy, scipy, scikit-learn) is
imported only when the registries are built, so loading this plugin costs nothing."""

from __future__ import annotations

from promptsel.hookspecs import hookimpl


@hookimpl
def register_selectors(register):
    from . import baselines, consensus, self_select

    for cls in (*baselines.SELECTORS, consensus.Consensus, self_select.SelfSelect):
        register(cls)
