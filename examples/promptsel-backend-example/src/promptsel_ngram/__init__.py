"""promptsel-ngram: an example third-party backend for promptsel.

promptsel finds this module through the entry point ``ngram = "promptsel_ngram"`` in the group
``promptsel`` (see pyproject.toml) and calls its hook implementations. The module imports only
the hook marker. The backend class is imported when the hook runs, so that ``promptsel
--help`` stays fast however many plugins are installed.
"""

from __future__ import annotations

from promptsel import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_backends(register):
    from .backend import NgramBackend

    register(NgramBackend, aliases=("char-ngram",))
