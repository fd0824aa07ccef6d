"""Distributed embedding: apply a saved tag or image embedder to a DataFrame with ``mapInPandas``.

Each Python worker loads the embedder once from its directory (a path string every executor can
read: local disk in local mode, a shared mount or ``/dbfs`` on a cluster) and keeps it for every
later task it runs; batches go through the network under ``torch.inference_mode()`` on cuda when the
executor has it.

How many rows reach the worker at once is Spark's ``spark.sql.execution.arrow.maxRecordsPerBatch``,
read when the *action* runs (``write``, ``count``…), not when the DataFrame is built. For image rows
(16 KiB each at 128²) keep it modest: run the action inside ``with arrow_batch_rows(spark, 256):``.
The UDF further cuts every Arrow batch into model batches of ``batch_rows``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql.types import ArrayType, FloatType, StructField, StructType

from radnet_spark.errors import PipelineError

log = logging.getLogger(__name__)

ARROW_BATCH_CONF = "spark.sql.execution.arrow.maxRecordsPerBatch"
KEY_COLUMNS = ("sop_instance_uid", "exam_id", "split")
DEFAULT_INPUT = {"tags": "features", "image": "image"}

def cached_embedder(embedder_dir: str, kind: str) -> Any:
    """The embedder saved in ``embedder_dir``, loaded once per worker process (:mod:`radnet_spark.worker_cache`)."""
    from radnet_spark.device import configure_torch_threads
    from radnet_spark.embedders import load_embedder
    from radnet_spark.worker_cache import cached

    configure_torch_threads()
    return cached(("embedder", embedder_dir, kind), lambda: load_embedder(embedder_dir, kind))


def embed_frame(embedder: Any, frame: pd.DataFrame, kind: str, input_col: str, output_col: str,
                keep: Sequence[str]) -> pd.DataFrame:
    """Embed one pandas batch: ``keep`` columns plus ``output_col`` (null where the input is null).

    Args:
        embedder: A fitted ``TagEmbedder`` or ``ImageEmbedder``.
        frame: Rows with ``input_col`` and the ``keep`` columns.
        kind: ``"tags"`` (input: float arrays) or ``"image"`` (input: image bytes).
        input_col: Column the embedder reads.
        output_col: Column the embeddings go to.
        keep: Columns copied through.

    Returns:
        A frame with the ``keep`` columns and float32 embedding arrays.
    """
    values = frame[input_col]
    valid = values.notna().to_numpy()
    present = values[valid].tolist()
    embeddings: list[np.ndarray | None] = [None] * len(frame)
    if present:
        if kind == "image":
            matrix = embedder.embed_bytes(present)
        else:
            matrix = embedder.embed_numpy(np.stack([np.asarray(row, dtype=np.float32) for row in present]))
        for position, row in zip(np.flatnonzero(valid), matrix, strict=True):
            embeddings[position] = row
    out = frame[list(keep)].reset_index(drop=True)
    out[output_col] = pd.Series(embeddings, dtype=object)
    return out


@contextmanager
def arrow_batch_rows(spark: SparkSession, rows: int) -> Iterator[None]:
    """Temporarily set ``spark.sql.execution.arrow.maxRecordsPerBatch``; wrap the action, not the transform.

    Args:
        spark: The session whose runtime conf is changed and restored.
        rows: Most rows per Arrow batch sent to a Python worker.
    """
    previous = spark.conf.get(ARROW_BATCH_CONF, None)
    spark.conf.set(ARROW_BATCH_CONF, str(int(rows)))
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(ARROW_BATCH_CONF)
        else:
            spark.conf.set(ARROW_BATCH_CONF, previous)


def embed_dataframe(
    df: DataFrame,
    embedder_dir: str,
    kind: str,
    input_col: str | None = None,
    output_col: str = "embedding",
    batch_rows: int = 256,
    split: Column | None = None,
) -> DataFrame:
    """Embed every row of ``df`` with the embedder saved in ``embedder_dir`` (an ``embeddings_*`` table).

    Args:
        df: Rows with ``sop_instance_uid``, ``exam_id``, the input column and ideally ``split``.
        embedder_dir: Directory of a saved embedder, readable from every executor.
        kind: ``"tags"`` (input ``features`` array<float>) or ``"image"`` (input ``image`` binary).
        input_col: Input column; None uses ``features`` or ``image`` by kind.
        output_col: Name of the array<float> output column.
        batch_rows: Rows per model call inside a worker.
        split: Split column to add when ``df`` has none; None derives it from ``exam_id`` with
            ``radnet_spark.splits.split_column``'s defaults.

    Returns:
        ``sop_instance_uid``, ``exam_id``, ``split`` and ``output_col``; lazy, one row per input row.
    """
    if kind not in DEFAULT_INPUT:
        raise ValueError(f"Embedding kind must be one of {', '.join(DEFAULT_INPUT)}, got {kind!r}.")
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be positive, got {batch_rows}.")
    input_col = input_col or DEFAULT_INPUT[kind]
    missing = [name for name in ("sop_instance_uid", "exam_id", input_col) if name not in df.columns]
    if missing:
        raise PipelineError(f"Cannot embed {kind}: the input has no column {', '.join(map(repr, missing))}.")
    if "split" not in df.columns:
        if split is None:
            from radnet_spark.splits import split_column

            split = split_column("exam_id")
        df = df.withColumn("split", split)
    # Fail on the driver with one clear sentence rather than in every executor.
    from radnet_spark.embedders import read_embedder_config

    read_embedder_config(embedder_dir, kind)

    keep = list(KEY_COLUMNS)
    schema = StructType(
        [df.schema[name] for name in keep] + [StructField(output_col, ArrayType(FloatType()), True)]
    )
    # Plain strings only: the function is pickled to executors and must not capture objects.
    directory, view, source, target, rows = str(embedder_dir), kind, input_col, output_col, int(batch_rows)

    def embed_partition(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import torch

        from radnet_spark.inference import cached_embedder, embed_frame
        from radnet_spark.storage import to_local_path

        embedder = cached_embedder(to_local_path(directory), view)
        with torch.inference_mode():
            for frame in frames:
                for start in range(0, len(frame), rows):
                    yield embed_frame(embedder, frame.iloc[start:start + rows], view, source, target, keep)

    return df.select(*keep, input_col).mapInPandas(embed_partition, schema)
