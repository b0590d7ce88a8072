"""Find the project's shared data (``../shared`` beside the repository) from tests.

``PROMPTSEL_SHARED`` overrides the location. A missing file skips the test on a developer's
machine and fails it in CI (``CI=true``), where the data must be present.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.paths import ROOT


def shared_root() -> Path:
    override = os.environ.get("PROMPTSEL_SHARED")
    return Path(override) if override else ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    """``shared/<parts...>``; skips (or fails, in CI) the calling test if it does not exist."""
    path = shared_root().joinpath(*parts)
    if not path.exists():
        from tests.offline import unavailable

        unavailable(f"Shared data not found: {path}. Set PROMPTSEL_SHARED to the shared folder.")
    return path
