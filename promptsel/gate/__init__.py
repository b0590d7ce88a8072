"""The CI gate: ``promptsel lock`` records a selection, ``promptsel check`` reruns it and decides
whether a prompt or a choice regressed."""
