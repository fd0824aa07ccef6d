"""The ``labels`` table: one row per instance and pipeline version, appended one label run at a time."""

from __future__ import annotations

import logging
import shutil

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from radnet_spark.storage import to_local_path
from radnet_spark.tables import commit_run, read_table, table_path, uncommit_run, write_run_partition

log = logging.getLogger(__name__)

# The label run of `radnet run` itself: the training dump labelled by the version it trained.
TRAINING_RUN = "run"


def labels_rows(assigned: DataFrame, tags: DataFrame, version: str, run_id: str) -> DataFrame:
    """``labels`` rows for assigned instances: cluster, distance, the version and the run."""
    return assigned.join(tags.select("sop_instance_uid", "path"), "sop_instance_uid", "left").select(
        "sop_instance_uid",
        "path",
        F.col("cluster").cast("int").alias("cluster"),
        F.col("distance").cast("double").alias("distance"),
        F.lit(version).alias("pipeline_version"),
        F.current_timestamp().alias("labelled_at"),
        F.lit(run_id).alias("label_run_id"),
    )


def labels_partition(version: str, run_id: str) -> str:
    """The ``labels`` table's partition folder of one labelling run of one pipeline version."""
    return f"pipeline_version={version}/label_run_id={run_id}"


def version_labels(spark: SparkSession, warehouse: str, version: str) -> DataFrame:
    """Every committed label of pipeline ``version``."""
    return read_table(spark, warehouse, "labels").where(F.col("pipeline_version") == version)


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
