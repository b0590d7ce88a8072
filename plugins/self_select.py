"""Self-Select: the LLM is shown the candidate prompts and asked which one works best.

The paper's code ships no meta-prompt (only hard-coded rankings), so promptsel writes a real
one: the task, the numbered candidates with their input slots shown as ``[FIELD]``, and the
question. Prompts are scored by the probability of their option label, averaged over several
seeded permutations of the candidate order because the choice depends strongly on order.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from promptsel import (
    CONTINUATION_LOGPROBS,
    CapabilityError,
    ContinuationRequest,
    SelectionContext,
    Selector,
    option,
)

QUESTION = "Which instruction will lead to the most accurate answers? Answer with the {kind} only."


#: Single-token option names run out after Z.
MAX_CANDIDATES = len(string.ascii_uppercase)


def option_labels(k: int) -> list[str]:
    """Single-token option names: digits up to 9 candidates, letters beyond (26 at most)."""
    if k > MAX_CANDIDATES:
        raise CapabilityError(f"self-select can show the model at most {MAX_CANDIDATES} candidate prompts, got {k}.",
                              hint="Leave self-select out of --methods for this prompt set, or split the set.")
    return [str(i + 1) for i in range(k)] if k <= 9 else list(string.ascii_uppercase[:k])


def meta_prompt(task: str, candidates: list[str], labels: list[str]) -> str:
    kind = "number" if labels[0].isdigit() else "letter"
    lines = [f"Task: {task}", "", "Candidate instructions for this task:"]
    lines += [f"{label}. {text}" for label, text in zip(labels, candidates)]
    lines += ["", QUESTION.format(kind=kind)]
    return "\n".join(lines)


class SelfSelect(Selector):
    selector_id = "self-select"
    needs = frozenset({CONTINUATION_LOGPROBS})
    description = "the LLM picks among the candidate prompts (option log-probs, averaged over orders)"
    bootstrap = "it asks the model about the prompts instead of scoring the examples"

    @dataclass(frozen=True)
    class Options(Selector.Options):
        #: Seeded orders of the candidates to average over (the choice depends on the order).
        permutations: int = option(5, minimum=1)

    def score(self, table, context: SelectionContext) -> np.ndarray:
        if context.scorer is None or context.prompt_set is None:
            raise CapabilityError("self-select needs a backend to ask; it cannot run from a scores file.")
        prompts = context.prompt_set.prompts
        rounds = self.options.permutations
        fields = sorted({f for p in prompts for f in p.placeholders()})
        slots = {f: f"[{f.upper()}]" for f in fields}
        shown = [
            re.sub(r"\s+", " ", p.render_template(slots)).strip() + (" (reason step by step first)" if p.cot else "")
            for p in prompts
        ]
        task = context.prompt_set.description or context.prompt_set.task or "classify the input"
        labels = option_labels(len(prompts))
        rng = np.random.default_rng(context.seed)
        orders = [rng.permutation(len(prompts)) for _ in range(rounds)]
        texts = []
        for order in orders:
            body = meta_prompt(task, [shown[i] for i in order], labels)
            first = prompts[0]
            messages = ([{"role": "system", "content": first.system}] if first.system else []) + [{"role": "user", "content": body}]
            texts.append(context.scorer.render_chat(messages) if first.chat else body + "\nAnswer:")
        delimiter = prompts[0].delimiter
        results = context.scorer.continuation_logprobs(
            [ContinuationRequest(t, tuple(delimiter + lab for lab in labels)) for t in texts], mode="full"
        )
        scores = np.zeros(len(prompts))
        for order, logprobs in zip(orders, results):
            # Position j shows prompt order[j]; its option probability goes to that prompt.
            scores[order] += softmax(logprobs)
        return scores / rounds
