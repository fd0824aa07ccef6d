"""Bag-of-words and TF-IDF vectors of diagnoses over a fixed vocabulary, computed with Spark ML.

BOW counts each vocabulary word in a diagnosis. TF-IDF multiplies the counts by Spark's inverse
document frequency, ``log((m + 1) / (df + 1))`` over the m training diagnoses, and by default
scales each row to unit L2 norm (as scikit-learn's TfidfVectorizer does) so long diagnoses do not
dominate distances. The fitted IDF weights are stored as JSON, so reading them needs no Spark.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pyspark.ml.feature import IDF, CountVectorizerModel, ElementwiseProduct, Normalizer
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import Vectors
from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)

from radnet_spark.errors import PipelineError
from radnet_spark.text.vocabulary import Vocabulary, training_rows

IDF_FORMAT = "radnet-idf"
IDF_VERSION = 1

_STEMS = "_radnet_stems"
_COUNTS = "_radnet_counts"
_WEIGHTED = "_radnet_weighted"
_NORMALISED = "_radnet_normalised"


def count_vectorizer(vocabulary: Vocabulary, stems_col: str, output_col: str) -> CountVectorizerModel:
    """A Spark ML transformer turning a stems column into sparse count vectors over ``vocabulary``."""
    if len(vocabulary) == 0:
        raise PipelineError(
            "The vocabulary is empty: no stem reaches the minimum word frequency in the training split."
        )
    return CountVectorizerModel.from_vocabulary(list(vocabulary.words), inputCol=stems_col, outputCol=output_col)


def with_counts(df: DataFrame, vocabulary: Vocabulary, stems_col: str = "stems", output_col: str = _COUNTS) -> DataFrame:
    """Add a sparse MLlib count vector column over ``vocabulary``; null stems count as no words."""
    filled = df.withColumn(_STEMS, F.coalesce(F.col(stems_col), F.array().cast("array<string>")))
    return count_vectorizer(vocabulary, _STEMS, output_col).transform(filled).drop(_STEMS)


def fit_idf(
    df: DataFrame,
    vocabulary: Vocabulary,
    stems_col: str = "stems",
    split_col: str | None = "split",
    train_split: str = "train",
) -> np.ndarray:
    """Fit inverse document frequencies on the training split with Spark ML's IDF.

    Args:
        df: Diagnoses with a stems column and, unless ``split_col`` is None, a split column.
        vocabulary: Words the weights are indexed by.
        stems_col: Column holding each diagnosis's stems.
        split_col: Column naming each row's split; None fits on every row.
        train_split: Value of ``split_col`` that marks training rows.

    Returns:
        One float64 weight per vocabulary word, in vocabulary order.
    """
    counts = with_counts(training_rows(df, split_col, train_split).select(stems_col), vocabulary, stems_col)
    model = IDF(inputCol=_COUNTS, outputCol=_WEIGHTED).fit(counts)
    return np.asarray(model.idf.toArray(), dtype=np.float64)


def save_idf(idf: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write IDF weights as JSON (floats round-trip exactly through Python's repr)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": IDF_FORMAT, "version": IDF_VERSION, "idf": [float(v) for v in idf]}
    target.write_text(json.dumps(payload), encoding="utf-8")
    return target


def load_idf(path: str | os.PathLike[str], vocabulary_size: int | None = None) -> np.ndarray:
    """Read IDF weights written by :func:`save_idf`, optionally checking they fit the vocabulary."""
    source = Path(path)
    if not source.is_file():
        raise PipelineError(f"IDF weights file {source} does not exist.")
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise PipelineError(f"IDF weights file {source} is not valid JSON.") from None
    if data.get("format") != IDF_FORMAT or data.get("version") != IDF_VERSION:
        raise PipelineError(f"IDF weights file {source} is not a version {IDF_VERSION} radnet IDF file.")
    idf = np.asarray(data["idf"], dtype=np.float64)
    if vocabulary_size is not None and len(idf) != vocabulary_size:
        raise PipelineError(
            f"IDF weights file {source} has {len(idf)} weights but the vocabulary has {vocabulary_size} words."
        )
    return idf


def bow_transform(
    df: DataFrame,
    vocabulary: Vocabulary,
    stems_col: str = "stems",
    output_col: str = "embedding",
    idf: np.ndarray | None = None,
    normalize: bool = False,
) -> DataFrame:
    """Add a dense ``array<float>`` column of word counts, optionally IDF-weighted and L2-normalised.

    Args:
        df: Rows with an array<string> stems column; other columns pass through.
        vocabulary: Words the vector positions stand for.
        stems_col: Column holding each row's stems.
        output_col: Name of the added vector column.
        idf: IDF weights from :func:`fit_idf` for TF-IDF; None gives plain counts (BOW).
        normalize: Scale each vector to unit L2 norm (all-zero vectors stay zero).

    Returns:
        ``df`` with ``output_col`` added; its length equals the vocabulary size.
    """
    if idf is not None and len(idf) != len(vocabulary):
        raise PipelineError(f"{len(idf)} IDF weights do not match a vocabulary of {len(vocabulary)} words.")
    original = df.columns
    stage = with_counts(df, vocabulary, stems_col)
    vector_col = _COUNTS
    if idf is not None:
        weigher = ElementwiseProduct(
            scalingVec=Vectors.dense([float(v) for v in idf]), inputCol=vector_col, outputCol=_WEIGHTED
        )
        stage = weigher.transform(stage)
        vector_col = _WEIGHTED
    if normalize:
        stage = Normalizer(p=2.0, inputCol=vector_col, outputCol=_NORMALISED).transform(stage)
        vector_col = _NORMALISED
    return stage.select(
        *[F.col(f"`{c}`") for c in original if c != output_col],
        vector_to_array(F.col(vector_col), dtype="float32").alias(output_col),
    )


def bow_vector(
    stems: Sequence[str] | None,
    vocabulary: Vocabulary,
    idf: np.ndarray | None = None,
    normalize: bool = False,
) -> np.ndarray:
    """The vector :func:`bow_transform` gives one diagnosis, computed without Spark.

    Args:
        stems: The diagnosis's stems; None counts as no words.
        vocabulary: Words the vector positions stand for.
        idf: IDF weights for TF-IDF; None gives plain counts.
        normalize: Scale to unit L2 norm (all-zero vectors stay zero).

    Returns:
        A float32 vector as long as the vocabulary.
    """
    index = vocabulary.index
    vector = np.zeros(len(vocabulary), dtype=np.float64)
    for word in stems or ():
        position = index.get(word)
        if position is not None:
            vector[position] += 1.0
    if idf is not None:
        vector *= idf
    if normalize:
        # Summed in index order over the non-zeros, as Spark's Normalizer does for sparse vectors.
        norm = math.sqrt(sum(float(v) * float(v) for v in vector[vector != 0.0]))
        if norm > 0.0:
            vector /= norm
    return vector.astype(np.float32)
