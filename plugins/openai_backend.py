"""The ``openai`` backend: any OpenAI-compatible server (vLLM's, llama.cpp's, a hosted API).

Exact scoring goes through ``/v1/completions`` with ``echo`` and ``logprobs``: the server scores
``prompt + continuation`` and echoes a log-prob for every token. What servers really return,
found by running them (see ``tests/backends/test_openai.py``):

* llama-cpp-python's server (0.3.x) leaves out every token equal to BOS, nulls the first echoed
  token, and detokenizes special tokens to nothing, so ``text_offset`` does not index the prompt
  string. Worse, for a text that does not start with BOS it pairs each token with the log-probs of
  the *next* position: every value is shifted by one token. Chat prompts (which start with the
  BOS-like ``<|im_start|>`` on SmolLM2) come back right; raw texts do not.
* llama.cpp's own ``llama-server`` accepts ``echo`` but returns log-probs for generated tokens
  only (peers.md §3.1).

So nothing is trusted by position. The continuation's tokens are found from the end of the echoed
token strings (whose concatenation must end with the continuation; a generated token, if the
server included it, is taken off first), and alignment is verified: for each new kind of text
(its first characters) the echoed log-probs of the continuation's first token must equal what a
plain (non-echo) request returns for the next token after the prompt. A server that fails either
check gets a one-line error for that request; the cheap probe that ``select`` runs first
(:meth:`OpenAIBackend.runtime_capabilities`) drops sequence log-probs (SPELL) when raw texts are
misaligned, and falls back to chat scoring when the server echoes no prompt log-probs at all.

Chat-only servers (``endpoint=chat``): a class is scored from the top-k log-probs of the first
generated token (top 20 at most on OpenAI's API). That is approximate; the report says so, and
methods that need prompt log-probs (SPELL) are unavailable.

The API key is read from the environment (``OPENAI_API_KEY`` or the variable named by
``api_key_env``) and never written to reports, cache keys or logs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, ClassVar, Literal

import numpy as np

from promptsel import (
    CONTINUATION_LOGPROBS,
    GENERATE,
    SEQUENCE_LOGPROBS,
    TOPK_ONLY,
    Backend,
    BackendError,
    ContinuationRequest,
    ScoringMode,
    UsageError,
    option,
)

from .openai_http import (
    EndpointMissing,
    OpenAIHttp,
    import_openai,
    redact_url,
    retry_after,
    secrets_of,
)

#: Public names, the HTTP side's among them (they were defined here before openai_http.py).
__all__ = ["CHAT_MARK", "EchoError", "EndpointMissing", "NoPromptLogprobs", "OpenAIBackend", "first_token_score",
           "redact_url", "retry_after", "secrets_of"]

#: render_chat's output in chat mode: the messages themselves, for the chat endpoint.
CHAT_MARK = "\x00promptsel-chat\x00"
#: Texts whose first characters match share a verified alignment (same BOS handling).
_HEAD_CHARS = 16
#: Echoed and plain log-probs of the same position agree only roughly on some servers: llama.cpp
#: computes a prefix reused from the previous request with other kernels (measured on the
#: llama-cpp-python server: 0.05 nats on a likely token, 0.37 on the second most likely). So the
#: check compares the most likely token, and its log-prob loosely; a shifted position gives
#: another distribution altogether, usually with another most likely token.
_ALIGN_TOLERANCE = 0.5
#: A raw text for the alignment probe (any text works; this one is in every tokenizer).
_PROBE_TEXT = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16"


class EchoError(BackendError):
    """The server's echoed log-probs are at the wrong positions for this kind of text."""


class NoPromptLogprobs(BackendError):
    """The server does not echo prompt log-probs at all."""


