"""FUTE from saved predictions: a scores file that holds U (``unlabeled_text``,
``unlabeled_logprobs``) replays FUTE with no backend, ``--save-scores`` writes U when FUTE ran
live, and ``--unlabeled eval`` takes the evaluation inputs as U.

The wiring is checked with an embedder that records what it was given (no training); the real
surrogate runs in the one slow test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from promptsel.errors import CapabilityError, UsageError
from promptsel.model.scoretable import ScoreTable, UnlabeledScores
from tests.ups_split import CLASSES, split_rows, ups_texts, write_ups_with_u

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from promptsel.cli import main  # noqa: E402
from promptsel.embedder import Embedder  # noqa: E402
from promptsel.fute.options import FuteOptions  # noqa: E402
from promptsel.model.request import SelectRequest  # noqa: E402
from promptsel.selection.run import run_select  # noqa: E402
from promptsel.testing import registered  # noqa: E402

# fute_world: the pipeline tests' world (two datasets, U, prompts, a tiny surrogate); a fixture, so
# the tests that take it redefine the name (F811).
from tests.fute.test_pipeline import _request, fute_world  # noqa: E402, F401
from tests.shared_data import shared_path  # noqa: E402


def softmax(x: np.ndarray) -> np.ndarray:
    """By hand, not through the code under test."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


# -- the scores file's U arrays ------------------------------------------------------------


def _table(**u) -> ScoreTable:
    lp = np.log(np.array([[[0.7, 0.3], [0.2, 0.8]], [[0.5, 0.5], [0.9, 0.1]]]))
    return ScoreTable(["a", "b"], ["negative", "positive"], lp, unlabeled=UnlabeledScores(**u) if u else None)


