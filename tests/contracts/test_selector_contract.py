"""One contract for every registered method (scikit-learn's common-checks idea).

Known exceptions are declared with their reason instead of being skipped silently.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from promptsel.model.prompts import load_prompt_set
from promptsel.model.scoretable import ScoreTable
from promptsel.plugins import registries
from promptsel.selector import SelectionContext

#: method -> check -> why it is expected to fail
EXPECTED_FAILURES = {
    "self-select": {
        "order_invariant": "the LLM sees the candidates in an order; the seeded permutations are drawn over file positions",
    },
}
#: Every FUTE method (one per embedder): it scores from task embeddings it trains on the run's
#: inputs (a dataset's train split, the unlabeled corpus through the backend), never from a
#: table alone. Its own checks are in tests/test_fute.py and tests/test_fute_premise.py.
FUTE_FAILURES = {check: "FUTE needs a run's inputs (a dataset and U), not a bare ScoreTable"
                 for check in ("finite_and_deterministic", "order_invariant")}

P, N, C = 5, 40, 3


def methods() -> list[str]:
    from promptsel import plugins

    plugins.reset()
    names = registries().selectors.names()
    plugins.reset()
    return names


def make_table(rng: np.random.Generator) -> ScoreTable:
    logits = rng.normal(size=(P, N, C)) * rng.uniform(0.2, 3.0, size=(P, 1, 1))
    return ScoreTable(prompt_ids=[f"p{i}" for i in range(P)], class_names=["a", "b", "c"], class_logprobs=logits,
                      prompt_nll=rng.uniform(1, 5, size=(P, N)), labels=rng.integers(0, C, size=N))


@pytest.fixture
def context(tmp_path, fake_backend_plugin):
    from promptsel.selection.cache import Cache
    from promptsel.selection.scoring import Scorer

    body = "[defaults]\nchat = false\n" + "".join(
        f'[[prompt]]\nid = "p{i}"\ntemplate = "Variant {i}: {{{{text}}}}"\nanswer_choices = {{ a = ["x"], b = ["y"], c = ["z"] }}\n'
        for i in range(P)
    )
    (tmp_path / "p.toml").write_text(body)
    ps = load_prompt_set(tmp_path / "p.toml")
    return SelectionContext(prompt_set=ps, scorer=Scorer(fake_backend_plugin(), Cache(tmp_path / "c.sqlite")), seed=0)


def check(method: str, name: str) -> None:
    from promptsel.fute.method import FuteMethod

    declared = FUTE_FAILURES if issubclass(registries().selectors.get(method), FuteMethod) else EXPECTED_FAILURES.get(method, {})
    reason = declared.get(name)
    if reason:
        pytest.xfail(reason)


@pytest.mark.parametrize("method", methods())
def test_one_finite_score_per_prompt_and_deterministic(method, context):
    check(method, "finite_and_deterministic")
    table = make_table(np.random.default_rng(1))
    cls = registries().selectors.get(method)
    first = np.asarray(cls().score(table, context), dtype=float)
    assert first.shape == (P,)
    assert np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, np.asarray(cls().score(table, context), dtype=float))
    assert cls.description and cls.needs


@pytest.mark.parametrize("method", methods())
def test_scores_do_not_depend_on_prompt_order(method, context):
    check(method, "order_invariant")
    rng = np.random.default_rng(2)
    table = make_table(rng)
    perm = rng.permutation(P)
    # Build the permuted table from the same raw arrays (normalising twice shifts the last bits).
    permuted = ScoreTable(prompt_ids=[table.prompt_ids[i] for i in perm], class_names=table.class_names,
                          class_logprobs=table.class_logprobs[perm], prompt_nll=table.prompt_nll[perm], labels=table.labels)
    table = ScoreTable(prompt_ids=table.prompt_ids, class_names=table.class_names, class_logprobs=table.class_logprobs,
                       prompt_nll=table.prompt_nll, labels=table.labels)
    cls = registries().selectors.get(method)
    np.testing.assert_allclose(cls().score(permuted, context), cls().score(table, context)[perm], rtol=1e-9, atol=1e-12)


def test_self_select_meta_prompt_lists_every_candidate(context):
    from promptsel_builtin.self_select import SelfSelect

    table = make_table(np.random.default_rng(3))
    scores = SelfSelect(permutations=3).score(table, context)
    asked = [r.prompt for kind, r in context.scorer.backend.calls if kind == "continuation"]
    assert len(asked) == 3  # one meta-prompt per permutation
    for text in asked:
        for i in range(P):
            assert f"Variant {i}: [TEXT]" in text
        assert "Answer with the number only." in text
    assert scores.sum() == pytest.approx(1.0)  # averaged option distributions


class _PicksTheMarkedCandidate:
    """A stand-in LLM for Self-Select: it reads the meta-prompt's numbered list and gives the
    option whose candidate says ``MARKED`` log-prob 0 and every other option -10."""

    def __init__(self, marked: str) -> None:
        self.marked = marked
        self.asked: list[str] = []

    def render_chat(self, messages, add_generation_prompt=True):
        return "\n".join(m["content"] for m in messages)

    def continuation_logprobs(self, requests, mode="full"):
        import re

        out = []
        for r in requests:
            self.asked.append(r.prompt)
            listed = dict(re.findall(r"^(\d+)\. (.*)$", r.prompt, flags=re.M))
            pick = next(label for label, text in listed.items() if self.marked in text)
            out.append(np.array([0.0 if c.strip() == pick else -10.0 for c in r.continuations]))
        return out


def test_self_select_gives_each_option_probability_to_the_prompt_shown_there(tmp_path):
    """Whatever order a permutation shows the candidates in, the probability of the option that
    shows the marked prompt must go to that prompt: 1 / (1 + (P - 1) e^-10) in every round."""
    from promptsel_builtin.self_select import SelfSelect

    body = "[defaults]\nchat = false\n" + "".join(
        f'[[prompt]]\nid = "p{i}"\ntemplate = "{"MARKED " if i == 3 else ""}Variant {i}: {{{{text}}}}"\n'
        'answer_choices = { a = ["x"], b = ["y"], c = ["z"] }\n' for i in range(P))
    (tmp_path / "p.toml").write_text(body)
    llm = _PicksTheMarkedCandidate("MARKED")
    context = SelectionContext(prompt_set=load_prompt_set(tmp_path / "p.toml"), scorer=llm, seed=0)
    scores = SelfSelect(permutations=5).score(make_table(np.random.default_rng(4)), context)
    first_lines = {tuple(re.findall(r"^\d+\. Variant (\d)", text, flags=re.M)) for text in llm.asked}
    assert len(first_lines) > 1  # the rounds really showed the candidates in different orders
    top = 1 / (1 + (P - 1) * math.exp(-10))
    np.testing.assert_allclose(scores, [(1 - top) / (P - 1)] * 3 + [top] + [(1 - top) / (P - 1)], rtol=1e-12)


def test_self_select_refuses_more_candidates_than_option_letters():
    from promptsel.errors import CapabilityError
    from promptsel_builtin.self_select import option_labels

    assert option_labels(9)[-1] == "9" and option_labels(26)[-1] == "Z"
    with pytest.raises(CapabilityError, match="at most 26 candidate prompts, got 27"):
        option_labels(27)
