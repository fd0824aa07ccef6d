"""The whole method as stages over the warehouse, fitted once (`run`) and applied to new dumps (`label`).

``run``: ingest → tag features (BPE imputation, selection, imputation, encoding) → train the three
embedders on the training split → embed every row → fuse → elbow and k-means → evaluate → report →
``labels``. Every fitted step is saved under one pipeline version (``models/<name>/<version>``).
A stage whose output is complete for the same inputs and settings is skipped (a ledger under
``WAREHOUSE/_stages``), so a killed run resumes where it stopped. A stage table is hidden while it
is rewritten (:func:`radnet_spark.tables.write_table`), and the version folder counts as trained
only once ``complete`` is set in its manifest, the last write of ``run``.

``label``: ingest only unseen files, apply the saved pipeline without re-training, append to
``labels``. Labels of an instance under one pipeline version never change. A label run's rows are
visible only once its commit record is written (docs/tables.md), so a killed label run labels
nothing and the next one labels its instances.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from radnet_spark import artifacts as A
from radnet_spark.artifacts import PipelineDir, create_pipeline_dir, fingerprint, open_pipeline_dir
from radnet_spark.config import ImageConfig, RadnetConfig, write_effective_config
from radnet_spark.errors import PipelineError
from radnet_spark.storage import read_json_object, to_local_path, write_text_atomically
from radnet_spark.tables import (
    commit_run,
    committed_runs,
    drop_table,
    read_table,
    remove_uncommitted,
    table_exists,
    table_path,
    uncommit_run,
    warehouse_lock,
    write_run_partition,
    write_table,
)

log = logging.getLogger(__name__)

COMBINATIONS = "combinations.json"  # view combination → model folder, under missing_view=available_views
STAGES = ("ingest", "features", "train", "embed", "cluster", "evaluate", "report")
VIEW_TABLES = {"tags": "embeddings_tags", "image": "embeddings_image", "diagnosis": "embeddings_diagnosis"}


# --------------------------------------------------------------------------------------------
# Stage ledger: which stage finished for which fingerprint of inputs and settings.
# --------------------------------------------------------------------------------------------
class StageLedger:
    def __init__(self, warehouse: str) -> None:
        self.root = Path(to_local_path(warehouse)) / "_stages"

    def _path(self, stage: str) -> Path:
        return self.root / f"{stage}.json"

    def done(self, stage: str, stamp: str) -> bool:
        return self.info(stage).get("fingerprint") == stamp

    def info(self, stage: str) -> dict[str, Any]:
        """The stage's entry; {} when missing or torn (a kill while it was written: the stage runs again)."""
        return read_json_object(self._path(stage)) or {}

    def mark(self, stage: str, stamp: str, **info: Any) -> None:
        record = {"fingerprint": stamp, "finished_at": datetime.now(UTC).isoformat(), **info}
        write_text_atomically(self._path(stage), json.dumps(record, indent=2, default=str))


@dataclass
class RunResult:
    pipeline: PipelineDir
    report: Path | None
    k: int
    metrics: dict[str, Any]
    stages_run: list[str] = field(default_factory=list)
    stages_skipped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"pipeline {self.pipeline.root}",
            f"  stages run: {', '.join(self.stages_run) or 'none'}; skipped (complete): "
            f"{', '.join(self.stages_skipped) or 'none'}",
            f"  k = {self.k}",
        ]
        for split in ("validation", "test"):
            m = self.metrics.get(split) or {}
            if m:
                lines.append(
                    f"  {split:<10} score {m.get('score', 0):.3f}  HS/NMI modality "
                    f"{m.get('hs_modality', 0):.3f}/{m.get('nmi_modality', 0):.3f}  HS/NMI bpe "
                    f"{m.get('hs_bpe', 0):.3f}/{m.get('nmi_bpe', 0):.3f}"
                )
        if self.report is not None:
            lines.append(f"report: {self.report}")
        return "\n".join(lines)


def _section(config: RadnetConfig, *names: str) -> dict[str, Any]:
    full = config.to_dict()
    return {name: full[name] for name in names}


