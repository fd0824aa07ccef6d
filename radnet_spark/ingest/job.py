"""Ingest: PACS dump → ``files``, ``tags``, ``images``, ``diagnoses`` and ``rejects`` tables.

Files are listed by the executors, parsed with pydicom inside ``mapInArrow`` (header first,
pixels only for image instances), de-identified before anything leaves the task, staged once as
Parquet and split into the tables. Re-running on the same dump processes only files whose path is
in no committed ``files`` row, so runs are incremental and idempotent.

Crash safety: every row of a run goes to the run's own ``ingest_run_id=<run>`` folder of each table,
and the run becomes visible only through ``_runs/<run>.json``, written last
(:mod:`radnet_spark.tables`). The duplicate check reads committed ``tags`` only.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from pyspark.sql import DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StringType, StructField, StructType

from radnet_spark.config import RadnetConfig
from radnet_spark.dicom.deid import resolve_salt
from radnet_spark.dicom.pixels import PixelPolicy
from radnet_spark.dicom.reasons import RejectReason
from radnet_spark.ingest.exam_names import EXAM_NAME_HASHES, exam_name_hash_rows, read_exam_name_hashes
from radnet_spark.ingest.instance import PARSED_SCHEMA, ParseOptions
from radnet_spark.ingest.scope import apply_scope, out_of_scope
from radnet_spark.storage import (
    default_parallelism,
    is_remote,
    list_files_distributed,
    read_remote_table,
    require_file,
    to_local_path,
)
from radnet_spark.tables import (
    commit_run,
    committed_row_counts,
    read_table,
    refuse_pre_commit_warehouse,
    remove_uncommitted,
    table_exists,
    table_path,
    warehouse_lock,
    write_run_partition,
)

log = logging.getLogger(__name__)

# Target rows per Parquet file of the narrow tables (~100 MB of files/rejects rows, ~150 MB of tags).
NARROW_ROWS_PER_FILE = 500_000
TAGS_ROWS_PER_FILE = 50_000
REJECTS_SCHEMA = "path string, stage string, reason string, detail string, ingest_run_id string"
DUPLICATES_SCHEMA = "path string, _duplicate boolean"
IMAGE_COLUMNS = [
    "sop_instance_uid", "exam_id", "image", "image_size", "original_rows", "original_columns",
    "frames", "frame_index", "window_center", "window_width", "window_source", "photometric",
    "modality",
]


@dataclass
class IngestSummary:
    run_id: str
    new_files: int
    counts: dict[str, int] = field(default_factory=dict)
    reject_reasons: dict[str, int] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time one step of the job and log it, so a long ingest shows where it is and where time went."""
        log.info("ingest %s: %s ...", self.run_id, name)
        started = time.perf_counter()
        yield
        seconds = time.perf_counter() - started
        self.step_seconds[name] = self.step_seconds.get(name, 0.0) + seconds
        log.info("ingest %s: %s done in %.1f s", self.run_id, name, seconds)

    def __str__(self) -> str:
        lines = [f"ingest run {self.run_id}: {self.new_files} new files"]
        lines += [f"  {name:<10} {count:>8} rows" for name, count in self.counts.items()]
        if self.reject_reasons:
            lines.append("  rejects by reason (this run):")
            lines += [f"    {reason:<32} {count:>6}" for reason, count in sorted(self.reject_reasons.items())]
        return "\n".join(lines)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def parse_options(config: RadnetConfig, salt: str) -> ParseOptions:
    return ParseOptions(
        salt=salt,
        policy=PixelPolicy.from_config(config.ingest),
        max_file_bytes=config.ingest.max_file_bytes,
        keep_dates=config.privacy.keep_dates,
        hash_sop_instance_uid=config.privacy.hash_sop_instance_uid,
        max_inflated_bytes=config.ingest.max_inflated_bytes,
        names_lexicon=config.privacy.names_lexicon,
        names_lexicon_file=config.privacy.names_lexicon_file,
    )


def read_partitions(new_files: int, slots: int, config: RadnetConfig) -> int:
    """How many read tasks: files_per_partition each, but never fewer than tasks_per_slot per slot."""
    by_size = math.ceil(new_files / config.ingest.files_per_partition)
    return max(1, min(new_files, max(by_size, slots * config.ingest.tasks_per_slot)))


