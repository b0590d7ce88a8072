"""The embedding map's projection: L2-normalised task embeddings in 2-D (PCA, or t-SNE).

Only numbers here (numpy, and scikit-learn for t-SNE): the drawing is in ``plot.py``.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import UsageError

PROJECTIONS = ("pca", "tsne")


def check_projection(projection: str) -> None:
    if projection not in PROJECTIONS:
        raise UsageError(
            f"Unknown projection '{projection}'. Choose one of: {', '.join(PROJECTIONS)}."
        )


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
    check_projection(projection)
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