class OpenAIBackend(OpenAIHttp, Backend):
    """An OpenAI-compatible server. ``model`` is the served model's name (default: the first the
    server lists).

    Options: ``base_url`` (default ``$OPENAI_BASE_URL`` or OpenAI's), ``api_key_env`` (the
    variable holding the key, default ``OPENAI_API_KEY``), ``endpoint`` (``auto``,
    ``completions`` or ``chat``), ``chat_template`` (where the model's chat template is: a .gguf,
    a Hugging Face model folder or a .jinja file; needed to format chat prompts for the
    completions endpoint), ``concurrency`` (parallel requests, ``-j``; default 4), ``timeout``
    (seconds per request, default 60), ``max_retries`` (default 6), ``backoff`` (seconds before
    the first retry when the server sends no Retry-After; doubled each time, default 0.5),
    ``top_logprobs`` (chat mode's k, default 20), ``model_fingerprint`` (a content hash of the served weights, e.g. the
    GGUF's sha256; without it the cache key is the server URL and model name).
    """

    backend_id = "openai"
    capabilities: ClassVar[frozenset[str]] = frozenset({CONTINUATION_LOGPROBS, SEQUENCE_LOGPROBS, GENERATE})

    @dataclass(frozen=True)
    class Options(Backend.Options):
        # The server, model and chat template are in the fingerprint; the endpoint actually used
        # is added to the cache identity below. Of the rest only top_logprobs changes a number.
        base_url: str | None = option(None, key=False)
        api_key_env: str = option("OPENAI_API_KEY", key=False)
        endpoint: Literal["auto", "completions", "chat"] = option("auto", key=False)
        chat_template: str | None = option(None, key=False)
        concurrency: int = option(4, key=False, minimum=1)
        timeout: float = option(60.0, key=False, minimum=0.001)
        max_retries: int = option(6, key=False, minimum=0)
        backoff: float = option(0.5, key=False, minimum=0.0)
        top_logprobs: int = option(20, minimum=1)
        model_fingerprint: str | None = option(None, key=False)

    def __init__(self, model: str | None = None, **options: Any) -> None:
        if "api_key" in options:
            raise UsageError(
                "The openai backend does not take the API key as an option (it would end up in shell history).",
                hint="Put it in OPENAI_API_KEY, or name another variable with -M api_key_env=NAME.",
            )
        import_openai()  # a missing package is said before any data is loaded
        super().__init__(model, **options)
        o = self.options
        url = str(o.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self._url = url  # what the client connects to; it may hold user:password@
        #: The URL as every message, report and cache key shows it: credentials replaced by ***.
        self.base_url = redact_url(url)
        self.api_key_env = o.api_key_env
        self._secrets = secrets_of(url, os.environ.get(self.api_key_env))
        self.endpoint = o.endpoint
        self.concurrency, self.timeout, self.max_retries = o.concurrency, o.timeout, o.max_retries
        self.top_logprobs, self.backoff = o.top_logprobs, o.backoff
        self.chunk_size = max(8, 4 * self.concurrency)
        self.approximate: str | None = "chat endpoint: top-k log-probs of the first generated token" if self.endpoint == "chat" else None
        self._client: Any = None
        self._model_id: str | None = model
        self._template: Any = None
        self._aligned: dict[str, bool] = {}
        self._lock = threading.Lock()
        self.retries = 0  # requests retried, for reports and tests
        self.waited = 0.0  # seconds spent waiting before retries (the server's Retry-After or backoff)

    # --- identity -------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self._served_model()

    @property
    def fingerprint(self) -> str:
        pinned = self.options.model_fingerprint
        if pinned:
            return str(pinned)
        template = self._chat_template()
        ident = {"base_url": self.base_url, "model": self._served_model(),
                 "chat_template": None if template is None else hashlib.sha256(template.template.encode()).hexdigest()}
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()

    def cache_identity(self) -> dict[str, Any]:
        # The endpoint actually used (``auto`` resolves to one of them), not the option given.
        identity = super().cache_identity()
        identity["options"] = {**identity["options"], "endpoint": self._mode()}
        return identity

    def versions(self) -> dict[str, str]:
        return {"openai": metadata.version("openai")}

    # --- requests (sent and retried by OpenAIHttp) ----------------------------------------
    def _served_model(self) -> str:
        if self._model_id is None:
            models = self._call(lambda c: c.models.list())
            ids = [m.id for m in models.data]
            if not ids:
                raise BackendError(f"{self.base_url} serves no models.", hint="Pass --model NAME.")
            self._model_id = ids[0]
        return self._model_id

    def _complete(self, text: str, *, echo: bool, logprobs: int | None, max_tokens: int = 1,
                  stop: Sequence[str] | None = None) -> Any:
        model = self._served_model()
        kwargs: dict[str, Any] = {"model": model, "prompt": text, "echo": echo, "max_tokens": max_tokens, "temperature": 0}
        if logprobs is not None:
            kwargs["logprobs"] = logprobs
        if stop:
            kwargs["stop"] = list(stop)
        response = self._call(lambda c: c.completions.create(**kwargs))
        if not getattr(response, "choices", None):
            raise BackendError(f"{self.base_url} returned a completion without choices.")
        return response.choices[0], getattr(response, "usage", None)

    # --- chat -----------------------------------------------------------------------------
    def _chat_template(self) -> Any:
        if self._template is None and self.options.chat_template:
            from promptsel import load_chat_template

            self._template = load_chat_template(self.options.chat_template)
        return self._template

    def _mode(self) -> str:
        return "chat" if self.endpoint == "chat" else "completions"

    def render_chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
        if self._mode() == "chat":
            return CHAT_MARK + json.dumps({"messages": [dict(m) for m in messages], "add_generation_prompt": add_generation_prompt})
        template = self._chat_template()
        if template is None:
            raise UsageError(
                "The openai backend needs the model's chat template to format chat prompts for /v1/completions.",
                hint="Pass -M chat_template=PATH (the model's .gguf, Hugging Face folder or .jinja file), or -M endpoint=chat (approximate).",
            )
        return template.render(messages, add_generation_prompt=add_generation_prompt)

    @staticmethod
    def _messages(text: str) -> list[dict[str, str]]:
        if text.startswith(CHAT_MARK):
            return json.loads(text[len(CHAT_MARK) :])["messages"]
        return [{"role": "user", "content": text}]

    def _chat(self, text: str, *, max_tokens: int, top_logprobs: int | None = None, stop: Sequence[str] | None = None) -> Any:
        kwargs: dict[str, Any] = {"model": self._served_model(), "messages": self._messages(text),
                                  "max_tokens": max_tokens, "temperature": 0}
        if top_logprobs is not None:
            kwargs.update(logprobs=True, top_logprobs=top_logprobs)
        if stop:
            kwargs["stop"] = list(stop)
        response = self._call(lambda c: c.chat.completions.create(**kwargs))
        if not getattr(response, "choices", None):
            raise BackendError(f"{self.base_url} returned a chat completion without choices.")
        return response.choices[0]

    # --- capabilities ---------------------------------------------------------------------
    def runtime_capabilities(self) -> frozenset[str]:
        """What this server can really give, from a few cheap requests (``select`` asks before a
        long run). ``auto`` becomes ``completions`` when the server echoes prompt log-probs, else
        ``chat`` (approximate). Sequence log-probs (SPELL) are offered only when a raw text's
        echoed log-probs pass the alignment check."""
        if self.endpoint != "chat":
            try:
                self.sequence_logprobs([_PROBE_TEXT])
            except EchoError:  # echo works but not for raw text: chat prompts are checked per text
                self.endpoint = "completions"
                return frozenset({CONTINUATION_LOGPROBS, GENERATE})
            except (NoPromptLogprobs, EndpointMissing):
                if self.endpoint == "completions":
                    raise
                self.endpoint = "chat"
                self.approximate = "chat endpoint: top-k log-probs of the first generated token"
            else:
                self.endpoint = "completions"
                return self.capabilities
        return frozenset({CONTINUATION_LOGPROBS, GENERATE, TOPK_ONLY})

    # --- completions scoring --------------------------------------------------------------
    def _echoed(self, text: str) -> tuple[list[str], list[float | None], list[Any], int | None]:
        """Token strings, log-probs and top-1 dicts that the server echoes for ``text``, without
        the token it generated (some servers list it, some do not), and the prompt's token count."""
        choice, usage = self._complete(text, echo=True, logprobs=1)
        lp = choice.logprobs
        tokens = list(getattr(lp, "tokens", None) or [])
        if not tokens:
            raise NoPromptLogprobs(f"{self.base_url} returned no prompt log-probs for echo=true.",
                               hint="Use -M endpoint=chat (approximate) or an in-process backend.")
        values = list(lp.token_logprobs or [None] * len(tokens))
        tops = list(lp.top_logprobs or [None] * len(tokens))
        generated = choice.text[len(text) :] if (choice.text or "").startswith(text) else None
        # Special tokens echo as "" on some servers, so only the text's end is comparable.
        end = text[-8:]
        if generated is not None and tokens[-1] == generated and "".join(tokens[:-1]).endswith(end):
            tokens, values, tops = tokens[:-1], values[:-1], tops[:-1]
        if not "".join(tokens).endswith(end):
            raise NoPromptLogprobs(
                f"{self.base_url} returned no prompt log-probs for echo=true (the echoed tokens do not end like the text).",
                hint="Use -M endpoint=chat (approximate) or an in-process backend (llama.cpp's llama-server echoes only generated tokens).",
            )
        return tokens, values, tops, getattr(usage, "prompt_tokens", None)

    def _check_alignment(self, text: str, tokens: list[str], tops: list[Any]) -> None:
        """Once per kind of text (its first characters): the echoed most likely token at the last
        position must be what a plain request gives after the rest of the text (greedy, with its
        log-prob). A server that pairs tokens with the wrong position fails."""
        head = text[:_HEAD_CHARS]
        if head not in self._aligned:
            last, ok = tokens[-1], False
            if last and text.endswith(last) and len(text) > len(last) and tops[-1]:
                choice, _ = self._complete(text[: -len(last)], echo=False, logprobs=1)
                plain = (choice.logprobs.top_logprobs or [None])[0] if choice.logprobs else None
                ok = bool(plain) and all(
                    t in tops[-1] and abs(float(tops[-1][t]) - float(v)) <= _ALIGN_TOLERANCE for t, v in plain.items()
                )
            with self._lock:
                self._aligned[head] = ok
        if not self._aligned[head]:
            raise EchoError(
                f"{self.base_url} echoes log-probs at the wrong positions for texts like {head!r}... "
                "(llama-cpp-python's server shifts them by one token for texts that do not start with BOS).",
                hint="Use chat prompts, -M endpoint=chat (approximate), or the llamacpp backend in process.",
            )

    def _continuation(self, prompt: str, continuation: str) -> list[float]:
        """Log-probs of the tokens that spell ``continuation`` at the end of the echoed text."""
        text = prompt + continuation
        tokens, values, tops, _ = self._echoed(text)
        self._check_alignment(text, tokens, tops)
        start, spelled = len(tokens), ""
        while start > 0 and len(spelled) < len(continuation):
            start -= 1
            spelled = tokens[start] + spelled
        chosen = values[start:]
        if spelled != continuation or start == 0 or any(v is None for v in chosen):
            # A token spans the prompt/continuation boundary (a prompt ending in a space, say):
            # the in-process backends then tokenize the continuation alone, which HTTP cannot.
            raise BackendError(
                f"The echoed tokens of {self.base_url} do not split at the start of {continuation!r}.",
                hint="End the prompt without a trailing space (set target_delimiter), or use an in-process backend.",
            )
        return [float(v) for v in chosen]

    def continuation_logprobs(self, requests: Sequence[ContinuationRequest], mode: ScoringMode = "full") -> list[np.ndarray]:
        if mode not in ("full", "first_token"):
            raise UsageError(f"Unknown scoring mode {mode!r}; use 'full' or 'first_token'.")
        if self._mode() == "chat":
            return self._map(self._chat_scores, list(requests))
        pairs = [(r.prompt, c) for r in requests for c in r.continuations]
        scored = self._map(lambda pc: self._continuation(*pc), pairs)
        out, i = [], 0
        for r in requests:
            per = scored[i : i + len(r.continuations)]
            i += len(r.continuations)
            out.append(np.asarray([v[0] if mode == "first_token" else math.fsum(v) for v in per]))
        return out

    def sequence_logprobs(self, texts: Sequence[str]) -> list[np.ndarray]:
        if self._mode() == "chat":
            raise NotImplementedError("the chat endpoint gives no prompt log-probs")

        def one(text: str) -> np.ndarray:
            tokens, values, tops, n_prompt = self._echoed(text)
            self._check_alignment(text, tokens, tops)
            scored = [float(v) for v in values if v is not None]
            # The contract is a value for every token after the first. OpenAI's convention nulls
            # the first echoed token, and servers that strip BOS then lose the first text token's
            # value too: one value short is that, more is a server leaving tokens out.
            if n_prompt is not None and len(scored) < n_prompt - 2:
                raise BackendError(
                    f"{self.base_url} echoed {len(scored)} log-probs for a text of {n_prompt} tokens.",
                    hint="This server leaves prompt tokens out of echo (special tokens, say); SPELL cannot use it.",
                )
            return np.asarray(scored, dtype=float)

        return self._map(one, list(texts))

    # --- chat scoring ---------------------------------------------------------------------
    def _chat_scores(self, request: ContinuationRequest) -> np.ndarray:
        choice = self._chat(request.prompt, max_tokens=1, top_logprobs=self.top_logprobs)
        content = getattr(getattr(choice, "logprobs", None), "content", None)
        if not content:
            raise BackendError(f"{self.base_url} returned no log-probs from the chat endpoint.",
                               hint="This server cannot score labels; use a server with logprobs support.")
        top = [(t.token, float(t.logprob)) for t in content[0].top_logprobs] or [(content[0].token, float(content[0].logprob))]
        return np.asarray([first_token_score(c, top) for c in request.continuations])

    # --- generation -----------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], *, max_tokens: int, stop: Sequence[str] | None = None) -> list[str]:
        if self._mode() == "chat":
            return self._map(lambda p: self._chat(p, max_tokens=max_tokens, stop=stop).message.content or "", list(prompts))
        return self._map(lambda p: self._complete(p, echo=False, logprobs=None, max_tokens=max_tokens, stop=stop)[0].text or "",
                         list(prompts))


def first_token_score(continuation: str, top: Sequence[tuple[str, float]]) -> float:
    """A continuation's score from the top-k first tokens: the summed probability of the
    candidates that spell the longest start of the (stripped) word; if none does, the smallest
    top-k log-prob (an upper bound for any token outside the top k)."""
    word = continuation.strip()
    best, matches = 0, []
    for token, lp in top:
        t = token.strip()
        if t and word.startswith(t):
            if len(t) > best:
                best, matches = len(t), [lp]
            elif len(t) == best:
                matches.append(lp)
    if not matches:
        return min(lp for _, lp in top)
    from scipy.special import logsumexp

    return float(logsumexp(matches))