def parse_files(listing: DataFrame, options: ParseOptions, batch_rows: int) -> DataFrame:
    """mapInArrow over (path, size, mtime): one PARSED_SCHEMA row per file.

    Arrow in and out without pandas: each ``batch_rows`` rows become one record batch, which costs a
    fraction of the pandas round trip per file (docs/benchmarks.md, "Spark around the parse").
    """
    # Spark's own type mapping, on the driver (parsing the DDL needs the session); the timestamps
    # are instants, so the zone only names them.
    schema = to_arrow_schema(StructType.fromDDL(PARSED_SCHEMA), timezone="UTC")

    def parse_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # Output is yielded every `batch_rows` files so a task never holds more than that many images.
        from radnet_spark.ingest.instance import parse_file as parse_one

        for batch in batches:
            rows = []
            for path, size, mtime in zip(*(batch.column(name).to_pylist() for name in ("path", "size", "mtime")),
                                         strict=True):
                row = parse_one(path, size, options)
                row["mtime"] = mtime
                rows.append(row)
                if len(rows) >= batch_rows:
                    yield pa.RecordBatch.from_pylist(rows, schema=schema)
                    rows = []
            if rows:
                yield pa.RecordBatch.from_pylist(rows, schema=schema)

    return listing.select("path", "size", "mtime").mapInArrow(parse_batches, PARSED_SCHEMA)


def duplicate_paths(staged: DataFrame, existing_keys: DataFrame | None) -> DataFrame:
    """Paths of files whose SOPInstanceUID another file already holds (in this run or an earlier one).

    Reads only key columns of the staged rows, so the image bytes are not shuffled; the result is
    small in the usual case (adaptive execution then broadcasts it).
    """
    ok = staged.where(F.col("status") == "ok").select("path", "sop_instance_uid")
    ranked = ok.withColumn("_rank", F.row_number().over(Window.partitionBy("sop_instance_uid").orderBy("path")))
    duplicates = ranked.where(F.col("_rank") > 1).select("path")
    if existing_keys is not None:
        seen = ok.join(existing_keys.select("sop_instance_uid").distinct(), "sop_instance_uid", "left_semi")
        duplicates = duplicates.union(seen.select("path")).distinct()
    return duplicates.withColumn("_duplicate", F.lit(True))


def apply_duplicates(staged: DataFrame, duplicates: DataFrame) -> DataFrame:
    """Turn duplicate files into rejects with reason ``duplicate_sop_instance_uid``."""
    flagged = staged.join(duplicates, "path", "left")  # AQE broadcasts it when small
    duplicate = F.col("_duplicate").isNotNull()
    replacements = {
        "status": F.lit("rejected"),
        "stage": F.lit("dedup"),
        "reason": F.lit(str(RejectReason.DUPLICATE_SOP_INSTANCE_UID)),
        "detail": F.lit("another file already holds this SOPInstanceUID"),
    }
    return flagged.select(*[
        F.when(duplicate, replacements[name]).otherwise(F.col(name)).alias(name) if name in replacements
        else F.col(name)
        for name in staged.columns
    ])


def _duplicates(
    spark: SparkSession, parsed_rows: DataFrame, existing_tags: DataFrame | None, ok_rows: int, folder: str
) -> DataFrame | None:
    """The paths of duplicate files (written to ``folder`` once), or None when there are none.

    With fewer than two ok rows and no committed tags there is nothing to compare, and no job runs.
    """
    if ok_rows < 2 and existing_tags is None:
        return None
    found = Observation("duplicates")
    (duplicate_paths(parsed_rows, existing_tags).observe(found, F.count(F.lit(1)).alias("rows"))
     .write.mode("overwrite").parquet(folder))
    if not found.get["rows"]:
        return None
    return spark.read.schema(DUPLICATES_SCHEMA).parquet(folder)


