"""promptsel: pick the best zero-shot prompt for a model and a dataset, and say how sure it is."""

from __future__ import annotations

from .hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]
