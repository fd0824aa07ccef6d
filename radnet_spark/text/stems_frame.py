"""The shape every diagnosis embedder's Spark transform takes in and gives out.

In: rows with key columns and an ``array<string>`` stems column. Out: the same keys plus one
non-null ``array<float>`` vector column.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql.types import ArrayType, FloatType, StructField, StructType

from radnet_spark.errors import PipelineError


def vector_output_schema(df: DataFrame, key_cols: Sequence[str], stems_col: str, output_col: str) -> StructType:
    """Check that ``df`` has the key and stems columns; the schema of keys plus the vector column.

    Args:
        df: The diagnoses to embed.
        key_cols: Columns carried to the output unchanged.
        stems_col: Column holding each row's stems.
        output_col: Name of the ``array<float>`` vector column.

    Returns:
        The output schema.

    Raises:
        PipelineError: A column is missing (one sentence naming it).
    """
    missing = [c for c in [*key_cols, stems_col] if c not in df.columns]
    if missing:
        raise PipelineError(f"The diagnoses DataFrame lacks the column(s) {', '.join(missing)}.")
    return StructType(
        [df.schema[c] for c in key_cols] + [StructField(output_col, ArrayType(FloatType(), False), False)]
    )
