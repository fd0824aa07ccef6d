"""k-means with two fit engines behind one model: ``mllib`` (distributed) and ``sample`` (driver).

- ``mllib`` fits Spark MLlib ``KMeans`` on every row (``solver="block"`` for Euclidean distance).
- ``sample`` fits scikit-learn (or FAISS) on a bounded, seeded sample brought to the driver.

Either way the result is a :class:`KMeansModel` holding the centres as a numpy array. Assigning rows
to centres always happens in Spark (``mapInArrow`` with the centres shipped as a local array), so the
same model labels new PACS dumps without re-fitting.

Distances: ``euclidean`` is the ordinary L2 distance; ``cosine`` is ``1 - cos(x, c)``. For cosine
the ``sample`` engine L2-normalises the sample first (spherical k-means), as MLlib does internally.

MLlib's BLAS: MLlib uses native BLAS through ``dev.ludovic.netlib`` when a system ``libblas.so.3``
(e.g. Debian ``libopenblas0-pthread``) loads, and says so in the driver log (``JNIBLAS``); else it
falls back to Java BLAS (about 3x slower on this workload). Which one the JVM picked cannot be read
without the JVM handle (unavailable on Spark Connect), so :func:`native_blas_hint` only reports
whether a loadable system BLAS exists on the driver.
"""

from __future__ import annotations

import ctypes.util
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from radnet_spark.artifacts import read_step_manifest, write_step_manifest
from radnet_spark.sampling import smallest_hash_rows
from radnet_spark.vectors import l2_normalise, vectors_from_arrow

log = logging.getLogger(__name__)

DISTANCES = ("euclidean", "cosine")
ENGINES = ("sample", "mllib")
SAMPLE_BACKENDS = ("sklearn", "faiss")
MODEL_FILE = "model.json"
KMEANS_FORMAT_VERSION = 1
CENTRES_FILE = "centres.npy"


def check_distance(distance: str) -> None:
    """Raise ValueError with one sentence when ``distance`` is not a supported metric."""
    if distance not in DISTANCES:
        raise ValueError(f"Unknown distance {distance!r}; use one of {', '.join(DISTANCES)}.")


