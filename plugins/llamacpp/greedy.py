"""Greedy (argmax) decoding of one prompt, for generation in the main context and in streams."""

from __future__ import annotations

import numpy as np

from .engine import LlamaEngine


class Greedy:
    """One prompt's greedy decoding, step by step: the same rules alone or in a batch."""

    def __init__(self, n: int, max_tokens: int, stops: tuple[str, ...], limit: int) -> None:
        self.n, self.max_tokens, self.stops, self.limit = n, max_tokens, stops, limit
        self.step = 0
        self.data = b""
        self.done = max_tokens <= 0

    @property
    def position(self) -> int:
        """Where the token returned by the last ``feed`` goes."""
        return self.n + self.step - 1

    def feed(self, row: np.ndarray, backend: LlamaEngine) -> int | None:
        """Take the next-token logits; return the token to decode next, or None when finished."""
        if self.done or self.n + self.step >= self.limit:
            self.done = True
            return None
        token = int(np.argmax(row))
        if backend._lc.llama_vocab_is_eog(backend._vocab, token):
            self.done = True
            return None
        self.data += backend._piece(token)
        self.step += 1
        stopped = bool(self.stops) and any(s in self.data.decode("utf-8", errors="ignore") for s in self.stops)
        self.done = stopped or self.step >= self.max_tokens
        return None if self.done else token

    def text(self) -> str:
        text = self.data.decode("utf-8", errors="ignore")
        cuts = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        return text[: min(cuts)] if cuts else text
