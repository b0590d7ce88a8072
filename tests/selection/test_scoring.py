from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from promptsel.model.data import Dataset
from promptsel.model.progress import Progress
from promptsel.model.prompts import load_prompt_set
from promptsel.model.request import ScoringOptions
from promptsel.selection.cache import Cache
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


# --- one pass, planned: sorted requests, SPELL on the prompt, progress events -----------------------


class PrefixFake(FakeBackend):
    """A FakeBackend that asks for requests sorted by text, one at a time, and counts words as tokens."""

    reuses_prefix = True
    chunk_size = 1
    generate_batch = 2

    def token_counts(self, texts):
        return [len(t.split()) for t in texts]


class Recorder(Progress):
    def __init__(self, backend):
        self.backend, self.events = backend, []

    def plan(self, plan):
        self.events.append(("plan", plan, len(self.backend.calls)))

    def start(self, label, total):
        self.events.append(("start", total))

    def advance(self, n=1):
        self.events.append(("advance", n))

    def estimate(self, seconds, remaining):
        self.events.append(("estimate", seconds, remaining))


def test_a_prefix_reusing_backend_gets_one_sorted_pass_and_the_same_table(setup, tmp_path):
    ps, ds = setup
    options = ScoringOptions(spell_text="prompt", max_new_tokens=2)
    reference = build_score_table(ps, ds, Scorer(FakeBackend(), Cache(tmp_path / "a.sqlite")), options)
    backend = PrefixFake()
    table = build_score_table(ps, ds, Scorer(backend, Cache(tmp_path / "b.sqlite")), options)
    np.testing.assert_array_equal(table.class_logprobs, reference.class_logprobs)
    np.testing.assert_array_equal(table.prompt_nll, reference.prompt_nll)
    kinds = [kind for kind, _ in backend.calls]
    # the reasoning first (one batch of 2), then its follow-ups at once (the backend still holds their first turns)
    assert kinds[:4] == ["generate", "generate", "continuation", "continuation"] and "generate" not in kinds[4:]
    assert all("So (bad, good)?" in r.prompt for _, r in backend.calls[2:4])
    texts = [p.prompt if kind == "continuation" else p for kind, p in backend.calls[4:]]
    assert texts == sorted(texts) and len(texts) == len(set(texts))  # then everything else, by text
    # a SPELL text is the start of the label prompt it belongs to, and runs just before it
    first_seq = kinds.index("sequence") - 4
    assert texts[first_seq + 1].startswith(texts[first_seq])


BESIDE = """
[defaults]
instruction = "Answer ({{ label_space }})."

[[prompt]]
id = "why"
template = "{{text}} Why?"
answer_choices = { negative = ["bad"], positive = ["good"] }
cot = true
cot_instruction = "Think first."

[[prompt]]
id = "why-direct"
template = "{{text}} Why?"
answer_choices = { negative = ["bad"], positive = ["good"] }

[[prompt]]
id = "review"
template = "Review: {{text}}"
answer_choices = { negative = ["bad"], positive = ["good"] }
"""


def test_label_requests_that_begin_like_a_cot_turn_run_right_after_its_generation(tmp_path):
    """The CoT first turn "<user>dull Why?\\nThink first..." and the label prompt "<user>dull Why?\\nAnswer..."
    share their input: that label request runs right after the reasoning batch that holds it (and its
    follow-ups); "Review: ..." shares only "<user>", which every first turn has, so it waits for the
    sorted pass. The table is the one computed in the old order."""
    path = tmp_path / "p.toml"
    path.write_text(BESIDE)
    ps = load_prompt_set(path)
    words = ["dull", "fine", "great", "awful"]
    ds = Dataset(name="toy", split="test", fields=("text",), classes=("negative", "positive"),
                 examples=[{"text": w, "label": "positive"} for w in words], ids=[f"test:{i}" for i in range(4)], source="memory")
    options = ScoringOptions(max_new_tokens=2)
    reference = build_score_table(ps, ds, Scorer(FakeBackend(), Cache(tmp_path / "a.sqlite")), options)
    backend = PrefixFake()
    table = build_score_table(ps, ds, Scorer(backend, Cache(tmp_path / "b.sqlite")), options)
    np.testing.assert_array_equal(table.class_logprobs, reference.class_logprobs)
    np.testing.assert_array_equal(table.prompt_nll, reference.prompt_nll)
    order = []
    for kind, payload in backend.calls:
        text = payload if kind != "continuation" else payload.prompt
        if kind == "continuation":
            what = "follow" if "Think first." in text else "direct" if "Why?" in text else "review"
        else:
            what = "gen" if kind == "generate" else kind
        order.append((what, next(w for w in words if w in text)))
    first, second = sorted(words)[:2], sorted(words)[2:]  # reasoning batches of 2, by text
    batches = [[("gen", w) for w in b] + [("follow", w) for w in b] + [("direct", w) for w in b] for b in (first, second)]
    assert order[:12] == batches[0] + batches[1]
    assert {what for what, _ in order[12:]} == {"review", "sequence"}  # then the sorted pass


