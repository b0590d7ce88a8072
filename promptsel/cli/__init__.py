"""The ``promptsel`` command line (``promptsel.cli:main``); see :mod:`promptsel.cli.app`."""

from __future__ import annotations

from .app import main

__all__ = ["main"]