def reject_reason_counts(folder: str) -> dict[str, int]:
    """Rejects per reason in a run's ``rejects`` folder, from its Parquet files on the driver (no job)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    reasons = pq.read_table(to_local_path(folder), columns=["reason"], read_dictionary=["reason"])["reason"]
    return {str(row["values"]): int(row["counts"]) for row in pc.value_counts(reasons).to_pylist()}


def _tags_table(staged: DataFrame, run_id: str) -> DataFrame:
    """Explode the JSON tag maps into one string column per keyword (bounded key set).

    The key set comes from ``json_object_keys`` (no values materialised); the rows are then parsed
    once straight into a struct of those keys, cheaper than a map plus one lookup per key.
    """
    ok = staged.where(F.col("status") == "ok")
    # One aggregate over the exploded keys: each task sends its distinct keys, one row comes back.
    (found,) = ok.select(F.explode(F.json_object_keys("tags_json")).alias("key")).agg(F.collect_set("key")).first()
    keys = sorted(found)
    reserved = {c.lower() for c in ("sop_instance_uid", "exam_id", "study_id", "series_id", "path", "ingest_run_id")}
    tag_keys = [k for k in keys if k.lower() not in reserved]
    schema = StructType([StructField(k, StringType()) for k in tag_keys])
    parsed = ok.withColumn("_tags", F.from_json("tags_json", schema))
    return parsed.select(
        "sop_instance_uid", "exam_id", "study_id", "series_id", "path",
        F.lit(run_id).alias("ingest_run_id"), *[F.col("_tags").getField(k).alias(k) for k in tag_keys],
    )


INGEST_TABLES = ("files", "tags", "images", "rejects", "diagnoses", EXAM_NAME_HASHES)


def ingest(
    spark: SparkSession,
    dicom_root: str,
    diagnoses_path: str | None,
    warehouse: str,
    config: RadnetConfig,
    run_id: str | None = None,
) -> IngestSummary:
    """Run one incremental ingest of ``dicom_root`` (and the diagnoses file) into ``warehouse``.

    The run holds the warehouse lock (a second writer refuses with one sentence), writes its rows
    into its own ``ingest_run_id=<run>`` folder of every table, and commits them all at once with
    ``_runs/<run>.json``, written last. Killed at any moment, it leaves the committed warehouse as it
    was; the next run deletes its folders and processes its files again.
    """
    with warehouse_lock(warehouse, "ingest"):
        return _ingest(spark, dicom_root, diagnoses_path, warehouse, config, run_id or new_run_id())


def _ingest(
    spark: SparkSession,
    dicom_root: str,
    diagnoses_path: str | None,
    warehouse: str,
    config: RadnetConfig,
    run_id: str,
) -> IngestSummary:
    if diagnoses_path is not None:
        require_file(diagnoses_path, "Diagnoses file")
    refuse_pre_commit_warehouse(warehouse, INGEST_TABLES)
    # Under the lock nothing uncommitted is in progress: it is the debris of killed runs.
    remove_uncommitted(warehouse, INGEST_TABLES)
    shutil.rmtree(to_local_path(table_path(warehouse, "_staging")), ignore_errors=True)
    salt = resolve_salt(config.privacy.salt_env, Path(to_local_path(warehouse)) / "_private" / "salt")
    options = parse_options(config, salt)
    partition = f"ingest_run_id={run_id}"
    written: dict[str, int] = {}

    def write(df: DataFrame, name: str) -> None:
        rows = write_run_partition(df, warehouse, name, partition)  # rows the run's folder now holds
        if rows:
            written[name] = rows

    summary = IngestSummary(run_id=run_id, new_files=0)
    with summary.step("list"):
        listing = list_files_distributed(spark, dicom_root)
        if table_exists(warehouse, "files"):
            listing = listing.join(read_table(spark, warehouse, "files").select("path"), "path", "left_anti")
        listing = listing.persist()
        summary.new_files = new_files = listing.count()
    log.info("ingest %s: %d new files under %s", run_id, new_files, dicom_root)

    if new_files:
        partitions = read_partitions(new_files, default_parallelism(spark), config)
        parsed = parse_files(listing.repartition(partitions), options, config.ingest.file_batch_size)
        # Parse once into staging; every table is then a column-pruned read of it.
        staging = table_path(warehouse, f"_staging/{run_id}")
        with summary.step("parse"):
            # What the later steps need to know is counted while staging is written (no job of its
            # own), so steps with nothing to do are skipped.
            parsed_facts = Observation("parsed")
            observed = parsed.observe(
                parsed_facts,
                F.count_if(F.col("status") == "ok").alias("ok"),
                F.count_if(F.col("status") != "ok").alias("rejected"),
                F.count_if(F.col("exam_id").isNotNull() & (F.size("name_hashes") > 0)).alias("named"),
            )
            # Staging is read back at once and deleted: a fast codec, and no dictionary attempts on
            # columns whose values are all distinct (images, tag JSON), save executor CPU.
            (observed.write.mode("overwrite").option("compression", "lz4")
             .option("parquet.enable.dictionary#image", "false")
             .option("parquet.enable.dictionary#tags_json", "false")
             .parquet(staging))
            facts = parsed_facts.get
        # Committed rows only: this run's own rows and a killed run's debris are never duplicates.
        existing_tags = read_table(spark, warehouse, "tags") if table_exists(warehouse, "tags") else None
        # Read with its known schema: inferring it would cost a Spark job of its own.
        parsed_rows = spark.read.schema(PARSED_SCHEMA).parquet(staging)
        with summary.step("exam names"):
            # Salted hashes of the exams' PN tokens, for scrubbing their diagnoses (never a table).
            if facts["named"]:
                write(exam_name_hash_rows(parsed_rows), EXAM_NAME_HASHES)
        with summary.step("deduplicate"):
            duplicates = _duplicates(spark, parsed_rows, existing_tags, facts["ok"], f"{staging}_duplicates")
        deduplicated = parsed_rows if duplicates is None else apply_duplicates(parsed_rows, duplicates)
        flagged = out_of_scope(deduplicated, existing_tags, config.ingest)
        staged = apply_scope(deduplicated, flagged)

        files = staged.select(
            "path", "size", "mtime", "status",
            F.when(F.col("status") == "rejected", F.col("reason")).alias("reason"),
        )
        rejects = staged.where(F.col("status") == "rejected").select("path", "stage", "reason", "detail")
        images = staged.where(F.col("status") == "ok").select(*IMAGE_COLUMNS)
        # Narrow tables would otherwise get one small file per staging split (hundreds per run at scale).
        narrow_files = math.ceil(new_files / NARROW_ROWS_PER_FILE)
        # A table no row can reach is not written (each write is a Spark job): no ok row leaves tags
        # and images empty; rejects come from the parse, the duplicate check or the scope only.
        with summary.step("write tags"):
            if facts["ok"]:
                write(_tags_table(staged, run_id).coalesce(math.ceil(new_files / TAGS_ROWS_PER_FILE)), "tags")
        with summary.step("write images"):
            if facts["ok"]:
                write(images, "images")
        with summary.step("write rejects"):
            if facts["rejected"] or duplicates is not None or flagged is not None:
                write(rejects.coalesce(narrow_files), "rejects")
        with summary.step("write files"):
            write(files.coalesce(narrow_files), "files")
        if "rejects" in written:
            summary.reject_reasons = reject_reason_counts(f"{table_path(warehouse, 'rejects')}/{partition}")
        shutil.rmtree(to_local_path(staging), ignore_errors=True)
        shutil.rmtree(to_local_path(f"{staging}_duplicates"), ignore_errors=True)
    listing.unpersist()

    if diagnoses_path is not None:
        with summary.step("diagnoses"):
            _ingest_diagnoses(spark, diagnoses_path, warehouse, config, salt, run_id, summary, write,
                              own=[partition] if EXAM_NAME_HASHES in written else [])

    if written:
        with summary.step("commit"):
            # The run's one visible act: until this record exists, none of its rows are read.
            commit_run(warehouse, run_id, "ingest", {name: partition for name in written}, written,
                       run_id=run_id, new_files=new_files)
    with summary.step("count"):
        # From the commit records (row counts of the written files' footers): no Spark job.
        committed = committed_row_counts(warehouse)
        summary.counts = {name: committed[name] for name in ("files", "tags", "images", "diagnoses", "rejects")
                          if name in committed}
    return summary


def _ingest_diagnoses(
    spark: SparkSession,
    diagnoses_path: str,
    warehouse: str,
    config: RadnetConfig,
    salt: str,
    run_id: str,
    summary: IngestSummary,
    write: Callable[[DataFrame, str], None],
    own: list[str],
) -> None:
    from radnet_spark.text.diagnoses_table import diagnoses_table, read_diagnoses

    ingest_config = config.ingest
    columns = [ingest_config.diagnoses_key_column, ingest_config.diagnoses_text_column]
    if is_remote(diagnoses_path):
        # Read with fsspec in a task: Spark's Hadoop layer may have no connector for the store.
        raw = read_remote_table(spark, diagnoses_path, columns, "Diagnoses file")
    else:
        raw = read_diagnoses(spark, diagnoses_path, *columns)
    diagnoses, rejects = diagnoses_table(
        raw,
        exam_key_column=ingest_config.diagnoses_key_column,
        text_column=ingest_config.diagnoses_text_column,
        salt=salt,
        language=ingest_config.stem_language,
        min_chars=ingest_config.min_diagnosis_chars,
        source_path=diagnoses_path,
        exam_names=read_exam_name_hashes(spark, warehouse, own_partitions=own),
        names_lexicon=config.privacy.names_lexicon,
        names_lexicon_file=config.privacy.names_lexicon_file,
    )
    if table_exists(warehouse, "diagnoses"):
        known = read_table(spark, warehouse, "diagnoses").select("exam_id")
        diagnoses = diagnoses.join(known, "exam_id", "left_anti")
    rejects = rejects.select("path", "stage", "reason", "detail")
    if table_exists(warehouse, "rejects"):
        rejects = rejects.join(
            read_table(spark, warehouse, "rejects").select("path", "stage", "detail"),
            ["path", "stage", "detail"],
            "left_anti",
        )
    rejects = rejects.persist()
    write(diagnoses, "diagnoses")
    write(rejects, "rejects")
    for row in rejects.groupBy("reason").count().collect():
        summary.reject_reasons[row["reason"]] = summary.reject_reasons.get(row["reason"], 0) + row["count"]
    rejects.unpersist()
