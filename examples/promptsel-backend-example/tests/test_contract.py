"""promptsel's backend contract, run on this plugin's backend. Every backend plugin should have
this file: it checks what promptsel relies on (identity, capabilities, log-prob rules,
batching, determinism, generation, chat rendering, close)."""

from __future__ import annotations

from promptsel.testing import parametrize_backend_checks

from promptsel_ngram.backend import NgramBackend

FACTORIES = {
    "ngram": NgramBackend,  # the shipped corpus, default order
    "ngram-order-1": lambda: NgramBackend(order=1),  # no context at all: the edge case of the code
}

#: Checks this backend is known to fail, with the reason: none.
EXPECTED_FAILURES: dict[str, dict[str, str]] = {}


@parametrize_backend_checks(FACTORIES, EXPECTED_FAILURES)
def test_backend_contract(factory, check):
    check(factory)
