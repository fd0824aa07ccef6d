"""The ``diagnoses`` table in Spark: read the export, process every diagnosis, keep one per exam.

The per-record work is :func:`radnet_spark.text.diagnoses.process_diagnosis` (no Spark); this
module reads the hospital's export, hashes exam keys, joins each exam's hashed name tokens, applies
the per-record function with ``mapInPandas`` and ranks several rows of one exam.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from radnet_spark.errors import InputPathError, UserError
from radnet_spark.text.diagnoses import (
    DEFAULT_MIN_CHARS,
    DUPLICATE_DIAGNOSIS,
    MISSING_EXAM_KEY,
    process_diagnosis,
)
from radnet_spark.text.stemming import DEFAULT_LANGUAGE

if TYPE_CHECKING:
    import pandas as pd

STAGE = "diagnosis"

_PROCESSED_SCHEMA = T.StructType(
    [
        T.StructField("exam_id", T.StringType()),
        T.StructField("diagnosis_raw", T.StringType()),
        T.StructField("diagnosis_clean", T.StringType()),
        T.StructField("stems", T.ArrayType(T.StringType())),
        T.StructField("reason", T.StringType()),
        T.StructField("detail", T.StringType()),
    ]
)


def _require_columns(df: DataFrame, columns: list[str], where: str) -> None:
    present = {name.lower() for name in df.columns}
    for column in columns:
        if column.lower() not in present:
            raise UserError(
                f"{where} has no column {column!r}; its columns are: {', '.join(df.columns)}."
            )


def read_diagnoses(
    spark: SparkSession,
    path: str,
    exam_key_column: str = "AccessionNumber",
    text_column: str = "diagnosis",
) -> DataFrame:
    """Read the diagnoses export: CSV (header row, UTF-8, quoted multi-line text) or Parquet.

    The format follows the extension: ``.csv``/``.csv.gz`` is CSV, ``.parquet``/``.pq`` or a
    directory is Parquet.

    Args:
        spark: The active session.
        path: File or directory of the export.
        exam_key_column: Column holding the exam key (the accession number).
        text_column: Column holding the diagnosis text.

    Returns:
        A DataFrame with exactly the two columns, both strings, under their given names.

    Raises:
        InputPathError: The path does not exist or has an extension we do not read.
        UserError: A required column is missing.
    """
    lowered = path.lower().rstrip("/")
    local = path[len("file://") :] if path.startswith("file://") else path
    if "://" not in local and not os.path.exists(local):
        raise InputPathError(f"Diagnoses file {path} does not exist.")
    if lowered.endswith((".csv", ".csv.gz")):
        df = (
            spark.read.option("header", "true")
            .option("multiLine", "true")
            .option("encoding", "UTF-8")
            .option("quote", '"')
            .option("escape", '"')
            .csv(path)
        )
    elif lowered.endswith((".parquet", ".pq")) or ("://" not in local and os.path.isdir(local)):
        df = spark.read.parquet(path)
    else:
        raise InputPathError(
            f"Diagnoses file {path} must be CSV (.csv, .csv.gz) or Parquet (.parquet, .pq or a directory)."
        )
    _require_columns(df, [exam_key_column, text_column], f"Diagnoses file {path}")
    return df.select(
        F.col(exam_key_column).cast("string").alias(exam_key_column),
        F.col(text_column).cast("string").alias(text_column),
    )


def diagnoses_table(
    df: DataFrame,
    *,
    source_path: str,
    salt: str,
    exam_key_column: str = "AccessionNumber",
    text_column: str = "diagnosis",
    language: str = DEFAULT_LANGUAGE,
    min_chars: int = DEFAULT_MIN_CHARS,
    exam_names: DataFrame | None = None,
    names_lexicon: str | None = None,
    names_lexicon_file: str | None = None,
) -> tuple[DataFrame, DataFrame]:
    """Build the ``diagnoses`` table and the diagnosis rejects from the exported diagnoses.

    Every row is scrubbed, cleaned and stemmed on the executors. An exam with several rows keeps one
    (a usable one first, then the longest) and the others are rejected as ``duplicate_diagnosis``.
    The exam key is hashed first, in its own step, so the exam's name hashes join by hashed id.

    Args:
        df: Rows with the exam key and the diagnosis text (see :func:`read_diagnoses`).
        source_path: Path of the diagnoses export; it is the ``path`` of every reject row.
        salt: Secret salt of the exam id hash.
        exam_key_column: Column holding the exam key (the accession number, never output in clear).
        text_column: Column holding the diagnosis text.
        language: Stemmer language.
        min_chars: Minimum length of the cleaned text.
        exam_names: ``exam_id``, ``name_hash`` rows (salted hashes of the exam's PN tokens, see
            :func:`radnet_spark.ingest.exam_names.read_exam_name_hashes`); their words are scrubbed
            from the exam's diagnosis. None: titles and the lexicon only.
        names_lexicon: Faker locales of the names lexicon (comma-separated; "" for none); None
            for the default.
        names_lexicon_file: Extra names, one per line.

    Returns:
        ``(diagnoses, rejects)``: diagnoses with ``exam_id``, ``diagnosis_raw`` (scrubbed),
        ``diagnosis_clean``, ``stems``; rejects with ``path``, ``stage``, ``reason``, ``detail``, where
        the detail names the exam only by its hashed id. Both come from one lazy plan, so writing both
        processes the text twice; it is cheap next to the image view.
    """
    _require_columns(df, [exam_key_column, text_column], "The diagnoses DataFrame")
    if not salt:
        raise UserError("Hashing exam ids needs a non-empty salt.")
    from radnet_spark.dicom.names import DEFAULT_LEXICON_LOCALES

    the_salt, the_language, the_min_chars = salt, language, min_chars
    the_lexicon = DEFAULT_LEXICON_LOCALES if names_lexicon is None else names_lexicon
    the_lexicon_file = names_lexicon_file

    def hash_keys(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        from radnet_spark.dicom.deid import exam_id_for

        for batch in batches:
            rows = []
            for key, text in zip(batch.iloc[:, 0], batch.iloc[:, 1], strict=True):
                key = None if key is None or pd.isna(key) else str(key).strip()
                text = None if text is None or (not isinstance(text, str) and pd.isna(text)) else str(text)
                # The same function the tags use, so a diagnosis joins its images.
                rows.append((exam_id_for(key, None, the_salt) if key else None, text))
            yield pd.DataFrame(rows, columns=["exam_id", "_text"])

    def process(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        from radnet_spark.dicom.names import NameScrubber, load_lexicon

        lexicon = load_lexicon(the_lexicon, the_lexicon_file)
        for batch in batches:
            rows = []
            for exam_id, text, hashes in zip(batch["exam_id"], batch["_text"], batch["_name_hashes"], strict=True):
                text = None if text is None or (not isinstance(text, str) and pd.isna(text)) else str(text)
                if exam_id is None or (not isinstance(exam_id, str) and pd.isna(exam_id)):
                    rows.append((None, None, None, None, MISSING_EXAM_KEY, "the row has no exam key"))
                    continue
                hashed = [] if hashes is None or not len(hashes) else list(hashes)
                names = NameScrubber(hashed_tokens=hashed, salt=the_salt, lexicon=lexicon)
                result = process_diagnosis(text, language=the_language, min_chars=the_min_chars, names=names)
                detail = None if result.reject_reason is None else f"exam {exam_id}: {result.reject_detail}"
                rows.append(
                    (exam_id, result.scrubbed, result.clean, result.stems, result.reject_reason, detail)
                )
            yield pd.DataFrame(rows, columns=_PROCESSED_SCHEMA.fieldNames())

    keyed = df.select(exam_key_column, text_column).mapInPandas(hash_keys, "exam_id string, _text string")
    if exam_names is None:
        keyed = keyed.withColumn("_name_hashes", F.lit(None).cast("array<string>"))
    else:
        per_exam = exam_names.groupBy("exam_id").agg(F.collect_set("name_hash").alias("_name_hashes"))
        keyed = keyed.join(per_exam, "exam_id", "left")
    processed = keyed.select("exam_id", "_text", "_name_hashes").mapInPandas(process, _PROCESSED_SCHEMA)

    # Several rows for one exam: keep a usable one, the longest, ties broken by text for determinism.
    by_exam = Window.partitionBy("exam_id")
    ranked = (
        processed.withColumn("_rows", F.count(F.lit(1)).over(by_exam))
        .withColumn(
            "_rank",
            F.row_number().over(
                by_exam.orderBy(
                    F.col("reason").isNull().desc(),
                    F.length("diagnosis_clean").desc(),
                    F.col("diagnosis_raw").asc_nulls_last(),
                )
            ),
        )
        .withColumn(
            "reason",
            F.when(
                F.col("exam_id").isNotNull() & (F.col("_rank") > 1) & F.col("reason").isNull(),
                F.lit(DUPLICATE_DIAGNOSIS),
            ).otherwise(F.col("reason")),
        )
        .withColumn(
            "detail",
            F.when(
                F.col("reason") == DUPLICATE_DIAGNOSIS,
                F.format_string("exam %s has %d diagnosis rows; one was kept", "exam_id", "_rows"),
            ).otherwise(F.col("detail")),
        )
    )
    diagnoses = ranked.where(F.col("reason").isNull()).select(
        "exam_id", "diagnosis_raw", "diagnosis_clean", "stems"
    )
    rejects = ranked.where(F.col("reason").isNotNull()).select(
        F.lit(source_path).alias("path"),
        F.lit(STAGE).alias("stage"),
        F.col("reason"),
        F.col("detail"),
    )
    return diagnoses, rejects