def test_spell_on_the_prompt_averages_the_templates_tokens_in_context(setup, tmp_path):
    ps, ds = setup
    backend = FakeBackend()
    table = build_score_table(ps, ds, Scorer(backend, Cache(tmp_path / "c.sqlite")), ScoringOptions(spell_text="prompt"))
    # p1 is a chat prompt: the fake's chat text is "<user>Review: a great film\nAnswer (yes, Yes, no).</user><assistant>".
    # The fake's tokens are words, so the text before the template ("<user>") is one token, merged with "Review:":
    # the template's tokens in context are those after it.
    lp = backend.word_logprob
    expected = -np.mean([lp("<user>Review:", "a"), lp("<user>Review: a", "great"), lp("<user>Review: a great", "film")])
    assert table.prompt_nll[0, 0] == pytest.approx(expected, rel=1e-12)
    # p2 is not a chat prompt: its text starts with the template, so it is the raw template's NLL
    raw = build_score_table(ps, ds, Scorer(FakeBackend(), Cache(tmp_path / "d.sqlite")))
    assert table.prompt_nll[1, 1] == raw.prompt_nll[1, 1]
    assert table.prompt_nll[0, 0] != raw.prompt_nll[0, 0]


def test_the_plan_comes_before_any_backend_call_and_progress_moves_per_sequence(setup, tmp_path):
    ps, ds = setup
    backend = PrefixFake()
    recorder = Recorder(backend)
    build_score_table(ps, ds, Scorer(backend, Cache(tmp_path / "e.sqlite"), progress=recorder), ScoringOptions(max_new_tokens=2))
    (_, plan, calls_before), start = recorder.events[:2]
    assert calls_before == 0
    # 2 inputs: label requests for p1 and p2 (4), p3's CoT follow-ups (2), its reasoning (2), and SPELL's
    # 6 distinct raw templates
    assert (plan.sequences, plan.cached, plan.generate, plan.inputs, plan.exact) == (14, 0, 4, 2, True)
    assert start == ("start", 14)
    steps = [n for kind, n, *_ in recorder.events if kind == "advance"]
    assert sum(steps) == 14 and set(steps) <= {0, 1, 2}  # one request at a time (reasoning: 2 per batch)
    assert len(backend.calls) == 14
    # a rerun is all cache: the plan says so
    again = Recorder(PrefixFake())
    build_score_table(ps, ds, Scorer(again.backend, Cache(tmp_path / "e.sqlite"), progress=again), ScoringOptions(max_new_tokens=2))
    plan = again.events[0][1]
    assert (plan.sequences, plan.cached, plan.tokens, plan.evaluate) == (0, 14, 0, 0) and again.backend.calls == []


def test_tokens_to_evaluate_leave_out_shared_prefixes_for_a_reusing_backend(setup, tmp_path):
    ps, ds = setup
    plans = {}
    for backend in (FakeBackend(), PrefixFake()):
        recorder = Recorder(backend)
        build_score_table(ps, ds, Scorer(backend, Cache(enabled=False), progress=recorder), ScoringOptions(max_new_tokens=2))
        plans[type(backend).__name__] = recorder.events[0][1]
    assert not plans["FakeBackend"].exact  # no tokenizer: 4 characters a token
    assert plans["FakeBackend"].evaluate == plans["FakeBackend"].tokens
    assert plans["PrefixFake"].evaluate < plans["PrefixFake"].tokens