def data_fingerprint(spark: SparkSession, warehouse: str) -> str:
    """Identifies the ingested data: the committed ingest runs that wrote files or rejects rows."""
    runs = {
        record.get("run_id") for record in committed_runs(warehouse, "ingest")
        if {"files", "rejects"} & set(record["partitions"])
    }
    return fingerprint(sorted(r for r in runs if r))


CANONICAL_PARTITIONS = 16


def canonical_layout(df: DataFrame, key: str = "sop_instance_uid", partition_by: str | None = None) -> DataFrame:
    """Rows in files decided by the key alone, so training streams the same batches on any cluster.

    Hash partitioning into a fixed count and sorting inside each partition make the files' content
    and order independent of how many executors wrote them (spark.sql.shuffle.partitions, AQE).
    A table written with ``partitionBy(partition_by)`` must sort by that column first: the writer
    sorts by it anyway, and Spark then drops a key-only sort as redundant, leaving the rows in
    arrival order, which depends on the input's file layout.
    """
    order = [partition_by, key] if partition_by else [key]
    return df.repartition(CANONICAL_PARTITIONS, key).sortWithinPartitions(*order)


def reproducibility_record(config: RadnetConfig, warehouse: str) -> dict[str, Any]:
    """What, beside the input files and the config, decides a run's labels (kept in the manifest).

    The salt decides the hashed exam ids, hence the exam-level split: two runs give the same labels
    only with the same salt (the same ``RADNET_SALT`` or the same warehouse). Only a keyed digest of
    the salt is recorded, never the salt.
    """
    import torch

    from radnet_spark.dicom.deid import resolve_salt, salted_hash

    salt = resolve_salt(config.privacy.salt_env, Path(to_local_path(warehouse)) / "_private" / "salt")
    return {
        "salt_fingerprint": salted_hash("radnet-salt-fingerprint", salt)[:16],
        "salt_from": config.privacy.salt_env if os.environ.get(config.privacy.salt_env) else "warehouse _private/salt",
        "seeds": {"split": config.split.seed, "text": config.text.seed, "cluster": config.cluster.seed},
        "train_threads": {"tags": config.tags.ae_train_threads, "image": config.image.train_threads},
        "torch": torch.__version__,
        "training_device": "cuda" if torch.cuda.is_available() else "cpu",
        "mkl": {name: os.environ.get(name) for name in ("MKL_CBWR", "MKL_DYNAMIC")},
    }


def _bounded_training_images(images: DataFrame, image: ImageConfig, seed: int) -> DataFrame:
    """Only as many training/validation images as the image embedder can read, picked by key hash.

    The embedder samples at most ``train_sample_rows`` training rows (and fixed-size validation and
    PCA samples); copying every image of a 1.3M dump into its work table would move ~20 GB for that.
    """
    from radnet_spark.sampling import hash_candidates

    counts = {row["split"]: row["count"] for row in images.groupBy("split").count().collect()}
    wanted = {
        "train": max(image.train_sample_rows or counts.get("train", 0), image.pca_sample_rows),
        "validation": image.validation_sample_rows,
    }
    rank = F.xxhash64(F.lit(seed), F.col("sop_instance_uid"))
    keep = F.lit(False)
    for split, rows in wanted.items():
        keep = keep | ((F.col("split") == split) & hash_candidates(rank, rows, counts.get(split, 0)))
    return images.where(keep)


def _with_split(df: DataFrame, config: RadnetConfig) -> DataFrame:
    from radnet_spark.splits import split_column

    split = config.split
    return df.withColumn("split", split_column("exam_id", split.train, split.validation, split.seed))


# --------------------------------------------------------------------------------------------
# Applying fitted steps (shared by `run` after fitting and by `label`).
# --------------------------------------------------------------------------------------------
def compute_tag_features(tags: DataFrame, pipeline: PipelineDir) -> DataFrame:
    """``tag_features`` rows for ``tags`` rows: BPE columns plus the encoded, imputed vector."""
    from radnet_spark.tags.bpe import add_bpe_columns, load_bpe_rules
    from radnet_spark.tags.features import TagPreprocessing

    rules = load_bpe_rules(pipeline.path(A.BPE_RULES))
    with_bpe = add_bpe_columns(tags, rules).select("sop_instance_uid", "bpe", "bpe_source")
    encoded = TagPreprocessing.load(pipeline.path(A.TAG_PREPROCESSING)).transform(tags, ship_model="path")
    return encoded.join(with_bpe, "sop_instance_uid", "left")


