"""The ``ngram`` backend: promptsel's Backend contract on top of :class:`NgramMixture`.

Tokens are characters. A text's tokens are BOS followed by its characters, so
``sequence_logprobs(text)`` gives one value per character and every prompt/continuation
boundary is clean: the continuation's tokens are its own characters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from promptsel import (
    CONTINUATION_LOGPROBS,
    GENERATE,
    SEQUENCE_LOGPROBS,
    Backend,
    BackendError,
    ContinuationRequest,
    ScoringMode,
    UsageError,
    option,
)

from .model import EOS, UNK, NgramMixture

#: Bumped whenever the same text and order would give different numbers (it is in the fingerprint).
MODEL_FORMAT = "promptsel-ngram/1"


class NgramBackend(Backend):
    """A character n-gram mixture. ``model`` is the training text file. ``None`` is the small
    corpus of film reviews shipped with this package. Option: ``order`` (default 5)."""

    backend_id = "ngram"
    capabilities: ClassVar[frozenset[str]] = frozenset({CONTINUATION_LOGPROBS, SEQUENCE_LOGPROBS, GENERATE})

    @dataclass(frozen=True)
    class Options(Backend.Options):
        #: The longest n-gram (a different order is a different model: it is in the cache key).
        order: int = option(5, minimum=1)

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)  # -M order=3: typed and checked by promptsel
        self.order = self.options.order
        if model is not None and not Path(model).expanduser().is_file():
            raise BackendError(f"Training text not found: {model}.", hint="Pass a UTF-8 text file with --model.")
        self._text: str | None = None
        self._lm: NgramMixture | None = None

    # --- identity ---------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return f"{Path(self.model).stem if self.model else 'film-reviews'} (order {self.order})"

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{MODEL_FORMAT}\norder={self.order}\n{self.text()}".encode()).hexdigest()

    def versions(self) -> dict[str, str]:
        try:
            return {"promptsel-ngram": metadata.version("promptsel-ngram")}
        except metadata.PackageNotFoundError:
            return {}

    # --- the model, trained on first use (a run answered from promptsel's cache never trains) ----
    def text(self) -> str:
        if self._text is None:
            if self.model is None:
                self._text = resources.files(__package__).joinpath("corpus.txt").read_text(encoding="utf-8")
            else:
                self._text = Path(self.model).expanduser().read_text(encoding="utf-8")
        return self._text

    def lm(self) -> NgramMixture:
        if self._lm is None:
            try:
                self._lm = NgramMixture(self.text(), self.order)
            except ValueError as exc:
                raise BackendError(f"Cannot train on {self.model or 'the shipped corpus'}: {exc}") from exc
        return self._lm

    def close(self) -> None:
        self._lm = None

    # --- text -------------------------------------------------------------------------------
    def render_chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
        # The format of the chat documents in the corpus: "User: ...\nAssistant: ...".
        text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages)
        return text + ("Assistant:" if add_generation_prompt else "")

    # --- scoring ----------------------------------------------------------------------------
    def continuation_logprobs(self, requests: Sequence[ContinuationRequest], mode: ScoringMode = "full") -> list[np.ndarray]:
        if mode not in ("full", "first_token"):
            raise UsageError(f"Unknown scoring mode {mode!r}; use 'full' or 'first_token'.")
        lm, out = self.lm(), []
        for req in requests:
            _, after_prompt = lm.read(lm.start(), req.prompt)  # read once, shared by every continuation
            values = []
            for cont in req.continuations:
                if not cont:
                    raise BackendError("A label word is empty; label words must have at least one character.")
                logps, _ = lm.read(after_prompt, cont)
                values.append(logps[0] if mode == "first_token" else sum(logps))
            out.append(np.asarray(values))
        return out

    def sequence_logprobs(self, texts: Sequence[str]) -> list[np.ndarray]:
        lm = self.lm()
        return [np.asarray(lm.read(lm.start(), text)[0]) for text in texts]

    def generate(self, prompts: Sequence[str], *, max_tokens: int, stop: Sequence[str] | None = None) -> list[str]:
        """Greedy: the most probable character each step (never UNK), until EOS or max_tokens."""
        lm, out = self.lm(), []
        stops = [s for s in (stop or []) if s]
        for prompt in prompts:
            _, state = lm.read(lm.start(), prompt)
            text = ""
            for _ in range(max_tokens):
                dist = lm.next_logprobs(state)
                dist.pop(UNK)
                best = max(dist, key=dist.__getitem__)  # ties go to the first in vocabulary order
                if best == EOS:
                    break
                text += best
                _, state = lm.step(state, best)
                if any(s in text for s in stops):
                    break
            cuts = [i for i in (text.find(s) for s in stops) if i >= 0]
            out.append(text[: min(cuts)] if cuts else text)
        return out
