"""promptsel.plot: the embedding map, the projection under it, and the entry filters."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from promptsel.errors import PromptselError, UsageError
from promptsel.formats.plot import filter_entries, plot_embeddings, project
from promptsel.fute.store import StoredEmbedding

needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason="needs matplotlib (pip install 'promptsel[plot]')",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SENTIMENT_BLUE = (0x00, 0x72, 0xB2)  # Okabe-Ito, the colour the map gives the sentiment task
NLI_VERMILLION = (0xD5, 0x5E, 0x00)


def mte(
    embedder: str, vector, *, task: str, model: str, prompt: str, surrogate: str = "bert"
) -> StoredEmbedding:
    key = f"{embedder}-{surrogate}-{model}-{prompt}"
    meta = {"kind": "mte", "embedder": embedder, "surrogate": surrogate, "task": task, "model": model,
            "backend": "llamacpp", "prompt": prompt, "prompt_set": prompt[:-2], "key": key}  # fmt: skip
    return StoredEmbedding(key, np.asarray(vector, dtype=np.float32), meta)


def dte(
    embedder: str, vector, *, task: str, dataset: str, surrogate: str = "bert"
) -> StoredEmbedding:
    key = f"{embedder}-{surrogate}-{dataset}"
    meta = {"kind": "dte", "embedder": embedder, "surrogate": surrogate, "task": task,
            "dataset": dataset, "split": "test", "key": key}  # fmt: skip
    return StoredEmbedding(key, np.asarray(vector, dtype=np.float32), meta)


def build(seed: int = 0) -> list[StoredEmbedding]:
    """taskemb (length 8): 2 tasks x 2 models x 3 prompts + 3 DTEs; tupate (length 5): 2 x 1 x 2 + 1."""
    rng = np.random.default_rng(seed)
    entries = []
    for embedder, dim, models, n_prompts, datasets in (
        (
            "taskemb",
            8,
            ("m-small", "m-large"),
            3,
            (("sst2", "sentiment"), ("imdb", "sentiment"), ("rte", "nli")),
        ),
        ("tupate", 5, ("m-small",), 2, (("sst2", "sentiment"),)),
    ):
        centre = {"sentiment": rng.normal(size=dim), "nli": rng.normal(size=dim)}
        for task, prefix in (("sentiment", "sa"), ("nli", "nli")):
            for model in models:
                for p in range(n_prompts):
                    vector = centre[task] + 0.3 * rng.normal(size=dim)
                    entries.append(
                        mte(embedder, vector, task=task, model=model, prompt=f"{prefix}{p + 1:02d}")
                    )
        for dataset, task in datasets:
            entries.append(
                dte(embedder, centre[task] + 0.2 * rng.normal(size=dim), task=task, dataset=dataset)
            )
    return entries


def read_png(path):
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)
    return np.round(image[..., :3] * 255).astype(int)


def count_colour(image: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int(np.all(np.abs(image - np.array(rgb)) <= 2, axis=-1).sum())


@needs_matplotlib
class TestMap:
    def test_writes_a_png_with_one_panel_per_space(self, tmp_path):
        path = tmp_path / "maps" / "map.png"  # the folder does not exist yet
        summary = plot_embeddings(build(), path, title="Embedding map")
        assert summary["path"] == str(path)
        panels = [
            (p["embedder"], p["surrogate"], p["mtes"], p["dtes"], p["projection"])
            for p in summary["panels"]
        ]
        assert panels == [("taskemb", "bert", 12, 3, "pca"), ("tupate", "bert", 4, 1, "pca")]
        assert summary["tasks"] == ["sentiment", "nli"]
        assert summary["models"] == ["m-large", "m-small"]

        image = read_png(path)
        height, width = image.shape[:2]
        assert width > height > 300  # two panels side by side
        assert image.var() > 0
        # The DTE stars are drawn opaque in their task's colour, so that exact colour is on the map.
        assert count_colour(image, SENTIMENT_BLUE) > 20
        assert count_colour(image, NLI_VERMILLION) > 20

    def test_every_label_fits_on_a_sparse_map(self, tmp_path):
        summary = plot_embeddings(build(), tmp_path / "map.png")
        assert [p["labels_hidden"] for p in summary["panels"]] == [0, 0]

    def test_figure_grows_with_the_panels(self, tmp_path):
        four_spaces = build() + [
            StoredEmbedding(e.key + "-x", e.vector, {**e.meta, "surrogate": "roberta"})
            for e in build(seed=1)
        ]
        sizes = {}
        for n, entries in (
            (1, filter_entries(build(), embedder="tupate")),
            (2, build()),
            (4, four_spaces),
        ):
            summary = plot_embeddings(entries, tmp_path / f"{n}.png")
            assert len(summary["panels"]) == n
            sizes[n] = read_png(tmp_path / f"{n}.png").shape[:2]
        assert sizes[2][1] > sizes[1][1]  # a second panel beside the first
        assert sizes[2][0] == sizes[1][0]
        assert sizes[4][0] > 1.6 * sizes[2][0]  # four panels: 2 x 2, a second row
        assert sizes[4][1] == sizes[2][1]

    def test_vectors_are_normalised_before_projecting(self, tmp_path):
        entries = build()
        scales = np.random.default_rng(3).uniform(0.1, 10, size=len(entries))
        scaled = [StoredEmbedding(e.key, e.vector * s, e.meta) for e, s in zip(entries, scales)]
        plain = plot_embeddings(entries, tmp_path / "a.png")["panels"]
        rescaled = plot_embeddings(scaled, tmp_path / "b.png")["panels"]
        for a, b in zip(plain, rescaled):
            assert a["explained"] == pytest.approx(b["explained"], abs=1e-5)

    def test_tsne_panel_and_fallback(self, tmp_path):
        tiny = [
            dte("tiny", [1, 0, 0], task="nli", dataset="rte"),
            mte("tiny", [0, 1, 0], task="nli", model="m-small", prompt="nli01"),
        ]
        entries = [*build(), *tiny]
        with pytest.warns(UserWarning, match="tiny on bert: t-SNE needs at least 4 points"):
            summary = plot_embeddings(entries, tmp_path / "t.png", projection="tsne", seed=1)
        assert [(p["embedder"], p["projection"]) for p in summary["panels"]] == [
            ("taskemb", "tsne"),
            ("tiny", "pca"),
            ("tupate", "tsne"),
        ]
        assert read_png(tmp_path / "t.png").var() > 0

    def test_one_point_and_identical_points(self, tmp_path):
        one = plot_embeddings(
            [dte("taskemb", [0, 3, 4], task="sentiment", dataset="sst2")], tmp_path / "one.png"
        )
        assert one["panels"][0]["explained"] == [0.0, 0.0]
        # 60 MTEs on the same spot: most labels cannot be placed, and the map says so.
        crowd = [
            mte("taskemb", [1, 1, 0], task="nli", model="m", prompt=f"nli{i:02d}")
            for i in range(60)
        ]
        summary = plot_embeddings(crowd, tmp_path / "crowd.png")
        assert 0 < summary["panels"][0]["labels_hidden"] < 60
        assert read_png(tmp_path / "crowd.png").var() > 0

    def test_prompts_nearest_a_dataset_are_labelled_first(self, tmp_path, monkeypatch):
        # When a crowd leaves no room for every label, the ones kept are placed first: datasets,
        # then prompts by cosine to their nearest dataset (FUTE's ranking), not store order.
        import promptsel.formats.plot as plot

        order = []
        place = plot._place_labels

        def recording(ax, labels, renderer):
            order.extend(label.text for label in labels)
            return place(ax, labels, renderer)

        monkeypatch.setattr(plot, "_place_labels", recording)
        entries = [
            dte("taskemb", [1, 0, 0], task="nli", dataset="rte"),
            mte("taskemb", [0, 1, 0], task="nli", model="m", prompt="far"),  # cosine 0
            mte("taskemb", [1, 0.1, 0], task="nli", model="m", prompt="near"),  # cosine 0.995
            mte("taskemb", [1, 1, 0], task="nli", model="m", prompt="mid"),  # cosine 0.707
        ]
        plot_embeddings(entries, tmp_path / "map.png")
        assert order == ["rte", "near", "mid", "far"]

    def test_vectors_of_another_length_are_left_out_with_a_warning(self, tmp_path):
        entries = [
            *build(),
            mte("taskemb", np.ones(9), task="nli", model="m-small", prompt="nli99"),
        ]
        with pytest.warns(
            UserWarning, match=r"Left 1 taskemb on bert embedding\(s\) out.*length \(9\)"
        ):
            summary = plot_embeddings(entries, tmp_path / "map.png")
        assert summary["panels"][0]["mtes"] == 12

    def test_unusable_vectors_are_left_out_with_a_warning(self, tmp_path):
        entries = [
            *build(),
            mte("taskemb", np.zeros(8), task="nli", model="m-small", prompt="nli98"),
        ]
        with pytest.warns(UserWarning, match="zero or not finite"):
            summary = plot_embeddings(entries, tmp_path / "map.png")
        assert summary["panels"][0]["mtes"] == 12

    def test_unknown_projection(self, tmp_path):
        with pytest.raises(UsageError, match="Unknown projection 'umap'"):
            plot_embeddings(build(), tmp_path / "map.png", projection="umap")


class TestErrors:
    def test_no_entries(self, tmp_path):
        with pytest.raises(PromptselError, match="promptsel embed") as info:
            plot_embeddings([], tmp_path / "map.png")
        assert "\n" not in str(info.value)
        assert not (tmp_path / "map.png").exists()

    def test_nothing_plottable(self, tmp_path):
        other = StoredEmbedding(
            "k", np.ones(3, np.float32), {"kind": "scores", "embedder": "taskemb"}
        )
        with (
            pytest.warns(UserWarning, match="unknown kind"),
            pytest.raises(PromptselError, match="promptsel select"),
        ):
            plot_embeddings([other], tmp_path / "map.png")

    def test_missing_matplotlib(self, tmp_path, monkeypatch):
        monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
        with pytest.raises(PromptselError, match="needs matplotlib") as info:
            plot_embeddings(build(), tmp_path / "map.png")
        assert info.value.hint == "pip install 'promptsel[plot]'"


class TestProject:
    def test_points_on_a_line_lie_on_pc1(self):
        t = np.array([-2.0, -1.0, 0.0, 1.0, 3.0])
        direction = np.array([0.0, 3.0, 0.0, -1.0])  # its largest entry is positive
        points = np.array([5.0, 1.0, -2.0, 0.5]) + t[:, None] * direction
        coords, explained = project(points)
        # PC1 is the line's direction, |d| = sqrt(10), measured from the mean t = 0.2.
        assert coords[:, 0] == pytest.approx((t - 0.2) * np.sqrt(10))
        assert coords[:, 1] == pytest.approx(np.zeros(5), abs=1e-9)
        assert explained == pytest.approx((1.0, 0.0))

    def test_a_cross_by_hand(self):
        points = np.array([[2.0, 0, 0], [-2, 0, 0], [0, 1, 0], [0, -1, 0]])
        coords, explained = project(points)
        # Variances 8/4 along x and 2/4 along y: PC1 = x (80%), PC2 = y (20%), signs positive.
        assert coords == pytest.approx(np.array([[2.0, 0], [-2, 0], [0, 1], [0, -1]]))
        assert explained == pytest.approx((0.8, 0.2))

    def test_sign_does_not_depend_on_row_order(self):
        points = np.random.default_rng(0).normal(size=(9, 6))
        order = np.array([4, 8, 0, 2, 7, 1, 3, 6, 5])
        coords, _ = project(points)
        shuffled, _ = project(points[order])
        assert shuffled == pytest.approx(coords[order])

    def test_same_input_same_coordinates(self):
        points = np.random.default_rng(1).normal(size=(12, 10))
        first, second = project(points), project(points.copy())
        assert np.array_equal(first[0], second[0])
        assert first[1] == second[1]

    def test_tsne_is_seeded(self):
        points = np.random.default_rng(2).normal(size=(12, 10))
        a, explained = project(points, "tsne", seed=7)
        b, _ = project(points, "tsne", seed=7)
        assert a.shape == (12, 2)
        assert explained is None
        assert np.array_equal(a, b)

    def test_tsne_falls_back_to_pca_below_four_points(self):
        points = np.array([[1.0, 0], [0, 1], [1, 1]])
        with pytest.warns(UserWarning, match="t-SNE needs at least 4 points"):
            coords, explained = project(points, "tsne")
        assert explained is not None
        assert coords == pytest.approx(project(points, "pca")[0])

    def test_one_point_is_the_origin(self):
        coords, explained = project(np.array([[0.6, 0.8]]))
        assert coords.tolist() == [[0.0, 0.0]]
        assert explained == (0.0, 0.0)

    def test_unknown_projection(self):
        with pytest.raises(UsageError, match="Choose one of: pca, tsne"):
            project(np.eye(3), "umap")


class TestFilter:
    @staticmethod
    def keys(entries):
        return sorted(e.key for e in entries)

    def test_no_filter_keeps_everything(self):
        entries = build()
        assert self.keys(filter_entries(entries)) == self.keys(entries)

    def test_embedder(self):
        kept = filter_entries(build(), embedder="tupate")
        assert len(kept) == 5
        assert {e.meta["embedder"] for e in kept} == {"tupate"}

    def test_task_applies_to_both_kinds(self):
        kept = filter_entries(build(), task="nli")
        # taskemb: 2 models x 3 prompts + rte; tupate: 1 model x 2 prompts.
        assert len(kept) == 6 + 1 + 2
        assert {e.meta["task"] for e in kept} == {"nli"}

    def test_model_keeps_every_dte(self):
        kept = filter_entries(build(), model="m-large")
        mtes = [e for e in kept if e.meta["kind"] == "mte"]
        assert len(mtes) == 6
        assert {e.meta["model"] for e in mtes} == {"m-large"}
        assert len(kept) - len(mtes) == 4  # all DTEs, of both embedders

    def test_dataset_keeps_its_dtes_and_the_mtes_of_its_task(self):
        kept = filter_entries(build(), dataset="rte")
        assert self.keys(e for e in kept if e.meta["kind"] == "dte") == ["taskemb-bert-rte"]
        # rte is NLI: every NLI MTE (of both embedders) is kept, no sentiment one.
        assert [e.meta["task"] for e in kept if e.meta["kind"] == "mte"] == ["nli"] * 8

    def test_filters_combine(self):
        kept = filter_entries(build(), embedder="taskemb", model="m-small", dataset="sst2")
        assert sorted(
            (e.meta["kind"], e.meta.get("prompt", e.meta.get("dataset"))) for e in kept
        ) == [
            ("dte", "sst2"),
            ("mte", "sa01"),
            ("mte", "sa02"),
            ("mte", "sa03"),
        ]

    def test_unknown_name_keeps_nothing(self):
        assert filter_entries(build(), dataset="mnli") == []
