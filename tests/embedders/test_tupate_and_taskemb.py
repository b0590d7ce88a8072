"""The bundled embedders, TuPaTE and TaskEmb: the prefix attention TuPaTE trains, TaskEmb's
Fisher estimators, what each embedding compares, and their options.

Everything here runs on tiny random surrogates of the three architectures (no weights are
downloaded); FUTE's runs with these embedders are in tests/fute/test_pipeline.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from promptsel.errors import UsageError  # noqa: E402
from promptsel.surrogate import Surrogate, TaskData, heldout_halves  # noqa: E402
from promptsel_builtin import taskemb, tupate  # noqa: E402
from promptsel_builtin.embedders import TaskEmb, TuPaTE  # noqa: E402
from tests.surrogate_tasks import PAIRS, mte_data  # noqa: E402

# -- the prefix attention --------------------------------------------------------------------


def test_prefix_attention_equals_attention_over_the_concatenated_keys(tiny_surrogates):
    """One BERT self-attention layer: prefix_attention must equal softmax(q [pk; k]^T / sqrt(d) +
    [0; mask]) [pv; v], written out by hand here."""
    surrogate = Surrogate(str(tiny_surrogates["encoder"]))
    model, _ = surrogate.classifier(2, seed=0)
    layers = tupate.add_prefix(model, surrogate, prefix_len=3, dropout=0.0, encoder=False,
                               generator=torch.Generator().manual_seed(1))
    module = layers[0]
    module.eval()
    g = torch.Generator().manual_seed(2)
    b, h, s, d = 2, module.prefix_key.shape[0], 5, module.prefix_key.shape[2]
    q, k, v = (torch.randn(b, h, s, d, generator=g) for _ in range(3))
    mask = torch.zeros(b, 1, s, s)
    mask[1, :, :, 3:] = torch.finfo(torch.float32).min  # the second example is padded after 3 tokens
    out, _ = tupate.prefix_attention(module, q, k, v, mask, scaling=d**-0.5, dropout=0.0)
    keys = torch.cat([module.prefix_key.expand(b, -1, -1, -1), k], dim=2)
    values = torch.cat([module.prefix_value.expand(b, -1, -1, -1), v], dim=2)
    full_mask = torch.cat([torch.zeros(b, 1, s, 3), mask], dim=-1)
    weights = torch.softmax(q @ keys.transpose(-1, -2) / math.sqrt(d) + full_mask, dim=-1)
    expected = (weights @ values).transpose(1, 2)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arch", ["encoder", "decoder", "encoder-decoder"])
def test_prefix_keeps_padding_invisible(tiny_surrogates, arch):
    """With a prefix, an example's logits do not depend on what it is batched with: the
    widened mask still hides padding (and, for decoders, the future)."""
    surrogate = Surrogate(str(tiny_surrogates[arch]))
    model, _ = surrogate.classifier(3, seed=0)
    tupate.add_prefix(model, surrogate, prefix_len=4, dropout=0.0, encoder=True, generator=torch.Generator().manual_seed(0))
    model.eval()
    fields = ("premise", "hypothesis")
    with torch.no_grad():
        together = model(**surrogate.encode(PAIRS[:5], fields), use_cache=False).logits
        alone = torch.cat([model(**surrogate.encode([p], fields), use_cache=False).logits for p in PAIRS[:5]])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_prefix_changes_the_output_and_only_prefix_and_head_train(tiny_surrogates):
    surrogate = Surrogate(str(tiny_surrogates["decoder"]))
    base, _ = surrogate.classifier(3, seed=0)
    before = {n: p.detach().clone() for n, p in base.named_parameters()}
    vector, info = TuPaTE(mte_epochs=2).embed(surrogate, mte_data(), seed=0)
    # The embedding is the mean over layers of [2, kv_heads, prefix_len, head_dim].
    assert info["layers"] == 2 and info["shape"] == [2, 2, 16, 8] and vector.shape == (2 * 2 * 16 * 8,)
    # The template the surrogate copies from is untouched by training.
    template, _ = surrogate.classifier(3, seed=0)
    for name, param in template.named_parameters():
        torch.testing.assert_close(param, before[name])


def test_t5_prefix_is_in_the_decoder_by_default(tiny_surrogates):
    surrogate = Surrogate(str(tiny_surrogates["encoder-decoder"]))
    names = {}
    for encoder in (False, True):
        model, _ = surrogate.classifier(2, seed=0)
        layers = tupate.add_prefix(model, surrogate, prefix_len=2, dropout=0.0, encoder=encoder, generator=torch.Generator())
        lookup = {id(m): n for n, m in model.named_modules()}
        names[encoder] = [lookup[id(m)] for m in layers]
    assert names[False] and all(".decoder." in n and "SelfAttention" in n for n in names[False])
    assert len(names[True]) == 2 * len(names[False]) and any(".encoder." in n for n in names[True])


@pytest.mark.parametrize("arch", ["encoder", "decoder", "encoder-decoder"])
@pytest.mark.parametrize("embedder", [TaskEmb(mte_epochs=1), TuPaTE(mte_epochs=2)], ids=["taskemb", "tupate"])
def test_embeddings_are_deterministic_and_seeded(tiny_surrogates, arch, embedder):
    surrogate = Surrogate(str(tiny_surrogates[arch]))
    data = mte_data()
    first, _ = embedder.embed(surrogate, data, seed=0)
    again, _ = embedder.embed(surrogate, data, seed=0)
    other, _ = embedder.embed(surrogate, data, seed=1)
    assert first.dtype == np.float32 and first.ndim == 1 and np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_dte_early_stopping_reads_the_heldout_slice(tiny_surrogates):
    surrogate = Surrogate(str(tiny_surrogates["encoder"]))
    labels = np.arange(len(PAIRS) * 2) % 3
    held = TaskData("dte", PAIRS[:6], ("premise", "hypothesis"), 3, labels=np.array([0, 1, 2, 0, 1, 2]))
    data = TaskData("dte", PAIRS * 2, ("premise", "hypothesis"), 3, labels=labels, heldout=held)
    model_seed = 0
    _, info = TuPaTE(dte_epochs=5, patience=1, lr=0.5).embed(surrogate, data, seed=model_seed)
    losses = info["heldout_loss"]
    assert 1 <= len(losses) <= 5 and info["epochs"] == len(losses)
    assert info["stopped_early"] == (len(losses) < 5)
    if info["stopped_early"]:  # the last epoch did not improve on the best
        assert losses[-1] >= min(losses[:-1])
    # The epoch is chosen on one half of the held-out slice and judged on the other.
    select, judge = heldout_halves(held, model_seed)
    assert len(select) == 3 and len(judge) == 3
    assert sorted(x["premise"] for x in select.inputs + judge.inputs) == sorted(x["premise"] for x in held.inputs)
    assert losses[info["kept_epoch"] - 1] == min(losses)
    assert info["chance"] == pytest.approx(judge.constant_loss(data), abs=1e-6)
    assert info["gain"] == pytest.approx(info["chance"] - info["heldout"], abs=2e-6)
    # A DTE's least possible loss is 0 (it could put all mass on the gold label).
    assert info["max_gain"] == pytest.approx(info["chance"], abs=1e-6)
    assert info["learned"] == (info["gain_low"] > 0)


def test_tupate_compares_what_training_changed(tiny_surrogates):
    """compare=change is the trained prefix minus the seeded start, which a fresh model with the
    same seed rebuilds; compare=raw is the trained prefix itself (the paper code)."""
    surrogate = Surrogate(str(tiny_surrogates["decoder"]))
    raw, _ = TuPaTE(mte_epochs=1, compare="raw").embed(surrogate, mte_data(), seed=3)
    change, _ = TuPaTE(mte_epochs=1).embed(surrogate, mte_data(), seed=3)
    model, _ = surrogate.classifier(3, seed=3)
    layers = tupate.add_prefix(model, surrogate, prefix_len=16, dropout=0.15, encoder=False,
                               generator=torch.Generator().manual_seed(3))
    start = tupate.pooled(layers).numpy()
    np.testing.assert_allclose(raw - change, start, atol=1e-6)
    np.testing.assert_allclose(tupate.start(TuPaTE().options.as_dict(), surrogate, seed=3), start)
    assert np.linalg.norm(change) > 0
    assert TuPaTE().identity() != TuPaTE(compare="raw").identity()
    with pytest.raises(UsageError, match="compare"):
        TuPaTE(compare="delta")


def _binary_targets() -> tuple[tuple[str, str], np.ndarray]:
    return ("premise", "hypothesis"), np.random.default_rng(1).dirichlet([1.0, 1.0], size=len(PAIRS))


def test_tupate_head_in_appends_what_training_changed_in_the_head(tiny_surrogates):
    """head=in: the same training, the head's change (its parameters in name order, trained minus
    seeded) after the prefix's; head=out (the paper's) is the prefix part alone, head=only the
    head part alone."""
    surrogate = Surrogate(str(tiny_surrogates["encoder"]))
    fields, targets = _binary_targets()
    data = TaskData("mte", PAIRS, fields, 2, targets=targets)
    out, _ = TuPaTE(mte_epochs=2).embed(surrogate, data, seed=0)
    both, _ = TuPaTE(mte_epochs=2, head="in").embed(surrogate, data, seed=0)
    model, head, _ = tupate.prefixed(TuPaTE(mte_epochs=2).options.as_dict(), surrogate, 2, seed=0)
    seeded = torch.cat([p.detach().reshape(-1) for n, p in sorted(model.named_parameters()) if n in head]).numpy()
    assert both.shape == (out.size + seeded.size,)
    np.testing.assert_allclose(both[: out.size], out, atol=1e-6)
    assert np.linalg.norm(both[out.size:]) > 0
    raw, _ = TuPaTE(mte_epochs=2, head="in", compare="raw").embed(surrogate, data, seed=0)
    np.testing.assert_allclose(raw[out.size:] - both[out.size:], seeded, atol=1e-6)
    np.testing.assert_allclose(tupate.start(TuPaTE(head="in").options.as_dict(), surrogate, seed=0)[out.size:], seeded)
    only, _ = TuPaTE(mte_epochs=2, head="only").embed(surrogate, data, seed=0)
    np.testing.assert_allclose(only, both[out.size:], atol=1e-6)  # the same training, the head part alone
    # in the store key only when set: embeddings stored before the option keep their keys
    assert "head" not in TuPaTE().identity()["options"] and TuPaTE(head="in").identity()["options"]["head"] == "in"
    with pytest.raises(UsageError, match="head"):
        TuPaTE(head="both")


def test_the_prefix_alone_cannot_see_a_label_inversion(tiny_surrogates):
    """Why the paper's embedding (head=out) is sign-blind: trained from the head's mirror image
    (its two rows swapped) on the inverted targets, every loss and every prefix gradient is the
    same, so the prefix is too; the head carries the inversion. With head=in the two embeddings
    differ by exactly that mirrored head."""
    surrogate = Surrogate(str(tiny_surrogates["encoder"]))
    fields, targets = _binary_targets()
    options = TuPaTE(mte_epochs=2, head="in").options.as_dict()
    vectors = []
    for mirrored in (False, True):
        model, head, layers = tupate.prefixed(options, surrogate, 2, seed=0)
        if mirrored:
            with torch.no_grad():
                for name, param in model.named_parameters():
                    if name in head:
                        param.copy_(param.flip(0))
        t = targets[:, ::-1].copy() if mirrored else targets
        vectors.append(tupate.fit(model, head, layers, options, surrogate, TaskData("mte", PAIRS, fields, 2, targets=t), 0)[0])
    size = tupate.start({**options, "head": "out"}, surrogate, seed=0).size
    np.testing.assert_allclose(vectors[0][:size], vectors[1][:size], atol=1e-5)
    # the head parts, in name order: classifier.bias [2], then classifier.weight [2, hidden]
    bias, weight = vectors[0][size:size + 2], vectors[0][size + 2:].reshape(2, -1)
    np.testing.assert_allclose(vectors[1][size:], np.concatenate([bias[::-1], weight[::-1].ravel()]), atol=1e-5)
    assert not np.allclose(weight[0], weight[1], atol=1e-4)  # so the two embeddings differ


# -- TaskEmb's Fisher ---------------------------------------------------------------------


def _per_example_grads(model, names, surrogate, data):
    params = dict(model.named_parameters())
    grads = []
    for i in range(len(data)):
        index = np.array([i])
        loss = data.loss(taskemb.logits(model, surrogate, data, index), torch.as_tensor(index))
        g = torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)
        grads.append([torch.zeros_like(params[n]) if x is None else x for n, x in zip(names, g)])
    return grads


@pytest.mark.parametrize("estimator", ["batch", "fute"])
def test_fisher_matches_per_example_gradients(tiny_surrogates, estimator):
    """batch: (1/N) Σ_b (mean gradient of batch b)²; fute: (mean gradient over all N)². Both are
    rebuilt here from per-example gradients taken one at a time."""
    surrogate = Surrogate(str(tiny_surrogates["encoder"]))
    model, head = surrogate.classifier(3, seed=0)
    model.eval()
    data = mte_data(n_repeat=1)  # 6 examples, batches of 4 -> sizes 4 and 2
    names = taskemb.body_parameters(model, head)
    got = taskemb.fisher(model, names, surrogate, data, estimator=estimator, batch_size=4)
    per = _per_example_grads(model, names, surrogate, data)
    for j, name in enumerate(names):
        g = torch.stack([p[j] for p in per])
        if estimator == "batch":
            expected = (g[:4].mean(0) ** 2 + g[4:].mean(0) ** 2) / 6
        else:
            expected = g.mean(0) ** 2
        torch.testing.assert_close(got[name], expected, rtol=1e-4, atol=1e-12)


def test_body_parameters_leave_out_head_and_token_embeddings(tiny_surrogates):
    surrogate = Surrogate(str(tiny_surrogates["encoder-decoder"]))
    model, head = surrogate.classifier(2, seed=0)
    names = taskemb.body_parameters(model, head)
    assert head and not set(names) & head
    assert not any("shared" in n or "embed_tokens" in n for n in names)
    ids = [id(dict(model.named_parameters())[n]) for n in names]
    assert len(ids) == len(set(ids))


def test_unit_pooling_averages_each_row():
    values = {"w": torch.tensor([[1.0, 3.0], [2.0, 4.0], [0.0, 0.0]]), "b": torch.tensor([5.0, 6.0])}
    np.testing.assert_allclose(taskemb.pool(values, "unit"), [2.0, 3.0, 0.0, 5.0, 6.0])
    np.testing.assert_allclose(taskemb.pool(values, "none"), [1, 3, 2, 4, 0, 0, 5, 6])


def test_embedder_options_are_checked_and_typed():
    assert TuPaTE(lr="0.01", encoder_prefix="true").options.lr == 0.01
    assert TuPaTE(encoder_prefix="false").options.encoder_prefix is False
    with pytest.raises(UsageError, match="has no option"):
        TuPaTE(learning_rate=1)
    with pytest.raises(UsageError, match="estimator"):
        TaskEmb(estimator="exact")
    with pytest.raises(UsageError, match="must be an integer"):
        TuPaTE(prefix_len="many")
    assert TaskEmb().identity() != TaskEmb(estimator="fute").identity()


@pytest.mark.parametrize("kind", ["mte", "dte"])
def test_taskemb_is_sign_blind_with_a_binary_head(tiny_surrogates, kind):
    """A model that learned a rule and its mirror image (the head's two rows swapped) that learned
    the inverted rule, each measured on its own labels, have the same Fisher: every body gradient
    is the same. So a prompt and its label-inverted twin cannot be told apart by TaskEmb (issue 20),
    which is why it carries a premise caveat."""
    import copy

    surrogate = Surrogate(str(tiny_surrogates["encoder"]))
    model, head = surrogate.classifier(2, seed=0)
    mirror = copy.deepcopy(model)
    with torch.no_grad():
        for name, param in mirror.named_parameters():
            if name in head:
                param.copy_(param.flip(0))
    fields = ("premise", "hypothesis")
    if kind == "mte":
        targets = np.random.default_rng(1).dirichlet([1.0, 1.0], size=len(PAIRS))
        data, inverted = (TaskData("mte", PAIRS, fields, 2, targets=t) for t in (targets, targets[:, ::-1].copy()))
    else:
        labels = np.array([0, 1, 1, 0, 1, 0])
        data, inverted = (TaskData("dte", PAIRS, fields, 2, labels=y) for y in (labels, 1 - labels))
    names = taskemb.body_parameters(model, head)
    for estimator in ("batch", "fute"):
        a = taskemb.fisher(model, names, surrogate, data, estimator=estimator, batch_size=4)
        b = taskemb.fisher(mirror, names, surrogate, inverted, estimator=estimator, batch_size=4)
        scale = max(float(v.abs().max()) for v in a.values())  # float noise relative to the largest entry
        for name in names:
            torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-6 * scale)
        # ...while the inverted labels on the same model do change it: the test can fail.
        c = taskemb.fisher(model, names, surrogate, inverted, estimator=estimator, batch_size=4)
        assert any(not torch.allclose(a[n], c[n], rtol=1e-4, atol=1e-6 * scale) for n in names)
    assert TaskEmb.premise_caveat and "sign-blind" in TaskEmb.premise_caveat


def test_taskemb_normalisations_on_stored_vectors():
    dte = np.array([1.0, 3.0, 0.0])
    mtes = [np.array([1.0, 1.0, 2.0]), np.array([2.0, 6.0, 0.0])]
    # none: the cosine.
    assert TaskEmb().similarities(mtes, dte) == pytest.approx([4 / (np.sqrt(6) * np.sqrt(10)), 1.0])
    # task2vec: cos(a / (a + b), b / (a + b)) per coordinate; a coordinate where both are 0 drops out.
    # m0: (1/2, 1/4, 1) against (1/2, 3/4, 0); m1: (2/3, 2/3, 0) against (1/3, 1/3, 0).
    t2v = TaskEmb(normalise="task2vec").similarities(mtes, dte)
    expected0 = (1 / 4 + 3 / 16) / (np.sqrt(1 / 4 + 1 / 16 + 1) * np.sqrt(1 / 4 + 9 / 16))
    assert t2v == pytest.approx([expected0, 1.0])
    # coordinate: v / mean(v over MTEs and DTE) − 1, mean = (4/3, 10/3, 2/3), then the cosine.
    mean = np.array([4 / 3, 10 / 3, 2 / 3])
    rel = [m / mean - 1 for m in mtes]
    d = dte / mean - 1
    expected = [float(r @ d / (np.linalg.norm(r) * np.linalg.norm(d))) for r in rel]
    assert TaskEmb(normalise="coordinate").similarities(mtes, dte) == pytest.approx(expected)
    # The stored embeddings do not depend on the comparison: one store key for all three.
    assert TaskEmb(normalise="task2vec").identity() == TaskEmb().identity()