def embed_view(view: str, source: DataFrame, pipeline: PipelineDir, config: RadnetConfig) -> DataFrame:
    """The ``embeddings_<view>`` rows of ``source`` with the pipeline's fitted embedder."""
    from radnet_spark.inference import embed_dataframe

    if view == "tags":
        return embed_dataframe(source, pipeline.path(A.TAG_EMBEDDER), "tags", batch_rows=1024)
    if view == "image":
        return embed_dataframe(
            _with_split(source, config), pipeline.path(A.IMAGE_EMBEDDER), "image",
            batch_rows=config.image.inference_batch_rows,
        )
    if view == "diagnosis":
        from radnet_spark.text.embedding import DiagnosisEmbedder

        embedder = DiagnosisEmbedder.load(pipeline.path(A.DIAGNOSIS_EMBEDDER))
        return embedder.transform(_with_split(source, config))
    raise PipelineError(f"Unknown view {view!r}; choose from tags, image, diagnosis.")


def assign_clusters(fused: DataFrame, pipeline: PipelineDir) -> DataFrame:
    """Nearest centre (or medoid) of every fused row: one model, or one per view combination."""
    from radnet_spark.clustering.kmeans import KMeansModel
    from radnet_spark.fusion import assign_per_combination

    combos_file = Path(pipeline.path(A.KMEANS)) / COMBINATIONS
    if combos_file.is_file():
        combos = json.loads(combos_file.read_text(encoding="utf-8"))
        models = {combo: KMeansModel.load(Path(pipeline.path(A.KMEANS)) / folder) for combo, folder in combos.items()}
        return assign_per_combination(fused, models)
    return KMeansModel.load(pipeline.path(A.KMEANS)).assign(fused, features_col="features")


def fuse_and_assign(
    embeddings: dict[str, DataFrame], instances: DataFrame, pipeline: PipelineDir
) -> DataFrame:
    """Fused features and the nearest centre of every instance."""
    from radnet_spark.fusion import FusionModel, join_views

    joined = join_views(embeddings, instances)
    return assign_clusters(FusionModel.load(pipeline.path(A.FUSION)).transform(joined), pipeline)


def _labels_rows(assigned: DataFrame, tags: DataFrame, pipeline: PipelineDir, run_id: str) -> DataFrame:
    return assigned.join(tags.select("sop_instance_uid", "path"), "sop_instance_uid", "left").select(
        "sop_instance_uid",
        "path",
        F.col("cluster").cast("int").alias("cluster"),
        F.col("distance").cast("double").alias("distance"),
        F.lit(pipeline.version).alias("pipeline_version"),
        F.current_timestamp().alias("labelled_at"),
        F.lit(run_id).alias("label_run_id"),
    )


def labels_partition(version: str, run_id: str) -> str:
    return f"pipeline_version={version}/label_run_id={run_id}"


def write_labels(rows: DataFrame, warehouse: str, version: str, run_id: str) -> int:
    """Write and commit one label run's rows: ``labels/pipeline_version=<v>/label_run_id=<run>/``.

    `run` labels its version as run ``run`` (a rewrite first hides the old rows: complete or
    absent); `label` appends one folder per run. Only the record ``_runs/<run>.labels-<v>.json``,
    written last, makes the rows visible. Returns the rows written.
    """
    record = f"{run_id}.labels-{version}"
    uncommit_run(warehouse, record)
    partition = labels_partition(version, run_id)
    shutil.rmtree(to_local_path(f"{table_path(warehouse, 'labels')}/{partition}"), ignore_errors=True)
    log.info("label %s: write labels ...", run_id)
    count = write_run_partition(rows, warehouse, "labels", partition)
    log.info("label %s: write labels done", run_id)
    if count:
        commit_run(warehouse, record, "label", {"labels": partition}, {"labels": count},
                   run_id=run_id, pipeline_version=version)
        log.info("label %s: commit done", run_id)
    return count


