"""Deterministic train/validation/test split by exam.

The split of an instance depends only on its ``exam_id`` and the seed, so an exam never spans splits,
every view (tags, images, diagnoses) agrees without a join, and new PACS dumps land in the same split
as before. The exam id is hashed with SHA-256 (``"<seed>:<exam_id>"``, UTF-8); the first 15 hex digits
(60 bits, so the value fits a signed 64-bit long in Spark) modulo 10,000 give a bucket, and the bucket
is compared with integer thresholds. Integer arithmetic keeps the pure function and the Spark column
bit-for-bit identical.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from radnet_spark.errors import UserError

if TYPE_CHECKING:
    from radnet_spark.config import SplitConfig

SPLITS = ("train", "validation", "test")

_BUCKETS = 10_000
_HEX_DIGITS = 15


def _thresholds(train: float, validation: float) -> tuple[int, int]:
    if not (0.0 <= train <= 1.0 and 0.0 <= validation <= 1.0) or train + validation > 1.0 + 1e-9:
        raise UserError(
            f"Split fractions must lie in [0, 1] and train + validation must not exceed 1; "
            f"got train={train}, validation={validation}."
        )
    train_cut = round(train * _BUCKETS)
    validation_cut = min(_BUCKETS, round((train + validation) * _BUCKETS))
    return train_cut, validation_cut


def exam_bucket(exam_id: str, seed: int = 42) -> int:
    """The exam's bucket in ``[0, 10000)``; the Spark column computes the same number.

    Args:
        exam_id: The exam's id (a salted hash in the ``tags`` table, but any string works).
        seed: Changes the assignment of every exam at once.

    Returns:
        The bucket index.
    """
    digest = hashlib.sha256(f"{seed}:{exam_id}".encode()).hexdigest()
    return int(digest[:_HEX_DIGITS], 16) % _BUCKETS


def split_of(exam_id: str, train: float = 0.8, validation: float = 0.1, seed: int = 42) -> str:
    """Assign an exam to ``train``, ``validation`` or ``test``.

    Args:
        exam_id: The exam's id.
        train: Share of exams in the training split.
        validation: Share of exams in the validation split; the rest is ``test``.
        seed: Hash seed; the same seed always gives the same assignment.

    Returns:
        ``"train"``, ``"validation"`` or ``"test"``.
    """
    if exam_id is None:
        raise UserError("An exam id is required to assign a split; got None.")
    train_cut, validation_cut = _thresholds(train, validation)
    bucket = exam_bucket(exam_id, seed)
    if bucket < train_cut:
        return "train"
    if bucket < validation_cut:
        return "validation"
    return "test"


def split_column(
    exam_id_col: Column | str, train: float = 0.8, validation: float = 0.1, seed: int = 42
) -> Column:
    """The Spark column equivalent of :func:`split_of` (null where the exam id is null).

    Args:
        exam_id_col: Column (or column name) holding the exam id.
        train: Share of exams in the training split.
        validation: Share of exams in the validation split; the rest is ``test``.
        seed: Hash seed.

    Returns:
        A string column with ``train``/``validation``/``test``.
    """
    train_cut, validation_cut = _thresholds(train, validation)
    exam = F.col(exam_id_col) if isinstance(exam_id_col, str) else exam_id_col
    digest = F.sha2(F.concat(F.lit(f"{seed}:"), exam.cast("string")), 256)
    value = F.conv(F.substring(digest, 1, _HEX_DIGITS), 16, 10).cast("long")
    bucket = F.pmod(value, F.lit(_BUCKETS))
    return (
        F.when(exam.isNull(), F.lit(None).cast("string"))
        .when(bucket < train_cut, F.lit("train"))
        .when(bucket < validation_cut, F.lit("validation"))
        .otherwise(F.lit("test"))
    )


def with_split(df: DataFrame, split: SplitConfig) -> DataFrame:
    """``df`` with the ``split`` column its ``exam_id`` gets under the ``split`` settings."""
    return df.withColumn("split", split_column("exam_id", split.train, split.validation, split.seed))
