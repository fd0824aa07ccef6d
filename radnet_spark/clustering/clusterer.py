"""The last fitted step: k (by the elbow unless set), then k-means or k-medoids on the fused rows.

A :class:`ClusterModel` is one centre set, or one per view combination under the
``available_views`` rule (rows carry only the views they have, so vector lengths differ). It saves
itself into one folder with a versioned ``clusterer.json``; ``assign`` gives every fused row its
nearest centre and the distance to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from radnet_spark.artifacts import read_step_manifest, write_step_manifest
from radnet_spark.clustering.elbow import ElbowResult, elbow_sweep, k_range
from radnet_spark.clustering.kmeans import KMeansModel, fit_kmeans
from radnet_spark.clustering.kmedoids import fit_kmedoids
from radnet_spark.config import ClusterConfig
from radnet_spark.errors import PipelineError
from radnet_spark.fusion import assign_per_combination, fit_per_combination

CLUSTERER_FORMAT_VERSION = 1
CLUSTERER_FILE = "clusterer.json"


def choose_k(train: DataFrame, cluster: ClusterConfig) -> tuple[int, ElbowResult | None]:
    """``cluster.k`` when set, else the elbow of the within-cluster cost over ``k_min..k_max``."""
    if cluster.k is not None:
        return cluster.k, None
    train_rows = train.count()
    ks = [k for k in k_range(cluster.k_min, cluster.k_max, cluster.k_step) if k < train_rows]
    if not ks:
        raise PipelineError(
            f"{train_rows} training rows are too few for any k in {cluster.k_min}..{cluster.k_max}; "
            "set cluster.k or ingest more data."
        )
    elbow = elbow_sweep(train, ks, distance=cluster.distance, fit_sample_rows=cluster.elbow_sample_rows,
                        max_iter=cluster.max_iter, seed=cluster.seed)
    return elbow.chosen_k, elbow


def fit_centres(rows: DataFrame, k: int, cluster: ClusterConfig, features_col: str = "features") -> KMeansModel:
    """One centre set on ``rows``' vectors with the configured algorithm.

    Args:
        rows: The rows to fit on (already the training split).
        k: Number of centres.
        cluster: ``algorithm``, ``distance``, ``engine``, ``max_iter``, ``seed`` and the sample bounds.
        features_col: The vector column.

    Returns:
        The centres (medoids for k-medoids).
    """
    if cluster.algorithm == "kmedoids":
        return fit_kmedoids(rows, k, features_col=features_col, distance=cluster.distance,
                            fit_sample_rows=cluster.kmedoids_sample_rows, seed=cluster.seed)
    return fit_kmeans(rows, k, features_col=features_col, distance=cluster.distance, engine=cluster.engine,
                      max_iter=cluster.max_iter, seed=cluster.seed, fit_sample_rows=cluster.fit_sample_rows)


@dataclass
class ClusterModel:
    """Fitted centres: ``models[""]`` alone, or one model per ``views_present`` combination.

    Attributes:
        k: The k chosen (per model).
        models: combination key (``""`` for one model over every row) → centres.
        elbow: The elbow sweep that chose k (None when k was set).
        settings: The algorithm, engine and distance used.
    """

    k: int
    models: dict[str, KMeansModel]
    elbow: ElbowResult | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, fused: DataFrame, cluster: ClusterConfig) -> ClusterModel:
        """Choose k on the training split of ``fused`` and fit the centres there."""
        train = fused.where(F.col("split") == "train")
        k, elbow = choose_k(train, cluster)
        if cluster.missing_view == "available_views":
            models = fit_per_combination(fused, lambda rows: fit_centres(rows, k, cluster))
        else:
            models = {"": fit_centres(train, k, cluster)}
        settings = {"algorithm": cluster.algorithm, "engine": cluster.engine, "distance": cluster.distance}
        return cls(k, models, elbow, settings)

    def assign(self, fused: DataFrame) -> DataFrame:
        """``fused`` with ``cluster`` (ids unique across combinations) and ``distance``."""
        if set(self.models) == {""}:
            return self.models[""].assign(fused, features_col="features")
        return assign_per_combination(fused, self.models)

    def save(self, directory: str) -> None:
        """Write every per-combination model and the ``clusterer.json`` manifest into ``directory``.

        Args:
            directory: Folder of the clusterer (created).
        """
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        folders = {combo: f"model_{i}" for i, combo in enumerate(sorted(self.models))}
        for combo, model in self.models.items():
            model.save(folder / folders[combo])
        write_step_manifest(folder, CLUSTERER_FILE, "clusterer", CLUSTERER_FORMAT_VERSION, k=self.k, models=folders,
                            **self.settings)

    @classmethod
    def load(cls, directory: str) -> ClusterModel:
        """Read a clusterer written by :meth:`save`; another format is refused in one sentence.

        Args:
            directory: Folder the clusterer was saved to.

        Returns:
            The clusterer, without its elbow result (that is saved beside it).
        """
        folder = Path(directory)
        manifest = read_step_manifest(folder, CLUSTERER_FILE, "clusterer", CLUSTERER_FORMAT_VERSION)
        models = {combo: KMeansModel.load(folder / sub) for combo, sub in manifest["models"].items()}
        settings = {name: manifest[name] for name in ("algorithm", "engine", "distance") if name in manifest}
        return cls(int(manifest["k"]), models, None, settings)
