"""The capability probe behind ``promptsel validate --backend``: does a backend really give what
promptsel's methods need?

A few tiny requests, each a check with a verdict:

* ``ok``: the backend gives it and the numbers make sense;
* ``warn``: it works, with a caveat (small run-to-run differences);
* ``unavailable``: the backend does not offer it, or refuses with a clear error (its methods are
  left out, not run wrong);
* ``fail``: the backend offers it but the numbers are wrong (misaligned, wrong length, the
  obvious answer losing) - a run would silently produce nonsense.

The raw-text check is counting ("1, 2, ..., 7," then " 8"), the chat check a capital city; even
a 135M model gets both right (P > 0.9), so "above chance" tests alignment, not the model's skill.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import (
    CONTINUATION_LOGPROBS,
    GENERATE,
    SEQUENCE_LOGPROBS,
    Backend,
    ContinuationRequest,
)
from ..errors import PromptselError

COUNT_PROMPT = "1, 2, 3, 4, 5, 6, 7,"
COUNT_CHOICES = (" 8", " 3", " 12")  # the first is right
# Small chat models fail at counting in a chat turn (SmolLM2-135M: P("8") = 0.17) but not this.
CHAT_QUESTION = "What is the capital of France? Answer with one word."
CHAT_CHOICES = ("Paris", "London", "Berlin")
#: Run-to-run differences below this are exact; below WARN_DIFF a caveat (llama.cpp's kernels
#: differ by batch shape, ~0.2 nats at most); above it the backend is not deterministic.
EXACT_DIFF, WARN_DIFF = 1e-6, 0.25


@dataclass
class Check:
    name: str
    verdict: str  # ok | warn | unavailable | fail
    detail: str


@dataclass
class ProbeResult:
    backend: str
    model: str
    capabilities: list[str]
    approximate: str | None
    checks: list[Check] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Wrong numbers somewhere, or no label scoring at all (no method can run)."""
        return any(c.verdict == "fail" for c in self.checks) or CONTINUATION_LOGPROBS not in self.capabilities

    def as_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model, "capabilities": self.capabilities,
                "approximate": self.approximate, "methods": self.methods, "failed": self.failed,
                "checks": [vars(c) for c in self.checks]}


def _winner(values: np.ndarray) -> tuple[bool, float]:
    """Whether the first choice wins, and its probability among the choices."""
    p = np.exp(values - values.max())
    p /= p.sum()
    return bool(values[0] > values[1:].max()), float(p[0])


