"""One scoring pass: prompts x inputs through a backend (via the cache) into a ScoreTable.

The pass renders every text first, looks them all up in the cache and reports what the rest will
cost (:class:`~promptsel.model.progress.Plan`) before the first backend call. CoT prompts generate their
reasoning first (``generate_batch`` prompts per call). A backend that keeps the KV cache of the
previous request (``reuses_prefix``) then gets every label-scoring request and SPELL sequence in
one pass sorted by text, so that texts with a common prefix (the system turn, an instruction-first
template, the input of an input-first template) run one after another and share its evaluation;
other backends get them kind by kind in the prompts' order, as before. Results never depend on
the order: every request is cached by its own content.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import logsumexp

from ..backend import Backend, ContinuationRequest, ScoringMode
from ..errors import UsageError
from ..model.data import Dataset
from ..model.progress import GENERATED_TOKEN_COST, Meter, Plan, Progress
from ..model.prompts import Prompt, PromptSet
from ..model.request import ScoringOptions
from ..model.scoretable import ScoreTable
from .cache import Cache, finite_numbers, make_key

#: What a cached value of each kind must look like to be used.
_VALID: dict[str, Callable[[Any, Any], bool]] = {
    "continuation": lambda payload, value: finite_numbers(value, len(payload[1])),  # one per continuation
    "sequence": lambda payload, value: finite_numbers(value),
    "generate": lambda payload, value: isinstance(value, str),
}


@dataclass
class Timings:
    backend_seconds: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)


@dataclass
class _Job:
    """One request to compute: its cache key, what the backend gets, and what it is sorted by."""

    kind: str
    key: str
    payload: Any
    text: str
    work: float = 0.0
    #: Jobs of different groups never share a backend call (the prompt: chunks as before).
    group: int = 0


@dataclass
class Lookup:
    """Requests of one kind after the cache lookup: the values found and the jobs still to run."""

    kind: str
    keys: list[str]
    values: dict[str, Any]
    jobs: list[_Job]

    def results(self) -> list[Any]:
        return [self.values[k] for k in self.keys]

    @property
    def cached(self) -> int:
        return len(set(self.keys)) - len(self.jobs)


class Scorer:
    """A backend behind the cache: every call is keyed by content and written through."""

    def __init__(self, backend: Backend, cache: Cache, *, progress: Progress | None = None, chunk_size: int | None = None) -> None:
        self.backend = backend
        self.cache = cache
        self.progress = progress or Progress()
        # Each chunk is written to the cache as soon as it is scored (resume after a failure).
        self.chunk_size = chunk_size or backend.chunk_size
        self.timings = Timings()
        self.meter: Meter | None = None
        self._identity = backend.cache_identity()

    def render_chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self.backend.render_chat(messages, add_generation_prompt=add_generation_prompt)

    # --- lookups and runs ---------------------------------------------------------------------
    def lookup(self, kind: str, payloads: Sequence[Any], texts: Sequence[str], groups: Sequence[int] | None = None) -> Lookup:
        """Look requests up in the cache; the missing ones become jobs (one per distinct request)."""
        keys = [make_key(kind, self._identity, p) for p in payloads]
        by_key = dict(zip(keys, payloads))
        # A value read back must look like one the backend returns; one that does not is a miss.
        found = self.cache.get_many(keys, valid=lambda key, value: _VALID[kind](by_key[key], value))
        jobs: dict[str, _Job] = {}
        for i, (key, payload, text) in enumerate(zip(keys, payloads, texts)):
            if key not in found and key not in jobs:
                jobs[key] = _Job(kind, key, payload, text, group=groups[i] if groups else 0)
        return Lookup(kind, keys, dict(found), list(jobs.values()))

    def run(self, lookups: Sequence[Lookup], *, by_text: bool = False, after: Callable[[list[_Job]], None] | None = None) -> None:
        """Compute the lookups' jobs, kind by kind in order, or all sorted by text (``by_text``:
        SPELL's sequences before the label requests whose prompt they begin). ``after(chunk)``
        runs after each backend call, its results stored."""
        owner = {id(job): lk for lk in lookups for job in lk.jobs}
        jobs = [job for lk in lookups for job in lk.jobs]
        if by_text:
            jobs.sort(key=lambda job: (job.text, job.kind != "sequence"))
        start = 0
        while start < len(jobs):
            first = jobs[start]
            size = max(self.chunk_size, self.backend.generate_batch) if first.kind == "generate" else self.chunk_size
            end = start + 1
            while end < len(jobs) and end - start < size and self._group(jobs[end]) == self._group(first):
                end += 1
            chunk = jobs[start:end]
            began = time.perf_counter()
            values = self._compute(first.kind, [job.payload for job in chunk])
            self.timings.backend_seconds += time.perf_counter() - began
            self.timings.calls[first.kind] = self.timings.calls.get(first.kind, 0) + len(chunk)
            self.cache.put_many(first.kind, {job.key: v for job, v in zip(chunk, values)})
            for job, value in zip(chunk, values):
                owner[id(job)].values[job.key] = value
            self.progress.advance(len(chunk))
            if self.meter is not None:
                self.meter.add(sum(job.work for job in chunk))
            if after is not None:
                after(chunk)
            start = end

    @staticmethod
    def _group(job: _Job) -> tuple[str, int, Any]:
        """Jobs that may share one backend call (a continuation chunk has one scoring mode)."""
        return job.kind, job.group, job.payload[2] if job.kind == "continuation" else None

    def _compute(self, kind: str, batch: list[Any]) -> list[Any]:
        if kind == "continuation":
            reqs = [ContinuationRequest(p, tuple(c)) for p, c, _ in batch]
            return [np.asarray(a, dtype=float).tolist() for a in self.backend.continuation_logprobs(reqs, mode=batch[0][2])]
        if kind == "sequence":
            return [np.asarray(a, dtype=float).tolist() for a in self.backend.sequence_logprobs(batch)]
        prompts, max_tokens, stop = [b[0] for b in batch], batch[0][1], batch[0][2]
        if any(b[1:] != [max_tokens, stop] for b in batch):  # one call, one setting
            return [v for b in batch for v in self._compute(kind, [b])]
        return list(self.backend.generate(prompts, max_tokens=max_tokens, stop=stop or None))

    def _cached(self, lookup: Lookup) -> list[Any]:
        self.progress.advance(len(lookup.keys) - len(lookup.jobs))
        self.run([lookup])
        return lookup.results()

    # --- the backend's methods, cached ----------------------------------------------------------
    @staticmethod
    def continuation_payload(request: ContinuationRequest, mode: ScoringMode) -> list[Any]:
        return [request.prompt, list(request.continuations), mode]

    @staticmethod
    def generate_payload(prompt: str, max_tokens: int, stop: Sequence[str] | None = None) -> list[Any]:
        return [prompt, max_tokens, list(stop or [])]

    def continuation_logprobs(self, requests: Sequence[ContinuationRequest], mode: ScoringMode = "full") -> list[np.ndarray]:
        payloads = [self.continuation_payload(r, mode) for r in requests]
        lookup = self.lookup("continuation", payloads, [r.prompt for r in requests])
        return [np.asarray(v, dtype=float) for v in self._cached(lookup)]

    def sequence_logprobs(self, texts: Sequence[str]) -> list[np.ndarray]:
        lookup = self.lookup("sequence", list(texts), texts)
        return [np.asarray(v, dtype=float) for v in self._cached(lookup)]

    def generate(self, prompts: Sequence[str], *, max_tokens: int, stop: Sequence[str] | None = None) -> list[str]:
        payloads = [self.generate_payload(p, max_tokens, stop) for p in prompts]
        return self._cached(self.lookup("generate", payloads, prompts))

    def token_counts(self, texts: Sequence[str]) -> tuple[list[int], bool]:
        """Tokens per text from the backend's tokenizer, or 4 characters a token (``False``)."""
        counts = self.backend.token_counts(texts) if texts else []
        if counts is None:
            return [max(1, len(t) // 4) for t in texts], False
        return list(counts), True


# --- rendering --------------------------------------------------------------------------------------
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


def spell_texts(prompt: Prompt, example: dict[str, Any], scorer: Scorer, options: ScoringOptions) -> tuple[str, str | None]:
    """The text SPELL scores and, with ``spell_text="prompt"``, the text before the template
    (its tokens are left out: SPELL averages over the template's tokens in context)."""
    if options.spell_text == "template" or (options.spell_text == "chat" and not prompt.chat):
        return prompt.render_template(example), None
    text = _render(prompt, example, scorer, None)  # the (first) turn the model sees
    if options.spell_text == "chat":
        return text, None
    at = text.rfind(prompt.user_turn(example))
    if at < 0:
        raise UsageError(
            f"Prompt {prompt.id!r}: the chat template changes the prompt's text, so SPELL cannot find the template in it.",
            hint="Use --spell-on raw.",
        )
    return text[: at + len(prompt.render_template(example))], text[:at] or None


def spell_text(prompt: Prompt, example: dict[str, Any], scorer: Scorer, options: ScoringOptions) -> str:
    """The text SPELL scores (see :func:`spell_texts`)."""
    return spell_texts(prompt, example, scorer, options)[0]


def _template_nll(values: np.ndarray, before: np.ndarray | None) -> float:
    """Mean NLL of a text's tokens after those of the text before the template (``before``'s
    log-probs: one fewer than its tokens)."""
    lps = values if before is None else values[len(before) :]
    return -float(np.mean(lps)) if len(lps) else 0.0


# --- the pass -----------------------------------------------------------------------------------------
def _shared_prefixes(texts: Sequence[str]) -> list[int]:
    """Characters each text (in this order) shares with the one before it."""
    out, prev = [], ""
    for text in texts:
        out.append(_common_chars(prev, text))
        prev = text
    return out


def _common_chars(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _beside_generation(jobs: Sequence[_Job], generations: Sequence[_Job]) -> dict[str, list[_Job]]:
    """The label jobs that begin like one CoT first turn more than the first turns all begin alike
    (the system turn, a shared instruction), by the generation job they share the most with: in
    one sorted list that is the nearest generation job on one side or the other."""
    if not generations:
        return {}
    firsts = sorted(g.text for g in generations)
    floor = _common_chars(firsts[0], firsts[-1])
    items = sorted([(g.text, 0, i) for i, g in enumerate(generations)] + [(j.text, 1, i) for i, j in enumerate(jobs)])
    best: dict[int, tuple[int, int]] = {}  # label job -> (shared characters, generation job)
    for sweep in (items, items[::-1]):
        near = None
        for text, kind, i in sweep:
            if kind == 0:
                near = i
            elif near is not None:
                shared = _common_chars(text, generations[near].text)
                if shared > best.get(i, (floor, -1))[0]:
                    best[i] = (shared, near)
    out: dict[str, list[_Job]] = {}
    for i, (_, g) in best.items():
        out.setdefault(generations[g].key, []).append(jobs[i])
    return out


def _plan(scorer: Scorer, generate: Lookup, scoring: list[Lookup], later: list[tuple[str, int]],
          max_new_tokens: int, inputs: int, prompts: int = 0) -> tuple[Plan, float]:
    """Cost the jobs to run and set each job's work. ``later``: CoT follow-ups not rendered yet,
    as (the follow-up with an empty reasoning, how many). Returns the plan and the work of one
    such follow-up (on average)."""
    reuse = scorer.backend.reuses_prefix
    jobs = [job for lk in scoring for job in lk.jobs]
    texts = [job.text for job in jobs] + [t for t, _ in later] + [job.text for job in generate.jobs]
    counts, exact = scorer.token_counts(texts)
    tokens = dict(zip(texts, counts))
    ordered = sorted(set(texts)) if reuse else list(dict.fromkeys(texts))
    shared = dict(zip(ordered, _shared_prefixes(ordered))) if reuse else {}

    def evaluate(text: str) -> float:
        return tokens[text] * (1 - shared.get(text, 0) / max(len(text), 1))

    for job in jobs:
        job.work = evaluate(job.text)
    for job in generate.jobs:  # the first turn, then the reasoning
        job.work = evaluate(job.text) + GENERATED_TOKEN_COST * max_new_tokens
    n_later = sum(n for _, n in later)
    later_work = sum(n * (evaluate(t) + max_new_tokens) for t, n in later)
    return Plan(
        sequences=len(jobs) + len(generate.jobs) + n_later,
        cached=sum(lk.cached for lk in (*scoring, generate)),
        tokens=int(sum(tokens[t] for t in texts[: len(jobs)]) + sum(n * (tokens[t] + max_new_tokens) for t, n in later)
                   + sum(tokens[job.text] for job in generate.jobs)),
        evaluate=int(sum(job.work for job in jobs) + later_work + sum(evaluate(job.text) for job in generate.jobs)),
        generate=len(generate.jobs) * max_new_tokens,
        exact=exact,
        inputs=inputs,
        prompts=prompts,
    ), later_work / max(n_later, 1)


def build_score_table(
    prompt_set: PromptSet, dataset: Dataset, scorer: Scorer, options: ScoringOptions | None = None, *,
    need_nll: bool = True,
) -> ScoreTable:
    """Score every prompt on every input once; every method then reads the same table.
    ``need_nll``: also score the instantiated templates for SPELL (a second pass)."""
    options = options or ScoringOptions()
    inputs = dataset.inputs()
    prompts = prompt_set.prompts
    cells = [(pi, xi) for pi in range(len(prompts)) for xi in range(len(inputs))]

    def render(pi: int, xi: int, reasoning: str | None = None) -> str:
        return _render(prompts[pi], inputs[xi], scorer, reasoning)

    # Every text first: the CoT prompts' first turns, the label-scoring texts, SPELL's texts.
    cot = [(pi, xi) for pi, xi in cells if prompts[pi].cot]
    reuse = scorer.backend.reuses_prefix  # then one pass sorted by text; else prompt by prompt, as before
    gen_payloads = [scorer.generate_payload(render(pi, xi), options.max_new_tokens) for pi, xi in cot]
    generate = scorer.lookup("generate", gen_payloads, [p[0] for p in gen_payloads], None if reuse else [pi for pi, _ in cot])
    reasoning = dict(zip(cot, (generate.values.get(k) for k in generate.keys)))
    later = [(pi, xi) for pi, xi in cot if reasoning[pi, xi] is None]  # follow-ups rendered after generation
    pending = set(later)
    texts = {c: render(*c, reasoning.get(c)) for c in cells if c not in pending}
    spell: dict[tuple[int, int], tuple[str, str | None]] = {}
    if need_nll:
        spell = {(pi, xi): spell_texts(prompts[pi], inputs[xi], scorer, options) for pi, xi in cells}
    seq_texts = list(dict.fromkeys(t for pair in spell.values() for t in pair if t is not None))
    first_use = {}
    for (pi, _), pair in spell.items():
        for t in pair:
            first_use.setdefault(t, pi)
    sequences = scorer.lookup("sequence", seq_texts, seq_texts, None if reuse else [first_use[t] for t in seq_texts])
    labels = {pi: tuple(p.delimiter + w for w in p.label_words) for pi, p in enumerate(prompts)}

    def continuations(pairs: Sequence[tuple[int, int]]) -> Lookup:
        requests = [ContinuationRequest(texts[c], labels[c[0]]) for c in pairs]
        payloads = [scorer.continuation_payload(r, options.mode) for r in requests]
        return scorer.lookup("continuation", payloads, [r.prompt for r in requests], None if reuse else [pi for pi, _ in pairs])

    known = [c for c in cells if c in texts]
    scoring = continuations(known)
    empty = {}
    for pi, xi in later:  # for the plan, a follow-up with no reasoning yet
        key = render(pi, xi, "")
        empty[key] = empty.get(key, 0) + 1
    plan, follow_up_work = _plan(scorer, generate, [scoring, sequences], list(empty.items()), options.max_new_tokens, len(inputs),
                                  len(prompts))
    progress = scorer.progress
    progress.plan(plan)
    progress.start(f"Scoring {len(prompts)} prompts x {len(inputs)} inputs", plan.sequences + plan.cached)
    progress.advance(plan.cached)
    scorer.meter = Meter(progress, plan.work)
    gen_key = dict(zip(cot, generate.keys))
    cells_of: dict[str, list[tuple[int, int]]] = {}
    for cell, key in gen_key.items():
        if cell in pending:
            cells_of.setdefault(key, []).append(cell)
    word_lps: dict[tuple[int, int], Any] = {}

    # Label requests that begin like a CoT first turn (same input, same question) run right after
    # its generation and follow-ups, while the backend still holds that turn: its prefix is not
    # evaluated twice. Same numbers (prefix reuse never changes one); only the order moves.
    beside = _beside_generation(scoring.jobs, generate.jobs) if reuse else {}

    def follow_up(chunk: list[_Job]) -> None:
        """A batch of reasoning is done: its CoT follow-ups now, while the backend still holds their
        first turns, then the label requests that share those turns."""
        pairs = [cell for job in chunk for cell in cells_of.get(job.key, [])]
        for cell in pairs:
            texts[cell] = render(*cell, generate.values[gen_key[cell]])
        lookup = continuations(pairs)
        progress.advance(lookup.cached)
        for job in lookup.jobs:
            job.work = follow_up_work
        scorer.run([lookup], by_text=reuse)
        word_lps.update(zip(pairs, lookup.results()))
        near = [job for g in chunk for job in beside.pop(g.key, [])]
        if near:
            taken = {id(job) for job in near}
            scoring.jobs = [job for job in scoring.jobs if id(job) not in taken]
            scorer.run([Lookup(scoring.kind, [], scoring.values, near)], by_text=True)

    try:
        scorer.run([generate], by_text=reuse, after=follow_up)
        scorer.run([scoring, sequences], by_text=reuse)
    finally:
        scorer.meter = None
        progress.done()
    word_lps.update(zip(known, scoring.results()))
    seq_values = dict(zip(seq_texts, sequences.results()))
    class_lp = np.zeros((len(prompts), len(inputs), len(dataset.classes)))
    nll = np.zeros((len(prompts), len(inputs))) if need_nll else None
    for pi, xi in cells:
        class_lp[pi, xi] = _class_scores(prompts[pi], dataset.classes, np.asarray(word_lps[pi, xi], dtype=float), options.aggregate)
        if nll is not None:
            text, before = spell[pi, xi]
            nll[pi, xi] = _template_nll(np.asarray(seq_values[text], dtype=float),
                                        None if before is None else np.asarray(seq_values[before]))
    return ScoreTable(
        prompt_ids=prompt_set.ids,
        class_names=list(dataset.classes),
        class_logprobs=class_lp,
        prompt_nll=nll,
        labels=dataset.labels,
        sample_ids=list(dataset.ids),
    )


def prompt_nll(prompt_set: PromptSet, dataset: Dataset, scorer: Scorer, options: ScoringOptions) -> np.ndarray:
    """SPELL's array alone, ``prompt_nll [prompts, inputs]`` (no label scoring, no CoT generation):
    to compare what ``spell_text`` changes without paying for a whole pass."""
    inputs, prompts = dataset.inputs(), prompt_set.prompts
    spell = [[spell_texts(p, x, scorer, options) for x in inputs] for p in prompts]
    texts = list(dict.fromkeys(t for row in spell for pair in row for t in pair if t is not None))
    lookup = scorer.lookup("sequence", texts, texts)
    scorer.run([lookup], by_text=scorer.backend.reuses_prefix)
    values = {t: np.asarray(v, dtype=float) for t, v in zip(texts, lookup.results())}
    return np.array([[_template_nll(values[t], None if b is None else values[b]) for t, b in row] for row in spell])
