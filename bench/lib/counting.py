"""Run the ``promptsel`` command line with the llamacpp backend's work counted.

``python bench/lib/counting.py select ...`` is ``promptsel select ...``, plus a JSON file (the path in
``PROMPTSEL_COUNTS``) with the tokens of the sequences asked for (``requested``: every label
prompt, SPELL text and CoT prompt, as if evaluated alone) and the tokens llama.cpp evaluated
(``evaluated``: after prefix reuse, generation steps included), and the process's peak RSS. It
wraps methods that this promptsel and older ones share, so bench_speed.py counts the previous
commit's code the same way.

It is run by its path, not with ``-m``: bench_speed runs it with only the tree under test on
``PYTHONPATH`` (an older commit's ``promptsel``), so it imports nothing from ``bench``.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path

from promptsel_builtin import llamacpp

COUNTS = {"requested": 0, "evaluated": 0}
Backend = llamacpp.LlamaCppBackend


def _wrap(name: str, count) -> None:
    real = getattr(Backend, name, None)
    if real is None:
        return

    def wrapper(self, *args, **kwargs):
        COUNTS[count[0]] += count[1](self, *args, **kwargs)
        return real(self, *args, **kwargs)

    setattr(Backend, name, wrapper)


def _continuations(self, requests, mode="full"):
    self._engine()
    total = 0
    for r in requests:
        ids = self._ids(r.prompt)
        extra = [len(self._continuation_ids(r.prompt, ids, c)) - 1 for c in r.continuations] if mode == "full" else []
        total += len(ids) + sum(extra)
    return total


def _texts(self, texts, **_):
    self._engine()
    return sum(len(self._ids(t)) for t in texts)


_wrap("continuation_logprobs", ("requested", _continuations))
_wrap("sequence_logprobs", ("requested", _texts))
_wrap("generate", ("requested", _texts))
_wrap("_decode", ("evaluated", lambda self, ids, *a, **k: len(ids)))
_wrap("_stream_decode", ("evaluated", lambda self, st, tokens, *a, **k: len(tokens)))


@atexit.register
def _write() -> None:
    import resource

    import promptsel

    # The peak RSS of this process (a parent's wait4 can report the parent's own at fork time).
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(os.environ["PROMPTSEL_COUNTS"]).write_text(
        json.dumps({**COUNTS, "rss_mb": rss_mb, "promptsel": str(Path(promptsel.__file__).parent)}))


if __name__ == "__main__":
    from promptsel.cli import main

    main(sys.argv[1:])
