"""The backend contract: what an LLM engine must give promptsel.

A backend scores text; it never formats chat turns by hand (the model's own chat template does)
and never caches (the scoring layer does, for every backend alike).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .model.request import ScoringMode
from .options import Options

#: Capabilities a backend may declare; methods declare which they need.
CONTINUATION_LOGPROBS = "continuation_logprobs"
SEQUENCE_LOGPROBS = "sequence_logprobs"
GENERATE = "generate"
TOPK_ONLY = "topk_only"
CAPABILITIES = frozenset({CONTINUATION_LOGPROBS, SEQUENCE_LOGPROBS, GENERATE, TOPK_ONLY})



@dataclass(frozen=True)
class ContinuationRequest:
    """Score each continuation as the text that follows ``prompt`` (teacher-forced)."""

    prompt: str
    continuations: tuple[str, ...]


def with_prefix(body: Sequence[int], prefix: Sequence[int]) -> tuple[int, ...]:
    """A text's tokens behind the model's special prefix (its BOS), unless they already start with it."""
    body, prefix = tuple(body), tuple(prefix)
    return body if not prefix or body[: len(prefix)] == prefix else prefix + body


class TokenMemo:
    """Token ids by text, for one model. A rendered prompt is tokenized several times (alone,
    and joined with each label word), so backends remember it; cleared when full."""

    def __init__(self, limit: int = 8192) -> None:
        self.limit = limit
        self._ids: dict[str, tuple[int, ...]] = {}

    def get(self, text: str, tokenize: Callable[[str], tuple[int, ...]]) -> tuple[int, ...]:
        ids = self._ids.get(text)
        if ids is None:
            if len(self._ids) >= self.limit:
                self._ids.clear()
            ids = self._ids[text] = tokenize(text)
        return ids


def continuation_tokens(
    prompt_ids: Sequence[int], joint_ids: Sequence[int], tokenize_alone: Callable[[], Sequence[int]]
) -> tuple[int, ...]:
    """The tokens of a continuation, the same way in every backend.

    They are those of ``tokenize(prompt + continuation)`` after the prompt's own tokens when
    the prompt's tokens are a prefix of that joint tokenization. When a token spans the
    boundary (a prompt ending in a space, say) the continuation is tokenized alone, without BOS.
    """
    n = len(prompt_ids)
    if len(joint_ids) > n and tuple(joint_ids[:n]) == tuple(prompt_ids):
        return tuple(joint_ids[n:])
    alone = tuple(tokenize_alone())
    if not alone:
        from .errors import BackendError

        raise BackendError("A label word has no tokens; label words must not be empty.")
    return alone


class Backend(ABC):
    """Base class for LLM backends registered through ``register_backends``.

    Subclasses set ``backend_id`` and ``capabilities`` and implement the methods their
    capabilities promise. ``model`` is a path or an id the backend understands; ``None`` means
    the backend's default model.
    """

    backend_id: ClassVar[str]
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: Requests handed to one scoring call (a backend that works in parallel wants more).
    chunk_size: int = 8
    #: Prompts a backend generates together: ``generate`` gets at least this many per call.
    generate_batch: int = 1
    #: ``True`` when the backend keeps the KV cache of the previous request and reuses its common
    #: prefix: the scorer then sends requests sorted by text, so shared prefixes run back to back.
    reuses_prefix: ClassVar[bool] = False
    #: Why this backend's scores are not exact (``None`` when they are); shown in reports.
    approximate: str | None = None

    @dataclasses.dataclass(frozen=True)
    class Options(Options):
        """The backend's ``-M key=value`` options: fields with typed defaults. Fields declared
        with ``option(..., key=False)`` cannot change a number and stay out of cache keys."""

    def __init__(self, model: str | None = None, **options: Any) -> None:
        self.model = model
        self.options = self.Options.parse(options, owner=f"backend {self.backend_id!r}")

    # --- identity -------------------------------------------------------------------------
    @property
    @abstractmethod
    def model_name(self) -> str:
        """A human-readable model name for reports."""

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """A content hash of the model (weights file hash, not its name): the cache key."""

    def cache_identity(self) -> dict[str, Any]:
        """Everything that changes this backend's numbers for the same input text."""
        return {
            "backend": self.backend_id,
            "fingerprint": self.fingerprint,
            "options": self.options.identity(),
        }

    def runtime_capabilities(self) -> frozenset[str]:
        """What this instance can really give. Remote backends find out by asking their server
        (cheaply); ``select`` calls this before a long run. The default is ``capabilities``."""
        return self.capabilities

    # --- text -----------------------------------------------------------------------------
    @abstractmethod
    def render_chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """Format chat messages with the model's own chat template into one prompt string."""

    # --- scoring --------------------------------------------------------------------------
    def continuation_logprobs(
        self, requests: Sequence[ContinuationRequest], mode: ScoringMode = "full"
    ) -> list[np.ndarray]:
        """log p(continuation | prompt) for each continuation of each request.

        ``mode="full"`` sums the log-probs of every token of the continuation; ``"first_token"``
        takes only its first token. Tokenization follows :func:`continuation_tokens`.
        :returns: one float array per request, aligned with its continuations.
        """
        raise NotImplementedError(f"{self.backend_id} cannot score continuations")

    def sequence_logprobs(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per-token log p(tok_i | tok_<i) of each text, for i >= 1: the first token of the
        tokenized sequence (BOS included, where the model adds one) has none."""
        raise NotImplementedError(f"{self.backend_id} cannot score sequences")

    def generate(self, prompts: Sequence[str], *, max_tokens: int, stop: Sequence[str] | None = None) -> list[str]:
        """Greedy generation (temperature 0) of at most ``max_tokens`` tokens per prompt."""
        raise NotImplementedError(f"{self.backend_id} cannot generate")

    def token_counts(self, texts: Sequence[str]) -> list[int] | None:
        """How many tokens each text is for this model, for cost estimates before a run; ``None``
        (the default) when the backend cannot say cheaply (promptsel then counts 4 characters a token)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model."""

    def versions(self) -> dict[str, str]:
        """Versions of the libraries this backend runs on, for reports."""
        return {}
