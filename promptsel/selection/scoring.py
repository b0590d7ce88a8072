"""One scoring pass: prompts x inputs through a backend (via the cache) into a ScoreTable."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import logsumexp

from ..backend import Backend, ContinuationRequest, ScoringMode
from .cache import Cache, finite_numbers, make_key
from .data import Dataset
from .prompts import Prompt, PromptSet
from .request import ScoringOptions
from .scoretable import ScoreTable


class Progress:
    """Progress reporting without a terminal: a no-op. The CLI passes a rich-backed one."""

    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def done(self) -> None:
        pass


@dataclass
class Timings:
    backend_seconds: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)


class Scorer:
    """A backend behind the cache: every call is keyed by content and written through."""

    def __init__(self, backend: Backend, cache: Cache, *, progress: Progress | None = None, chunk_size: int | None = None) -> None:
        self.backend = backend
        self.cache = cache
        self.progress = progress or Progress()
        # Each chunk is written to the cache as soon as it is scored (resume after a failure).
        self.chunk_size = chunk_size or backend.chunk_size
        self.timings = Timings()
        self._identity = backend.cache_identity()

    def render_chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self.backend.render_chat(messages, add_generation_prompt=add_generation_prompt)

    def _cached(self, kind: str, payloads: Sequence[Any], compute: Callable[[list[Any]], list[Any]],
                valid: Callable[[Any, Any], bool]) -> list[Any]:
        """``valid(payload, value)`` says whether a value read from the cache can be used; one
        that cannot is recomputed and rewritten."""
        keys = [make_key(kind, self._identity, p) for p in payloads]
        by_key = dict(zip(keys, payloads))
        found = self.cache.get_many(keys, valid=lambda key, value: valid(by_key[key], value))
        results: list[Any] = [found.get(k) for k in keys]
        missing = [i for i, k in enumerate(keys) if k not in found]
        self.progress.advance(len(keys) - len(missing))
        for start in range(0, len(missing), self.chunk_size):
            chunk = missing[start : start + self.chunk_size]
            began = time.perf_counter()
            values = compute([payloads[i] for i in chunk])
            self.timings.backend_seconds += time.perf_counter() - began
            self.timings.calls[kind] = self.timings.calls.get(kind, 0) + len(chunk)
            self.cache.put_many(kind, {keys[i]: v for i, v in zip(chunk, values)})
            for i, v in zip(chunk, values):
                results[i] = v
            self.progress.advance(len(chunk))
        return results

    def continuation_logprobs(self, requests: Sequence[ContinuationRequest], mode: ScoringMode = "full") -> list[np.ndarray]:
        payloads = [[r.prompt, list(r.continuations), mode] for r in requests]

        def compute(batch: list[Any]) -> list[Any]:
            reqs = [ContinuationRequest(p, tuple(c)) for p, c, _ in batch]
            return [np.asarray(a, dtype=float).tolist() for a in self.backend.continuation_logprobs(reqs, mode=mode)]

        def valid(payload: Any, value: Any) -> bool:  # one finite log-prob per continuation
            return finite_numbers(value, len(payload[1]))

        return [np.asarray(v, dtype=float) for v in self._cached("continuation", payloads, compute, valid)]

    def sequence_logprobs(self, texts: Sequence[str]) -> list[np.ndarray]:
        def compute(batch: list[str]) -> list[Any]:
            return [np.asarray(a, dtype=float).tolist() for a in self.backend.sequence_logprobs(batch)]

        return [np.asarray(v, dtype=float) for v in self._cached("sequence", list(texts), compute, lambda _, v: finite_numbers(v))]

    def generate(self, prompts: Sequence[str], *, max_tokens: int, stop: Sequence[str] | None = None) -> list[str]:
        payloads = [[p, max_tokens, list(stop or [])] for p in prompts]

        def compute(batch: list[Any]) -> list[Any]:
            return list(self.backend.generate([b[0] for b in batch], max_tokens=max_tokens, stop=stop))

        return self._cached("generate", payloads, compute, lambda _, v: isinstance(v, str))


def _class_scores(prompt: Prompt, classes: Sequence[str], word_logprobs: np.ndarray, aggregate: str) -> np.ndarray:
    out, i = [], 0
    per_class = {}
    for cls, words in prompt.answer_choices.items():
        per_class[cls] = word_logprobs[i : i + len(words)]
        i += len(words)
    for cls in classes:  # the dataset's class order, whatever order the prompt file uses
        lp = per_class[cls]
        out.append(logsumexp(lp) if aggregate == "sum" else lp.max())
    return np.asarray(out)


def scoring_texts(prompt: Prompt, inputs: Sequence[dict[str, Any]], scorer: Scorer, options: ScoringOptions) -> list[str]:
    """The texts whose continuations are the label words (after CoT reasoning, for CoT prompts)."""
    reasonings: list[str | None] = [None] * len(inputs)
    if prompt.cot:
        firsts = [_render(prompt, ex, scorer, None) for ex in inputs]
        reasonings = list(scorer.generate(firsts, max_tokens=options.max_new_tokens))
    return [_render(prompt, ex, scorer, r) for ex, r in zip(inputs, reasonings)]


def _render(prompt: Prompt, example: dict[str, Any], scorer: Scorer, reasoning: str | None) -> str:
    if prompt.chat:
        return scorer.render_chat(prompt.messages(example, reasoning), add_generation_prompt=True)
    return prompt.raw_text(example, reasoning)


def spell_text(prompt: Prompt, example: dict[str, Any], scorer: Scorer, options: ScoringOptions) -> str:
    if options.spell_text == "chat" and prompt.chat:
        return scorer.render_chat(prompt.messages(example), add_generation_prompt=True)
    return prompt.render_template(example)


def build_score_table(
    prompt_set: PromptSet, dataset: Dataset, scorer: Scorer, options: ScoringOptions | None = None, *,
    need_nll: bool = True,
) -> ScoreTable:
    """Score every prompt on every input once; every method then reads the same table.
    ``need_nll``: also score the instantiated templates for SPELL (a second pass)."""
    options = options or ScoringOptions()
    inputs = dataset.inputs()
    n_prompts, n = len(prompt_set.prompts), len(inputs)
    class_lp = np.zeros((n_prompts, n, len(dataset.classes)))
    nll = np.zeros((n_prompts, n)) if need_nll else None
    n_cot = sum(p.cot for p in prompt_set.prompts)
    total = n_prompts * n * (2 if need_nll else 1) + n_cot * n
    scorer.progress.start(f"Scoring {n_prompts} prompts x {n} inputs", total)
    try:
        for pi, prompt in enumerate(prompt_set.prompts):
            texts = scoring_texts(prompt, inputs, scorer, options)
            conts = tuple(prompt.delimiter + w for w in prompt.label_words)
            word_lps = scorer.continuation_logprobs([ContinuationRequest(t, conts) for t in texts], mode=options.mode)
            for xi, lp in enumerate(word_lps):
                class_lp[pi, xi] = _class_scores(prompt, dataset.classes, lp, options.aggregate)
            if nll is not None:
                seqs = scorer.sequence_logprobs([spell_text(prompt, ex, scorer, options) for ex in inputs])
                nll[pi] = [-float(np.mean(s)) if len(s) else 0.0 for s in seqs]
    finally:
        scorer.progress.done()
    return ScoreTable(
        prompt_ids=prompt_set.ids,
        class_names=list(dataset.classes),
        class_logprobs=class_lp,
        prompt_nll=nll,
        labels=dataset.labels,
        sample_ids=list(dataset.ids),
    )
