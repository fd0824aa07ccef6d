"""Per-exam name hashes: how an exam's PN values reach its diagnosis without being written.

The DICOM parse step knows the names (the PN attributes of every instance) but the diagnoses are
joined to exams later, in another Spark stage, possibly in a later run. Nothing in clear may be
staged, so every parsed row carries ``name_hashes``: salted HMAC-SHA256 of its folded name tokens
(:func:`radnet_spark.dicom.names.name_token_hashes`, the salt of the id hashes, domain-separated).
They are kept per exam as ``WAREHOUSE/_private/exam_name_hashes`` (Parquet, ``exam_id``,
``name_hash``), next to the salt, and never in a table: like the salt, that folder is secret
material. A diagnosis step (this run's or a later one's) hashes every word of the exam's diagnosis
the same way and replaces the words whose hash the exam holds.

Limits: an HMAC keyed by the salt is only as private as the salt (anyone with both can test
candidate names); a diagnosis written in a run before its exam's images were ingested is scrubbed
of titles and lexicon names only.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf

from radnet_spark.tables import read_table, table_exists

EXAM_NAME_HASHES = "_private/exam_name_hashes"


def exam_name_hash_rows(parsed: DataFrame) -> DataFrame:
    """The (exam_id, name_hash) pairs of parsed rows (any status), for the private store.

    The ingest writes them into its run's own folder of ``_private/exam_name_hashes``, committed
    with the run like every table (:mod:`radnet_spark.tables`).

    Args:
        parsed: Rows of :data:`radnet_spark.ingest.instance.PARSED_SCHEMA`.
    """
    return (
        parsed.where(sf.col("exam_id").isNotNull() & (sf.size("name_hashes") > 0))
        .select("exam_id", sf.explode("name_hashes").alias("name_hash"))
        .distinct()
    )


def read_exam_name_hashes(
    spark: SparkSession, warehouse: str, own_partitions: list[str] | None = None
) -> DataFrame | None:
    """The (exam_id, name_hash) pairs of every committed run (and the caller's own), or None."""
    if not table_exists(warehouse, EXAM_NAME_HASHES) and not own_partitions:
        return None
    return read_table(spark, warehouse, EXAM_NAME_HASHES, own_partitions or ()).select("exam_id", "name_hash")
