"""The run record, as lm-evaluation-harness users expect one: when, by which command, from which
revisions. It goes into the JSON report so that a result can be traced back to what made it."""

from __future__ import annotations

import re
import shlex
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

#: ``scheme://user:secret@host``: the credentials part of a URL.
_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s@]+@", re.IGNORECASE)


def redact_url_credentials(text: str) -> str:
    """``http://user:key@host/v1`` -> ``http://***@host/v1``: a report must not carry secrets."""
    return _URL_CREDENTIALS.sub(r"\1***@", text)


def git_revision(folder: Path) -> dict[str, Any] | None:
    """The git commit that ``folder`` is checked out at, and whether its tree has changes;
    ``None`` outside a git work tree (an installed package) or without git."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def run_record(command: list[str] | None, prompts: Path | None, adaptive: dict[str, Any] | None = None) -> dict[str, Any]:
    """``timestamp`` (UTC, ISO 8601), ``command`` (as typed, URL credentials blanked), and the
    git revisions of promptsel's own source and of the folder holding the prompt file; for an
    ``--adaptive`` run also its settings (``adaptive``: epsilon, delta, max_inputs, round_size)."""
    extra = {} if adaptive is None else {"adaptive": adaptive}
    return {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": None if command is None else redact_url_credentials(shlex.join(["promptsel", *command])),
        "promptsel_revision": git_revision(Path(__file__).resolve().parent),
        "prompts_revision": None if prompts is None else git_revision(Path(prompts).resolve().parent),
        **extra,
    }
