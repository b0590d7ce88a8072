"""FUTE: what it hands an embedder, the embedding store and the orchestration (MTEs on U, a DTE
per dataset, the `fute-<embedder>` methods, their report).

Everything here runs on tiny random surrogates of the three architectures (no weights are
downloaded) and the FakeBackend; the embedders themselves are tested in
tests/embedders/test_tupate_and_taskemb.py, the real model and real surrogate in the benchmark
and in tests/fute/test_premise.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from promptsel.cli import main  # noqa: E402
from promptsel.embedder import Embedder  # noqa: E402
from promptsel.errors import CapabilityError, UsageError  # noqa: E402
from promptsel.fute.embeddings import cosine  # noqa: E402
from promptsel.fute.options import FuteOptions  # noqa: E402
from promptsel.fute.store import EmbeddingStore  # noqa: E402
from promptsel.model.request import SelectRequest  # noqa: E402
from promptsel.selection.run import run_select  # noqa: E402
from promptsel.testing import registered  # noqa: E402
from promptsel_builtin.embedders import TaskEmb, TuPaTE  # noqa: E402
from tests.surrogate_tasks import soft_targets  # noqa: E402

# -- what FUTE hands an embedder ------------------------------------------------------------


def test_fute_compat_compares_the_raw_vectors():
    from promptsel.fute.method import FuteMethod

    method = FuteMethod.for_embedder(TuPaTE)
    assert method.make_embedder(FuteOptions()).options.compare == "null"
    assert method.make_embedder(FuteOptions()).compares_to_null()
    assert method.make_embedder(FuteOptions(raw_similarity=True)).options.compare == "raw"
    assert not method.make_embedder(FuteOptions(raw_similarity=True)).compares_to_null()
    # An explicit --embedder-arg wins over the switch; embedders without the option ignore it.
    explicit = FuteOptions(raw_similarity=True, embedder_options={"tupate": {"compare": "change"}})
    assert method.make_embedder(explicit).options.compare == "change"
    assert FuteMethod.for_embedder(TaskEmb).make_embedder(FuteOptions(raw_similarity=True)).options == TaskEmb.Options()


def test_every_mte_holds_out_the_same_slice_of_u():
    from promptsel.fute.embeddings import mte_task

    inputs = [{"text": f"t{i}"} for i in range(20)]
    a = mte_task(inputs, ("text",), soft_targets(20, 2, seed=0), seed=0)
    b = mte_task(inputs, ("text",), soft_targets(20, 2, seed=1), seed=0)
    assert a.heldout is not None and b.heldout is not None
    assert len(a) == 18 and len(a.heldout) == 2 and a.inputs == b.inputs and a.heldout.inputs == b.heldout.inputs
    assert sorted(x["text"] for x in a.inputs + a.heldout.inputs) == sorted(x["text"] for x in inputs)
    rows = {x["text"]: i for i, x in enumerate(inputs)}
    targets = soft_targets(20, 2, seed=0)
    np.testing.assert_array_equal(a.heldout.targets, targets[[rows[x["text"]] for x in a.heldout.inputs]])


# -- store ---------------------------------------------------------------------------------


def test_store_roundtrip_and_unreadable_entries(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.put("k1", np.array([1.0, 2.0]), {"kind": "mte", "prompt": "p1"})
    got = store.get("k1")
    assert got is not None and got.meta["prompt"] == "p1" and got.meta["key"] == "k1"
    np.testing.assert_array_equal(got.vector, [1.0, 2.0])
    (tmp_path / "k2.npz").write_bytes(b"PK\x03\x04 half a file")
    with pytest.warns(UserWarning, match="unreadable"):
        assert store.get("k2") is None
    assert [e.key for e in store.entries()] == ["k1"]


def test_an_interrupted_write_leaves_no_entry(tmp_path, monkeypatch):
    store = EmbeddingStore(tmp_path)

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(KeyboardInterrupt):
        store.put("k", np.ones(3), {"kind": "dte"})
    assert store.get("k") is None and list(tmp_path.iterdir()) == []


def test_cosine():
    assert cosine(np.array([1.0, 0.0]), np.array([2.0, 0.0])) == pytest.approx(1.0)
    assert cosine(np.array([1.0, 0.0]), np.array([0.0, 3.0])) == pytest.approx(0.0)
    assert cosine(np.array([1.0, 1.0]), np.array([-1.0, -1.0])) == pytest.approx(-1.0)
    assert cosine(np.zeros(2), np.ones(2)) == 0.0


def test_a_permutation_null_keeps_the_label_mix_and_loses_the_texts():
    from promptsel.fute.embeddings import permuted_rows

    targets = soft_targets(40, 3, seed=2)
    null = permuted_rows(targets, seed=5)
    # The same rows (so the same label mix), not in the same places; seeded.
    np.testing.assert_array_equal(np.sort(null, axis=0), np.sort(targets, axis=0))
    assert {tuple(r) for r in null.round(9)} == {tuple(r) for r in targets.round(9)}
    assert (null != targets).any(axis=1).mean() > 0.8
    np.testing.assert_array_equal(null, permuted_rows(targets, seed=5))
    assert not np.array_equal(null, permuted_rows(targets, seed=6))


def test_null_similarity_is_the_cosine_less_the_nulls():
    from promptsel.fute.embeddings import null_similarity

    d = np.array([1.0, 0.0, 0.0])
    # cos(m, d) = 0.6, cos(n, d) = 0.8 / √2 · ... computed by hand: n = (1, 1, 0) -> 1/√2
    assert null_similarity(np.array([3.0, 4.0, 0.0]), np.array([1.0, 1.0, 0.0]), d) == pytest.approx(0.6 - 2**-0.5)
    # A prompt whose labels carry nothing beyond its label mix scores 0.
    assert null_similarity(np.array([2.0, 5.0, 1.0]), np.array([2.0, 5.0, 1.0]), d) == 0.0


# -- the pipeline --------------------------------------------------------------------------


SA_PROMPTS = """
name = "tiny-sa"
[defaults]
chat = false
[[prompt]]
id = "good"
template = "Review: {{text}} Is it great?"
answer_choices = { positive = ["yes"], negative = ["no"] }
[[prompt]]
id = "plain"
template = "{{text}} Sentiment:"
answer_choices = { positive = ["positive"], negative = ["negative"] }
[[prompt]]
id = "odd"
template = "{{text}} Good or bad?"
answer_choices = { positive = ["good"], negative = ["bad"] }
"""


@pytest.fixture
def fute_world(tmp_path, tiny_surrogates, fake_backend_plugin, monkeypatch):
    """Two sentiment datasets in a data dir, an unlabeled file, a prompt set, a tiny surrogate,
    and a cache (results and embeddings) of this test's own."""
    monkeypatch.setenv("PROMPTSEL_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    words = ["great", "awful", "fine", "boring", "fun", "dull", "good", "bad"]

    def rows(n: int, offset: int) -> list[dict[str, str]]:
        out = []
        for i in range(n):
            text = " ".join(rng.choice(words, size=4))
            out.append({"text": f"{text} {offset + i}", "label": "positive" if "great" in text or "good" in text else "negative"})
        return out

    data = tmp_path / "data"
    for name in ("sst2", "rotten_tomatoes"):
        (data / name).mkdir(parents=True)
        for split, n in (("train", 40), ("validation", 12), ("test", 12)):
            (data / name / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows(n, 1000 * len(split))))
    unlabeled = tmp_path / "u.jsonl"
    unlabeled.write_text("\n".join(json.dumps({"text": " ".join(rng.choice(words, size=5)), "source": f"s{i % 3}"}) for i in range(30)))
    prompts = tmp_path / "sa.toml"
    prompts.write_text(SA_PROMPTS)
    return {"data": str(data), "unlabeled": str(unlabeled), "prompts": prompts, "surrogate": str(tiny_surrogates["encoder"])}


