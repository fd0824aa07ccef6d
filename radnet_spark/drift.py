"""How far a label run's instances lie from what the pipeline was trained on (bounded by k).

The reference is the training dump's *held-out* instances (validation and test splits): the centres
were fitted on the training split, whose rows lie closer to them than any unseen instance does, so
comparing new rows with training rows would call every new dump drifted.
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


def drift_summary(
    new: DataFrame, reference: DataFrame, fallback: DataFrame | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Per-cluster share and mean distance of new rows against reference labels (bounded by k).

    Args:
        new: The label run's rows (``cluster``, ``distance``).
        reference: Rows to compare with: the held-out instances of the training dump.
        fallback: Rows to compare with when ``reference`` is empty (a dump too small to hold out any).
    """
    def per_cluster(df: DataFrame) -> dict[int, tuple[int, float]]:
        rows = df.groupBy("cluster").agg(F.count("*").alias("n"), F.avg("distance").alias("d")).collect()
        return {int(r["cluster"]): (int(r["n"]), float(r["d"] or 0.0)) for r in rows}

    new_stats, ref_stats = per_cluster(new), per_cluster(reference)
    if not ref_stats and fallback is not None:
        ref_stats = per_cluster(fallback)
    n_new = sum(n for n, _ in new_stats.values()) or 1
    n_ref = sum(n for n, _ in ref_stats.values()) or 1
    drift = []
    for cluster in sorted(set(new_stats) | set(ref_stats)):
        nn, dn = new_stats.get(cluster, (0, 0.0))
        nr, dr = ref_stats.get(cluster, (0, 0.0))
        drift.append({"cluster": cluster, "share_new": nn / n_new, "share_train": nr / n_ref,
                      "distance_new": dn, "distance_train": dr})
    warnings = []
    mean_new = sum(n * d for n, d in new_stats.values()) / n_new
    mean_ref = sum(n * d for n, d in ref_stats.values()) / n_ref
    if new_stats and mean_ref > 0 and mean_new > 1.5 * mean_ref:
        warnings.append(
            f"new instances lie {mean_new / mean_ref:.1f}x farther from their centres than held-out instances "
            "of the training dump; "
            "consider re-training (radnet run)."
        )
    shift = 0.5 * sum(abs(r["share_new"] - r["share_train"]) for r in drift)
    if new_stats and n_new >= 50 and shift > 0.3:
        warnings.append(f"cluster shares of the new instances differ from training by {shift:.0%} (total variation).")
    return drift, warnings
