"""Fuse per-view embeddings (tags, image, diagnosis) into one vector per DICOM instance.

Methods (RadiologyNET):

- ``embeddings``: the views' embeddings concatenated in view order.
- ``clusterdists``: per view, distances to that view's own k-means centres (a fitted per-view
  :class:`~radnet_spark.clustering.kmeans.KMeansModel`), min-max scaled per centre to [0, 1] with
  bounds fitted on the training split and clipped to [0, 1] when applied; concatenated.
- ``clusterprobs``: per view, ``softmax(-distances)`` to that view's centres (each view's block sums
  to 1); concatenated. Raw distances are used, as in the paper, so far-apart centres give nearly
  one-hot blocks and close ones nearly uniform blocks: the view with the widest spread then decides
  alone. Under ``block_scaling`` the distances are first divided by the view's typical distance to
  its nearest centre (a temperature fitted on the training split), so every view's probabilities
  carry information whatever its units.

Missing views (an instance without a usable image, an exam without a diagnosis) never drop a row:

- ``zero_fill`` (default): a missing view's block is all zeros, and one 0/1 indicator per view
  (1 = present) is appended after the blocks, so every row has the same length
  ``sum(block dims) + len(views)``. Indicators are appended even when nothing is missing, so the
  length never depends on the data.
- ``available_views``: a row's vector is the concatenation of the blocks of the views it has (no
  zeros, no indicators); its length depends on ``views_present``. Clustering then fits one model
  per distinct ``views_present`` combination on that combination's training rows
  (:func:`fit_per_combination`) and numbers clusters consecutively across combinations in sorted
  combination order (:func:`assign_per_combination`), so a cluster never mixes rows described by
  different views. A row with no view at all keeps an empty vector and a null cluster.

``views_present`` lists the views a row has, in view order, under either rule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from radnet_spark.artifacts import read_step_manifest, write_step_manifest
from radnet_spark.clustering.kmeans import KMeansModel, fit_kmeans, pairwise_distances, sample_matrix
from radnet_spark.config import ClusterConfig
from radnet_spark.views import VIEWS, get_view, views_k

log = logging.getLogger(__name__)

METHODS = ("embeddings", "clusterdists", "clusterprobs")
MISSING_VIEW_RULES = ("zero_fill", "available_views")
KEY_COLUMNS = ("sop_instance_uid", "exam_id", "split")
STATE_FILE = "fusion.json"
FUSION_FORMAT_VERSION = 1

FUSED_SCHEMA = T.StructType(
    [
        T.StructField("sop_instance_uid", T.StringType()),
        T.StructField("exam_id", T.StringType()),
        T.StructField("split", T.StringType()),
        T.StructField("features", T.ArrayType(T.FloatType())),
        T.StructField("views_present", T.ArrayType(T.StringType())),
    ]
)


def view_column(view: str) -> str:
    """Name of the joined frame's column holding ``view``'s embedding."""
    return f"emb_{view}"


def check_views(views: list[str] | tuple[str, ...]) -> list[str]:
    """The views in canonical order; ValueError for unknown, repeated or no views."""
    unknown = [v for v in views if v not in VIEWS]
    if unknown or not views or len(set(views)) != len(views):
        raise ValueError(f"Views must be distinct names from {', '.join(VIEWS)}; got {list(views)}.")
    return [v for v in VIEWS if v in views]


def view_key(view: str) -> str:
    """The column a view's embeddings are keyed by (``sop_instance_uid`` or ``exam_id``)."""
    return get_view(view).key


def join_views(embeddings: dict[str, DataFrame], instances: DataFrame | None = None) -> DataFrame:
    """One row per instance with an ``emb_<view>`` column per view (null where the view is missing).

    Args:
        embeddings: view name → embeddings table (``embeddings_tags``/``embeddings_image`` keyed by
            ``sop_instance_uid``; ``embeddings_diagnosis`` keyed by ``exam_id``).
        instances: optional frame of ``sop_instance_uid, exam_id, split`` defining the rows; default:
            the union of the instance-level views' keys.

    Returns:
        ``sop_instance_uid, exam_id, split, emb_<view>...``; every instance is kept.
    """
    views = check_views(list(embeddings))
    if instances is None:
        keyed = [embeddings[v].select(*KEY_COLUMNS) for v in views if view_key(v) == "sop_instance_uid"]
        if not keyed:
            raise ValueError(
                "Fusing only the diagnosis view needs an instances frame to say which "
                "images the diagnoses belong to."
            )
        base = keyed[0]
        for other in keyed[1:]:
            base = base.unionByName(other)
        base = base.dropDuplicates(["sop_instance_uid"])
    else:
        base = instances.select(*KEY_COLUMNS).dropDuplicates(["sop_instance_uid"])
    for view in views:
        table = embeddings[view]
        key = view_key(view)
        right = table.select(key, F.col("embedding").alias(view_column(view))).dropDuplicates([key])
        base = base.join(right, on=key, how="left")
    return base.select(*KEY_COLUMNS, *[view_column(v) for v in views])


