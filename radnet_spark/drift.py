"""How far a label run's instances lie from what the pipeline was trained on (bounded by k)."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def drift_summary(new: DataFrame, reference: DataFrame) -> tuple[list[dict[str, Any]], list[str]]:
    """Per-cluster share and mean distance of new rows against the training labels (bounded by k)."""
    def per_cluster(df: DataFrame) -> dict[int, tuple[int, float]]:
        rows = df.groupBy("cluster").agg(F.count("*").alias("n"), F.avg("distance").alias("d")).collect()
        return {int(r["cluster"]): (int(r["n"]), float(r["d"] or 0.0)) for r in rows}

    new_stats, ref_stats = per_cluster(new), per_cluster(reference)
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
            f"new instances lie {mean_new / mean_ref:.1f}x farther from their centres than the training data; "
            "consider re-training (radnet run)."
        )
    shift = 0.5 * sum(abs(r["share_new"] - r["share_train"]) for r in drift)
    if new_stats and n_new >= 50 and shift > 0.3:
        warnings.append(f"cluster shares of the new instances differ from training by {shift:.0%} (total variation).")
    return drift, warnings
