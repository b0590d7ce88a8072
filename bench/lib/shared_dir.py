"""The read-only shared folder benchmarks read data and fixtures from (``PROMPTSEL_SHARED``, else
``../shared`` beside the repository); nothing from it is copied into the project."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository


def shared_root() -> Path:
    """The shared folder's path, whether or not it is there."""
    return Path(os.environ.get("PROMPTSEL_SHARED") or ROOT.parent / "shared")


def shared_path(*parts: str) -> Path:
    """``parts`` inside the shared folder; exits with a one-line error when it is not there."""
    path = shared_root().joinpath(*parts)
    if not path.exists():
        sys.exit(f"error: {path} not found; set PROMPTSEL_SHARED to the shared folder.")
    return path