# --------------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------------
class _Runner:
    def __init__(self, spark: SparkSession, warehouse: str, config: RadnetConfig, pipeline: PipelineDir,
                 data_stamp: str) -> None:
        self.spark, self.warehouse, self.config, self.pipeline = spark, warehouse, config, pipeline
        self.ledger = StageLedger(warehouse)
        self.data_stamp = data_stamp
        self.stamps: dict[str, str] = {}
        self.ran: list[str] = []
        self.skipped: list[str] = []

    def table(self, name: str) -> DataFrame:
        return read_table(self.spark, self.warehouse, name)

    def stage(self, name: str, stamp: str, work: Callable[[], dict[str, Any] | None]) -> None:
        self.stamps[name] = stamp
        if self.ledger.done(name, stamp):
            log.info("stage %s: complete for these inputs and settings, skipped", name)
            self.skipped.append(name)
            return
        log.info("stage %s: running", name)
        started = datetime.now(UTC)
        info = work() or {}
        seconds = (datetime.now(UTC) - started).total_seconds()
        self.ledger.mark(name, stamp, seconds=seconds, pipeline=str(self.pipeline.root), **info)
        self.ran.append(name)
        log.info("stage %s: done in %.1f s", name, seconds)

    # -- stages -------------------------------------------------------------------------------
    def features(self) -> dict[str, Any]:
        from radnet_spark.tags.bpe import DEFAULT_RULES_PATH, add_bpe_columns, bpe_fill_rates, load_bpe_rules
        from radnet_spark.tags.features import KEY_COLUMNS, fit_tag_preprocessing

        tags = self.table("tags")
        t, s = self.config.tags, self.config.split
        # The rules are data: the version used is copied into the pipeline so `label` applies the same.
        load_bpe_rules(t.bpe_rules_path)  # validate before copying: a bad file fails with one sentence
        rules_source = Path(t.bpe_rules_path) if t.bpe_rules_path else DEFAULT_RULES_PATH
        Path(self.pipeline.path(A.BPE_RULES)).write_bytes(rules_source.read_bytes())
        preprocessing = fit_tag_preprocessing(
            tags, exclude=KEY_COLUMNS | set(t.exclude_columns), min_fill_rate=t.min_fill_rate,
            min_distinct=t.min_distinct, max_categories=t.max_categories,
            categorical_overflow=t.categorical_overflow, imputer=t.imputer,
            missforest_trees=t.missforest_trees, missforest_max_iter=t.missforest_max_iter,
            missforest_max_depth=t.missforest_max_depth, missforest_max_samples=t.missforest_max_samples,
            fit_sample_rows=t.fit_sample_rows, train=s.train, validation=s.validation, seed=s.seed,
        )
        preprocessing.save(self.pipeline.path(A.TAG_PREPROCESSING))
        self.pipeline.record_artifact(A.TAG_PREPROCESSING, features=len(preprocessing.feature_names))
        write_table(canonical_layout(compute_tag_features(tags, self.pipeline)), self.warehouse, "tag_features")
        rules = load_bpe_rules(self.pipeline.path(A.BPE_RULES))
        fill = bpe_fill_rates(add_bpe_columns(tags, rules))
        log.info("BodyPartExamined fill rate: %s", fill)
        self.pipeline.update_manifest(bpe_rules_version=rules.version, bpe_fill_rates=fill)
        return {"bpe_fill_rates": fill, "features": len(preprocessing.feature_names)}

    def train_tags(self) -> dict[str, Any]:
        from radnet_spark.embedders import TagEmbedder

        t = self.config.tags
        embedder = TagEmbedder(
            t.embedder, bottleneck=t.ae_bottleneck, hidden=t.ae_hidden, batch_size=t.ae_batch_size,
            learning_rate=t.ae_learning_rate, max_epochs=t.ae_max_epochs, patience=t.ae_patience,
            pca_components=t.pca_components, train_sample_rows=t.fit_sample_rows, seed=self.config.split.seed,
            train_threads=t.ae_train_threads,
        )
        embedder.fit(table_path(self.warehouse, "tag_features"))
        embedder.save(self.pipeline.path(A.TAG_EMBEDDER))
        self.pipeline.record_artifact(A.TAG_EMBEDDER, kind=t.embedder, size=embedder.embedding_size)
        return {"metrics": embedder.metrics}

    def train_image(self) -> dict[str, Any]:
        from radnet_spark.embedders import ImageEmbedder

        i = self.config.image
        work_table = "_work/image_training"
        images = _with_split(self.table("images"), self.config).where(F.col("split").isin("train", "validation"))
        images = _bounded_training_images(images, i, self.config.split.seed)
        # One folder per split: each epoch's validation pass then reads validation files only, instead of
        # decoding every row group's images to filter them by split.
        write_table(canonical_layout(images.select("sop_instance_uid", "exam_id", "split", "image"),
                                     partition_by="split"), self.warehouse, work_table, partition_by="split")
        embedder = ImageEmbedder(
            filters=i.cae_filters, bottleneck_channels=i.cae_bottleneck_channels,
            image_size=self.config.ingest.image_size, batch_size=i.batch_size, learning_rate=i.learning_rate,
            max_epochs=i.max_epochs, patience=i.patience, train_sample_rows=i.train_sample_rows,
            validation_sample_rows=i.validation_sample_rows, pca_components=i.pca_components,
            pca_sample_rows=i.pca_sample_rows, seed=self.config.split.seed, train_threads=i.train_threads,
        )
        embedder.fit(table_path(self.warehouse, work_table))
        embedder.save(self.pipeline.path(A.IMAGE_EMBEDDER))
        drop_table(self.warehouse, work_table)
        self.pipeline.record_artifact(A.IMAGE_EMBEDDER, kind="cae", size=embedder.embedding_size)
        return {"metrics": embedder.metrics}

    def train_diagnosis(self) -> dict[str, Any]:
        from radnet_spark.text.embedding import fit_diagnosis_embedder

        x = self.config.text
        embedder = fit_diagnosis_embedder(
            _with_split(self.table("diagnoses"), self.config), kind=x.embedder,
            min_word_frequency=x.min_word_frequency, vector_size=x.vector_size, window=x.window,
            epochs=x.epochs, seed=x.seed, max_train_docs=x.max_train_docs,
        )
        embedder.save(self.pipeline.path(A.DIAGNOSIS_EMBEDDER))
        self.pipeline.record_artifact(A.DIAGNOSIS_EMBEDDER, kind=x.embedder, size=embedder.dimension)
        return {"dimension": embedder.dimension}

    def embed(self, view: str) -> dict[str, Any]:
        from radnet_spark.inference import arrow_batch_rows

        source = {"tags": "tag_features", "image": "images", "diagnosis": "diagnoses"}[view]
        # Image rows carry 16 KB each: a spark-submit session without our defaults would send Spark's
        # default 10,000 rows per Arrow batch to a worker, so the batch is bounded here.
        with arrow_batch_rows(self.spark, self.config.image.inference_batch_rows):
            write_table(embed_view(view, self.table(source), self.pipeline, self.config), self.warehouse,
                        VIEW_TABLES[view])
        return {}

    def instances(self) -> DataFrame:
        return self.table("tag_features").select("sop_instance_uid", "exam_id", "split")

    def cluster(self) -> dict[str, Any]:
        from radnet_spark.clustering.elbow import elbow_sweep, k_range
        from radnet_spark.clustering.kmeans import fit_kmeans
        from radnet_spark.clustering.kmedoids import fit_kmedoids
        from radnet_spark.fusion import fit_fusion, fit_per_combination, join_views

        c = self.config.cluster
        embeddings = {view: self.table(VIEW_TABLES[view]) for view in c.views}
        joined = join_views(embeddings, self.instances())
        fusion = fit_fusion(
            joined, list(c.views), method=c.fusion, missing_view=c.missing_view, view_k=c.view_k,
            engine=c.engine, distance=c.distance, fit_sample_rows=c.fit_sample_rows, max_iter=c.max_iter,
            seed=c.seed,
        )
        fusion.save(self.pipeline.path(A.FUSION))
        self.pipeline.record_artifact(A.FUSION, method=c.fusion, views=list(c.views))
        write_table(fusion.transform(joined), self.warehouse, "fused")
        train = self.table("fused").where(F.col("split") == "train")
        k = c.k
        if k is None:
            train_rows = train.count()
            ks = [kk for kk in k_range(c.k_min, c.k_max, c.k_step) if kk < train_rows]
            elbow = elbow_sweep(train, ks, distance=c.distance, fit_sample_rows=c.elbow_sample_rows,
                                max_iter=c.max_iter, seed=c.seed)
            elbow.save(self.pipeline.path(A.ELBOW))
            k = elbow.chosen_k
        def fit(rows: DataFrame) -> Any:
            if c.algorithm == "kmedoids":
                return fit_kmedoids(rows, k, distance=c.distance, fit_sample_rows=c.kmedoids_sample_rows,
                                    seed=c.seed)
            return fit_kmeans(rows, k, distance=c.distance, engine=c.engine, max_iter=c.max_iter, seed=c.seed,
                              fit_sample_rows=c.fit_sample_rows)

        kmeans_dir = Path(self.pipeline.path(A.KMEANS))
        if c.missing_view == "available_views":
            # Rows carry only the views they have, so vector lengths differ: one model per combination.
            models = fit_per_combination(self.table("fused"), fit)
            folders = {combo: f"combo_{i}" for i, combo in enumerate(sorted(models))}
            for combo, model in models.items():
                model.save(kmeans_dir / folders[combo])
            (kmeans_dir / COMBINATIONS).write_text(json.dumps(folders, indent=2), encoding="utf-8")
        else:
            fit(train).save(kmeans_dir)
        self.pipeline.record_artifact(A.KMEANS, k=k, algorithm=c.algorithm, engine=c.engine, distance=c.distance)
        self.pipeline.update_manifest(k=k)
        assigned = assign_clusters(self.table("fused"), self.pipeline)
        write_labels(_labels_rows(assigned, self.table("tags"), self.pipeline, "run"), self.warehouse,
                     self.pipeline.version, "run")
        return {"k": k}

    def labels(self) -> DataFrame:
        return read_table(self.spark, self.warehouse, "labels").where(
            F.col("pipeline_version") == self.pipeline.version
        )

    def evaluate(self) -> dict[str, Any]:
        from radnet_spark.evaluation.metrics import evaluate_clusters

        labels = self.labels().join(self.instances(), "sop_instance_uid")
        results: dict[str, Any] = {}
        for split in ("validation", "test"):
            part = labels.where(F.col("split") == split)
            found = evaluate_clusters(
                part, self.table("tag_features"),
                image_embeddings=self.table("embeddings_image") if "image" in self.config.cluster.views else None,
                diagnosis_embeddings=(
                    self.table("embeddings_diagnosis") if "diagnosis" in self.config.cluster.views else None
                ),
            )
            results[split] = {k: v for k, v in found.items() if k not in ("per_cluster",)}
        metrics_path = Path(self.pipeline.path(A.METRICS))
        metrics_path.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
        self.pipeline.update_manifest(metrics={s: {k: v for k, v in m.items() if k != "sizes"} for s, m in results.items()})
        return {}

    def compare(self) -> dict[str, Any]:
        """Every single view and every fusion of every view combination, like the paper's Table 7."""
        from radnet_spark.evaluation.compare import compare_fusions, write_comparison

        c = self.config.cluster
        embeddings = {view: self.table(VIEW_TABLES[view]) for view in c.views}
        table = compare_fusions(
            embeddings, self.table("tag_features"), instances=self.instances(), algorithm=c.algorithm,
            distance=c.distance, engine=c.engine, missing_view=c.missing_view,
            fit_sample_rows=c.fit_sample_rows, max_iter=c.max_iter, seed=c.seed,
        )
        out_dir = Path(to_local_path(self.warehouse)) / "evaluation"
        csv_path, md_path = write_comparison(table, out_dir)
        shutil.copyfile(md_path, self.pipeline.path("comparison.md"))
        print(md_path.read_text(encoding="utf-8"))
        return {"csv": str(csv_path), "markdown": str(md_path)}

    def report(self) -> dict[str, Any]:
        from radnet_spark.evaluation.report import build_report

        out = Path(to_local_path(self.warehouse)) / "report" / "index.html"
        elbow = self.pipeline.path(A.ELBOW) if self.pipeline.has(A.ELBOW) else None
        build_report(self.spark, to_local_path(self.warehouse), self.labels(), out_html=out, elbow=elbow,
                     images_per_cluster=self.config.cluster.images_per_cluster,
                     title=f"radnet-spark clusters — {self.pipeline.name}/{self.pipeline.version}")
        return {"report": str(out)}


