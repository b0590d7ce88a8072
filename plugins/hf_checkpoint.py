"""What the backends that read Hugging Face checkpoints (``hf``, ``vllm``) share: the files that
make a checkpoint's fingerprint, and tokenization and chat formatting with its tokenizer."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promptsel import BackendError, TokenMemo, continuation_tokens, file_fingerprint, with_prefix

#: Files whose bytes decide a checkpoint's numbers (weights, config, tokenizer, chat template).
FINGERPRINT_GLOBS = (
    "*.safetensors", "*.bin", "*.pt", "*.pth", "config.json", "generation_config.json",
    "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "vocab.json", "vocab.txt", "merges.txt", "*.tiktoken", "chat_template.jinja",
    "chat_template.json",
)


def directory_fingerprint(directory: Path) -> str:
    """The sha256 over a model folder's weight, config and tokenizer files (names and contents)."""
    files = sorted({p for g in FINGERPRINT_GLOBS for p in directory.glob(g) if p.is_file()})
    if not files:
        raise BackendError(f"No model files found in {directory}.")
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.name}\0{file_fingerprint(p)}\n".encode())
    return digest.hexdigest()


class HFTokens:
    """Tokenization and chat formatting with a Hugging Face tokenizer, the same in every backend
    that has one (``hf``, ``vllm``). The class provides ``_load_tokenizer()`` and ``model_name``.

    ``ids(text)`` is the tokenizer's special prefix (its BOS, where it adds one) unless the text
    already starts with it, then the text's tokens with special tokens parsed; a continuation's
    tokens follow :func:`promptsel.backend.continuation_tokens`."""

    _tok: Any = None
    _prefix: tuple[int, ...] = ()
    _tokens: TokenMemo

    def _load_tokenizer(self) -> Any:
        raise NotImplementedError

    def _tokenizer(self) -> Any:
        if self._tok is None:
            tok = self._load_tokenizer()
            with_special = tok("a")["input_ids"]
            plain = tok("a", add_special_tokens=False)["input_ids"]
            self._prefix = tuple(with_special[: _find(with_special, plain)])
            self._tok = tok
        return self._tok

    def _ids(self, text: str) -> tuple[int, ...]:
        return self._tokens.get(text, self._tokenize)

    def _tokenize(self, text: str) -> tuple[int, ...]:
        body = self._tokenizer()(text, add_special_tokens=False)["input_ids"]
        return with_prefix(body, self._prefix)  # _tokenizer() has set self._prefix

    def _continuation_ids(self, prompt: str, prompt_ids: tuple[int, ...], continuation: str) -> tuple[int, ...]:
        return continuation_tokens(
            prompt_ids, self._ids(prompt + continuation),
            lambda: self._tokenizer()(continuation, add_special_tokens=False)["input_ids"],
        )

    def render_chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
        tok = self._tokenizer()
        if not getattr(tok, "chat_template", None):
            raise BackendError(
                f"{self.model_name} has no chat template.",  # type: ignore[attr-defined]
                hint="Use a prompt set with raw (non-chat) prompts for this model, or a chat model.",
            )
        return tok.apply_chat_template(
            [dict(m) for m in messages], tokenize=False, add_generation_prompt=add_generation_prompt
        )


def _find(haystack: Sequence[int], needle: Sequence[int]) -> int:
    """Index where ``needle`` starts in ``haystack`` (0 when it is not found)."""
    n = len(needle)
    for i in range(len(haystack) - n + 1):
        if list(haystack[i : i + n]) == list(needle):
            return i
    return 0
