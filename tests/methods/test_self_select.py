"""Self-Select (the LLM picks a prompt from a numbered list of the candidates): the meta-prompt,
where each option's probability goes, and the limit on candidates. Its place in the selector
contract is declared in tests/contracts/test_selector_contract.py."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from promptsel.model.prompts import load_prompt_set
from promptsel.selector import SelectionContext
from tests.method_inputs import P, fake_context, make_table


@pytest.fixture
def context(tmp_path, fake_backend_plugin):
    return fake_context(tmp_path, fake_backend_plugin())


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
