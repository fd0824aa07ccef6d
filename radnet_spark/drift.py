"""How far a label run's instances lie from what the pipeline was trained on (bounded by k).

Cluster shares are compared with every instance of the training dump. Distances are compared with
its *held-out* instances (validation and test splits): the centres were fitted on the training
split, whose rows lie closer to them than any unseen instance does, so against them every new dump
would look drifted.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from radnet_spark.config import SplitConfig
from radnet_spark.splits import with_split


def held_out_labels(training_labels: DataFrame, tags: DataFrame, split: SplitConfig) -> DataFrame:
    """The training run's labels of instances outside the training split (by their exam's split)."""
    exams = tags.select("sop_instance_uid", "exam_id")
    return (with_split(training_labels.join(exams, "sop_instance_uid"), split)
            .where(F.col("split") != "train").drop("split", "exam_id"))


# An exam's instances fall into few clusters together, so shares vary with the number of exams:
# over ~14 clusters the total variation of n random exams is about 0.27 at n = 30 and 0.15 at
# n = 100 with no drift at all. Below this many new exams the share check would be noise.
MIN_EXAMS_FOR_SHARE_SHIFT = 100


def drift_summary(
    new: DataFrame, training: DataFrame, held_out: DataFrame | None = None, new_exams: int | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Per-cluster share and mean distance of new rows against the training dump (bounded by k).

    Args:
        new: The label run's rows (``cluster``, ``distance``).
        training: Every training-run row: the reference for cluster shares.
        held_out: The training dump's held-out rows (:func:`held_out_labels`): the reference for
            distances. None or empty (a dump too small to hold any out): ``training`` instead.
        new_exams: Exams of the new rows; the share check runs from
            :data:`MIN_EXAMS_FOR_SHARE_SHIFT` exams on (None: it does not run).

    Returns:
        One dict per cluster (``share_new``, ``share_train``, ``distance_new``, ``distance_train``;
        a distance is None where the cluster has no such rows) and the warnings.
    """
    def per_cluster(df: DataFrame) -> dict[int, tuple[int, float]]:
        rows = df.groupBy("cluster").agg(F.count("*").alias("n"), F.avg("distance").alias("d")).collect()
        return {int(r["cluster"]): (int(r["n"]), float(r["d"] or 0.0)) for r in rows}

    new_stats, share_stats = per_cluster(new), per_cluster(training)
    distance_stats = per_cluster(held_out) if held_out is not None else {}
    if not distance_stats:
        distance_stats = share_stats
    n_new = sum(n for n, _ in new_stats.values()) or 1
    n_train = sum(n for n, _ in share_stats.values()) or 1
    drift = []
    for cluster in sorted(set(new_stats) | set(share_stats)):
        drift.append({
            "cluster": cluster,
            "share_new": new_stats.get(cluster, (0, 0.0))[0] / n_new,
            "share_train": share_stats.get(cluster, (0, 0.0))[0] / n_train,
            "distance_new": new_stats[cluster][1] if cluster in new_stats else None,
            "distance_train": distance_stats[cluster][1] if cluster in distance_stats else None,
        })
    warnings = []
    mean_new = sum(n * d for n, d in new_stats.values()) / n_new
    mean_ref = sum(n * d for n, d in distance_stats.values()) / (sum(n for n, _ in distance_stats.values()) or 1)
    if new_stats and mean_ref > 0 and mean_new > 1.5 * mean_ref:
        warnings.append(
            f"new instances lie {mean_new / mean_ref:.1f}x farther from their centres than held-out instances "
            "of the training dump; consider re-training (radnet run)."
        )
    shift = 0.5 * sum(abs(r["share_new"] - r["share_train"]) for r in drift)
    if new_exams is not None and new_exams >= MIN_EXAMS_FOR_SHARE_SHIFT and shift > 0.3:
        warnings.append(f"cluster shares of the new instances ({new_exams} exams) differ from the training dump's "
                        f"by {shift:.0%} (total variation).")
    return drift, warnings
