"""Where the tests find the repository's files: one place, so that a test module can live in
any folder of ``tests/`` without counting its parents."""

from __future__ import annotations

from pathlib import Path

#: ``tests/``: the shared helpers, ``golden/`` and ``fake_vllm/``
TESTS = Path(__file__).resolve().parent
#: the repository's root: ``prompts/``, ``docs/``, ``examples/``, ``bench/``
ROOT = TESTS.parent
#: the files ``select``, ``lock`` and ``check`` must write byte for byte
GOLDEN = TESTS / "golden"
#: a faithful fake of vLLM's offline API, put first on ``sys.path`` by the vllm tests
FAKE_VLLM = TESTS / "fake_vllm"
