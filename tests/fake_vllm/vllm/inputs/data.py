"""``vllm.inputs.data`` (fake). Like vLLM's, these are TypedDicts: plain dicts at run time."""

from __future__ import annotations

from typing import Any

from typing_extensions import NotRequired, TypedDict


class TextPrompt(TypedDict):
    """A text prompt, tokenized by the engine (with the tokenizer's special tokens)."""

    prompt: str
    multi_modal_data: NotRequired[Any]
    mm_processor_kwargs: NotRequired[dict[str, Any]]
    cache_salt: NotRequired[str]


class TokensPrompt(TypedDict):
    """A prompt given as token ids, passed to the model as they are."""

    prompt_token_ids: list[int]
    token_type_ids: NotRequired[list[int]]
    multi_modal_data: NotRequired[Any]
    mm_processor_kwargs: NotRequired[dict[str, Any]]
    cache_salt: NotRequired[str]
