"""The embedding map: stored MTEs and DTEs drawn in 2-D, one panel per embedding space.

FUTE ranks prompts by cosine(MTE, DTE), so each vector is L2-normalised before it is projected:
points close together on the map have a high cosine (as far as two axes can show). Vectors of
different (embedder, surrogate) pairs live in different spaces, so each pair gets its own panel
and its own projection; they are never projected together.

matplotlib is an optional dependency (``pip install 'promptsel[plot]'``) and is imported only
when a map is drawn. Drawing uses the Agg canvas directly, never pyplot's global state.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PromptselError, UsageError
from ..fute.store import StoredEmbedding

PROJECTIONS = ("pca", "tsne")

# Okabe-Ito: distinguishable under the common colour-vision deficiencies. The two bundled tasks
# have fixed colours, so a task looks the same in every panel and in every map.
TASK_COLOURS = {"sentiment": "#0072B2", "nli": "#D55E00"}
OTHER_TASK_COLOURS = ("#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
UNKNOWN_TASK_COLOUR = "#999999"
MODEL_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
MTE_SIZE = 30  # marker areas, in points squared
DTE_SIZE = 320


def filter_entries(
    entries: Iterable[StoredEmbedding],
    *,
    embedder: str | None = None,
    task: str | None = None,
    model: str | None = None,
    dataset: str | None = None,
) -> list[StoredEmbedding]:
    """The entries that match every given filter (``None`` leaves that field unfiltered).

    Names match exactly. ``model`` selects MTEs and keeps every DTE, since a DTE does not depend
    on the LLM. ``dataset`` selects DTEs; an MTE belongs to no dataset, so it is kept when its
    task is the task of one of the selected DTEs (the prompts that could be ranked for it).
    """
    kept = [
        e
        for e in entries
        if (embedder is None or e.meta.get("embedder") == embedder)
        and (task is None or _task(e) == task)
        and (model is None or e.meta.get("kind") != "mte" or e.meta.get("model") == model)
    ]
    if dataset is None:
        return kept
    dtes = [e for e in kept if e.meta.get("kind") == "dte" and e.meta.get("dataset") == dataset]
    tasks = {_task(e) for e in dtes}
    return [e for e in kept if e.meta.get("kind") == "mte" and _task(e) in tasks] + dtes


def project(
    vectors: np.ndarray, projection: str = "pca", seed: int = 0
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """2-D coordinates of the rows of ``vectors``, and the share of variance each axis explains.

    ``"pca"`` is exact and deterministic: each component's sign is fixed so that its largest
    loading is positive, which does not depend on the order of the rows. ``explained`` is
    ``(0.0, 0.0)`` when there is no variance (one point, or identical points). ``"tsne"`` returns
    ``explained=None``; it needs at least 4 points and falls back to PCA (with a warning) below
    that. The rows are projected as given; the map normalises them first.
    """
    if projection not in PROJECTIONS:
        raise UsageError(
            f"Unknown projection '{projection}'. Choose one of: {', '.join(PROJECTIONS)}."
        )
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"project() needs a 2-D array of row vectors, got shape {x.shape}")
    n = x.shape[0]
    if projection == "tsne":
        if n >= 4:
            return _tsne(x, seed), None
        warnings.warn(f"t-SNE needs at least 4 points, got {n}; using PCA instead.", stacklevel=2)
    return _pca(x)


def _pca(x: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    coords = np.zeros((x.shape[0], 2))
    if x.shape[0] < 2:
        return coords, (0.0, 0.0)
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    total = float(np.sum(s**2))
    if total <= 1e-24 * max(1.0, float(np.sum(x**2))):
        return coords, (0.0, 0.0)
    k = min(2, len(s))
    components = vt[:k]
    # The sign of a singular vector is arbitrary; pin it so the map never flips between runs.
    largest = np.argmax(np.abs(components), axis=1)
    components = components * np.sign(components[np.arange(k), largest])[:, None]
    coords[:, :k] = centred @ components.T
    explained = np.zeros(2)
    explained[:k] = s[:k] ** 2 / total
    return coords, (float(explained[0]), float(explained[1]))


def tsne_perplexity(n: int) -> int:
    return min(30, max(2, (n - 1) // 3))


def _tsne(x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    tsne = TSNE(n_components=2, init="pca", random_state=seed, perplexity=tsne_perplexity(len(x)))
    # One thread: a map has hundreds of points, and OpenMP threads competing with other work on
    # the machine made Barnes-Hut ~20x slower in a measurement (30 s instead of 1.6 s).
    with threadpool_limits(limits=1, user_api="openmp"):
        return np.asarray(tsne.fit_transform(x), dtype=np.float64)


def plot_embeddings(
    entries: Iterable[StoredEmbedding],
    path: str | Path,
    *,
    projection: str = "pca",
    title: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Draw the embedding map of ``entries`` to ``path`` (PNG unless the suffix says otherwise).

    One panel per (embedder, surrogate), in name order. MTEs are small markers coloured by task
    and shaped by model, labelled with their prompt id; DTEs are large stars coloured by task,
    labelled with their dataset. Returns ``{"path", "panels", "tasks", "models"}``, where each
    panel is ``{"embedder", "surrogate", "mtes", "dtes", "projection", "explained"}``.
    """
    if projection not in PROJECTIONS:
        raise UsageError(
            f"Unknown projection '{projection}'. Choose one of: {', '.join(PROJECTIONS)}."
        )
    panels = _panels(list(entries))
    if not panels:
        raise PromptselError(
            "No task embeddings to plot: run `promptsel embed` or "
            "`promptsel select --methods fute-taskemb` first."
        )
    try:
        import matplotlib
    except ImportError:
        raise PromptselError(
            "promptsel plot needs matplotlib.", hint="pip install 'promptsel[plot]'"
        ) from None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tasks = sorted({_task(e) for p in panels for e in p.entries}, key=_task_order)
    models = sorted({_model(e) for p in panels for e in p.entries if _kind(e) == "mte"})
    colours = _task_colours(tasks)
    markers = {m: MODEL_MARKERS[i % len(MODEL_MARKERS)] for i, m in enumerate(models)}

    ncols = len(panels) if len(panels) <= 3 else min(3, math.ceil(math.sqrt(len(panels))))
    nrows = math.ceil(len(panels) / ncols)
    with matplotlib.rc_context({"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9}):
        # The legend column is as wide as its longest entry (model names can be long).
        longest = max(
            len(x) for x in [*models, "dataset, coloured by task", "LLM of the MTE (shape)"]
        )
        width = 5.2 * ncols + max(2.2, 0.8 + 0.065 * longest)
        fig = Figure(figsize=(width, 5.0 * nrows + 0.5), dpi=150, layout="constrained")
        FigureCanvasAgg(fig)
        fig.patch.set_facecolor("white")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        drawn = []
        for ax, panel in zip(axes, panels):  # a loop, not a comprehension: warnings' stacklevel
            drawn.append(_draw_panel(ax, panel, projection, seed, colours, markers))
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        _legend(fig, tasks, models, colours, markers)
        caption = (
            "Each point is an L2-normalised task embedding projected to 2-D. FUTE ranks a dataset's "
            "prompts by cosine(MTE, DTE), so the MTEs near a DTE are the prompts it ranks high"
        )
        caption += (
            " (t-SNE keeps who is near whom, not the distances)."
            if any(p["projection"] == "tsne" for p, _ in drawn)
            else " (up to what the two axes leave out)."
        )
        lines = math.ceil(len(caption) / (width * 15))  # about 15 characters of 8 pt an inch
        caption = textwrap.fill(caption, math.ceil(len(caption) / lines) + 8)  # balanced lines
        fig.supxlabel(caption, fontsize=8, color="#555555")
        if title:
            fig.suptitle(title, fontsize=12, fontweight="bold")
        # Lay out once, freeze it, then place the labels in the final pixel geometry.
        fig.canvas.draw()
        fig.set_layout_engine("none")
        renderer = fig.canvas.get_renderer()
        summary_panels = []
        for ax, (summary, labels) in zip(axes, drawn):
            summary["labels_hidden"] = _place_labels(ax, labels, renderer)
            summary_panels.append(summary)
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=150, facecolor="white")
    return {"path": str(out), "panels": summary_panels, "tasks": tasks, "models": models}


class _Panel:
    def __init__(self, embedder: str, surrogate: str, entries: list[StoredEmbedding]) -> None:
        self.embedder = embedder
        self.surrogate = surrogate
        self.entries = entries


def _kind(e: StoredEmbedding) -> str:
    return str(e.meta.get("kind", ""))


def _task(e: StoredEmbedding) -> str:
    return str(e.meta.get("task") or "")


def _model(e: StoredEmbedding) -> str:
    return str(e.meta.get("model") or "?")


def _task_order(task: str) -> tuple[int, str]:
    # Bundled tasks first, in a fixed order; unknown ("") last.
    return (
        (list(TASK_COLOURS).index(task), task)
        if task in TASK_COLOURS
        else (len(TASK_COLOURS) + (task == ""), task)
    )


def _task_colours(tasks: Sequence[str]) -> dict[str, str]:
    colours = {}
    others = 0
    for task in tasks:
        if task in TASK_COLOURS:
            colours[task] = TASK_COLOURS[task]
        elif task == "":
            colours[task] = UNKNOWN_TASK_COLOUR
        else:
            colours[task] = OTHER_TASK_COLOURS[others % len(OTHER_TASK_COLOURS)]
            others += 1
    return colours


def _panels(entries: list[StoredEmbedding]) -> list[_Panel]:
    """Group by space, keeping the vectors of each group's most common length."""
    groups: dict[tuple[str, str], list[StoredEmbedding]] = defaultdict(list)
    unusable: Counter[str] = Counter()
    for e in entries:
        vector = np.asarray(e.vector, dtype=np.float64)
        if _kind(e) not in ("mte", "dte"):
            unusable["of unknown kind"] += 1
        elif (
            vector.ndim != 1
            or vector.size == 0
            or not np.all(np.isfinite(vector))
            or not np.any(vector)
        ):
            unusable["empty, zero or not finite"] += 1
        else:
            space = (str(e.meta.get("embedder") or "?"), str(e.meta.get("surrogate") or "?"))
            groups[space].append(e)
    for why, count in unusable.items():
        warnings.warn(f"Left {count} embedding(s) out of the map: {why}.", stacklevel=3)
    panels = []
    for (embedder, surrogate), group in sorted(groups.items()):
        lengths = Counter(len(e.vector) for e in group)
        length = max(lengths, key=lambda n: (lengths[n], n))
        kept = [e for e in group if len(e.vector) == length]
        if len(kept) < len(group):
            others = ", ".join(str(n) for n in sorted(lengths) if n != length)
            warnings.warn(
                f"Left {len(group) - len(kept)} {embedder} on {surrogate} embedding(s) out of the map: "
                f"their length ({others}) differs from the other {len(kept)} ({length}). "
                "They were probably made by another version of the embedder; recompute them.",
                stacklevel=3,
            )
        kept.sort(
            key=lambda e: (
                _kind(e),
                _task(e),
                _model(e),
                str(e.meta.get("prompt", "")),
                str(e.meta.get("dataset", "")),
                e.key,
            )
        )
        panels.append(_Panel(embedder, surrogate, kept))
    return panels


def _draw_panel(
    ax, panel: _Panel, projection: str, seed: int, colours, markers
) -> tuple[dict[str, Any], list[_Label]]:
    """Draw one panel's points and axes; return its summary and the labels still to place."""
    vectors = np.stack([np.asarray(e.vector, dtype=np.float64) for e in panel.entries])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with warnings.catch_warnings():
        # Say which panel fell back to PCA rather than repeating project()'s generic warning.
        warnings.simplefilter("ignore")
        coords, explained = project(vectors, projection, seed)
    used = "tsne" if explained is None else "pca"
    if used != projection:
        warnings.warn(
            f"{panel.embedder} on {panel.surrogate}: t-SNE needs at least 4 points, "
            f"got {len(vectors)}; this panel uses PCA.",
            stacklevel=3,
        )
    is_mte = np.array([_kind(e) == "mte" for e in panel.entries])
    n_mte = int(is_mte.sum())

    by_style: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, e in enumerate(panel.entries):
        if is_mte[i]:
            by_style[(_task(e), _model(e))].append(i)
    for (task, model), idx in by_style.items():
        ax.scatter(
            coords[idx, 0],
            coords[idx, 1],
            s=MTE_SIZE,
            c=colours[task],
            marker=markers[model],
            edgecolors="white",
            linewidths=0.5,
            alpha=0.9,
            zorder=3,
        )
    dte_idx = np.flatnonzero(~is_mte)
    for i in dte_idx:
        ax.scatter(
            [coords[i, 0]],
            [coords[i, 1]],
            s=DTE_SIZE,
            c=colours[_task(panel.entries[i])],
            marker="*",
            edgecolors="black",
            linewidths=1.1,
            zorder=5,
        )

    # Labels are placed once the layout is final (see _place_labels). Datasets first, then the
    # prompts by their highest cosine to a dataset (FUTE's ranking score), so when there is no
    # room for every prompt id, the ones a reader is looking for are the ones shown.
    labels = [_Label(_dataset_label(panel.entries[i], panel), coords[i], True) for i in dte_idx]
    mte_idx = np.flatnonzero(is_mte)
    if len(dte_idx):
        closeness = (vectors[mte_idx] @ vectors[dte_idx].T).max(axis=1)
        mte_idx = mte_idx[np.argsort(-closeness, kind="stable")]
    labels += [
        _Label(str(panel.entries[i].meta.get("prompt", "?")), coords[i], False) for i in mte_idx
    ]

    space, counts = (
        f"{panel.embedder} on {panel.surrogate}",
        f"({_plural(n_mte, 'MTE')}, {_plural(len(vectors) - n_mte, 'DTE')})",
    )
    # A long surrogate name would run into the next panel's title.
    ax.set_title(f"{space}\n{counts}" if len(space) + len(counts) > 52 else f"{space} {counts}")
    if used == "pca":
        has_variance = explained is not None and sum(explained) > 0
        for axis, (name, share) in enumerate(zip(("PC1", "PC2"), explained or (0.0, 0.0))):
            label = f"{name} ({share:.0%} of variance)" if has_variance else name
            (ax.set_xlabel if axis == 0 else ax.set_ylabel)(label)
    else:
        ax.set_xlabel(f"t-SNE 1 (perplexity {tsne_perplexity(len(vectors))})")
        ax.set_ylabel("t-SNE 2")
    # Equal scales keep the picture's distances honest; margins leave room for the labels.
    ax.set_aspect("equal", adjustable="datalim")
    ax.margins(0.15)
    ax.grid(True, color="#e6e6e6", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=7, length=2)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    summary = {
        "embedder": panel.embedder,
        "surrogate": panel.surrogate,
        "mtes": n_mte,
        "dtes": len(vectors) - n_mte,
        "projection": used,
        "explained": None if explained is None else list(explained),
    }
    return summary, labels


class _Label:
    def __init__(self, text: str, xy: np.ndarray, dataset: bool) -> None:
        self.text = text
        self.xy = xy
        self.dataset = dataset


def _place_labels(ax, labels: list[_Label], renderer) -> int:
    """Put each label where it covers no point and no other label; return how many did not fit.

    A greedy search over rings of positions around the point, nearest ring first and, within a
    ring, pointing away from the neighbouring points first (so leader lines fan out rather than
    cross). A label placed away from its point gets a thin leader line. Works in pixels, so it
    runs once the layout is final.
    """
    from matplotlib import patheffects
    from matplotlib.font_manager import FontProperties

    px = ax.figure.dpi / 72  # pixels per point
    xy = ax.transData.transform(np.array([lab.xy for lab in labels]).reshape(-1, 2))
    # Every marker is an obstacle: a square as wide as the marker.
    radius = np.array([math.sqrt(DTE_SIZE if lab.dataset else MTE_SIZE) * px / 2 for lab in labels])
    frame = ax.bbox
    note_font = FontProperties(size=7)
    note_w, note_h, _ = renderer.get_text_width_height_descent(
        "99 labels hidden (no room)", note_font, False
    )
    note = np.array([[frame.x1 - note_w - 4, frame.y0, frame.x1, frame.y0 + note_h + 4]])
    taken = np.concatenate([np.column_stack([xy - radius[:, None], xy + radius[:, None]]), note])
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    # Leader lines stay short: a label far from its point is harder to read than a missing one.
    rings = np.array([1, 7, 14, 22, 30]) * px
    hidden = 0
    for i, lab in enumerate(labels):
        font = FontProperties(size=9, weight="bold") if lab.dataset else FontProperties(size=6)
        w, h, _ = renderer.get_text_width_height_descent(lab.text, font, False)
        half = np.array([w + 2, h + 2]) / 2
        near = np.linalg.norm(xy - xy[i], axis=1) < 30 * px
        away = xy[i] - xy[near].mean(axis=0)
        away_angle = math.atan2(away[1], away[0]) if np.hypot(*away) > 0.5 else math.pi / 4
        spot = None
        for ring, r in enumerate(radius[i] + rings):
            angles = np.linspace(0, 2 * np.pi, 8 if ring == 0 else 24, endpoint=False)
            angles = angles[np.argsort(-np.cos(angles - away_angle), kind="stable")]
            d = np.column_stack([np.cos(angles), np.sin(angles)])
            # The box touches the circle of radius r on the side facing the point.
            lean = np.where(np.abs(d) < 0.2, 0.0, np.sign(d))
            centres = xy[i] + d * r + lean * half
            lo, hi = centres - half, centres + half
            inside = (
                (lo[:, 0] >= frame.x0)
                & (lo[:, 1] >= frame.y0)
                & (hi[:, 0] <= frame.x1)
                & (hi[:, 1] <= frame.y1)
            )
            overlaps = (
                (lo[:, None, 0] < taken[None, :, 2])
                & (hi[:, None, 0] > taken[None, :, 0])
                & (lo[:, None, 1] < taken[None, :, 3])
                & (hi[:, None, 1] > taken[None, :, 1])
            )
            ok = np.flatnonzero(inside & ~overlaps.any(axis=1))
            if len(ok):
                spot = (centres[ok[0]], ring)
                break
        if spot is None:
            hidden += 1
            continue
        centre, ring = spot
        taken = np.concatenate([taken, [[*(centre - half), *(centre + half)]]])
        style: dict[str, Any] = (
            {"fontsize": 9, "fontweight": "bold", "zorder": 6}
            if lab.dataset
            else {"fontsize": 6, "color": "#333333", "zorder": 4}
        )
        if ring > 0:
            style["arrowprops"] = {
                "arrowstyle": "-",
                "color": "#999999",
                "linewidth": 0.5,
                "shrinkA": 1,
                "shrinkB": radius[i] / px,
            }
            # An invisible box, so that the leader line stops at the text instead of crossing it.
            style["bbox"] = {
                "boxstyle": "square,pad=0.05",
                "facecolor": "none",
                "edgecolor": "none",
            }
        ax.annotate(
            lab.text,
            lab.xy,
            xytext=tuple((centre - xy[i]) / px),
            textcoords="offset points",
            ha="center",
            va="center",
            path_effects=halo,
            annotation_clip=False,
            **style,
        )
    if hidden:
        ax.text(
            0.995,
            0.005,
            f"{hidden} label{'s' if hidden > 1 else ''} hidden (no room)",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontproperties=note_font,
            color="#777777",
        )
    return hidden


def _dataset_label(e: StoredEmbedding, panel: _Panel) -> str:
    name = str(e.meta.get("dataset") or "?")
    same = [
        d
        for d in panel.entries
        if _kind(d) == "dte" and d.meta.get("dataset") == e.meta.get("dataset")
    ]
    split = e.meta.get("split")
    return f"{name} ({split})" if len(same) > 1 and split else name


def _legend(fig, tasks, models, colours, markers) -> None:
    """One legend beside the panels, in headed sections: task (colour), LLM (shape), dataset."""
    from matplotlib.lines import Line2D

    def mark(marker: str, size: float, face: str, edge: str) -> Line2D:
        return Line2D([], [], linestyle="none", marker=marker, markersize=size,
                      markerfacecolor=face, markeredgecolor=edge)  # fmt: skip

    sections = [
        ("Task (colour)", [(mark("o", 7, colours[t], "white"), t or "unknown") for t in tasks])
    ]
    if models:
        shapes = [(mark(markers[m], 6, "#666666", "white"), m) for m in models]
        sections.append(("LLM of the MTE (shape)", shapes))
    sections.append(
        ("Dataset (DTE)", [(mark("*", 14, "#bbbbbb", "black"), "dataset, coloured by task")])
    )
    handles, labels, headers = [], [], []
    for n, (header, rows) in enumerate(sections):
        if n:  # a blank row between sections
            handles.append(Line2D([], [], linestyle="none"))
            labels.append("")
        headers.append(len(labels))
        handles.append(Line2D([], [], linestyle="none"))
        labels.append(header)
        handles += [h for h, _ in rows]
        labels += [label for _, label in rows]
    legend = fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False,
                        handletextpad=0.6, borderaxespad=0.5)  # fmt: skip
    texts = legend.get_texts()
    for i in headers:
        texts[i].set_fontweight("bold")


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
