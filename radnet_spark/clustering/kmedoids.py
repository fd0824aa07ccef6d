"""CLARA-style k-medoids on bounded samples, then nearest-medoid assignment in Spark.

One seeded pool of at most ``fit_sample_rows`` vectors comes to the driver. From it, ``draws``
sub-samples of ``draw_rows`` rows are clustered with k-medoids (k-medoids++ seeding, then
alternating assignment / medoid update until stable); each draw's medoids are scored on the whole
pool and the draw with the lowest total distance wins (Kaufman & Rousseeuw's CLARA, with the pool
standing in for the full data so nothing unbounded reaches the driver).

Implemented in numpy: the PyPI ``kmedoids`` package (FasterPAM) installs cleanly but is GPL-3.0,
and scikit-learn-extra does not build against numpy 2.
"""

from __future__ import annotations

import time

import numpy as np
from pyspark.sql import DataFrame

from radnet_spark.clustering.kmeans import KMeansModel, check_distance, pairwise_distances, sample_matrix


def _plusplus_seeds(dissimilarity: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    # k-means++-style seeding on a dissimilarity matrix: far points are likelier new medoids.
    n = dissimilarity.shape[0]
    medoids = [int(rng.integers(n))]
    nearest = dissimilarity[medoids[0]].copy()
    for _ in range(1, k):
        weights = nearest**2
        total = weights.sum()
        candidate = int(rng.choice(n, p=weights / total)) if total > 0 else int(rng.integers(n))
        medoids.append(candidate)
        nearest = np.minimum(nearest, dissimilarity[candidate])
    return np.asarray(medoids)


def kmedoids_on_dissimilarity(
    dissimilarity: np.ndarray, k: int, *, max_iter: int = 100, seed: int = 42
) -> tuple[np.ndarray, float]:
    """k-medoids on a square dissimilarity matrix by alternating assignment and medoid update.

    Args:
        dissimilarity: ``(n, n)`` symmetric, zero diagonal.
        k: number of medoids (capped at ``n``).
        max_iter: bound on alternations.
        seed: seed for the k-medoids++ initialisation.

    Returns:
        ``(medoid_indices, total_cost)``.
    """
    n = dissimilarity.shape[0]
    k = min(k, n)
    rng = np.random.default_rng(seed)
    medoids = _plusplus_seeds(dissimilarity, k, rng)
    for _ in range(max_iter):
        labels = dissimilarity[:, medoids].argmin(axis=1)
        updated = medoids.copy()
        for cluster in range(k):
            members = np.flatnonzero(labels == cluster)
            if len(members) == 0:
                continue
            within = dissimilarity[np.ix_(members, members)].sum(axis=1)
            updated[cluster] = members[int(within.argmin())]
        if np.array_equal(np.sort(updated), np.sort(medoids)):
            break
        medoids = updated
    cost = float(dissimilarity[:, medoids].min(axis=1).sum())
    return medoids, cost


def clara_matrix(
    x: np.ndarray,
    k: int,
    *,
    distance: str = "euclidean",
    draws: int = 5,
    draw_rows: int | None = None,
    max_iter: int = 100,
    seed: int = 42,
) -> KMeansModel:
    """CLARA on a local matrix: best of ``draws`` sub-sample k-medoids, scored on all of ``x``.

    Args:
        x: ``(n, d)`` pool of rows.
        k: number of medoids.
        distance: ``euclidean`` or ``cosine``.
        draws: sub-samples tried.
        draw_rows: rows per sub-sample; default ``min(n, max(40 + 2k, 2000))`` (bounded: the
            draw's dissimilarity matrix is ``draw_rows²`` doubles).
        max_iter: alternations per draw.
        seed: seed for draws and initialisation.

    Returns:
        A :class:`KMeansModel` with ``algorithm="kmedoids"`` whose centres are rows of ``x``.
    """
    check_distance(distance)
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n == 0:
        raise ValueError("Cannot fit k-medoids on zero rows.")
    k = min(int(k), n)
    size = min(n, draw_rows or max(40 + 2 * k, 2000))
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    best_cost, best_medoids = np.inf, None
    for draw in range(max(1, draws)):
        rows = np.sort(rng.choice(n, size=size, replace=False)) if size < n else np.arange(n)
        sub = x[rows]
        medoids, _ = kmedoids_on_dissimilarity(
            pairwise_distances(sub, sub, distance), k, max_iter=max_iter, seed=seed + draw
        )
        centres = sub[medoids]
        cost = float(pairwise_distances(x, centres, distance).min(axis=1).sum())
        if cost < best_cost:
            best_cost, best_medoids = cost, centres
        if size == n:
            break  # every draw would be the whole pool
    return KMeansModel(
        centres=np.asarray(best_medoids),
        distance=distance,
        algorithm="kmedoids",
        info={
            "engine": "clara",
            "fit_rows": n,
            "draw_rows": size,
            "draws": draws,
            "cost": best_cost,
            "fit_seconds": time.perf_counter() - start,
            "seed": seed,
        },
    )


def fit_kmedoids(
    df: DataFrame,
    k: int,
    *,
    features_col: str = "features",
    distance: str = "cosine",
    fit_sample_rows: int = 20_000,
    draws: int = 5,
    draw_rows: int | None = None,
    max_iter: int = 100,
    seed: int = 42,
) -> KMeansModel:
    """Sample a bounded pool from ``df`` and run :func:`clara_matrix`; assign with ``model.assign``.

    Args:
        df: Rows with a vector column; filter to the training split before calling.
        k: Number of medoids.
        features_col: Vector column.
        distance: ``cosine`` or ``euclidean``.
        fit_sample_rows: Size of the pool brought to the driver.
        draws: CLARA draws from the pool; the medoids of the cheapest draw on the whole pool win.
        draw_rows: Rows per draw; None lets :func:`clara_matrix` choose.
        max_iter: Swap iterations per draw.
        seed: Seed of the pool and of every draw.

    Returns:
        A :class:`KMeansModel` whose centres are the medoids (``algorithm="kmedoids"``).
    """
    pool = sample_matrix(df, features_col, fit_sample_rows, seed)
    return clara_matrix(
        pool, k, distance=distance, draws=draws, draw_rows=draw_rows, max_iter=max_iter, seed=seed
    )