def _request(world, dataset, methods, **kw):
    fute = FuteOptions(unlabeled=world["unlabeled"], unlabeled_size=20, surrogate=world["surrogate"], dte_size=30,
                       embedder_options={"tupate": {"mte_epochs": 2, "dte_epochs": 2}, "taskemb": {"mte_epochs": 1, "dte_epochs": 1}})
    return SelectRequest(dataset=dataset, prompts=world["prompts"], backend="fake", methods=methods, data_dir=world["data"],
                         limit=10, groups=(fute,), **kw)


def test_second_dataset_reuses_every_mte_and_computes_only_its_dte(fute_world):
    methods = ["fute-taskemb", "fute-tupate", "mi"]
    first, _ = run_select(_request(fute_world, "sst2", methods))
    status = [(e["kind"], e["status"]) for e in first["fute"]["embeddings"]]
    # tupate compares each MTE with its permutation null (compare=null, the default); taskemb does not.
    assert status.count(("mte", "computed")) == 6 and status.count(("dte", "computed")) == 2
    assert status.count(("mte-null", "computed")) == 3
    assert list(first["methods"]) == ["mi", "fute-taskemb", "fute-tupate"]
    assert first["fute"]["unlabeled"]["size"] == 20 and first["fute"]["surrogate"]["arch"] == "encoder"

    second, _ = run_select(_request(fute_world, "rotten_tomatoes", methods))
    records = second["fute"]["embeddings"]
    assert sorted((e["kind"], e["status"]) for e in records) == ([("dte", "computed")] * 2 + [("mte", "reused")] * 6
                                                                 + [("mte-null", "reused")] * 3)
    assert {e["key"] for e in records if e["kind"] != "dte"} == {e["key"] for e in first["fute"]["embeddings"] if e["kind"] != "dte"}

    again, _ = run_select(_request(fute_world, "sst2", methods))
    assert {e["status"] for e in again["fute"]["embeddings"]} == {"reused"}
    # Same embeddings, same scores.
    assert [p["scores"] for p in again["prompts"]] == [p["scores"] for p in first["prompts"]]


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def test_each_prompt_scores_its_cosine_with_the_dte_less_its_nulls(fute_world):
    """compare=null (the default): cos(MTE, DTE) − cos(MTE_null, DTE), MTE_null trained on the
    prompt's targets shuffled across U and stored under its own key; compare=change: the cosine."""
    report, _ = run_select(_request(fute_world, "sst2", ["fute-tupate"]))
    store = EmbeddingStore()
    keys = {(e["kind"], e["prompt"]): e["key"] for e in report["fute"]["embeddings"]}
    assert len(set(keys.values())) == 7  # a DTE, three MTEs, three nulls
    d = _unit(store.get(keys[("dte", None)]).vector)
    expected = [_unit(store.get(keys[("mte", p)]).vector) @ d - _unit(store.get(keys[("mte-null", p)]).vector) @ d
                for p in ("good", "plain", "odd")]
    np.testing.assert_allclose([p["scores"]["fute-tupate"] for p in report["prompts"]], expected, rtol=1e-6)
    # The nulls were trained on the prompts' own targets, permuted: the same label mix.
    null_meta = store.get(keys[("mte-null", "good")]).meta
    assert null_meta["kind"] == "mte-null" and null_meta["prompt"] == "good"

    req = _request(fute_world, "sst2", ["fute-tupate"])
    req.group(FuteOptions).embedder_options["tupate"]["compare"] = "change"
    change, _ = run_select(req)
    ckeys = {(e["kind"], e["prompt"]): e["key"] for e in change["fute"]["embeddings"]}
    assert not any(kind == "mte-null" for kind, _ in ckeys)
    d = _unit(store.get(ckeys[("dte", None)]).vector)
    expected = [_unit(store.get(ckeys[("mte", p)]).vector) @ d for p in ("good", "plain", "odd")]
    np.testing.assert_allclose([p["scores"]["fute-tupate"] for p in change["prompts"]], expected, rtol=1e-6)


