"""Reading and writing the warehouse's Parquet tables by name."""

from __future__ import annotations

import os

from pyspark.sql import DataFrame, SparkSession

from radnet_spark.errors import PipelineError
from radnet_spark.storage import to_local_path, to_uri

# Rows per Parquet file: image rows are ~16 KB, so this keeps files near 64–128 MB at scale
# without a small-file explosion on appends.
MAX_RECORDS_PER_FILE = 8_192


def table_path(warehouse: str, name: str) -> str:
    return f"{to_uri(warehouse).rstrip('/')}/{name}"


def table_exists(warehouse: str, name: str) -> bool:
    """A table exists once a Spark write committed it (``_SUCCESS`` or at least one Parquet file)."""
    local = to_local_path(table_path(warehouse, name))
    if not os.path.isdir(local):
        return False
    for entry in os.listdir(local):
        if entry.endswith(".parquet") or entry == "_SUCCESS":
            return True
        # Partitioned tables (labels by pipeline version) keep their files one level down.
        partition = os.path.join(local, entry)
        if "=" in entry and os.path.isdir(partition) and any(f.endswith(".parquet") for f in os.listdir(partition)):
            return True
    return False


def read_table(spark: SparkSession, warehouse: str, name: str) -> DataFrame:
    if not table_exists(warehouse, name):
        raise PipelineError(f"Table {name} does not exist in {warehouse}; run the stage that writes it first.")
    # Appends from later runs may add tag columns; merge their schemas on read.
    return spark.read.option("mergeSchema", "true").parquet(table_path(warehouse, name))


def write_table(
    df: DataFrame, warehouse: str, name: str, mode: str = "overwrite", partition_by: str | None = None
) -> str:
    path = table_path(warehouse, name)
    writer = df.write.mode(mode).option("maxRecordsPerFile", MAX_RECORDS_PER_FILE)
    if partition_by is not None:
        writer = writer.partitionBy(partition_by)
    if "image" in df.columns:
        # Every image is distinct: a dictionary for the column is built, then thrown away, per page.
        writer = writer.option("parquet.enable.dictionary#image", "false")
    writer.parquet(path)
    return path
