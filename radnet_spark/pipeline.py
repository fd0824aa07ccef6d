"""The whole method as stages over the warehouse, fitted once (`run`) and applied to new dumps (`label`).

``run``: ingest → count each view's usable training rows (a view without enough is left out; none
left stops the run before any fit) → tag features → fit every view kept on the training split →
embed every row → fuse → elbow and k-means → evaluate → report → ``labels``. The manifest records
the views used and the scope (``ingest.modalities``, ``ingest.max_files_per_exam``, files left out
by reason). The fitted steps are a
:class:`~radnet_spark.model.RadnetModel` saved as one pipeline version (``models/<name>/<version>``).
A stage whose output is complete for the same inputs and settings is skipped
(:mod:`radnet_spark.stages`), so a killed run resumes where it stopped. A stage table is hidden
while it is rewritten (:func:`radnet_spark.tables.write_table`), and the version folder counts as
trained only once ``complete`` is set in its manifest, the last write of ``run``.

``label``: ingest only unseen files, apply the saved model without re-training, append to
``labels``. Labels of an instance under one pipeline version never change. A label run's rows are
visible only once its commit record is written (docs/tables.md), so a killed label run labels
nothing and the next one labels its instances.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from radnet_spark import artifacts as A
from radnet_spark import stage_work
from radnet_spark.artifacts import PipelineDir, create_pipeline_dir, fingerprint
from radnet_spark.config import RadnetConfig, write_effective_config
from radnet_spark.drift import drift_summary, held_out_labels
from radnet_spark.errors import PipelineError
from radnet_spark.inference import arrow_batch_rows
from radnet_spark.ingest.job import ingest, new_run_id
from radnet_spark.labels import TRAINING_RUN, labels_rows, version_labels, write_labels
from radnet_spark.model import RadnetModel, usable_views
from radnet_spark.reproducibility import reproducibility_record
from radnet_spark.results import LabelResult, RunResult
from radnet_spark.stages import (
    StageLedger,
    StageRunner,
    data_fingerprint,
    file_fingerprint,
    section_fingerprint,
)
from radnet_spark.storage import to_local_path
from radnet_spark.tables import (
    read_table,
    remove_uncommitted,
    table_exists,
    warehouse_lock,
)
from radnet_spark.tags.bpe import DEFAULT_RULES_PATH
from radnet_spark.views import ViewInputs, get_view

log = logging.getLogger(__name__)

RUNTIME_SECTIONS = ("spark", "tracking")
STAGES = ("ingest", "features", "train", "embed", "cluster", "evaluate", "report")

__all__ = ["STAGES", "LabelResult", "RunResult", "StageLedger", "label", "run"]


# -- run -----------------------------------------------------------------------------------------
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
    if until not in STAGES:
        raise PipelineError(f"Unknown stage {until!r}; choose from {', '.join(STAGES)}.")
    with warehouse_lock(warehouse, "run"):
        return _run(spark, dicom, diagnoses, warehouse, config, models_root, name, set(STAGES[: STAGES.index(until) + 1]),
                    compare)


def _pipeline_version(ledger: StageLedger, run_stamp: str, config: RadnetConfig, warehouse: str, models_root: str,
                      name: str) -> PipelineDir:
    """The version this run trains: the interrupted (or finished) one of the same run, else a new one."""
    previous = ledger.info("run")
    if previous.get("fingerprint") == run_stamp and Path(previous.get("pipeline", "")).is_dir():
        return PipelineDir(Path(previous["pipeline"]))
    pipeline = create_pipeline_dir(models_root, name, A.new_version(), config)
    pipeline.update_manifest(reproducibility=reproducibility_record(config, warehouse))
    ledger.mark("run", run_stamp, pipeline=str(pipeline.root), complete=False)
    return pipeline


def _run(
    spark: SparkSession, dicom: str | None, diagnoses: str | None, warehouse: str, config: RadnetConfig,
    models_root: str, name: str, wanted: set[str], compare: bool,
) -> RunResult:
    for view in config.cluster.views:  # a missing model file must not cost an ingest
        get_view(view).check_settings(config)
    remove_uncommitted(warehouse, ("labels",))
    if dicom is not None:
        log.info("%s", ingest(spark, dicom, diagnoses, warehouse, config))
    if not table_exists(warehouse, "tags"):
        if table_exists(warehouse, "rejects"):
            raise PipelineError(f"Warehouse {warehouse} has no instance in scope: every ingested file is in the "
                                "rejects table (see its reasons; ingest.modalities sets the scope).")
        raise PipelineError(f"Warehouse {warehouse} has no tags table; ingest a dump first (--dicom).")
    write_effective_config(config, warehouse, "run")
    inputs = ViewInputs(spark, warehouse, config)
    # The views are chosen before anything is fitted (tag features included): a view without usable
    # rows costs no training, and no usable view at all stops here, before a version folder exists.
    chosen = None
    if "features" in wanted:
        chosen = usable_views(stage_work.before_features(inputs), list(config.cluster.views))
    data_stamp = data_fingerprint(warehouse)
    # How a run is executed or tracked (spark.*, tracking.*) never makes a new version.
    run_stamp = fingerprint(data_stamp, {k: v for k, v in config.to_dict().items() if k not in RUNTIME_SECTIONS})
    ledger = StageLedger(warehouse)
    pipeline = _pipeline_version(ledger, run_stamp, config, warehouse, models_root, name)
    model, stage = RadnetModel(pipeline, config), StageRunner(ledger, pipeline)
    pipeline.update_manifest(scope=stage_work.scope_record(inputs))
    if chosen is not None:
        model.use_views(*chosen)

    # A stamp covers what its stage reads: the data, its config sections, the files it reads and the
    # stages before it. Up to embedding they leave the version out (a new version adopts the work of
    # an earlier one when only cluster.* changed); from clustering on, labels are per version.
    rules = config.tags.bpe_rules_path or DEFAULT_RULES_PATH
    features = fingerprint(data_stamp, section_fingerprint(config, "tags", "split"), file_fingerprint(rules))
    if "features" in wanted:
        stage("features", features, lambda: stage_work.features(inputs, model),
              artifacts=(A.BPE_RULES, A.TAG_PREPROCESSING), manifest_keys=("bpe_rules_version", "bpe_fill_rates"))
    embedded = []
    for name in model.views:
        view = get_view(name)
        reads = features if view.source_table == "tag_features" else data_stamp
        trained = fingerprint(reads, section_fingerprint(config, *view.config_sections))
        if "train" in wanted:
            stage(f"train_{name}", trained, lambda v=name: stage_work.train(inputs, model, v), artifacts=(view.artifact,))
        if "embed" in wanted:
            embedded.append(stage(f"embed_{name}", fingerprint(trained, "embed"), lambda v=name: stage_work.embed(inputs, model, v)))
    if "cluster" in wanted:
        clustered = stage("cluster", fingerprint(pipeline.version, features, embedded, section_fingerprint(config, "cluster")),
                          lambda: stage_work.cluster(inputs, model))
        if "evaluate" in wanted:
            stage("evaluate", fingerprint(clustered, "evaluate"), lambda: stage_work.evaluate(inputs, model))
            if compare:
                stage("compare", fingerprint(clustered, "compare"), lambda: stage_work.compare(inputs, model))
        if "report" in wanted:
            stage("report", fingerprint(clustered, "report"), lambda: stage_work.report(inputs, model))
    if "report" in wanted:
        pipeline.update_manifest(complete=True, warehouse=str(Path(to_local_path(warehouse)).resolve()))
        ledger.mark("run", run_stamp, pipeline=str(pipeline.root), complete=True)
    manifest, report = pipeline.manifest(), ledger.info("report").get("report")
    return RunResult(
        pipeline=pipeline, report=Path(report) if report else None, k=int(manifest.get("k", 0)),
        metrics=manifest.get("metrics", {}), stages_run=stage.ran, stages_skipped=stage.skipped,
    )


# -- label ---------------------------------------------------------------------------------------
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
    model = RadnetModel.load(pipeline_path, config)
    run_id = new_run_id()
    with warehouse_lock(warehouse, "label"):
        return _label(spark, model, dicom, diagnoses, warehouse, run_id)


def _label(spark: SparkSession, model: RadnetModel, dicom: str, diagnoses: str | None, warehouse: str,
           run_id: str) -> LabelResult:
    version, config = model.pipeline.version, model.config
    # Labels of a killed label run are debris: their instances are labelled again below.
    remove_uncommitted(warehouse, ("labels",))
    log.info("label %s: ingest ...", run_id)
    ingest(spark, dicom, diagnoses, warehouse, config, run_id=run_id)
    log.info("label %s: ingest done", run_id)

    todo = read_table(spark, warehouse, "tags")
    if table_exists(warehouse, "labels"):
        done = version_labels(spark, warehouse, version).select("sop_instance_uid")
        todo = todo.join(done, "sop_instance_uid", "left_anti")
    todo = todo.persist()
    if todo.limit(1).count() == 0:
        todo.unpersist()
        return LabelResult(version, 0, [], [])
    sources = {table: read_table(spark, warehouse, table) if table_exists(warehouse, table) else None
               for table in ("images", "diagnoses")}
    assigned = model.transform(todo, sources)
    with arrow_batch_rows(spark, config.image.inference_batch_rows):  # see _embed
        new_labels = write_labels(labels_rows(assigned, todo, version, run_id), warehouse, version, run_id)
    todo.unpersist()

    log.info("label %s: drift ...", run_id)
    labels = version_labels(spark, warehouse, version)
    training = labels.where(F.col("label_run_id") == TRAINING_RUN)
    new = labels.where(F.col("label_run_id") == run_id)
    tags = read_table(spark, warehouse, "tags")
    new_exams = new.join(tags.select("sop_instance_uid", "exam_id"), "sop_instance_uid").select("exam_id").distinct().count()
    drift, warnings = drift_summary(new, training, held_out_labels(training, tags, config.split), new_exams=new_exams)
    for warning in warnings:
        log.warning("%s", warning)
    write_effective_config(config, warehouse, "label")
    log.info("label %s: drift done", run_id)
    return LabelResult(version, new_labels, drift, warnings)