def test_null_both_compares_the_changes_from_both_nulls():
    from promptsel.fute.embeddings import null_both_similarity

    # MTE − null = (2, 4, 0), DTE − DTE_null = (0, 1, 1): cos = 4 / (√20 · √2).
    m, n = np.array([3.0, 4.0, 0.0], dtype=np.float32), np.array([1.0, 0.0, 0.0], dtype=np.float32)
    d, dn = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0])
    assert null_both_similarity(m, n, d, dn) == pytest.approx(4 / np.sqrt(40))
    # A prompt whose labels a permutation cannot change (a constant) has no change: it scores 0.
    assert null_both_similarity(m, m, d, dn) == 0.0
    # Swapping which side is the null flips the sign: the direction of the change is what counts.
    assert null_both_similarity(n, m, d, dn) == pytest.approx(-4 / np.sqrt(40))


def test_the_dte_null_keeps_the_class_mix_and_loses_the_texts():
    from promptsel.fute.embeddings import permuted_labels
    from promptsel.model.data import Dataset

    labels = ["positive"] * 30 + ["negative"] * 10
    sample = Dataset(name="d", split="train", fields=("text",), classes=("negative", "positive"),
                     examples=[{"text": f"t{i}", "label": lab} for i, lab in enumerate(labels)], ids=[f"i{i}" for i in range(40)], source="test")
    null = permuted_labels(sample, seed=3)
    assert [ex["text"] for ex in null.examples] == [ex["text"] for ex in sample.examples]
    assert sorted(ex["label"] for ex in null.examples) == sorted(labels)
    moved = sum(a["label"] != b["label"] for a, b in zip(null.examples, sample.examples))
    assert moved >= 6  # 2·30·10/40 = 15 expected
    assert [ex["label"] for ex in permuted_labels(sample, seed=3).examples] == [ex["label"] for ex in null.examples]
    assert [ex["label"] for ex in sample.examples] == labels  # the sample itself is untouched