def test_u_arrays_round_trip_through_a_scores_file(tmp_path):
    raw = np.log(np.array([[[0.6, 0.4], [0.1, 0.9], [0.3, 0.7]], [[0.5, 0.5], [0.8, 0.2], [0.4, 0.6]]]))
    table = _table(text=["one", "two", "three"], logprobs=raw + 3.0, text_b=["x", "y", "z"])
    table.save(tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz") as saved:
        assert list(saved["unlabeled_text"]) == ["one", "two", "three"] and list(saved["unlabeled_text_b"]) == ["x", "y", "z"]
    back = ScoreTable.load(tmp_path / "t.npz")
    assert back.unlabeled is not None and back.unlabeled.text == ["one", "two", "three"]
    # Normalised over classes like class_logprobs: the +3 is gone.
    np.testing.assert_allclose(back.unlabeled.probs, np.exp(raw), rtol=1e-12)


@pytest.mark.parametrize(("u", "message"), [
    ({"text": ["a", "b"], "logprobs": np.zeros((3, 2, 2))}, r"shape \[P, M, C\] = \[2, M, 2\]"),
    ({"text": ["a", "b"], "logprobs": np.zeros((2, 2, 3))}, r"shape \[P, M, C\] = \[2, M, 2\]"),
    ({"text": ["a"], "logprobs": np.zeros((2, 2, 2))}, "1 texts for the 2"),
    ({"text": ["a", " "], "logprobs": np.zeros((2, 2, 2))}, r"unlabeled_text\[1\] is blank"),
    ({"text": ["a", "b"], "logprobs": np.zeros((2, 2, 2)), "text_b": ["x"]}, "unlabeled_text_b has 1 texts"),
    ({"text": ["a", "b"], "logprobs": np.full((2, 2, 2), np.nan)}, "NaN"),
])
def test_bad_u_arrays_are_refused(u, message):
    with pytest.raises(UsageError, match=message):
        _table(**u)


@pytest.mark.parametrize(("arrays", "message"), [
    ({"unlabeled_text": np.array(["a", "b"])}, "unlabeled_text without unlabeled_logprobs"),
    ({"unlabeled_logprobs": np.zeros((2, 2, 2))}, "unlabeled_logprobs without unlabeled_text"),
    ({"unlabeled_text_b": np.array(["a"]), "unlabeled_logprobs": np.zeros((2, 1, 2))}, "without unlabeled_text"),
])
def test_half_of_u_in_a_file_is_one_line_error(tmp_path, capsys, arrays, message):
    path = tmp_path / "t.npz"
    np.savez(path, class_logprobs=np.zeros((2, 3, 2)), **arrays)
    with pytest.raises(UsageError, match=message):
        ScoreTable.load(path)
    assert cli(["select", "--scores", str(path), "--methods", "mi", "--no-progress", "-q"]) == 2
    err = capsys.readouterr().err
    assert message.split()[0] in err and "Traceback" not in err


def test_the_fixture_split_is_stratified_and_disjoint():
    targets = np.array([int(r["label"] == "positive") for r in ups_texts()])
    u, evaluation = split_rows(targets, seed=3)
    assert not set(u) & set(evaluation) and len(u) + len(evaluation) == len(targets)
    for c in (0, 1):
        assert abs((targets[u] == c).sum() - (targets[evaluation] == c).sum()) <= 1


# -- FUTE from saved predictions, with no backend --------------------------------------------


class Recorder(Embedder):
    """Records what each task embedding was trained on; its vectors make the cosine computable by
    hand: an MTE is its mean soft target, the DTE the train sample's class frequencies."""

    embedder_id = "rec"
    defaults: ClassVar[dict] = {}
    calls: ClassVar[list] = []

    def embed(self, surrogate, data, seed):
        Recorder.calls.append(data)
        if data.kind == "mte":
            vector = np.concatenate([data.targets, data.heldout.targets]).mean(0)
        else:
            vector = np.bincount(data.labels, minlength=data.n_classes) / len(data.labels)
        return vector.astype(np.float32), {"learned": True}


class RecorderPlugin:
    from promptsel import hookimpl

    @hookimpl
    def register_embedders(self, register):
        register(Recorder)


def rows_by_text(data) -> dict[str, np.ndarray]:
    """An MTE's targets by input text, its trained and held-out rows together."""
    rows = [*zip(data.inputs, data.targets), *zip(data.heldout.inputs, data.heldout.targets)]
    return {x["text"]: t for x, t in rows}


def test_mte_targets_are_the_saved_predictions_of_each_prompt(tmp_path, tiny_surrogates, monkeypatch):
    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    saved = write_ups_with_u(tmp_path / "ups.npz", seed=1, prompts=5, u_size=30)
    fute = FuteOptions(dte_dataset="sst2", surrogate=str(tiny_surrogates["encoder"]), unlabeled_size=30, dte_size=20)
    Recorder.calls = []
    with registered(RecorderPlugin(), name="recorder"):
        report, _ = run_select(SelectRequest(scores=tmp_path / "ups.npz", methods=["fute-rec", "mi"],
                                             data_dir=str(shared_path("data")), groups=(fute,), bootstrap=200))
    mtes = [d for d in Recorder.calls if d.kind == "mte"]
    dtes = [d for d in Recorder.calls if d.kind == "dte"]
    assert len(mtes) == 5 and len(dtes) == 1
    texts = list(saved["unlabeled_text"])
    for p, data in enumerate(mtes):  # trained in prompt order
        got = rows_by_text(data)
        assert sorted(got) == sorted(texts)
        want = softmax(saved["unlabeled_logprobs"][p].astype(np.float64))
        np.testing.assert_allclose(np.array([got[t] for t in texts]), want, rtol=1e-6)
    # The DTE: 20 labelled sst2 train sentences, none of them from U or the evaluation half.
    train = {json.loads(line)["text"] for line in shared_path("data", "sst2", "train.jsonl").read_text().splitlines()}
    dte_texts = [x["text"] for x in dtes[0].inputs + dtes[0].heldout.inputs]
    assert len(dte_texts) == 20 and set(dte_texts) <= train
    # Its scores are the cosines of those vectors, computed here from the file itself.
    prior = np.bincount(np.concatenate([dtes[0].labels, dtes[0].heldout.labels]), minlength=2) / 20
    for p, entry in enumerate(report["prompts"]):
        mean = softmax(saved["unlabeled_logprobs"][p].astype(np.float64)).mean(0)
        assert entry["scores"]["fute-rec"] == pytest.approx(mean @ prior / np.linalg.norm(mean) / np.linalg.norm(prior), rel=1e-5)
    section = report["fute"]
    assert section["labels"] == "saved" and section["unlabeled"]["name"] == "scores file"
    assert section["unlabeled"]["origin"] == str(tmp_path / "ups.npz") and section["unlabeled"]["size"] == 30
    assert section["dte"] == {"dataset": "sst2", "split": "train", "from": "--dte-dataset"}
    assert report["backend"]["name"] is None and report["dataset"]["n"] == len(saved["eval_rows"])
    quality = section["quality"]["fute-rec"]
    assert quality["ndcg"] == pytest.approx(report["methods"]["fute-rec"]["ndcg"])
    low, high = quality["ndcg_interval"]
    assert low <= quality["ndcg"] <= high and low < high and quality["resamples"] == 200


def test_unlabeled_size_caps_a_saved_u_with_the_same_rows_for_every_prompt(tmp_path, tiny_surrogates, monkeypatch):
    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    saved = write_ups_with_u(tmp_path / "ups.npz", seed=0, prompts=3, u_size=50)
    fute = FuteOptions(dte_dataset="sst2", surrogate=str(tiny_surrogates["encoder"]), unlabeled_size=12, dte_size=10)
    Recorder.calls = []
    with registered(RecorderPlugin(), name="recorder"):
        run_select(SelectRequest(scores=tmp_path / "ups.npz", methods=["fute-rec"], data_dir=str(shared_path("data")),
                                 groups=(fute,), bootstrap=50))
    mtes = [rows_by_text(d) for d in Recorder.calls if d.kind == "mte"]
    assert len(mtes) == 3 and all(len(m) == 12 for m in mtes) and len({tuple(sorted(m)) for m in mtes}) == 1
    index = {t: i for i, t in enumerate(saved["unlabeled_text"])}
    for p, got in enumerate(mtes):
        rows = [index[t] for t in got]
        np.testing.assert_allclose(np.array(list(got.values())), softmax(saved["unlabeled_logprobs"][p][rows]), rtol=1e-6)


@pytest.mark.option("select", "--dte-dataset")
def test_dte_dataset_names_the_train_split_the_dte_is_trained_on(tmp_path, capsys, tiny_surrogates, monkeypatch):
    """Through the command line, with the recording embedder: no --dte-dataset, no FUTE from a
    scores file; sst2 or rotten_tomatoes, the DTE's texts come from that dataset's train split."""
    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    write_ups_with_u(tmp_path / "u.npz", seed=2, prompts=3, u_size=12)
    data = shared_path("data")
    argv = ["select", "--scores", str(tmp_path / "u.npz"), "--data-dir", str(data), "--methods", "fute-rec,mi", "--surrogate",
            str(tiny_surrogates["encoder"]), "--dte-size", "16", "--bootstrap", "50", "--json", "--no-progress", "-q"]
    dte_texts, sections = {}, {}
    with registered(RecorderPlugin(), name="recorder"):
        assert cli(argv) == 2 and "needs --dte-dataset NAME" in capsys.readouterr().err
        for name in ("sst2", "rotten_tomatoes"):
            Recorder.calls = []
            code = cli([*argv, "--dte-dataset", name])
            out, err = capsys.readouterr()
            assert code == 0, err
            sections[name] = json.loads(out)["fute"]["dte"]
            (dte,) = [d for d in Recorder.calls if d.kind == "dte"]
            dte_texts[name] = {x["text"] for x in dte.inputs + dte.heldout.inputs}
    for name in ("sst2", "rotten_tomatoes"):
        train = {json.loads(line)["text"] for line in (data / name / "train.jsonl").read_text().splitlines()}
        assert len(dte_texts[name]) == 16 and dte_texts[name] <= train
        assert sections[name] == {"dataset": name, "split": "train", "from": "--dte-dataset"}
    assert dte_texts["sst2"] != dte_texts["rotten_tomatoes"]


def test_fute_from_scores_says_what_is_missing(tmp_path, capsys, tiny_surrogates):
    data = str(shared_path("data"))
    with_u = tmp_path / "u.npz"
    write_ups_with_u(with_u, prompts=3, u_size=10)
    without_u = tmp_path / "plain.npz"
    with np.load(with_u) as d:
        np.savez(without_u, **{k: d[k] for k in d.files if not k.startswith("unlabeled")})
        np.savez(tmp_path / "unnamed.npz", **{k: d[k] for k in d.files if k != "class_names"})
    cases = [
        (["--scores", str(without_u), "--dte-dataset", "sst2"], "needs U in the scores file: add unlabeled_text"),
        (["--scores", str(with_u)], "needs --dte-dataset NAME"),
        (["--scores", str(tmp_path / "unnamed.npz"), "--dte-dataset", "sst2"], "classes (class_0, class_1) are not sst2's"),
        (["--scores", str(with_u), "--dte-dataset", "cb"], "two text fields"),
        (["--scores", str(with_u), "--dte-dataset", "nope"], "nope"),
        (["--scores", str(with_u), "--dte-dataset", "sst2", "--unlabeled", "pool"], "--unlabeled cannot apply with --scores"),
    ]
    for args, message in cases:
        code = cli(["select", *args, "--data-dir", data, "--methods", "fute-tupate,mi", "--surrogate",
                    str(tiny_surrogates["encoder"]), "--no-progress", "-q"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, (args, err)
    with pytest.raises(CapabilityError, match="unlabeled_logprobs"):
        run_select(SelectRequest(scores=without_u, methods=["fute-tupate"], data_dir=data,
                                 groups=(FuteOptions(dte_dataset="sst2"),)))


# -- live runs: --save-scores writes U, --unlabeled eval --------------------------------------


def _tiny(world, **kw) -> FuteOptions:
    return FuteOptions(unlabeled_size=20, surrogate=world["surrogate"], dte_size=30,
                       embedder_options={"tupate": {"mte_epochs": 2, "dte_epochs": 2}}, **kw)


@pytest.mark.option("select", "--mte-targets")
def test_hard_mte_targets_are_each_prompts_decisions_one_hot_under_their_own_keys(tmp_path, tiny_surrogates, monkeypatch, capsys):
    from promptsel.fute.method import FuteMethod
    from promptsel.fute.store import EmbeddingStore

    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    saved = write_ups_with_u(tmp_path / "ups.npz", seed=1, prompts=3, u_size=30)
    texts = list(saved["unlabeled_text"])
    calls = {}
    for form in ("soft", "hard"):
        Recorder.calls = []
        with registered(RecorderPlugin(), name="recorder"):
            code = cli(["select", "--scores", str(tmp_path / "ups.npz"), "--dte-dataset", "sst2", "--data-dir",
                        str(shared_path("data")), "--methods", "fute-rec", "--surrogate", str(tiny_surrogates["encoder"]),
                        "--unlabeled-size", "30", "--dte-size", "20", "--bootstrap", "50", "--json", "--no-progress", "-q",
                        *(["--mte-targets", form] if form == "hard" else [])])
        out, err = capsys.readouterr()
        assert code == 0, err
        section = json.loads(out)["fute"]
        assert section["mte_targets"] == form
        assert ("decisions" in FuteMethod.section_lines(section)[0]) == (form == "hard")
        calls[form] = [d for d in Recorder.calls if d.kind in ("mte", "dte")]
    # soft ran first and stored its embeddings: hard trains every MTE again (its own keys) and
    # reuses the DTE (gold labels either way).
    assert sorted(d.kind for d in calls["soft"]) == ["dte"] + ["mte"] * 3
    assert [d.kind for d in calls["hard"]] == ["mte"] * 3
    for p, data in enumerate(calls["hard"]):
        probs = softmax(saved["unlabeled_logprobs"][p].astype(np.float64))
        want = np.zeros_like(probs)
        want[np.arange(len(probs)), probs.argmax(axis=1)] = 1.0  # by hand: 1 on the likelier class
        got = rows_by_text(data)
        np.testing.assert_array_equal(np.array([got[t] for t in texts]), want)
    assert len(list(EmbeddingStore().root.glob("*.npz"))) == 7


def test_a_saved_live_run_replays_fute_exactly(fute_world, tmp_path):  # noqa: F811
    saved = tmp_path / "live.npz"
    live, _ = run_select(_request(fute_world, "sst2", ["fute-tupate", "mi"], save_scores=saved))
    with np.load(saved) as d:
        assert d["unlabeled_logprobs"].shape == (3, 20, 2) and len(d["unlabeled_text"]) == 20
        assert "unlabeled_text_b" not in d.files
        u_texts = list(d["unlabeled_text"])
    file_texts = {json.loads(line)["text"] for line in Path(fute_world["unlabeled"]).read_text().splitlines()}
    assert set(u_texts) <= file_texts
    assert live["fute"]["labels"] == "llm" and live["fute"]["dte"]["from"] == "the evaluation dataset"
    # Replayed from the file alone: no backend, no prompt file, the DTE named instead.
    fute = FuteOptions(unlabeled_size=20, surrogate=fute_world["surrogate"], dte_size=30,
                       embedder_options={"tupate": {"mte_epochs": 2, "dte_epochs": 2}}, dte_dataset="sst2")
    replay, _ = run_select(SelectRequest(scores=saved, methods=["fute-tupate", "mi"], data_dir=fute_world["data"],
                                         groups=(fute,)))
    assert replay["fute"]["labels"] == "saved" and replay["backend"]["name"] is None
    assert {e["status"] for e in replay["fute"]["embeddings"] if e["kind"] == "mte"} == {"computed"}
    got = [p["scores"]["fute-tupate"] for p in replay["prompts"]]
    want = [p["scores"]["fute-tupate"] for p in live["prompts"]]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_all_mtes_reused_still_saves_u(fute_world, tmp_path):  # noqa: F811
    run_select(_request(fute_world, "sst2", ["fute-tupate"]))
    saved = tmp_path / "again.npz"
    again, _ = run_select(_request(fute_world, "sst2", ["fute-tupate"], save_scores=saved))
    assert {e["status"] for e in again["fute"]["embeddings"]} == {"reused"}
    with np.load(saved) as d:
        assert d["unlabeled_logprobs"].shape == (3, 20, 2)


def test_unlabeled_eval_trains_on_the_evaluation_inputs_without_their_labels(fute_world, tmp_path):  # noqa: F811
    saved = tmp_path / "eval.npz"
    req = SelectRequest(dataset="sst2", prompts=fute_world["prompts"], backend="fake", methods=["fute-rec", "mi"],
                        data_dir=fute_world["data"], limit=10, save_scores=saved, groups=(_tiny(fute_world, unlabeled="eval"),))
    Recorder.calls = []
    with registered(RecorderPlugin(), name="recorder"):
        report, _ = run_select(req)
    validation = [json.loads(line) for line in (Path(fute_world["data"]) / "sst2" / "validation.jsonl").read_text().splitlines()]
    by_id = {f"validation:{i}": r["text"] for i, r in enumerate(validation)}
    eval_texts = [by_id[i] for i in report["dataset"]["sample_ids"]]
    mtes = [d for d in Recorder.calls if d.kind == "mte"]
    assert len(mtes) == 3
    with np.load(saved) as d:
        assert sorted(d["unlabeled_text"]) == sorted(eval_texts)
        class_logprobs, u_logprobs = d["class_logprobs"], d["unlabeled_logprobs"]
    # U is the evaluation inputs: each prompt's targets on U are its (uncalibrated) predictions on them.
    for p, data in enumerate(mtes):
        assert all(set(x) == {"text"} for x in data.inputs)  # inputs only: no label reaches the embedder
        got = rows_by_text(data)
        assert sorted(got) == sorted(eval_texts)
        want = softmax(class_logprobs[p])
        np.testing.assert_allclose(np.array([got[t] for t in eval_texts]), want, rtol=1e-9)
        np.testing.assert_allclose(softmax(u_logprobs[p]), want, rtol=1e-9)
    assert report["fute"]["unlabeled"]["name"] == "eval"
    warning = next(w for w in report["warnings"] if w["code"] == "fute_in_domain")
    assert warning["severity"] == "info" and "in-domain" in warning["message"] and "paper" in warning["message"]


def test_unlabeled_eval_needs_an_evaluation_split(fute_world):  # noqa: F811
    from promptsel.fute.embed import run_embed

    req = SelectRequest(prompts=fute_world["prompts"], backend="fake", data_dir=fute_world["data"],
                        groups=(_tiny(fute_world, unlabeled="eval"),))
    with pytest.raises(UsageError, match="--unlabeled eval"):
        run_embed(req, ["sst2"], ["tupate"])


def test_dte_dataset_lets_fute_run_on_a_local_file(fute_world):  # noqa: F811
    local = Path(fute_world["data"]) / "sst2" / "test.jsonl"
    with pytest.raises(CapabilityError, match="--dte-dataset"):
        run_select(_request(fute_world, str(local), ["fute-tupate"]))
    req = SelectRequest(dataset=str(local), prompts=fute_world["prompts"], backend="fake", methods=["fute-tupate"],
                        data_dir=fute_world["data"], limit=10, groups=(_tiny(fute_world, dte_dataset="rotten_tomatoes"),))
    report, _ = run_select(req)
    assert report["fute"]["dte"] == {"dataset": "rotten_tomatoes", "split": "train", "from": "--dte-dataset"}


# -- the command, with the real surrogate ------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 3 MTEs and a DTE on all-MiniLM-L6-v2: minutes on a loaded 2-core machine
def test_select_from_the_ups_fixture_with_u_runs_fute_without_a_backend(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    write_ups_with_u(tmp_path / "ups.npz", seed=0, prompts=3, u_size=30)
    code = cli(["select", "--scores", str(tmp_path / "ups.npz"), "--dte-dataset", "sst2", "--data-dir", str(shared_path("data")),
                "--methods", "fute-tupate,mi,consensus", "--unlabeled-size", "30", "--dte-size", "30", "--json",
                "--no-progress", "-q"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["backend"]["name"] is None and list(report["methods"]) == ["mi", "consensus", "fute-tupate"]
    quality = report["fute"]["quality"]["fute-tupate"]
    low, high = quality["ndcg_interval"]
    assert quality["ndcg"] == pytest.approx(report["methods"]["fute-tupate"]["ndcg"]) and low <= quality["ndcg"] <= high
    assert report["fute"]["surrogate"]["name"].endswith("all-MiniLM-L6-v2") or "minilm" in report["fute"]["surrogate"]["name"].lower()
    assert tuple(report["dataset"]["classes"]) == CLASSES
