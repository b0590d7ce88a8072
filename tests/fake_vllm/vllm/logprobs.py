"""``vllm.logprobs`` (fake): the per-token log-prob record."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Logprob:
    """The log-prob of one token, its rank in the vocabulary (1 = most likely) and its text."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


#: None for the first prompt token, then one dict per position.
PromptLogprobs = list[dict[int, Logprob] | None]
SampleLogprobs = list[dict[int, Logprob]]
