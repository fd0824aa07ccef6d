"""The diagnosis vocabulary: stems whose total count in the training split reaches a minimum.

Counting runs in Spark (explode + groupBy); only the kept words reach the driver. The stems are
already stemmed, so inflected forms of one word have collapsed into one stem before counting.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)

from radnet_spark.artifacts import read_step_manifest, write_step_manifest
from radnet_spark.errors import PipelineError

VOCABULARY_STEP = "vocabulary"
VOCABULARY_FORMAT_VERSION = 2


@dataclass(frozen=True)
class Vocabulary:
    """Kept words with their training-split counts, most frequent first (ties: alphabetical).

    Attributes:
        words: The kept words; a word's position is its index in every vector built over it.
        counts: Total count of each word in the training split.
        min_word_frequency: The threshold the words were selected with.
    """

    words: tuple[str, ...]
    counts: tuple[int, ...]
    min_word_frequency: int

    def __post_init__(self) -> None:
        if len(self.words) != len(self.counts):
            raise ValueError("A vocabulary needs exactly one count per word.")

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    @property
    def index(self) -> dict[str, int]:
        """Word → position in the vocabulary."""
        # Not cached on the frozen instance: the vocabulary is small and lookups are rare on the driver.
        return {word: position for position, word in enumerate(self.words)}

    def frequencies(self) -> dict[str, int]:
        """Word → total count in the training split."""
        return dict(zip(self.words, self.counts, strict=True))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the vocabulary as a step manifest (JSON) to ``path``.

        Args:
            path: File to write; its folder is created.

        Returns:
            ``path``.
        """
        target = Path(path)
        write_step_manifest(
            target.parent, target.name, VOCABULARY_STEP, VOCABULARY_FORMAT_VERSION,
            min_word_frequency=self.min_word_frequency, words=list(self.words), counts=list(self.counts),
        )
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocabulary:
        """Read a vocabulary written by :meth:`save`; another file or format is refused in one sentence.

        Args:
            path: The vocabulary file.

        Returns:
            The vocabulary.
        """
        source = Path(path)
        data = read_step_manifest(source.parent, source.name, VOCABULARY_STEP, VOCABULARY_FORMAT_VERSION)
        words, counts = data.get("words"), data.get("counts")
        if not isinstance(words, list) or not isinstance(counts, list):
            raise PipelineError(f"Vocabulary file {source} is missing its word or count list.")
        return cls(tuple(str(w) for w in words), tuple(int(c) for c in counts), int(data["min_word_frequency"]))


def select_vocabulary(
    word_counts: Iterable[tuple[str, int]], min_word_frequency: int, max_words: int | None = None
) -> Vocabulary:
    """Keep words counted at least ``min_word_frequency`` times, most frequent first.

    Args:
        word_counts: (word, total count) pairs, each word at most once.
        min_word_frequency: Smallest total count a word needs to be kept.
        max_words: Keep at most this many of the most frequent words; None keeps all.

    Returns:
        The vocabulary sorted by count descending, then word ascending.
    """
    kept = sorted(
        ((word, int(count)) for word, count in word_counts if count >= min_word_frequency),
        key=lambda pair: (-pair[1], pair[0]),
    )
    if max_words is not None:
        kept = kept[:max_words]
    return Vocabulary(tuple(w for w, _ in kept), tuple(c for _, c in kept), min_word_frequency)


def training_rows(df: DataFrame, split_col: str | None, train_split: str) -> DataFrame:
    """The rows of the training split; all rows when ``split_col`` is None."""
    if split_col is None:
        return df
    if split_col not in df.columns:
        raise PipelineError(
            f"The diagnoses DataFrame has no {split_col!r} column; add it with "
            "radnet_spark.splits.split_column(col('exam_id'))."
        )
    return df.where(F.col(split_col) == F.lit(train_split))


def count_words(df: DataFrame, stems_col: str = "stems") -> DataFrame:
    """Total count of every word over all rows: a DataFrame ``(word string, count long)``."""
    return (
        df.select(F.explode(F.col(stems_col)).alias("word"))
        .where(F.col("word").isNotNull() & (F.col("word") != ""))
        .groupBy("word")
        .agg(F.count(F.lit(1)).alias("count"))
    )


def fit_vocabulary(
    df: DataFrame,
    stems_col: str = "stems",
    min_word_frequency: int = 5,
    split_col: str | None = "split",
    train_split: str = "train",
    max_words: int | None = None,
) -> Vocabulary:
    """Count stems over the training split in Spark and keep the frequent ones.

    Args:
        df: Diagnoses with an array<string> stems column and, unless ``split_col`` is None, a split column.
        stems_col: Column holding each diagnosis's stems.
        min_word_frequency: Smallest total count a word needs to be kept (the paper's default is 5).
        split_col: Column naming each row's split; None counts every row.
        train_split: Value of ``split_col`` that marks training rows.
        max_words: Cap on the vocabulary size (most frequent words win); None keeps all kept words.

    Returns:
        The vocabulary, sorted by count descending then word ascending.
    """
    if min_word_frequency < 1:
        raise ValueError(f"min_word_frequency must be at least 1, got {min_word_frequency}.")
    counts = count_words(training_rows(df, split_col, train_split), stems_col).where(
        F.col("count") >= min_word_frequency
    )
    if max_words is not None:
        # A top-k keeps the driver's share bounded even with a low threshold on a huge corpus.
        counts = counts.orderBy(F.col("count").desc(), F.col("word").asc()).limit(max_words)
    rows = counts.collect()
    return select_vocabulary(((row["word"], row["count"]) for row in rows), min_word_frequency, max_words)
