"""Which parsed instances are in scope: the modalities clustered and the largest exam kept.

Out-of-scope files are never dropped silently: they become rejects of stage ``scope`` with reason
``modality_out_of_scope`` or ``exam_too_large``, like duplicates in the dedup stage. The exam size
counts the exam's image files in this run plus those already in the warehouse, so a later run does
not let an exam grow past the bound; files of an exam already over it are rejected as they arrive.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from radnet_spark.config import IngestConfig
from radnet_spark.dicom.reasons import RejectReason

SCOPE_STAGE = "scope"
# The paper's modalities (RadiologyNET); `ingest.modalities` may name them, or any others.
PAPER_MODALITIES = ("CT", "MR", "CR", "XA", "RF")


def out_of_scope(staged: DataFrame, existing_tags: DataFrame | None, ingest: IngestConfig) -> DataFrame | None:
    """``path, _scope_reason, _scope_detail`` of the ok files outside the scope; None when nothing is bounded."""
    ok = staged.where(F.col("status") == "ok").select("path", "exam_id", "modality")
    parts = []
    if ingest.modalities is not None:
        allowed = sorted({modality.strip().upper() for modality in ingest.modalities})
        modality = F.upper(F.trim(F.coalesce(F.col("modality"), F.lit(""))))
        parts.append(ok.where(~modality.isin(allowed)).select(
            "path", F.lit(str(RejectReason.MODALITY_OUT_OF_SCOPE)).alias("_scope_reason"),
            F.concat(F.lit("modality "), F.coalesce(F.col("modality"), F.lit("(none)")),
                     F.lit(f" is not in ingest.modalities ({', '.join(allowed)})")).alias("_scope_detail"),
        ))
    if ingest.max_files_per_exam is not None:
        sizes = ok.groupBy("exam_id").agg(F.count(F.lit(1)).alias("_new"))
        if existing_tags is not None:
            known = existing_tags.groupBy("exam_id").agg(F.count(F.lit(1)).alias("_known"))
            sizes = sizes.join(known, "exam_id", "left")
        else:
            sizes = sizes.withColumn("_known", F.lit(0))
        files = F.col("_new") + F.coalesce(F.col("_known"), F.lit(0))
        large = sizes.where(files > ingest.max_files_per_exam).select("exam_id", files.alias("_files"))
        parts.append(ok.join(large, "exam_id").select(
            "path", F.lit(str(RejectReason.EXAM_TOO_LARGE)).alias("_scope_reason"),
            F.concat(F.lit("the exam has "), F.col("_files").cast("string"),
                     F.lit(f" image files, more than ingest.max_files_per_exam ({ingest.max_files_per_exam})"))
            .alias("_scope_detail"),
        ))
    if not parts:
        return None
    flagged = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
    return flagged.dropDuplicates(["path"])


def apply_scope(staged: DataFrame, flagged: DataFrame | None) -> DataFrame:
    """Turn the flagged files into rejects of stage ``scope``; every other row unchanged."""
    if flagged is None:
        return staged
    joined = staged.join(flagged, "path", "left")  # flagged rows are few: AQE broadcasts them
    hit = F.col("_scope_reason").isNotNull()
    replacements = {
        "status": F.lit("rejected"),
        "stage": F.lit(SCOPE_STAGE),
        "reason": F.col("_scope_reason"),
        "detail": F.col("_scope_detail"),
    }
    return joined.select(*[
        F.when(hit, replacements[name]).otherwise(F.col(name)).alias(name) if name in replacements else F.col(name)
        for name in staged.columns
    ])
