"""Every single view and every fusion of every view combination, evaluated on held-out splits.

The result is one table shaped like the paper's Table 7: a row per (views, fusion method,
algorithm), columns per split for HS/NMI against Modality and BPE, the score, and the in-cluster
cosine distances of image and diagnosis embeddings.

Protocol: every model (per-view clusterers, fusion state, fused clusterer) is fitted on
``fit_split`` only; the evaluation splits are only assigned and measured. A single-view row is
evaluated on the instances that have that view. The per-view models double as the centres of the
``clusterdists``/``clusterprobs`` fusions. k defaults to the paper's choices (``cluster.view_k``
for a single view, :data:`PAPER_K` for a fusion); the config's one algorithm and distance are used
for every row (the paper tuned them per row, see its Table 5).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from radnet_spark.clustering.clusterer import fit_centres
from radnet_spark.clustering.kmeans import KMeansModel
from radnet_spark.config import ClusterConfig
from radnet_spark.evaluation.metrics import evaluate_clusters
from radnet_spark.fusion import (
    METHODS,
    assign_per_combination,
    check_views,
    fit_fusion,
    fit_per_combination,
    join_views,
    view_column,
)
from radnet_spark.views import get_view

log = logging.getLogger(__name__)

METRIC_COLUMNS = (
    "hs_modality",
    "nmi_modality",
    "hs_bpe",
    "nmi_bpe",
    "score",
    "image_distance",
    "diagnosis_distance",
)

# The paper's k of the fusions (Tables 4-5); a single view's k is ``cluster.view_k``'s (else the view's ``default_k``).
PAPER_K: dict[tuple[str, ...], int] = {
    ("embeddings", "tags", "image"): 75,
    ("embeddings", "tags", "diagnosis"): 40,
    ("embeddings", "image", "diagnosis"): 40,
    ("embeddings", "tags", "image", "diagnosis"): 50,
    ("clusterdists", "tags", "image"): 30,
    ("clusterdists", "tags", "diagnosis"): 30,
    ("clusterdists", "image", "diagnosis"): 30,
    ("clusterdists", "tags", "image", "diagnosis"): 40,
    ("clusterprobs", "tags", "image"): 30,
    ("clusterprobs", "tags", "diagnosis"): 30,
    ("clusterprobs", "image", "diagnosis"): 40,
    ("clusterprobs", "tags", "image", "diagnosis"): 40,
}


def paper_k(views: Iterable[str], method: str | None = None, overrides: dict[str, int] | None = None) -> int:
    """k for a row: ``overrides`` keyed like ``"embeddings:tags+image"`` or ``"tags"``, else the paper's.

    Combinations the paper did not report fall back to 50 (its final fused k).
    """
    views = tuple(check_views(list(views)))
    key = "+".join(views) if method is None else f"{method}:{'+'.join(views)}"
    if overrides and key in overrides:
        return int(overrides[key])
    if method is None and len(views) == 1:
        return get_view(views[0]).default_k
    return PAPER_K.get(views if method is None else (method, *views), 50)


def view_combinations(views: Iterable[str]) -> list[tuple[str, ...]]:
    """Every combination of two or more views, in canonical order."""
    ordered = check_views(list(views))
    return [combo for size in range(2, len(ordered) + 1) for combo in itertools.combinations(ordered, size)]


def _row(
    name: str,
    method: str,
    algorithm: str,
    k: int,
    assigned: DataFrame,
    splits: list[str],
    labels: DataFrame,
    image: DataFrame | None,
    diagnosis: DataFrame | None,
) -> dict[str, Any]:
    row: dict[str, Any] = {"model": name, "fusion": method, "algorithm": algorithm, "k": k}
    for split in splits:
        result = evaluate_clusters(
            assigned.where(F.col("split") == split),
            labels,
            image_embeddings=image,
            diagnosis_embeddings=diagnosis,
        )
        for metric in METRIC_COLUMNS:
            row[f"{split}_{metric}"] = result[metric]
    return row


def compare_fusions(
    embeddings: dict[str, DataFrame],
    labels: DataFrame,
    cluster: ClusterConfig,
    *,
    instances: DataFrame | None = None,
    splits: Iterable[str] = ("validation", "test"),
    fit_split: str = "train",
    methods: Iterable[str] = METHODS,
    scalings: Iterable[str] = ("none",),
    k_overrides: dict[str, int] | None = None,
) -> pd.DataFrame:
    """Evaluate single views and all fusions; returns the comparison table (one row per model).

    Args:
        embeddings: view → embeddings table (``embeddings_tags``, ``embeddings_image``,
            ``embeddings_diagnosis``).
        labels: ``sop_instance_uid``, ``modality``, ``bpe`` (``tag_features``).
        cluster: the settings of every fit: ``algorithm``, ``distance``, ``engine``, ``max_iter``,
            ``seed``, the sample bounds, ``missing_view`` of the fusions and ``view_k`` (a single
            view's k).
        instances: rows to label (``sop_instance_uid, exam_id, split``); default from the views.
        splits: splits evaluated (columns of the table).
        fit_split: split every model is fitted on.
        methods: fusion methods tried for each combination of two or more views.
        scalings: block scalings tried with each method (``none``, ``unit_variance``); a scaled row's
            fusion reads ``<method>+<scaling>``.
        k_overrides: k per row over ``cluster.view_k`` and the paper's, keyed ``"tags"`` or
            ``"embeddings:tags+image+diagnosis"``.

    Returns:
        pandas frame: ``model``, ``fusion``, ``algorithm``, ``k``, then ``<split>_<metric>``.
    """
    views = check_views(list(embeddings))
    splits, methods, scalings = list(splits), list(methods), list(scalings)
    overrides = {**cluster.view_k, **(k_overrides or {})}
    label = f"{cluster.algorithm} ({cluster.distance})"
    image, diagnosis = embeddings.get("image"), embeddings.get("diagnosis")
    joined = join_views(embeddings, instances).cache()
    train = joined.where(F.col("split") == fit_split)
    evaluated = joined.where(F.col("split").isin(splits))
    rows: list[dict[str, Any]] = []
    view_models: dict[str, KMeansModel] = {}
    for view in views:
        column = view_column(view)
        k = paper_k([view], None, overrides)
        log.info("Comparing single view %s (k=%d)", view, k)
        view_models[view] = fit_centres(train.where(F.col(column).isNotNull()), k, cluster, column)
        assigned = view_models[view].assign(evaluated.where(F.col(column).isNotNull()), column)
        rows.append(_row(view, "-", label, k, assigned, splits, labels, image, diagnosis))
    for combo in view_combinations(views):
        name = "-".join(f"[{v}]" for v in combo)
        for method, scaling in itertools.product(methods, scalings):
            k = paper_k(combo, method, overrides)
            fusion_name = method if scaling == "none" else f"{method}+{scaling}"
            log.info("Comparing %s %s (k=%d)", name, fusion_name, k)
            # Per-view centres for the cluster methods must be k-means/k-medoid centres of that view;
            # scaled rows compare the scaling itself, without the configured view weights.
            fusion = fit_fusion(
                joined,
                list(combo),
                replace(cluster, fusion=method, block_scaling=scaling, view_weights={}),
                view_models={v: view_models[v] for v in combo},
                fit_split=fit_split,
            )
            fused = fusion.transform(joined).cache()
            if cluster.missing_view == "available_views":
                models = fit_per_combination(
                    fused, lambda d, k=k: fit_centres(d, k, cluster), fit_split=fit_split
                )
                assigned = assign_per_combination(fused.where(F.col("split").isin(splits)), models)
            else:
                model = fit_centres(fused.where(F.col("split") == fit_split), k, cluster)
                assigned = model.assign(fused.where(F.col("split").isin(splits)))
            rows.append(_row(name, fusion_name, label, k, assigned, splits, labels, image, diagnosis))
            fused.unpersist()
    joined.unpersist()
    return pd.DataFrame(rows)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def to_markdown(table: pd.DataFrame) -> str:
    """The comparison as a Markdown table (no extra dependency)."""
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def write_comparison(table: pd.DataFrame, out_dir: str | Path, name: str = "comparison") -> tuple[Path, Path]:
    """Write ``<name>.csv`` and ``<name>.md`` into ``out_dir``; returns both paths."""
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = target / f"{name}.csv", target / f"{name}.md"
    table.to_csv(csv_path, index=False)
    md_path.write_text(to_markdown(table), encoding="utf-8")
    return csv_path, md_path