def test_null_both_scores_each_prompt_against_both_nulls(fute_world):
    """compare=null-both: cos(MTE − MTE_null, DTE − DTE_null), DTE_null trained on the DTE's
    sample with its gold labels permuted, stored under its own key and reused."""
    req = _request(fute_world, "sst2", ["fute-tupate"])
    req.group(FuteOptions).embedder_options["tupate"]["compare"] = "null-both"
    report, _ = run_select(req)
    store = EmbeddingStore()
    keys = {(e["kind"], e["prompt"]): e["key"] for e in report["fute"]["embeddings"]}
    assert len(set(keys.values())) == 8  # a DTE, its null, three MTEs, three nulls
    d, dn = (store.get(keys[(k, None)]).vector for k in ("dte", "dte-null"))
    assert not np.array_equal(d, dn)
    meta = store.get(keys[("dte-null", None)]).meta
    assert meta["kind"] == "dte-null" and meta["dataset"] == "sst2" and meta["model"] is None
    expected = []
    for p in ("good", "plain", "odd"):
        m, n = (np.asarray(store.get(keys[(k, p)]).vector, dtype=np.float64) for k in ("mte", "mte-null"))
        expected.append(_unit(m - n) @ _unit(np.asarray(d, np.float64) - dn))
    np.testing.assert_allclose([p["scores"]["fute-tupate"] for p in report["prompts"]], expected, rtol=1e-6)
    again, _ = run_select(req)
    assert {e["status"] for e in again["fute"]["embeddings"]} == {"reused"}
    # The premise caveat follows the options: null-both alone keeps it, with head=only it is lifted.
    assert "fute_fails_premise" in [w["code"] for w in report["warnings"]]
    req.group(FuteOptions).embedder_options["tupate"]["head"] = "only"
    only, _ = run_select(req)
    assert only["fute"]["caveats"] == {"fute-tupate": None}
    assert "fute_fails_premise" not in [w["code"] for w in only["warnings"]]


def test_mte_keys_change_with_what_changes_the_numbers(fute_world):
    base, _ = run_select(_request(fute_world, "sst2", ["fute-tupate"]))
    keys = {e["key"] for e in base["fute"]["embeddings"] if e["kind"] == "mte"}
    other_seed, _ = run_select(_request(fute_world, "sst2", ["fute-tupate"], seed=1))
    assert not keys & {e["key"] for e in other_seed["fute"]["embeddings"]}
    req = _request(fute_world, "sst2", ["fute-tupate"])
    req.group(FuteOptions).embedder_options["tupate"]["prefix_len"] = 4
    other_option, _ = run_select(req)
    assert not keys & {e["key"] for e in other_option["fute"]["embeddings"]}


def test_fute_cannot_run_from_scores_or_on_a_local_file(fute_world, tmp_path):
    table_path = tmp_path / "t.npz"
    run_select(_request(fute_world, "sst2", ["mi"], save_scores=table_path))
    with pytest.raises(CapabilityError, match="--scores"):
        run_select(SelectRequest(scores=table_path, methods=["fute-taskemb"]))
    local = Path(fute_world["data"]) / "sst2" / "test.jsonl"
    with pytest.raises(CapabilityError, match="train split"):
        run_select(_request(fute_world, str(local), ["fute-taskemb"]))
    with pytest.raises(UsageError, match="fute-nope"):
        run_select(_request(fute_world, "sst2", ["fute-nope"]))


def cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_select_with_fute_and_the_embed_command(fute_world, capsys):
    common = ["--backend", "fake", "--data-dir", fute_world["data"], "--unlabeled", fute_world["unlabeled"],
              "--unlabeled-size", "20", "--surrogate", fute_world["surrogate"], "--dte-size", "30",
              "-E", "tupate.mte_epochs=2", "-E", "tupate.dte_epochs=2"]
    assert cli(["embed", "-d", "sst2", "-p", str(fute_world["prompts"]), "--embedders", "tupate", "--json", *common]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(e["kind"] for e in out["embeddings"]) == ["dte"] + ["mte"] * 3 + ["mte-null"] * 3
    assert cli(["select", "-d", "sst2", "-p", str(fute_world["prompts"]), "-m", "fute-tupate,globale", "-n", "10",
                "--json", "--no-progress", "-q", *common]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {e["status"] for e in report["fute"]["embeddings"]} == {"reused"}
    assert list(report["methods"]) == ["globale", "fute-tupate"]
    assert cli(["select", "-d", "sst2", "-p", str(fute_world["prompts"]), "-m", "fute-tupate", *common[:4], "-E", "tupate=3"]) == 2
    assert "ID.KEY=VALUE" in capsys.readouterr().err
    assert cli(["embed", "-d", str(Path(fute_world["data"]) / "sst2" / "test.jsonl"), "--dte-only", *common]) == 2
    assert "train split" in capsys.readouterr().err


def test_a_plugin_embedder_gets_its_fute_method(fute_world):
    from promptsel import hookimpl

    class Constant(Embedder):
        embedder_id = "const"
        defaults: ClassVar[dict] = {"value": 1.0}

        def embed(self, surrogate, data, seed):
            # MTE: the mean soft target; DTE: the class frequencies. Cosine is then computable by hand.
            dist = data.targets.mean(0) if data.kind == "mte" else np.bincount(data.labels, minlength=data.n_classes) / len(data)
            return dist.astype(np.float32), {}

    class Plugin:
        @hookimpl
        def register_embedders(self, register):
            register(Constant)

    with registered(Plugin(), name="const-embedder"):
        report, _ = run_select(_request(fute_world, "sst2", ["fute-const"]))
    # Independent check: each prompt's cosine between its mean soft target and the train split's
    # class frequencies, from the ScoreTable of U that the embedder saw.
    scores = [p["scores"]["fute-const"] for p in report["prompts"]]
    assert len(scores) == 3 and all(0.0 < s <= 1.0 for s in scores)
    assert {e["kind"] for e in report["fute"]["embeddings"]} == {"mte", "dte"}


def test_plot_command_draws_the_store(fute_world, tmp_path, capsys):
    run_select(_request(fute_world, "sst2", ["fute-tupate"]))
    run_select(_request(fute_world, "rotten_tomatoes", ["fute-tupate"]))
    out = tmp_path / "map.png"
    assert cli(["plot", "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [(p["embedder"], p["mtes"], p["dtes"]) for p in summary["panels"]] == [("tupate", 3, 2)]
    assert cli(["plot", "-o", str(tmp_path / "map.jpg")]) == 2


def test_report_times_each_method(fute_world):
    report, _ = run_select(_request(fute_world, "sst2", ["mi", "fute-tupate"]))
    seconds = report["timings"]["methods"]
    assert set(seconds) == {"mi", "fute-tupate"}
    trained = sum(e["seconds"] for e in report["fute"]["embeddings"])
    assert seconds["fute-tupate"] == pytest.approx(trained, abs=1e-3) and trained > 0


def test_the_report_says_which_embeddings_learned(fute_world):
    report, _ = run_select(_request(fute_world, "sst2", ["fute-tupate"]))
    diag = report["fute"]["diagnostics"]["fute-tupate"]
    assert sorted(diag["mte"]) == ["good", "odd", "plain"] and diag["dte"] is not None
    for entry in [diag["dte"], *diag["mte"].values()]:
        assert entry["epochs"] >= 1 and isinstance(entry["stopped_early"], bool) and entry["movement"] > 0
        # learned: the lower 95 % bound of the judged rows' gain over the constant predictor above 0
        assert entry["gain"] == pytest.approx(entry["chance"] - entry["heldout"], abs=2e-6)
        assert entry["gain_low"] <= entry["gain"] <= entry["gain_high"] and entry["gain"] <= entry["max_gain"] + 1e-6
        assert entry["learned"] == (entry["gain_low"] > 0)
    not_learned = [p for p, e in diag["mte"].items() if not e["learned"]]
    codes = [w for w in report["warnings"] if w["code"] == "fute_not_learned"]
    if diag["dte"]["learned"] and not not_learned:
        assert not codes
    else:
        assert codes and all(p in codes[0]["message"] for p in not_learned)
    # Reused embeddings bring their diagnostics from the store.
    again, _ = run_select(_request(fute_world, "sst2", ["fute-tupate"]))
    assert again["fute"]["diagnostics"] == report["fute"]["diagnostics"]
    assert {e["status"] for e in again["fute"]["embeddings"]} == {"reused"}


def test_an_untrained_embedding_is_reported_as_such(fute_world):
    """With lr 0 nothing moves; whether each embedding beat the constant predictor decides the
    warning, both ways."""
    req = _request(fute_world, "sst2", ["fute-tupate"])
    req.group(FuteOptions).embedder_options["tupate"]["lr"] = 0.0
    report, _ = run_select(req)
    diag = report["fute"]["diagnostics"]["fute-tupate"]
    assert diag["dte"]["movement"] == 0.0 and all(e["movement"] == 0.0 for e in diag["mte"].values())
    failed = [p for p, e in diag["mte"].items() if e["learned"] is False] + (["DTE"] if diag["dte"]["learned"] is False else [])
    warnings = [w for w in report["warnings"] if w["code"] == "fute_not_learned"]
    assert bool(warnings) == bool(failed)
    for name in failed:
        assert name in warnings[0]["message"]


def test_fute_compat_switch_reaches_the_embedder(fute_world, capsys):
    common = ["select", "-d", "sst2", "-p", str(fute_world["prompts"]), "-m", "fute-tupate", "--backend", "fake",
              "--data-dir", fute_world["data"], "--unlabeled", fute_world["unlabeled"], "--unlabeled-size", "20",
              "--surrogate", fute_world["surrogate"], "--dte-size", "30", "-E", "tupate.mte_epochs=2",
              "-E", "tupate.dte_epochs=2", "-n", "10", "--json", "--no-progress", "-q"]
    keys = {}
    for compat in (False, True):
        assert cli(common + (["--fute-compat"] if compat else [])) == 0
        report = json.loads(capsys.readouterr().out)
        keys[compat] = next(e["key"] for e in report["fute"]["embeddings"] if e["kind"] == "dte")
    # The DTE does not depend on the LLM's scoring: only the raw comparison changes its key.
    assert keys[False] != keys[True]
    req = _request(fute_world, "sst2", ["fute-tupate"])
    req.group(FuteOptions).embedder_options["tupate"]["compare"] = "raw"
    report, _ = run_select(req)
    assert next(e["key"] for e in report["fute"]["embeddings"] if e["kind"] == "dte") == keys[True]


def test_identical_prompts_share_one_mte(fute_world):
    prompts = Path(fute_world["prompts"])
    prompts.write_text(SA_PROMPTS + '[[prompt]]\nid = "twin"\ntemplate = "Review: {{text}} Is it great?"\n'
                       'answer_choices = { positive = ["yes"], negative = ["no"] }\n')
    report, _ = run_select(_request(fute_world, "sst2", ["fute-tupate"]))
    mtes = {e["prompt"]: e for e in report["fute"]["embeddings"] if e["kind"] == "mte"}
    assert mtes["good"]["status"] == "computed" and mtes["twin"]["status"] == "reused"
    assert mtes["good"]["key"] == mtes["twin"]["key"]
    scores = {p["id"]: p["scores"]["fute-tupate"] for p in report["prompts"]}
    assert scores["good"] == scores["twin"]
