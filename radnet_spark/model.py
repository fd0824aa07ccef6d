"""``RadnetModel``: every fitted step of one pipeline version, and the one path that applies them.

The steps, in order: the tag features (BPE rules, selection, imputation, encoding), one fitted view
per name in ``cluster.views`` (:mod:`radnet_spark.views`), the fusion, the clusterer. ``run`` fits
them stage by stage and keeps what each stage produced as a warehouse table (so a killed run
resumes); ``label`` loads a finished version and calls :meth:`RadnetModel.transform` on new rows.
Both go through the same methods, so a row is labelled the same either way.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pyspark.sql import DataFrame

from radnet_spark import artifacts as A
from radnet_spark.artifacts import PipelineDir, open_pipeline_dir
from radnet_spark.clustering.clusterer import ClusterModel
from radnet_spark.config import RadnetConfig
from radnet_spark.errors import PipelineError
from radnet_spark.fusion import FusionModel, fit_fusion, join_views
from radnet_spark.splits import with_split
from radnet_spark.tags.bpe import DEFAULT_RULES_PATH, add_bpe_columns, bpe_fill_rates, load_bpe_rules
from radnet_spark.tags.features import TagPreprocessing, fit_tag_preprocessing
from radnet_spark.views import FittedView, ViewInputs, get_view

log = logging.getLogger(__name__)


def fit_tag_features(tags: DataFrame, config: RadnetConfig, pipeline: PipelineDir) -> dict[str, object]:
    """Fit the tag preprocessing on ``tags`` and keep it, with the BPE rules it used, in ``pipeline``."""
    t = config.tags
    # The rules are data: the version used is copied into the pipeline so `label` applies the same.
    load_bpe_rules(t.bpe_rules_path)  # validate before copying: a bad file fails with one sentence
    rules_source = Path(t.bpe_rules_path) if t.bpe_rules_path else DEFAULT_RULES_PATH
    Path(pipeline.path(A.BPE_RULES)).write_bytes(rules_source.read_bytes())
    preprocessing = fit_tag_preprocessing(tags, t, config.split)
    preprocessing.save(pipeline.path(A.TAG_PREPROCESSING))
    pipeline.record_artifact(A.TAG_PREPROCESSING, features=len(preprocessing.feature_names))
    rules = load_bpe_rules(pipeline.path(A.BPE_RULES))
    fill = bpe_fill_rates(add_bpe_columns(tags, rules))
    pipeline.update_manifest(bpe_rules_version=rules.version, bpe_fill_rates=fill)
    return {"bpe_fill_rates": fill, "features": len(preprocessing.feature_names)}


def usable_views(inputs: ViewInputs, views: list[str]) -> tuple[list[str], dict[str, int]]:
    """The views with enough usable training rows, and every view's count.

    A view below ``cluster.min_view_rows`` is left out with one warning that says why and how to
    choose views; with ``cluster.drop_empty_views=false`` it is an error instead. No view left is an
    error before any training.
    """
    cluster = inputs.config.cluster
    kept, counts = [], {}
    for name in views:
        rows, what = get_view(name).usable_rows(inputs)
        counts[name] = rows
        if rows >= cluster.min_view_rows:
            kept.append(name)
            continue
        message = (f"view {name} has {rows} {what}, fewer than cluster.min_view_rows={cluster.min_view_rows}")
        if not cluster.drop_empty_views:
            raise PipelineError(f"The {message}; name the views to use in cluster.views.")
        log.warning("%s: left out (choose views with cluster.views; cluster.drop_empty_views=false stops instead).",
                    message)
    if not kept:
        raise PipelineError(
            f"No view has {cluster.min_view_rows} usable training rows ({', '.join(f'{v}: {n}' for v, n in counts.items())}); "
            "ingest more data or lower cluster.min_view_rows."
        )
    return kept, counts


class RadnetModel:
    """The fitted steps of ``pipeline`` under ``config`` (the version's own, or a label config).

    Args:
        pipeline: The version folder.
        config: Settings; ``cluster.views`` names the views applied.
    """

    def __init__(self, pipeline: PipelineDir, config: RadnetConfig) -> None:
        self.pipeline = pipeline
        self.config = config
        # The views training actually used (a view without data is left out); else the config's.
        self.views = list(pipeline.manifest().get("views") or config.cluster.views)

    def use_views(self, views: list[str], usable_rows: dict[str, int]) -> None:
        """Fit and apply only ``views``; the manifest records them for ``label``."""
        self.views = list(views)
        self.pipeline.update_manifest(views=self.views, usable_rows=usable_rows)

    @classmethod
    def load(cls, path: str, config: RadnetConfig | None = None) -> RadnetModel:
        """A finished version (one-sentence error otherwise); None uses the version's own config."""
        pipeline = open_pipeline_dir(path)
        return cls(pipeline, config if config is not None else pipeline.config())

    # -- the steps, each a lazy transform --------------------------------------------------------
    def tag_features(self, tags: DataFrame) -> DataFrame:
        """``tag_features`` rows: BPE columns plus the encoded, imputed vector."""
        rules = load_bpe_rules(self.pipeline.path(A.BPE_RULES))
        with_bpe = add_bpe_columns(tags, rules).select("sop_instance_uid", "bpe", "bpe_source")
        preprocessing = TagPreprocessing.load(self.pipeline.path(A.TAG_PREPROCESSING))
        return preprocessing.transform(tags, ship_model="path").join(with_bpe, "sop_instance_uid", "left")

    def fitted_view(self, name: str) -> FittedView:
        """View ``name`` as fitted in this version, loaded from its folder."""
        view = get_view(name)
        return view.load(self.pipeline.path(view.artifact))

    def fit_view(self, name: str, inputs: ViewInputs) -> FittedView:
        """Fit view ``name`` on the warehouse's training split and keep it in the version."""
        view = get_view(name)
        fitted = view.fit(inputs, self.pipeline.path(view.artifact))
        fitted.save()
        self.pipeline.record_artifact(view.artifact, kind=fitted.info.get("kind"), size=fitted.embedding_size)
        return fitted

    def fit_fusion(self, embeddings: dict[str, DataFrame], instances: DataFrame) -> DataFrame:
        """Fit the fusion on the training split and keep it; returns the fused rows (lazy)."""
        c = self.config.cluster
        joined = join_views(embeddings, instances)
        fusion = fit_fusion(joined, self.views, c)
        fusion.save(self.pipeline.path(A.FUSION))
        self.pipeline.record_artifact(A.FUSION, method=c.fusion, views=self.views, block_scaling=c.block_scaling)
        return fusion.transform(joined)

    def fit_clusterer(self, fused: DataFrame) -> ClusterModel:
        """Choose k and fit the centres on the training split of ``fused``; keep them (and the elbow)."""
        c = self.config.cluster
        clusterer = ClusterModel.fit(fused, c)
        if clusterer.elbow is not None:
            clusterer.elbow.save(self.pipeline.path(A.ELBOW))
        clusterer.save(self.pipeline.path(A.KMEANS))
        self.pipeline.record_artifact(A.KMEANS, k=clusterer.k, **clusterer.settings)
        elbow = clusterer.elbow
        self.pipeline.update_manifest(
            k=clusterer.k, k_rule=elbow.rule if elbow is not None else "cluster.k",
            k_runner_up=elbow.runner_up if elbow is not None else None,
        )
        return clusterer

    def embed(self, name: str, source: DataFrame) -> DataFrame:
        """The ``embeddings_<name>`` rows of ``source`` (that view's source-table rows)."""
        return self.fitted_view(name).transform(source, self.config)

    def fuse(self, embeddings: dict[str, DataFrame], instances: DataFrame) -> DataFrame:
        """One fused ``features`` vector per instance of ``instances``."""
        return FusionModel.load(self.pipeline.path(A.FUSION)).transform(join_views(embeddings, instances))

    def assign(self, fused: DataFrame) -> DataFrame:
        """The nearest centre of every fused row (``cluster``, ``distance``)."""
        return ClusterModel.load(self.pipeline.path(A.KMEANS)).assign(fused)

    def transform(self, tags: DataFrame, sources: dict[str, DataFrame | None]) -> DataFrame:
        """Cluster and distance of every ``tags`` row, from its rows in each view's source table.

        Args:
            tags: The instances to label (``tags`` rows).
            sources: view's ``source_table`` → that table (None or absent: no rows; the view's
                embedding is then missing, as for an exam without a report). The ``tag_features``
                source is derived from ``tags``.
        """
        keys = tags.select("sop_instance_uid", "exam_id")
        derived = {"tag_features": self.tag_features(tags)}
        embeddings: dict[str, DataFrame] = {}
        for name in self.views:
            view = get_view(name)
            table = derived.get(view.source_table, sources.get(view.source_table))
            if table is None:
                continue
            if view.source_table not in derived:
                table = table.join(keys.select(view.key).distinct(), view.key, "left_semi")
            embeddings[name] = self.embed(name, table)
        return self.assign(self.fuse(embeddings, with_split(keys, self.config.split)))