def run(
    spark: SparkSession,
    dicom: str | None,
    diagnoses: str | None,
    warehouse: str,
    config: RadnetConfig,
    models_root: str = "models",
    name: str = "default",
    until: str = "report",
    compare: bool = False,
) -> RunResult:
    """Ingest, fit every step on the training split, label every instance and write the report.

    Args:
        dicom: the dump to ingest first; None works on what the warehouse already holds.
        until: the last stage to run (one of STAGES); later stages wait for the next call.
        compare: also evaluate every single view and fusion method (``radnet evaluate --compare``).
    """
    with warehouse_lock(warehouse, "run"):
        return _run(spark, dicom, diagnoses, warehouse, config, models_root, name, until, compare)


def _run(
    spark: SparkSession, dicom: str | None, diagnoses: str | None, warehouse: str, config: RadnetConfig,
    models_root: str, name: str, until: str, compare: bool,
) -> RunResult:
    from radnet_spark.ingest.job import ingest

    if until not in STAGES:
        raise PipelineError(f"Unknown stage {until!r}; choose from {', '.join(STAGES)}.")
    last = STAGES.index(until)
    remove_uncommitted(warehouse, ("labels",))
    if dicom is not None:
        log.info("%s", ingest(spark, dicom, diagnoses, warehouse, config))
    if not table_exists(warehouse, "tags"):
        raise PipelineError(f"Warehouse {warehouse} has no tags table; ingest a dump first (--dicom).")
    write_effective_config(config, warehouse, "run")
    data_stamp = data_fingerprint(spark, warehouse)
    run_stamp = fingerprint(data_stamp, config.to_dict())
    ledger = StageLedger(warehouse)
    previous = ledger.info("run")
    if previous.get("fingerprint") == run_stamp and Path(previous.get("pipeline", "")).is_dir():
        pipeline = PipelineDir(Path(previous["pipeline"]))  # resume the interrupted or finished version
    else:
        pipeline = create_pipeline_dir(models_root, name, A.new_version(), config)
        pipeline.update_manifest(reproducibility=reproducibility_record(config, warehouse))
        ledger.mark("run", run_stamp, pipeline=str(pipeline.root), complete=False)

    runner = _Runner(spark, warehouse, config, pipeline, data_stamp)
    views = list(config.cluster.views)
    # Each stamp names the pipeline version too, so a new version never reuses another's artifacts.
    base = (data_stamp, pipeline.version)
    wanted = set(STAGES[: last + 1])
    if "features" in wanted:
        runner.stage("features", fingerprint(base, _section(config, "tags", "split")), runner.features)
    trainers = {"tags": runner.train_tags, "image": runner.train_image, "diagnosis": runner.train_diagnosis}
    sections = {"tags": ("tags", "split"), "image": ("image", "split", "ingest"), "diagnosis": ("text", "split")}
    for view in views:
        trained = fingerprint(base, runner.stamps.get("features"), _section(config, *sections[view]))
        if "train" in wanted:
            runner.stage(f"train_{view}", trained, trainers[view])
        if "embed" in wanted:
            runner.stage(f"embed_{view}", fingerprint(trained), lambda v=view: runner.embed(v))
    if "cluster" in wanted:
        cluster_stamp = fingerprint([runner.stamps[f"embed_{v}"] for v in views], _section(config, "cluster"))
        runner.stage("cluster", cluster_stamp, runner.cluster)
        if "evaluate" in wanted:
            runner.stage("evaluate", fingerprint(cluster_stamp, "evaluate"), runner.evaluate)
            if compare:
                runner.stage("compare", fingerprint(cluster_stamp, "compare"), runner.compare)
        if "report" in wanted:
            runner.stage("report", fingerprint(cluster_stamp, "report"), runner.report)
    if until == "report":
        pipeline.update_manifest(complete=True, warehouse=str(Path(to_local_path(warehouse)).resolve()))
        ledger.mark("run", run_stamp, pipeline=str(pipeline.root), complete=True)
    manifest = pipeline.manifest()
    report = Path(runner.ledger.info("report").get("report", "")) if runner.ledger.info("report") else None
    return RunResult(
        pipeline=pipeline, report=report, k=int(manifest.get("k", 0)), metrics=manifest.get("metrics", {}),
        stages_run=runner.ran, stages_skipped=runner.skipped,
    )


