"""Narrative diagnoses: read the export, scrub, clean, stem, reject, and build the ``diagnoses`` table.

Per record (:func:`process_diagnosis`, no Spark): identifiers and names are scrubbed from the free
text first, so dates, id numbers and person names never reach the clean text, the stems or any
output; then the text is cleaned, split into words and stemmed. Names come from titles ("dr. …",
"…, dr. med."), the names lexicon, and the exam's own PN values: the DICOM parse step stages only
salted hashes of those (``name_hashes``), which :func:`diagnoses_table` joins by hashed exam id and
matches against the hash of every word (see :mod:`radnet_spark.dicom.names`). Empty and very short diagnoses are rejected like the paper
did. :func:`diagnoses_table` applies that to a DataFrame with ``mapInPandas`` and keeps one diagnosis
per exam.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as st

from radnet_spark.errors import InputPathError, UserError
from radnet_spark.text.stemming import DEFAULT_LANGUAGE, clean_text, stem_tokens, tokenize

if TYPE_CHECKING:
    import pandas as pd

    from radnet_spark.dicom.names import NameScrubber

STAGE = "diagnosis"

# Reason codes, spelled as in radnet_spark.dicom.reasons.RejectReason.
EMPTY_DIAGNOSIS = "empty_diagnosis"
SHORT_DIAGNOSIS = "short_diagnosis"
DUPLICATE_DIAGNOSIS = "duplicate_diagnosis"
MISSING_EXAM_KEY = "missing_exam_key"

DEFAULT_MIN_CHARS = 10

# What radnet_spark.dicom.deid.scrub_free_text puts where it removed something.
_PLACEHOLDER = re.compile(r"\[[A-Z]+\]")

_PROCESSED_SCHEMA = st.StructType(
    [
        st.StructField("exam_id", st.StringType()),
        st.StructField("diagnosis_raw", st.StringType()),
        st.StructField("diagnosis_clean", st.StringType()),
        st.StructField("stems", st.ArrayType(st.StringType())),
        st.StructField("reason", st.StringType()),
        st.StructField("detail", st.StringType()),
    ]
)


@dataclass(frozen=True)
class DiagnosisResult:
    """One processed diagnosis.

    Attributes:
        scrubbed: The text with dates and id-like tokens replaced (``None`` when there was no text).
        clean: Lower-case text without punctuation, words separated by single spaces.
        stems: One stem per word of ``clean``.
        reject_reason: A reason code when the diagnosis is unusable, else ``None``.
        reject_detail: Human-readable explanation of the rejection; never contains the text itself.
    """

    scrubbed: str | None
    clean: str
    stems: list[str]
    reject_reason: str | None = None
    reject_detail: str | None = None


def process_diagnosis(
    raw: str | None,
    *,
    language: str = DEFAULT_LANGUAGE,
    min_chars: int = DEFAULT_MIN_CHARS,
    names: NameScrubber | None = None,
) -> DiagnosisResult:
    """Scrub, clean, tokenize and stem one narrative diagnosis, or say why it is unusable.

    Args:
        raw: The diagnosis as exported from the hospital system; ``None`` when missing.
        language: Stemmer language (see :func:`radnet_spark.text.stemming.get_stemmer`).
        min_chars: Diagnoses whose cleaned text is shorter than this are rejected as short.
        names: The name scrubber (with the exam's hashed name tokens); None uses titles and the
            default names lexicon only.

    Returns:
        The processed diagnosis; ``reject_reason`` is ``empty_diagnosis`` or ``short_diagnosis`` when
        it should not be used.
    """
    # Imported here: the module is light on the driver and executors import it once per worker.
    from radnet_spark.dicom.deid import scrub_free_text

    if raw is None or not raw.strip():
        return DiagnosisResult(None, "", [], EMPTY_DIAGNOSIS, "the diagnosis is empty")
    if names is None:
        names = _default_scrubber()
    scrubbed = names.scrub(scrub_free_text(raw)) or ""
    # The placeholders ([DATE], [ID], …) stay in the stored raw text but are no words of the diagnosis.
    clean = clean_text(_PLACEHOLDER.sub(" ", scrubbed))
    if not clean:
        return DiagnosisResult(
            scrubbed, "", [], EMPTY_DIAGNOSIS, "the diagnosis has no words after removing punctuation"
        )
    if len(clean) < min_chars:
        return DiagnosisResult(
            scrubbed,
            clean,
            [],
            SHORT_DIAGNOSIS,
            f"the cleaned diagnosis has {len(clean)} characters, fewer than the minimum {min_chars}",
        )
    return DiagnosisResult(scrubbed, clean, stem_tokens(tokenize(clean), language))


def _default_scrubber() -> NameScrubber:
    from radnet_spark.dicom.names import NameScrubber, load_lexicon

    return NameScrubber(lexicon=load_lexicon())


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