def probe(backend: Backend) -> ProbeResult:
    """Run the checks on ``backend``, starting from what it says it can give (its runtime
    capabilities: the cheap part, which ``select`` also runs before a long run)."""
    caps = set(backend.runtime_capabilities())
    result = ProbeResult(backend.backend_id, backend.model_name, sorted(caps), backend.approximate)

    def run(name: str, needs: str | None, body: Callable[[], Check]) -> None:
        if needs is not None and needs not in caps:
            result.checks.append(Check(name, "unavailable", f"the backend does not offer {needs}"))
            return
        try:
            result.checks.append(body())
        except NotImplementedError as exc:
            result.checks.append(Check(name, "unavailable", str(exc) or "not implemented"))
        except PromptselError as exc:  # a clear refusal, not a wrong number
            result.checks.append(Check(name, "unavailable", str(exc)))

    def labels_raw() -> Check:
        values = backend.continuation_logprobs([ContinuationRequest(COUNT_PROMPT, COUNT_CHOICES)])[0]
        return _label_check("label log-probs (raw text)", values, COUNT_CHOICES)

    def labels_chat() -> Check:
        try:
            prompt = backend.render_chat([{"role": "user", "content": CHAT_QUESTION}])
        except PromptselError as exc:
            return Check("label log-probs (chat prompt)", "unavailable", str(exc))
        values = backend.continuation_logprobs([ContinuationRequest(prompt, CHAT_CHOICES)])[0]
        return _label_check("label log-probs (chat prompt)", values, CHAT_CHOICES)

    def sequences() -> Check:
        prompt, cont = COUNT_PROMPT, COUNT_CHOICES[0]
        short, full = backend.sequence_logprobs([prompt, prompt + cont])
        label = backend.continuation_logprobs([ContinuationRequest(prompt, (cont,))])[0][0]
        n = len(full) - len(short)
        if len(short) == 0 or n < 1 or not np.all(np.isfinite(full)) or np.any(full > 1e-6):
            return Check("prompt log-probs", "fail", f"{len(short)} and {len(full)} values for two texts, the second longer")
        gap = abs(float(np.sum(full[-n:])) - float(label))
        if gap > WARN_DIFF:
            return Check("prompt log-probs", "fail",
                         f"the last {n} prompt log-probs sum to {np.sum(full[-n:]):.3f} but the label scores {label:.3f}: misaligned")
        return Check("prompt log-probs", "ok" if gap <= 1e-3 else "warn",
                     f"{len(full)} values for {prompt + cont!r}; they agree with label scoring to {gap:.1e}")

    def determinism() -> Check:
        # On whichever prompt style scores (raw text, else the chat prompt), with another
        # request in between: a server that reuses its cache across requests may drift.
        passed = [c.name for c in result.checks if c.name.startswith("label log-probs") and c.verdict == "ok"]
        if not passed:
            return Check("same request twice", "unavailable", "no prompt style scores labels")
        chat = passed[0].endswith("(chat prompt)")
        prompt = backend.render_chat([{"role": "user", "content": CHAT_QUESTION}]) if chat else COUNT_PROMPT
        request = [ContinuationRequest(prompt, CHAT_CHOICES if chat else COUNT_CHOICES)]
        first = backend.continuation_logprobs(request)[0]
        other = backend.render_chat([{"role": "user", "content": "Say yes."}]) if chat else "Say yes:"
        backend.continuation_logprobs([ContinuationRequest(other, ("yes" if chat else " yes",))])
        second = backend.continuation_logprobs(request)[0]
        diff = float(np.max(np.abs(first - second)))
        verdict = "ok" if diff <= EXACT_DIFF else "warn" if diff <= WARN_DIFF else "fail"
        return Check("same request twice", verdict, f"largest difference {diff:.1e} nats")

    def generation() -> Check:
        (text,) = backend.generate([COUNT_PROMPT], max_tokens=4)
        if not isinstance(text, str):
            return Check("generation", "fail", f"returned {type(text).__name__}, not text")
        return Check("generation", "ok", f"greedy continuation {text!r}")

    run("label log-probs (raw text)", CONTINUATION_LOGPROBS, labels_raw)
    run("label log-probs (chat prompt)", CONTINUATION_LOGPROBS, labels_chat)
    run("prompt log-probs", SEQUENCE_LOGPROBS, sequences)
    run("same request twice", CONTINUATION_LOGPROBS, determinism)
    run("generation", GENERATE, generation)
    # Label scoring counts as served when at least one prompt style passes.
    label_checks = [c for c in result.checks if c.name.startswith("label log-probs")]
    if all(c.verdict in ("fail", "unavailable") for c in label_checks):
        caps.discard(CONTINUATION_LOGPROBS)
    if any(c.name == "prompt log-probs" and c.verdict == "fail" for c in result.checks):
        caps.discard(SEQUENCE_LOGPROBS)
    result.capabilities = sorted(caps)
    result.methods = methods_served(caps)
    return result


def _label_check(name: str, values: np.ndarray, choices: tuple[str, ...]) -> Check:
    values = np.asarray(values, dtype=float)
    if values.shape != (len(choices),) or not np.all(np.isfinite(values)) or np.any(values > 1e-6):
        return Check(name, "fail", f"expected {len(choices)} finite log-probs <= 0, got {values.tolist()}")
    wins, p = _winner(values)
    detail = f"P({choices[0].strip()!r} among {[c.strip() for c in choices]}) = {p:.2f}"
    return Check(name, "ok" if wins else "fail", detail + ("" if wins else ": the obvious answer loses (misaligned?)"))


def methods_served(caps: set[str]) -> list[str]:
    from ..plugins import registries
    from .inputs import table_needs

    available = table_needs(caps)
    return [e.name for e in registries().selectors if e.target.needs <= available]