def softmax_negative(distances: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise ``softmax(-d / temperature)``: nearer centres get higher probability; rows sum to 1."""
    shifted = -(distances - distances.min(axis=1, keepdims=True)) / temperature  # max logit 0: no overflow
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)


def scale_to_unit(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Min-max scale columns with fitted bounds, clipped to [0, 1]; constant columns map to 0."""
    span = high - low
    scaled = np.divide(values - low, span, out=np.zeros_like(values, dtype=np.float64), where=span > 0)
    return np.clip(scaled, 0.0, 1.0)


@dataclass
class FusionModel:
    """Fitted fusion state: which views, how, their dims, per-view centres and distance bounds.

    Attributes:
        method: ``embeddings``, ``clusterdists`` or ``clusterprobs``.
        views: views in canonical order.
        dims: input embedding length per view.
        missing_view: ``zero_fill`` or ``available_views``.
        view_models: per-view k-means models (cluster methods only).
        bounds: per-view ``{"low": [...], "high": [...]}`` distance bounds (``clusterdists`` only).
        scales: per-view ``{"mean": [...], "scale": s, "weight": w}``: each block is centred on its
            training mean and divided by ``s`` (its root total variance under ``unit_variance``), then
            multiplied by ``w``; empty: blocks as they are (the paper's plain concatenation).
        temperatures: per-view divisor of the distances before ``clusterprobs``' softmax (the mean
            distance of training rows to their nearest centre); empty: raw distances (the paper's).
    """

    method: str
    views: list[str]
    dims: dict[str, int]
    missing_view: str = "zero_fill"
    view_models: dict[str, KMeansModel] = field(default_factory=dict)
    bounds: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    scales: dict[str, dict[str, Any]] = field(default_factory=dict)
    temperatures: dict[str, float] = field(default_factory=dict)

    def block_dims(self) -> dict[str, int]:
        """Output length of each view's block."""
        if self.method == "embeddings":
            return {v: self.dims[v] for v in self.views}
        return {v: self.view_models[v].k for v in self.views}

    def output_dim(self) -> int | None:
        """Length of every ``features`` vector under ``zero_fill``; None under ``available_views``."""
        if self.missing_view != "zero_fill":
            return None
        return sum(self.block_dims().values()) + len(self.views)

    def block(self, view: str, x: np.ndarray) -> np.ndarray:
        """One view's block for the rows that have the view (pure numpy), scaled when ``scales`` say so."""
        raw = self.raw_block(view, x)
        scale = self.scales.get(view)
        if not scale:
            return raw
        return (raw - np.asarray(scale["mean"])) * (float(scale["weight"]) / float(scale["scale"]))

    def raw_block(self, view: str, x: np.ndarray) -> np.ndarray:
        """One view's block before scaling: the embedding, or its distances/probabilities to the centres."""
        if self.method == "embeddings":
            return np.asarray(x, dtype=np.float64)
        model = self.view_models[view]
        distances = pairwise_distances(x, model.centres, model.distance)
        if self.method == "clusterprobs":
            return softmax_negative(distances, self.temperatures.get(view, 1.0))
        low = np.asarray(self.bounds[view]["low"])
        high = np.asarray(self.bounds[view]["high"])
        return scale_to_unit(distances, low, high)

    def fuse(
        self, blocks: dict[str, tuple[np.ndarray, np.ndarray]]
    ) -> tuple[list[np.ndarray], list[list[str]]]:
        """Fuse one batch: view → (matrix of rows having it, validity mask over the batch).

        Returns:
            ``(features, views_present)``: one float32 vector and one view list per batch row.
        """
        n = len(next(iter(blocks.values()))[1])
        fused_blocks = {}
        for view in self.views:
            matrix, valid = blocks[view]
            full = np.zeros((n, self.block_dims()[view]), dtype=np.float64)
            if valid.any():
                full[valid] = self.block(view, matrix)
            fused_blocks[view] = (full, valid)
        present = [[v for v in self.views if fused_blocks[v][1][i]] for i in range(n)]
        if self.missing_view == "zero_fill":
            indicators = np.stack([fused_blocks[v][1] for v in self.views], axis=1).astype(np.float64)
            matrix = np.concatenate([fused_blocks[v][0] for v in self.views] + [indicators], axis=1)
            return list(matrix.astype(np.float32)), present
        features = []
        for i in range(n):
            parts = [fused_blocks[v][0][i] for v in self.views if fused_blocks[v][1][i]]
            features.append(np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32))
        return features, present

    def transform(self, joined: DataFrame) -> DataFrame:
        """The ``fused`` table from :func:`join_views` output, computed on the executors."""
        missing = [view_column(v) for v in self.views if view_column(v) not in joined.columns]
        if missing:
            raise ValueError(f"Joined frame lacks {', '.join(missing)}; build it with join_views.")
        state = self.to_dict()
        centres = {v: m.centres for v, m in self.view_models.items()}
        return joined.select(*KEY_COLUMNS, *[view_column(v) for v in self.views]).mapInArrow(
            _fuse_function(state, centres), FUSED_SCHEMA
        )

    def to_dict(self) -> dict[str, Any]:
        """The state without the centres, JSON-ready (the ``fusion.json`` fields, also shipped to executors)."""
        return {
            "method": self.method,
            "views": self.views,
            "dims": self.dims,
            "missing_view": self.missing_view,
            "bounds": self.bounds,
            "scales": self.scales,
            "temperatures": self.temperatures,
            "view_distance": {v: m.distance for v, m in self.view_models.items()},
            "block_dims": self.block_dims(),
            "output_dim": self.output_dim(),
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``fusion.json`` and each per-view model under ``view_models/<view>/``."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        write_step_manifest(target, STATE_FILE, "fusion", FUSION_FORMAT_VERSION, **self.to_dict())
        for view, model in self.view_models.items():
            model.save(target / "view_models" / view)
        return target

    @classmethod
    def load(cls, directory: str | Path) -> FusionModel:
        """Read a state written by :meth:`save`."""
        source = Path(directory)
        state = read_step_manifest(source, STATE_FILE, "fusion", FUSION_FORMAT_VERSION)
        models = {v: KMeansModel.load(source / "view_models" / v) for v in state.get("view_distance", {})}
        return cls(
            method=state["method"],
            views=list(state["views"]),
            dims={k: int(v) for k, v in state["dims"].items()},
            missing_view=state["missing_view"],
            view_models=models,
            bounds=state.get("bounds", {}),
            scales=state.get("scales", {}),
            temperatures=state.get("temperatures", {}),
        )


def _model_from_state(state: dict[str, Any], centres: dict[str, np.ndarray]) -> FusionModel:
    models = {v: KMeansModel(centres=c, distance=state["view_distance"][v]) for v, c in centres.items()}
    return FusionModel(
        method=state["method"],
        views=state["views"],
        dims=state["dims"],
        missing_view=state["missing_view"],
        view_models=models,
        bounds=state["bounds"],
        scales=state.get("scales", {}),
        temperatures=state.get("temperatures", {}),
    )


def _fuse_function(
    state: dict[str, Any], centres: dict[str, np.ndarray]
) -> Callable[[Iterator[Any]], Iterator[Any]]:
    def fuse_batches(batches: Iterator[Any]) -> Iterator[Any]:
        import numpy as np
        import pyarrow as pa

        from radnet_spark.fusion import _model_from_state, view_column
        from radnet_spark.vectors import vectors_from_arrow, vectors_to_arrow

        model = _model_from_state(state, centres)
        for batch in batches:
            blocks = {v: vectors_from_arrow(batch.column(view_column(v))) for v in model.views}
            features, present = model.fuse(blocks)
            if features and len({len(f) for f in features}) == 1:
                vectors = vectors_to_arrow(np.stack(features))  # zero_fill: one flat buffer, no lists
            else:
                vectors = pa.array([f.tolist() for f in features], type=pa.list_(pa.float32()))
            yield pa.RecordBatch.from_arrays(
                [
                    batch.column("sop_instance_uid"),
                    batch.column("exam_id"),
                    batch.column("split"),
                    vectors,
                    pa.array(present, type=pa.list_(pa.string())),
                ],
                names=list(FUSED_SCHEMA.names),
            )

    return fuse_batches


def _bounds_function(
    centres: np.ndarray, distance: str, column: str
) -> Callable[[Iterator[Any]], Iterator[Any]]:
    def partial_bounds(batches: Iterator[Any]) -> Iterator[Any]:
        import numpy as np
        import pyarrow as pa

        from radnet_spark.clustering.kmeans import pairwise_distances
        from radnet_spark.vectors import vectors_from_arrow

        low = np.full(len(centres), np.inf)
        high = np.full(len(centres), -np.inf)
        for batch in batches:
            matrix, _ = vectors_from_arrow(batch.column(column))
            if len(matrix):
                d = pairwise_distances(matrix, centres, distance)
                low = np.minimum(low, d.min(axis=0))
                high = np.maximum(high, d.max(axis=0))
        # One small row per partition: the driver only ever sees partitions x k numbers.
        if np.isfinite(low).all():
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array([low.tolist()], type=pa.list_(pa.float64())),
                    pa.array([high.tolist()], type=pa.list_(pa.float64())),
                ],
                names=["low", "high"],
            )

    return partial_bounds


