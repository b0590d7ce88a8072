from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from promptsel.selection.cache import Cache
from promptsel.selection.data import Dataset
from promptsel.selection.prompts import load_prompt_set
from promptsel.selection.request import ScoringOptions
from promptsel.selection.scoring import Scorer, build_score_table
from promptsel.testing import FakeBackend

PROMPTS = """
[defaults]
instruction = "Answer ({{ label_space }})."

[[prompt]]
id = "p1"
template = "Review: {{text}}"
# Listed positive-first on purpose: the table must follow the dataset's class order.
answer_choices = { positive = ["yes", "Yes"], negative = ["no"] }

[[prompt]]
id = "p2"
template = "{{text}} Good or bad?"
answer_choices = { negative = ["bad"], positive = ["good"] }
chat = false

[[prompt]]
id = "p3"
template = "{{text}} Why?"
answer_choices = { negative = ["bad"], positive = ["good"] }
cot = true
cot_instruction = "Think first."
cot_followup = "So ({{label_space}})?"
"""


@pytest.fixture
def setup(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(PROMPTS)
    ps = load_prompt_set(path)
    ds = Dataset(name="toy", split="test", fields=("text",), classes=("negative", "positive"),
                 examples=[{"text": "a great film", "label": "positive"}, {"text": "dull", "label": "negative"}],
                 ids=["test:0", "test:1"], source="memory")
    return ps, ds


def test_class_logprobs_follow_the_dataset_class_order_and_sum_label_words(setup, tmp_path):
    ps, ds = setup
    backend = FakeBackend()
    scorer = Scorer(backend, Cache(tmp_path / "c.sqlite"))
    table = build_score_table(ps, ds, scorer, ScoringOptions())
    assert table.class_logprobs.shape == (3, 2, 2)
    # Recompute prompt p1, input 0 by hand from the fake backend's word log-probs.
    text = backend.render_chat(ps.prompts[0].messages(ds.inputs()[0]))
    lp = {w: backend.word_logprob(text, w) for w in ("yes", "Yes", "no")}
    raw = np.array([lp["no"], logsumexp([lp["yes"], lp["Yes"]])])  # [negative, positive]
    expected = raw - logsumexp(raw)
    np.testing.assert_allclose(table.class_logprobs[0, 0], expected, rtol=1e-12)
    # Non-chat prompts score " good" after a plain-text prompt ending in "Answer:".
    raw_text = ps.prompts[1].raw_text(ds.inputs()[1])
    assert raw_text == "dull Good or bad?\nAnswer (bad, good).\nAnswer:"
    r2 = np.array([backend.word_logprob(raw_text, "bad"), backend.word_logprob(raw_text, "good")])
    np.testing.assert_allclose(table.class_logprobs[1, 1], r2 - logsumexp(r2), rtol=1e-12)
    assert list(table.labels) == [1, 0]


def test_max_aggregate_and_first_token_mode(setup, tmp_path):
    ps, ds = setup
    backend = FakeBackend()
    table = build_score_table(ps, ds, Scorer(backend, Cache(tmp_path / "c.sqlite")), ScoringOptions(aggregate="max", mode="first_token"))
    text = backend.render_chat(ps.prompts[0].messages(ds.inputs()[0]))
    raw = np.array([backend.word_logprob(text, "no"), max(backend.word_logprob(text, "yes"), backend.word_logprob(text, "Yes"))])
    np.testing.assert_allclose(table.class_logprobs[0, 0], raw - logsumexp(raw), rtol=1e-12)


def test_cot_generates_then_scores_the_follow_up_turn(setup, tmp_path):
    ps, ds = setup
    backend = FakeBackend()
    build_score_table(ps, ds, Scorer(backend, Cache(tmp_path / "c.sqlite")), ScoringOptions(max_new_tokens=2))
    generated = [p for kind, p in backend.calls if kind == "generate"]
    assert len(generated) == 2 and all("Think first." in g for g in generated)
    scored = [r.prompt for kind, r in backend.calls if kind == "continuation" and "Think first." in r.prompt]
    # reasoning ("because because" + " great" when the cue is in the prompt) precedes the follow-up
    assert "<assistant>because because great</assistant><user>So (bad, good)?</user><assistant>" in scored[0]


def test_prompt_nll_is_the_mean_token_nll_of_the_instantiated_template(setup, tmp_path):
    ps, ds = setup
    backend = FakeBackend()
    table = build_score_table(ps, ds, Scorer(backend, Cache(tmp_path / "c.sqlite")))
    text = ps.prompts[1].render_template(ds.inputs()[0])  # "a great film Good or bad?"
    words = text.split()
    expected = -np.mean([backend.word_logprob(" ".join(words[:i]), w) for i, w in enumerate(words) if i > 0])
    assert table.prompt_nll[1, 0] == pytest.approx(expected, rel=1e-12)


def test_an_interrupted_run_resumes_from_the_cache(setup, tmp_path):
    ps, ds = setup
    db = tmp_path / "c.sqlite"
    failing = FakeBackend(fail_after=5)
    with pytest.raises(RuntimeError):
        build_score_table(ps, ds, Scorer(failing, Cache(db), chunk_size=1))
    done = len(failing.calls)
    full = FakeBackend()
    reference = build_score_table(ps, ds, Scorer(full, Cache(tmp_path / "other.sqlite"), chunk_size=1))
    resumed_backend = FakeBackend()
    resumed = build_score_table(ps, ds, Scorer(resumed_backend, Cache(db), chunk_size=1))
    # Everything computed before the failure was written through and is not asked again.
    assert len(resumed_backend.calls) == len(full.calls) - done
    np.testing.assert_array_equal(resumed.class_logprobs, reference.class_logprobs)
    np.testing.assert_array_equal(resumed.prompt_nll, reference.prompt_nll)


def test_warm_cache_makes_no_backend_calls_and_no_cache_keeps_nothing(setup, tmp_path):
    ps, ds = setup
    db = tmp_path / "c.sqlite"
    first = build_score_table(ps, ds, Scorer(FakeBackend(), Cache(db)))
    warm_backend = FakeBackend()
    warm = build_score_table(ps, ds, Scorer(warm_backend, Cache(db)))
    assert warm_backend.calls == []
    np.testing.assert_array_equal(first.class_logprobs, warm.class_logprobs)
    off = tmp_path / "off.sqlite"
    build_score_table(ps, ds, Scorer(FakeBackend(), Cache(off, enabled=False)))
    assert not off.exists()


def test_cache_keys_depend_on_the_model_fingerprint(setup, tmp_path):
    ps, ds = setup
    db = tmp_path / "c.sqlite"
    build_score_table(ps, ds, Scorer(FakeBackend(model="m1"), Cache(db)))
    other = FakeBackend(model="m2")
    build_score_table(ps, ds, Scorer(other, Cache(db)))
    assert other.calls  # a different model never reads the first model's results
    info = Cache(db).info()
    assert info["entries"] > 0 and set(info["kinds"]) == {"continuation", "sequence", "generate"}
    assert Cache(db).clear().results == info["entries"]
    assert Cache(db).info()["entries"] == 0