# --------------------------------------------------------------------------------------------
# label
# --------------------------------------------------------------------------------------------
@dataclass
class LabelResult:
    pipeline_version: str
    new_labels: int
    drift: list[dict[str, Any]]
    warnings: list[str]

    def __str__(self) -> str:
        lines = [f"labelled {self.new_labels} new instances with pipeline {self.pipeline_version}"]
        if self.drift:
            lines.append("  cluster  share(new)  share(train)  mean dist(new)  mean dist(train)")
            for row in self.drift:
                lines.append(
                    f"  {row['cluster']:>7}  {row['share_new']:>10.3f}  {row['share_train']:>12.3f}  "
                    f"{row['distance_new']:>14.3f}  {row['distance_train']:>16.3f}"
                )
        lines += [f"WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)


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


def label(
    spark: SparkSession,
    pipeline_path: str,
    dicom: str,
    diagnoses: str | None,
    warehouse: str,
    config: RadnetConfig | None = None,
) -> LabelResult:
    """Ingest unseen files and label every not-yet-labelled instance with a saved pipeline.

    ``config`` is the effective label config (see :func:`radnet_spark.config.label_config`);
    None runs with the pipeline's own.
    """
    from radnet_spark.ingest.job import ingest, new_run_id

    pipeline = open_pipeline_dir(pipeline_path)
    config = config if config is not None else pipeline.config()
    run_id = new_run_id()
    with warehouse_lock(warehouse, "label"):
        return _label(spark, pipeline, dicom, diagnoses, warehouse, config, run_id, ingest)


def _label(
    spark: SparkSession, pipeline: PipelineDir, dicom: str, diagnoses: str | None, warehouse: str,
    config: RadnetConfig, run_id: str, ingest: Callable[..., Any],
) -> LabelResult:
    # Labels of a killed label run are debris: their instances are labelled again below.
    remove_uncommitted(warehouse, ("labels",))
    log.info("label %s: ingest ...", run_id)
    ingest(spark, dicom, diagnoses, warehouse, config, run_id=run_id)
    log.info("label %s: ingest done", run_id)

    tags = read_table(spark, warehouse, "tags")
    todo = tags
    if table_exists(warehouse, "labels"):
        done = read_table(spark, warehouse, "labels").where(F.col("pipeline_version") == pipeline.version)
        todo = tags.join(done.select("sop_instance_uid"), "sop_instance_uid", "left_anti")
    todo = todo.persist()
    if todo.limit(1).count() == 0:
        todo.unpersist()
        return LabelResult(pipeline.version, 0, [], [])

    views = list(config.cluster.views)
    features = compute_tag_features(todo, pipeline)
    keys = todo.select("sop_instance_uid", "exam_id")
    embeddings: dict[str, DataFrame] = {}
    for view in views:
        if view == "tags":
            source = features
        elif view == "image":
            source = read_table(spark, warehouse, "images").join(keys.select("sop_instance_uid"), "sop_instance_uid", "left_semi")
        elif table_exists(warehouse, "diagnoses"):
            source = read_table(spark, warehouse, "diagnoses").join(keys.select("exam_id"), "exam_id", "left_semi")
        else:
            continue
        embeddings[view] = embed_view(view, source, pipeline, config)
    instances = _with_split(keys, config)
    assigned = fuse_and_assign(embeddings, instances, pipeline)
    from radnet_spark.inference import arrow_batch_rows

    with arrow_batch_rows(spark, config.image.inference_batch_rows):  # see _Runner.embed
        new_labels = write_labels(_labels_rows(assigned, todo, pipeline, run_id), warehouse, pipeline.version, run_id)
    todo.unpersist()

    log.info("label %s: drift ...", run_id)
    labels = read_table(spark, warehouse, "labels").where(F.col("pipeline_version") == pipeline.version)
    new = labels.where(F.col("label_run_id") == run_id)
    reference = labels.where(F.col("label_run_id") == "run")
    drift, warnings = drift_summary(new, reference)
    for warning in warnings:
        log.warning("%s", warning)
    write_effective_config(config, warehouse, "label")
    log.info("label %s: drift done", run_id)
    return LabelResult(pipeline.version, new_labels, drift, warnings)
