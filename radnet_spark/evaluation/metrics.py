"""Cluster quality proxies computed in Spark from bounded aggregates, never from collected rows.

- Homogeneity and NMI against a label (Modality, BPE) come from the (cluster, label) contingency
  counts — at most clusters × labels rows reach the driver. NMI uses the arithmetic mean of the
  two entropies (scikit-learn's default), and both follow scikit-learn's edge cases. A null label
  counts as its own label ``MISSING_LABEL``; rows without a cluster are left out.
- ``score`` is the harmonic mean of HS and NMI for Modality and for BPE (0 when any is 0).
- Mean in-cluster cosine distance of an embedding uses per-cluster sums of L2-normalised vectors:
  for n unit vectors with sum s, the mean cosine similarity over the n(n-1) ordered pairs of
  distinct rows is (‖s‖² − n) / (n(n − 1)); distance = 1 − similarity. O(n), no pairs. Rows with a
  null or all-zero embedding are left out; clusters with fewer than 2 such rows have no value.
  Two averages over clusters are reported: ``mean`` (every cluster counts once — the headline, as
  the paper averages over clusters) and ``weighted`` (clusters weighted by their row counts).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

MISSING_LABEL = "__missing__"


def contingency_counts(df: DataFrame, label_col: str, cluster_col: str = "cluster") -> pd.DataFrame:
    """Row counts per (cluster, label), aggregated in Spark.

    Returns:
        pandas frame with columns ``cluster``, ``label``, ``count``.
    """
    counts = (
        df.where(F.col(cluster_col).isNotNull())
        .select(
            F.col(cluster_col).alias("cluster"),
            F.coalesce(F.col(label_col).cast("string"), F.lit(MISSING_LABEL)).alias("label"),
        )
        .groupBy("cluster", "label")
        .count()
    )
    return counts.toPandas()


def contingency_matrix(counts: pd.DataFrame) -> np.ndarray:
    """Dense clusters × labels matrix from :func:`contingency_counts` output."""
    if counts.empty:
        return np.zeros((0, 0))
    return counts.pivot_table(
        index="cluster", columns="label", values="count", aggfunc="sum", fill_value=0
    ).to_numpy(dtype=np.float64)


def _entropy(counts: np.ndarray) -> float:
    total = counts.sum()
    p = counts[counts > 0] / total
    return float(-(p * np.log(p)).sum())


def _mutual_information(table: np.ndarray) -> float:
    total = table.sum()
    joint = table / total
    outer = joint.sum(axis=1, keepdims=True) @ joint.sum(axis=0, keepdims=True)
    mask = joint > 0
    return float(max((joint[mask] * np.log(joint[mask] / outer[mask])).sum(), 0.0))


def homogeneity_from_contingency(table: np.ndarray) -> float:
    """Homogeneity of clusters (rows) with respect to labels (columns): MI / H(labels)."""
    if table.sum() == 0:
        return 1.0
    h_labels = _entropy(table.sum(axis=0))
    return 1.0 if h_labels == 0 else _mutual_information(table) / h_labels


def nmi_from_contingency(table: np.ndarray) -> float:
    """NMI with arithmetic normalisation: MI / ((H(labels) + H(clusters)) / 2)."""
    clusters, labels = (table.sum(axis=1) > 0).sum(), (table.sum(axis=0) > 0).sum()
    if clusters == labels == 1 or clusters == labels == 0:
        return 1.0
    mi = _mutual_information(table)
    if mi == 0:
        return 0.0
    return mi / ((_entropy(table.sum(axis=0)) + _entropy(table.sum(axis=1))) / 2.0)


def label_scores(df: DataFrame, label_col: str, cluster_col: str = "cluster") -> dict[str, float]:
    """``{"homogeneity", "nmi"}`` of ``cluster_col`` against ``label_col``."""
    table = contingency_matrix(contingency_counts(df, label_col, cluster_col))
    return {"homogeneity": homogeneity_from_contingency(table), "nmi": nmi_from_contingency(table)}


def harmonic_mean(values: list[float]) -> float:
    """Harmonic mean; 0 when any value is 0 or negative."""
    if not values or min(values) <= 0:
        return 0.0
    return float(len(values) / sum(1.0 / v for v in values))


def mean_pairwise_cosine_similarity(vector_sum: np.ndarray, n: int) -> float | None:
    """Mean cosine similarity over distinct pairs of n unit vectors whose sum is ``vector_sum``."""
    if n < 2:
        return None
    squared = float(np.dot(vector_sum, vector_sum))
    return (squared - n) / (n * (n - 1))


def _partial_sums_function(vector_col: str, cluster_col: str) -> Any:
    def partial_sums(batches: Iterator[Any]) -> Iterator[Any]:
        import numpy as np
        import pyarrow as pa

        from radnet_spark.vectors import vectors_from_arrow

        sums: dict[int, np.ndarray] = {}
        counts: dict[int, int] = {}
        for batch in batches:
            matrix, valid = vectors_from_arrow(batch.column(vector_col))
            if not len(matrix):
                continue
            clusters = batch.column(cluster_col).to_numpy(zero_copy_only=False)[valid]
            norms = np.linalg.norm(matrix.astype(np.float64), axis=1)
            keep = (norms > 0) & ~np.isnan(clusters.astype(np.float64))
            units = matrix[keep] / norms[keep, None]
            for cluster in np.unique(clusters[keep]):
                rows = units[clusters[keep] == cluster]
                key = int(cluster)
                sums[key] = sums.get(key, 0.0) + rows.sum(axis=0)
                counts[key] = counts.get(key, 0) + len(rows)
        # One row per (partition, cluster): the shuffle carries partitions x clusters vectors.
        if sums:
            keys = sorted(sums)
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(keys, type=pa.int32()),
                    pa.array([counts[k] for k in keys], type=pa.int64()),
                    pa.array([sums[k].tolist() for k in keys], type=pa.list_(pa.float64())),
                ],
                names=["cluster", "n", "vector_sum"],
            )

    return partial_sums


def _combine_sums(frame: pd.DataFrame) -> pd.DataFrame:
    import numpy as np

    total = np.sum(np.stack(frame["vector_sum"].to_numpy()), axis=0)
    return pd.DataFrame(
        {
            "cluster": [int(frame["cluster"].iloc[0])],
            "n": [int(frame["n"].sum())],
            "vector_sum": [total.tolist()],
        }
    )


def cluster_vector_sums(df: DataFrame, vector_col: str, cluster_col: str = "cluster") -> pd.DataFrame:
    """Per cluster: count and sum of L2-normalised vectors, reduced in Spark.

    Returns:
        pandas frame ``cluster``, ``n``, ``vector_sum`` (one row per cluster; clusters × dim numbers).
    """
    schema = T.StructType(
        [
            T.StructField("cluster", T.IntegerType()),
            T.StructField("n", T.LongType()),
            T.StructField("vector_sum", T.ArrayType(T.DoubleType())),
        ]
    )
    partials = df.select(F.col(cluster_col).cast("int").alias(cluster_col), vector_col).mapInArrow(
        _partial_sums_function(vector_col, cluster_col), schema
    )
    return partials.groupBy("cluster").applyInPandas(_combine_sums, schema).toPandas()


def in_cluster_cosine_distance(
    df: DataFrame, vector_col: str, cluster_col: str = "cluster"
) -> dict[str, Any]:
    """Mean in-cluster cosine distance of ``vector_col`` (see module docstring).

    Returns:
        ``{"mean", "weighted", "std", "per_cluster": {cluster: distance}, "rows": int}``; the
        averages are None when no cluster has two rows with the embedding.
    """
    sums = cluster_vector_sums(df, vector_col, cluster_col)
    per_cluster: dict[int, float] = {}
    sizes: dict[int, int] = {}
    for row in sums.itertuples(index=False):
        similarity = mean_pairwise_cosine_similarity(np.asarray(row.vector_sum), int(row.n))
        if similarity is not None:
            per_cluster[int(row.cluster)] = 1.0 - similarity
            sizes[int(row.cluster)] = int(row.n)
    if not per_cluster:
        return {"mean": None, "weighted": None, "std": None, "per_cluster": {}, "rows": int(sums["n"].sum())}
    values = np.array(list(per_cluster.values()))
    weights = np.array([sizes[c] for c in per_cluster])
    return {
        "mean": float(values.mean()),
        "weighted": float((values * weights).sum() / weights.sum()),
        "std": float(values.std()),
        "per_cluster": dict(sorted(per_cluster.items())),
        "rows": int(sums["n"].sum()),
    }


def cluster_sizes(df: DataFrame, cluster_col: str = "cluster") -> dict[int, int]:
    """Rows per cluster (null clusters left out), aggregated in Spark."""
    rows = df.where(F.col(cluster_col).isNotNull()).groupBy(cluster_col).count().collect()
    return {int(r[cluster_col]): int(r["count"]) for r in sorted(rows, key=lambda r: r[cluster_col])}


def evaluate_clusters(
    assignments: DataFrame,
    labels: DataFrame,
    *,
    image_embeddings: DataFrame | None = None,
    diagnosis_embeddings: DataFrame | None = None,
    cluster_col: str = "cluster",
    modality_col: str = "modality",
    bpe_col: str = "bpe",
) -> dict[str, Any]:
    """All proxies for one clustering.

    Args:
        assignments: ``sop_instance_uid``, ``cluster_col`` (and ``exam_id`` when diagnosis
            embeddings are given).
        labels: ``sop_instance_uid``, ``modality``, ``bpe`` (e.g. ``tag_features``).
        image_embeddings: ``embeddings_image`` (``sop_instance_uid``, ``embedding``), optional.
        diagnosis_embeddings: ``embeddings_diagnosis`` (``exam_id``, ``embedding``), optional.
        cluster_col: cluster column of ``assignments``.
        modality_col: modality column of ``labels``.
        bpe_col: BPE column of ``labels``.

    Returns:
        ``hs_modality``, ``nmi_modality``, ``hs_bpe``, ``nmi_bpe``, ``score``, ``image_distance``,
        ``diagnosis_distance`` (headline means, None when not computed), ``*_weighted``,
        ``sizes`` and ``per_cluster`` details.
    """
    keyed = assignments.select(
        "sop_instance_uid",
        *(["exam_id"] if "exam_id" in assignments.columns else []),
        F.col(cluster_col).alias("cluster"),
    ).where(F.col("cluster").isNotNull())
    labelled = keyed.join(
        labels.select(
            "sop_instance_uid", F.col(modality_col).alias("_modality"), F.col(bpe_col).alias("_bpe")
        ),
        "sop_instance_uid",
        "left",
    )
    modality = label_scores(labelled, "_modality")
    bpe = label_scores(labelled, "_bpe")
    result: dict[str, Any] = {
        "hs_modality": modality["homogeneity"],
        "nmi_modality": modality["nmi"],
        "hs_bpe": bpe["homogeneity"],
        "nmi_bpe": bpe["nmi"],
    }
    result["score"] = harmonic_mean([result[k] for k in ("hs_modality", "nmi_modality", "hs_bpe", "nmi_bpe")])
    per_cluster: dict[str, dict[int, float]] = {}
    for name, table, key in (
        ("image", image_embeddings, "sop_instance_uid"),
        ("diagnosis", diagnosis_embeddings, "exam_id"),
    ):
        result[f"{name}_distance"] = result[f"{name}_distance_weighted"] = None
        if table is None or key not in keyed.columns:
            continue
        joined = keyed.join(
            table.select(key, F.col("embedding").alias("_embedding")).dropDuplicates([key]), key, "inner"
        )
        distance = in_cluster_cosine_distance(joined, "_embedding")
        result[f"{name}_distance"] = distance["mean"]
        result[f"{name}_distance_weighted"] = distance["weighted"]
        per_cluster[f"{name}_distance"] = distance["per_cluster"]
    result["sizes"] = cluster_sizes(keyed)
    result["per_cluster"] = per_cluster
    return result