def fit_distance_bounds(df: DataFrame, column: str, model: KMeansModel) -> dict[str, list[float]]:
    """Per-centre min and max distance over ``df``'s non-null vectors, reduced from per-partition partials."""
    schema = T.StructType(
        [
            T.StructField("low", T.ArrayType(T.DoubleType())),
            T.StructField("high", T.ArrayType(T.DoubleType())),
        ]
    )
    rows = (
        df.select(column)
        .where(F.col(column).isNotNull())
        .mapInArrow(
            _bounds_function(np.asarray(model.centres, dtype=np.float64), model.distance, column), schema
        )
        .collect()
    )
    if not rows:
        return {"low": [0.0] * model.k, "high": [1.0] * model.k}
    low = np.min(np.array([r["low"] for r in rows]), axis=0)
    high = np.max(np.array([r["high"] for r in rows]), axis=0)
    return {"low": low.tolist(), "high": high.tolist()}


def _vector_length(df: DataFrame, column: str) -> int:
    row = df.where(F.col(column).isNotNull()).select(F.size(column).alias("n")).first()
    if row is None:
        raise ValueError(f"No row has a {column[4:]} embedding, so its dimension is unknown.")
    return int(row["n"])


def fit_fusion(
    joined: DataFrame,
    views: list[str],
    cluster: ClusterConfig,
    *,
    view_models: dict[str, KMeansModel] | None = None,
    fit_split: str | None = "train",
) -> FusionModel:
    """Fit the fusion state on the training split of a :func:`join_views` frame.

    Args:
        joined: output of :func:`join_views`.
        views: views to fuse.
        cluster: the settings read: ``fusion`` (the method: ``embeddings``, ``clusterdists`` or
            ``clusterprobs``), ``missing_view`` (see module docstring), ``view_k`` (k of per-view
            models fitted here; a view it does not name uses its ``default_k``), ``engine``,
            ``distance``, ``max_iter`` and ``seed`` of those fits, ``fit_sample_rows`` (sample bound
            of the ``sample`` engine and of the block scales), ``block_scaling`` (``none``: blocks
            as they are; ``unit_variance``: each block centred and scaled to total variance 1, see
            :func:`block_scale`) and ``view_weights`` (multiplier per view's scaled block, default 1).
        view_models: per-view k-means models for the cluster methods; views without one are fitted
            here with ``cluster.view_k``.
        fit_split: split the state is fitted on; None for all rows.

    Returns:
        The fitted :class:`FusionModel`.
    """
    method, missing_view = cluster.fusion, cluster.missing_view
    views = check_views(views)
    if method not in METHODS:
        raise ValueError(f"Unknown fusion method {method!r}; use one of {', '.join(METHODS)}.")
    if missing_view not in MISSING_VIEW_RULES:
        raise ValueError(
            f"Unknown missing-view rule {missing_view!r}; use one of {', '.join(MISSING_VIEW_RULES)}."
        )
    train = joined if fit_split is None else joined.where(F.col("split") == fit_split)
    dims = {v: _vector_length(joined, view_column(v)) for v in views}
    models: dict[str, KMeansModel] = {}
    bounds: dict[str, dict[str, list[float]]] = {}
    if method != "embeddings":
        ks = views_k(views, dict(cluster.view_k))
        for view in views:
            column = view_column(view)
            model = (view_models or {}).get(view)
            if model is None:
                model = fit_kmeans(
                    train.where(F.col(column).isNotNull()),
                    ks[view],
                    features_col=column,
                    distance=cluster.distance,
                    engine=cluster.engine,
                    max_iter=cluster.max_iter,
                    seed=cluster.seed,
                    fit_sample_rows=cluster.fit_sample_rows,
                )
            if model.dim != dims[view]:
                raise ValueError(
                    f"The {view} model has {model.dim}-dimensional centres but the "
                    f"embeddings have {dims[view]} dimensions."
                )
            models[view] = model
            if method == "clusterdists":
                bounds[view] = fit_distance_bounds(train, column, model)
    fusion = FusionModel(
        method=method, views=views, dims=dims, missing_view=missing_view, view_models=models, bounds=bounds
    )
    if cluster.block_scaling != "none":
        weights = cluster.view_weights
        for view in views:
            column = view_column(view)
            sample = sample_matrix(
                train.where(F.col(column).isNotNull()), column, cluster.fit_sample_rows, cluster.seed
            )
            if method == "clusterprobs":
                model = models[view]
                fusion.temperatures[view] = typical_distance(
                    pairwise_distances(sample, model.centres, model.distance)
                )
            fusion.scales[view] = block_scale(fusion.raw_block(view, sample), float(weights.get(view, 1.0)))
    return fusion


