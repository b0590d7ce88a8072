"""The embedding map: stored MTEs and DTEs drawn in 2-D, one panel per embedding space.

FUTE ranks prompts by cosine(MTE, DTE), so each vector is L2-normalised before it is projected:
points close together on the map have a high cosine (as far as two axes can show). Vectors of
different (embedder, surrogate) pairs live in different spaces, so each pair gets its own panel
and its own projection; they are never projected together.

matplotlib is an optional dependency (``pip install 'promptsel[plot]'``) and is imported only
when a map is drawn. Drawing uses the Agg canvas directly, never pyplot's global state.

This module draws; which entries make which panel is ``map_panels.py``, and the projection to
two axes ``projection.py`` (both without matplotlib).
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PromptselError
from ..files import atomic_open
from ..fute.store import StoredEmbedding
from .map_panels import Panel, filter_entries, group_panels, kind_of, model_of, task_of
from .projection import check_projection, project, tsne_perplexity

#: What the command line and the tests import from here.
__all__ = ["filter_entries", "plot_embeddings", "project"]

# Okabe-Ito: distinguishable under the common colour-vision deficiencies. The two bundled tasks
# have fixed colours, so a task looks the same in every panel and in every map.
TASK_COLOURS = {"sentiment": "#0072B2", "nli": "#D55E00"}
OTHER_TASK_COLOURS = ("#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
UNKNOWN_TASK_COLOUR = "#999999"
MODEL_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
MTE_SIZE = 30  # marker areas, in points squared
DTE_SIZE = 320


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
    check_projection(projection)
    panels = group_panels(list(entries))
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

    tasks = sorted({task_of(e) for p in panels for e in p.entries}, key=_task_order)
    models = sorted({model_of(e) for p in panels for e in p.entries if kind_of(e) == "mte"})
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
        with atomic_open(out) as fh:  # the format follows the suffix, as it would for a path
            fig.savefig(fh, format=out.suffix[1:].lower() or None, dpi=150, facecolor="white")
    return {"path": str(out), "panels": summary_panels, "tasks": tasks, "models": models}


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


def _draw_panel(
    ax, panel: Panel, projection: str, seed: int, colours, markers
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
    is_mte = np.array([kind_of(e) == "mte" for e in panel.entries])
    n_mte = int(is_mte.sum())

    by_style: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, e in enumerate(panel.entries):
        if is_mte[i]:
            by_style[(task_of(e), model_of(e))].append(i)
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
            c=colours[task_of(panel.entries[i])],
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


def _dataset_label(e: StoredEmbedding, panel: Panel) -> str:
    name = str(e.meta.get("dataset") or "?")
    same = [
        d
        for d in panel.entries
        if kind_of(d) == "dte" and d.meta.get("dataset") == e.meta.get("dataset")
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