def pairwise_distances(x: np.ndarray, centres: np.ndarray, distance: str) -> np.ndarray:
    """Distances from every row of ``x`` to every centre, shape ``(n, k)``.

    Args:
        x: ``(n, d)`` rows.
        centres: ``(k, d)`` centres.
        distance: ``euclidean`` or ``cosine`` (``1 - cosine similarity``).

    Returns:
        ``(n, k)`` float64 distances.
    """
    x = np.asarray(x, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    if distance == "cosine":
        return np.clip(1.0 - l2_normalise(x) @ l2_normalise(centres).T, 0.0, 2.0)
    check_distance(distance)
    # The expansion |x|^2 - 2x.c + |c|^2 is one matrix product instead of n*k difference vectors.
    squared = (x * x).sum(axis=1)[:, None] - 2.0 * (x @ centres.T) + (centres * centres).sum(axis=1)[None, :]
    return np.sqrt(np.maximum(squared, 0.0))


def nearest_centres(x: np.ndarray, centres: np.ndarray, distance: str) -> tuple[np.ndarray, np.ndarray]:
    """Index of and distance to the nearest centre for every row of ``x``."""
    distances = pairwise_distances(x, centres, distance)
    labels = distances.argmin(axis=1)
    return labels, distances[np.arange(len(labels)), labels]


def _assign_function(
    centres: np.ndarray, distance: str, features_col: str, cluster_col: str, distance_col: str
) -> Callable[[Iterator[Any]], Iterator[Any]]:
    # Only these locals travel to the executors: never a model object or the session.
    def assign_batches(batches: Iterator[Any]) -> Iterator[Any]:
        import numpy as np
        import pyarrow as pa

        from radnet_spark.clustering.kmeans import nearest_centres
        from radnet_spark.vectors import vectors_from_arrow

        for batch in batches:
            matrix, valid = vectors_from_arrow(batch.column(features_col))
            labels = np.zeros(len(valid), dtype=np.int32)
            dists = np.zeros(len(valid), dtype=np.float64)
            if len(matrix):
                found, found_dist = nearest_centres(matrix, centres, distance)
                labels[valid] = found
                dists[valid] = found_dist
            mask = ~valid  # rows without a vector keep a null cluster rather than vanishing
            yield pa.RecordBatch.from_arrays(
                list(batch.columns)
                + [pa.array(labels, mask=mask, type=pa.int32()), pa.array(dists, mask=mask)],
                names=list(batch.schema.names) + [cluster_col, distance_col],
            )

    return assign_batches


def assign_to_centres(
    df: DataFrame,
    centres: np.ndarray,
    distance: str,
    features_col: str = "features",
    cluster_col: str = "cluster",
    distance_col: str = "distance",
) -> DataFrame:
    """Add the nearest centre's index and the distance to it, computed on the executors.

    Args:
        df: rows with an ``array<float>`` column ``features_col``.
        centres: ``(k, d)`` centres; shipped to executors as a local array.
        distance: ``euclidean`` or ``cosine``.
        features_col: vector column.
        cluster_col: output column, int (null where the vector is null).
        distance_col: output column, double (null where the vector is null).

    Returns:
        ``df`` with ``cluster_col`` and ``distance_col`` appended.
    """
    check_distance(distance)
    if features_col not in df.columns:
        raise ValueError(f"Column {features_col!r} is missing; the frame has {', '.join(df.columns)}.")
    for name in (cluster_col, distance_col):
        if name in df.columns:
            df = df.drop(name)
    schema = T.StructType(
        list(df.schema.fields)
        + [T.StructField(cluster_col, T.IntegerType()), T.StructField(distance_col, T.DoubleType())]
    )
    local_centres = np.asarray(centres, dtype=np.float64)
    return df.mapInArrow(
        _assign_function(local_centres, distance, features_col, cluster_col, distance_col), schema
    )


def sample_matrix(df: DataFrame, features_col: str, max_rows: int, seed: int) -> np.ndarray:
    """A seeded sample of at most ``max_rows`` non-null vectors, as a driver-side matrix.

    The sample is a Bernoulli draw with a fraction slightly above ``max_rows / count`` and then a
    limit, so the same input partitioning and seed give the same rows.

    Args:
        df: rows with a vector column.
        features_col: vector column.
        max_rows: upper bound on rows brought to the driver.
        seed: sampling seed.

    Returns:
        ``(m, d)`` float32 matrix, ``m <= max_rows``.
    """
    rows = df.where(F.col(features_col).isNotNull())
    if "sop_instance_uid" in df.columns:
        # Same rows in the same order whatever the partitioning (k-means++ seeding depends on order).
        key = F.col("sop_instance_uid")
        rows = smallest_hash_rows(rows, max_rows, F.xxhash64(F.lit(seed), key), [key])
    else:
        rows = rows.limit(max_rows)
    rows = rows.select(features_col)
    # One pass: the sample is fetched once and its size read from what arrived.
    table = rows.toArrow() if hasattr(rows, "toArrow") else None
    frame = rows.toPandas() if table is None else None
    if (table.num_rows if table is not None else len(frame)) == 0:
        raise ValueError(f"No rows with a non-null {features_col!r} to fit on.")
    if table is not None:
        return vectors_from_arrow(table.column(features_col))[0]
    return np.stack(frame[features_col].to_numpy()).astype(np.float32)


def native_blas_hint() -> str | None:
    """Path of a system BLAS library the JVM's netlib loader could use, or None (Java BLAS)."""
    for name in ("blas", "openblas"):
        found = ctypes.util.find_library(name)
        if found:
            return found
    return None


@dataclass
class KMeansModel:
    """Fitted centres plus how they were obtained; assignment runs in Spark.

    Attributes:
        centres: ``(k, d)`` centres (medoids for k-medoids).
        distance: ``euclidean`` or ``cosine``.
        algorithm: ``kmeans`` or ``kmedoids``.
        info: fit details (engine, rows, iterations, seconds, cost on the fit rows).
    """

    centres: np.ndarray
    distance: str = "euclidean"
    algorithm: str = "kmeans"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def k(self) -> int:
        """Number of centres."""
        return int(self.centres.shape[0])

    @property
    def dim(self) -> int:
        """Length of every centre."""
        return int(self.centres.shape[1])

    def assign(
        self,
        df: DataFrame,
        features_col: str = "features",
        cluster_col: str = "cluster",
        distance_col: str = "distance",
    ) -> DataFrame:
        """``df`` with the nearest centre (``cluster`` int) and the distance to it (``distance``)."""
        return assign_to_centres(df, self.centres, self.distance, features_col, cluster_col, distance_col)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Nearest-centre indices for a local matrix (driver-side, for samples and tests)."""
        return nearest_centres(x, self.centres, self.distance)[0]

    def cost(self, df: DataFrame, features_col: str = "features") -> float:
        """Within-cluster cost over all rows, aggregated in Spark.

        Euclidean: the sum of squared distances to the nearest centre (WCSS). Cosine: the sum of
        cosine distances, which is what MLlib minimises and reports for that measure.
        """
        assigned = self.assign(df, features_col, "_cost_cluster", "_cost_distance")
        term = F.col("_cost_distance")
        if self.distance == "euclidean":
            term = term * term
        value = assigned.agg(F.sum(term).alias("cost")).first()["cost"]
        return float(value or 0.0)

    def save(self, directory: str | Path) -> Path:
        """Write ``centres.npy`` and the ``model.json`` manifest into ``directory`` (created).

        Args:
            directory: Folder of this model.

        Returns:
            The folder.
        """
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        np.save(target / CENTRES_FILE, np.asarray(self.centres, dtype=np.float64))
        write_step_manifest(
            target, MODEL_FILE, "kmeans", KMEANS_FORMAT_VERSION,
            distance=self.distance, algorithm=self.algorithm, k=self.k, dim=self.dim, info=self.info,
        )
        return target

    @classmethod
    def load(cls, directory: str | Path) -> KMeansModel:
        """Read a model written by :meth:`save`; another format is refused in one sentence.

        Args:
            directory: Folder the model was saved to.

        Returns:
            The model.
        """
        source = Path(directory)
        meta = read_step_manifest(source, MODEL_FILE, "kmeans", KMEANS_FORMAT_VERSION)
        centres = np.load(source / CENTRES_FILE)
        return cls(
            centres=centres,
            distance=meta["distance"],
            algorithm=meta.get("algorithm", "kmeans"),
            info=meta.get("info", {}),
        )


def fit_matrix(
    x: np.ndarray,
    k: int,
    *,
    distance: str = "euclidean",
    max_iter: int = 20,
    seed: int = 42,
    n_init: int = 1,
    backend: str = "sklearn",
) -> KMeansModel:
    """Fit k-means on a local matrix with scikit-learn or FAISS.

    Args:
        x: ``(n, d)`` rows.
        k: number of clusters (capped at ``n``).
        distance: ``euclidean`` or ``cosine`` (rows are L2-normalised first; centres too).
        max_iter: Lloyd iterations.
        seed: random seed; same seed, same rows, same centres.
        n_init: restarts (best inertia kept).
        backend: ``sklearn`` or ``faiss``.

    Returns:
        The fitted model; ``info`` holds ``inertia``, ``n_iter`` and ``fit_seconds``.
    """
    check_distance(distance)
    if backend not in SAMPLE_BACKENDS:
        raise ValueError(f"Unknown k-means backend {backend!r}; use one of {', '.join(SAMPLE_BACKENDS)}.")
    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0:
        raise ValueError("Cannot fit k-means on zero rows.")
    k = min(int(k), len(x))
    if distance == "cosine":
        x = l2_normalise(x).astype(np.float32)
    start = time.perf_counter()
    if backend == "faiss":
        import faiss

        model = faiss.Kmeans(
            x.shape[1],
            k,
            niter=max_iter,
            seed=seed,
            nredo=n_init,
            spherical=distance == "cosine",
            max_points_per_centroid=max(256, len(x)),
        )
        model.train(np.ascontiguousarray(x))
        centres = np.asarray(model.centroids, dtype=np.float64)
        n_iter, inertia = max_iter, float(model.obj[-1]) if len(model.obj) else float("nan")
    else:
        from sklearn.cluster import KMeans

        model = KMeans(
            n_clusters=k,
            init="k-means++",
            n_init=n_init,
            max_iter=max_iter,
            random_state=seed,
            algorithm="lloyd",
        )
        model.fit(x)
        centres = model.cluster_centers_.astype(np.float64)
        n_iter, inertia = int(model.n_iter_), float(model.inertia_)
    if distance == "cosine":
        centres = l2_normalise(centres)
    seconds = time.perf_counter() - start
    return KMeansModel(
        centres=centres,
        distance=distance,
        info={
            "engine": "sample",
            "backend": backend,
            "fit_rows": int(len(x)),
            "n_iter": n_iter,
            "inertia": inertia,
            "fit_seconds": seconds,
            "seed": seed,
            "max_iter": max_iter,
        },
    )


def _fit_mllib(
    df: DataFrame, k: int, features_col: str, distance: str, max_iter: int, seed: int, tol: float
) -> KMeansModel:
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.functions import array_to_vector

    vectors = df.where(F.col(features_col).isNotNull()).select(
        array_to_vector(F.col(features_col)).alias("_vector")
    )
    # "block" stacks rows into matrices for level-3 BLAS; MLlib implements it for Euclidean only.
    solver = "block" if distance == "euclidean" else "row"
    blas = native_blas_hint()
    log.info(
        "MLlib k-means (k=%d, solver=%s); system BLAS for netlib: %s",
        k,
        solver,
        blas or "none found, expect Java BLAS",
    )
    estimator = KMeans(
        k=k,
        maxIter=max_iter,
        seed=seed,
        tol=tol,
        featuresCol="_vector",
        distanceMeasure=distance,
        solver=solver,
    )
    start = time.perf_counter()
    fitted = estimator.fit(vectors)
    seconds = time.perf_counter() - start
    centres = np.array([np.asarray(c, dtype=np.float64) for c in fitted.clusterCenters()])
    summary = fitted.summary
    return KMeansModel(
        centres=centres,
        distance=distance,
        info={
            "engine": "mllib",
            "solver": solver,
            "n_iter": int(summary.numIter),
            "inertia": float(summary.trainingCost),
            "fit_seconds": seconds,
            "seed": seed,
            "max_iter": max_iter,
            "system_blas": blas,
        },
    )


def fit_kmeans(
    df: DataFrame,
    k: int,
    *,
    features_col: str = "features",
    distance: str = "euclidean",
    engine: str = "sample",
    max_iter: int = 20,
    seed: int = 42,
    fit_sample_rows: int = 200_000,
    n_init: int = 1,
    backend: str = "sklearn",
    tol: float = 1e-4,
) -> KMeansModel:
    """Fit k-means on a DataFrame's vector column with the chosen engine.

    Args:
        df: rows with an ``array<float>`` column; filter to the training split before calling.
        k: number of clusters.
        features_col: vector column.
        distance: ``euclidean`` or ``cosine``.
        engine: ``sample`` (driver fit on ``fit_sample_rows`` rows) or ``mllib`` (all rows).
        max_iter: iterations for either engine.
        seed: seed for sampling and initialisation.
        fit_sample_rows: bound on rows brought to the driver by the ``sample`` engine.
        n_init: restarts for the ``sample`` engine.
        backend: ``sklearn`` or ``faiss`` for the ``sample`` engine.
        tol: MLlib convergence tolerance.

    Returns:
        A :class:`KMeansModel`.
    """
    check_distance(distance)
    if engine == "mllib":
        return _fit_mllib(df, k, features_col, distance, max_iter, seed, tol)
    if engine != "sample":
        raise ValueError(f"Unknown k-means engine {engine!r}; use one of {', '.join(ENGINES)}.")
    start = time.perf_counter()
    x = sample_matrix(df, features_col, fit_sample_rows, seed)
    sampled = time.perf_counter() - start
    model = fit_matrix(x, k, distance=distance, max_iter=max_iter, seed=seed, n_init=n_init, backend=backend)
    model.info["sample_seconds"] = sampled
    log.info(
        "k-means sample engine: %d rows sampled in %.1fs, fitted in %.1fs (%s iterations)",
        len(x),
        sampled,
        model.info["fit_seconds"],
        model.info["n_iter"],
    )
    return model
