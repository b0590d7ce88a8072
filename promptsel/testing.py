"""Helpers for testing promptsel and its plugins.

* ``FakeBackend`` needs no model. Its log-probs are a fixed function of the text, so tests can
  check plumbing (rendering, caching, class order, resume) exactly. It records every call.
* ``registered(plugin, name=...)`` registers a plugin for a ``with`` block only, so that a
  test's throwaway plugin never leaks into the next test.
* The backend contract (:mod:`promptsel.contract`, re-exported here) holds the checks that
  every backend must pass. Plugin authors run them with ``parametrize_backend_checks``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .backend import (
    CONTINUATION_LOGPROBS,
    GENERATE,
    SEQUENCE_LOGPROBS,
    Backend,
    ContinuationRequest,
    ScoringMode,
)
from .contract import (
    CHECKS,
    DEFAULT_ATOL,
    as_factory,
    backend_checks,
    bind_fixtures,
    parametrize_backend_checks,
)
from .options import option
from .plugins import add_plugin, remove_plugin

__all__ = [
    "CHECKS",
    "DEFAULT_ATOL",
    "FakeBackend",
    "as_factory",
    "backend_checks",
    "bind_fixtures",
    "parametrize_backend_checks",
    "registered",
    "text_value",
]


@contextmanager
def registered(plugin: object, *, name: str) -> Iterator[object]:
    """Register ``plugin`` (an object whose methods are ``@hookimpl``) under ``name`` for the
    ``with`` block, and unregister it when the block ends, also when it raises::

        with registered(MyPlugin(), name="my-plugin"):
            assert registries().backends.get("mine") is MyBackend
    """
    add_plugin(plugin, name=name)
    try:
        yield plugin
    finally:
        # A failed assertion inside the block must not leave the plugin behind: the next test
        # would see its backends and methods, or fail registering the same name again.
        remove_plugin(name)


def text_value(text: str) -> float:
    """A deterministic number in [0, 1) for a string."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:12], 16) / 16**12


class FakeBackend(Backend):
    """Log p(cont | prompt) = -1 - 4 * text_value(prompt + cont) per word (a word = a token),
    plus 2 if the prompt contains ``cue`` and the continuation is one of ``cued_words``."""

    backend_id = "fake"
    capabilities: ClassVar[frozenset[str]] = frozenset({CONTINUATION_LOGPROBS, SEQUENCE_LOGPROBS, GENERATE})

    @dataclass(frozen=True)
    class Options(Backend.Options):
        #: Fail (a RuntimeError) once this many calls were made.
        fail_after: int | None = option(None, key=False)
        #: Simulate Ctrl-C (KeyboardInterrupt) once this many calls were made.
        interrupt_after: int | None = option(None, key=False)
        cue: str = "great"
        cued_words: tuple[str, ...] = ("yes", "good", "positive")

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        self.fail_after = self.options.fail_after
        self.interrupt_after = self.options.interrupt_after
        self.cue = self.options.cue
        self.cued_words = set(self.options.cued_words)
        self.calls: list[tuple[str, Any]] = []

    @property
    def model_name(self) -> str:
        return self.model or "fake"

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"fake:{self.model_name}".encode()).hexdigest()

    def _tick(self, kind: str, payload: Any) -> None:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("fake backend failure (fail_after reached)")
        if self.interrupt_after is not None and len(self.calls) >= self.interrupt_after:
            raise KeyboardInterrupt
        self.calls.append((kind, payload))

    def render_chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
        text = "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")

    def word_logprob(self, prompt: str, word: str) -> float:
        bonus = 2.0 if self.cue in prompt and word.strip() in self.cued_words else 0.0
        return -1.0 - 4.0 * text_value(prompt + "\x00" + word) + bonus

    def continuation_logprobs(self, requests: Sequence[ContinuationRequest], mode: ScoringMode = "full") -> list[np.ndarray]:
        out = []
        for r in requests:
            self._tick("continuation", r)
            values = []
            for cont in r.continuations:
                words = cont.split() or [cont]
                lps = [self.word_logprob(r.prompt + " ".join(words[:i]), w) for i, w in enumerate(words)]
                values.append(lps[0] if mode == "first_token" else sum(lps))
            out.append(np.asarray(values))
        return out

    def sequence_logprobs(self, texts: Sequence[str]) -> list[np.ndarray]:
        out = []
        for t in texts:
            self._tick("sequence", t)
            words = t.split()
            out.append(np.asarray([self.word_logprob(" ".join(words[:i]), w) for i, w in enumerate(words) if i > 0]))
        return out

    def generate(self, prompts: Sequence[str], *, max_tokens: int, stop: Sequence[str] | None = None) -> list[str]:
        out = []
        for p in prompts:
            self._tick("generate", p)
            out.append(" ".join(["because"] * min(max_tokens, 3)) + (" great" if self.cue in p else ""))
        return out