def typical_distance(distances: np.ndarray) -> float:
    """Mean distance of rows to their nearest centre: the unit in which one view's distances count.

    Dividing by it before ``softmax(-d)`` makes the probabilities independent of the view's units,
    so a view of small distances is not flattened to uniform nor one of large ones sharpened to one-hot.
    """
    if not len(distances):
        return 1.0
    nearest = float(distances.min(axis=1).mean())
    return nearest if nearest > 0 else 1.0


def block_scale(block: np.ndarray, weight: float = 1.0) -> dict[str, Any]:
    """Centre and scale of one view's training block: its mean, and the root of its total variance.

    Divided by it, every view's block has total variance ``weight²``: no view decides the distances by
    its units or its number of dimensions alone.
    """
    mean = block.mean(axis=0)
    total_variance = float(((block - mean) ** 2).sum(axis=1).mean()) if len(block) else 0.0
    return {"mean": mean.tolist(), "scale": float(np.sqrt(total_variance)) or 1.0, "weight": weight}


def fit_per_combination(
    fused: DataFrame,
    fit: Callable[[DataFrame], KMeansModel],
    *,
    fit_split: str | None = "train",
) -> dict[str, KMeansModel]:
    """``available_views`` rule: one model per ``views_present`` combination, fitted on its rows.

    Args:
        fused: the ``fused`` table built under ``available_views``.
        fit: fits a model on one combination's frame (e.g. ``lambda d: fit_kmeans(d, 50)``).
        fit_split: split to fit on; None for all rows.

    Returns:
        combination key → model; combinations with no training rows or no views get no model.
    """
    keyed = fused.withColumn("_combo", F.array_join("views_present", ","))
    train = keyed if fit_split is None else keyed.where(F.col("split") == fit_split)
    # At most 2^3 - 1 combinations: collecting their names is bounded.
    combos = sorted(r["_combo"] for r in train.select("_combo").distinct().collect() if r["_combo"])
    return {combo: fit(train.where(F.col("_combo") == combo).drop("_combo")) for combo in combos}


def assign_per_combination(
    fused: DataFrame,
    models: dict[str, KMeansModel],
    features_col: str = "features",
) -> DataFrame:
    """Assign each row with its combination's model; cluster ids offset to be unique across models.

    Offsets follow the sorted combination keys: the first model's clusters are ``0..k1-1``, the
    next one's ``k1..k1+k2-1``, and so on. Rows whose combination has no model keep a null cluster.
    """
    keyed = fused.withColumn("_combo", F.array_join("views_present", ","))
    parts = []
    offset = 0
    for combo in sorted(models):
        model = models[combo]
        assigned = model.assign(keyed.where(F.col("_combo") == combo), features_col)
        parts.append(assigned.withColumn("cluster", (F.col("cluster") + F.lit(offset)).cast("int")))
        offset += model.k
    rest = keyed.where(~F.col("_combo").isin(list(models)) if models else F.lit(True))
    parts.append(
        rest.withColumn("cluster", F.lit(None).cast("int")).withColumn("distance", F.lit(None).cast("double"))
    )
    result = parts[0]
    for part in parts[1:]:
        result = result.unionByName(part)
    return result.drop("_combo")
