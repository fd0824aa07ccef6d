"""Topics of diagnoses: Spark ML LDA on bag-of-words counts over the diagnosis vocabulary.

LDA is fitted on the training split only; every diagnosis then gets a topic distribution, and each
topic is described by its most probable stems (useful to name clusters in reports).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pyspark.ml.clustering import LDA, LocalLDAModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)

from radnet_spark.errors import PipelineError
from radnet_spark.storage import to_uri
from radnet_spark.text.bow import with_counts
from radnet_spark.text.vocabulary import Vocabulary, training_rows

TOPICS_FORMAT = "radnet-diagnosis-topics"
TOPICS_VERSION = 1

_COUNTS = "_radnet_lda_counts"
_DISTRIBUTION = "_radnet_topic_distribution"


@dataclass
class TopicModel:
    """A fitted LDA model with the vocabulary its term indices refer to."""

    model: LocalLDAModel
    vocabulary: Vocabulary

    @property
    def k(self) -> int:
        return int(self.model.getK())

    def transform(self, df: DataFrame, stems_col: str = "stems", output_col: str = "topics") -> DataFrame:
        """Add each row's topic distribution as ``array<float>`` of length k (sums to 1).

        Args:
            df: Rows with an array<string> stems column; other columns pass through.
            stems_col: Column holding each row's stems.
            output_col: Name of the added column.

        Returns:
            ``df`` with ``output_col`` added.
        """
        original = [c for c in df.columns if c != output_col]
        counts = with_counts(df, self.vocabulary, stems_col, _COUNTS)
        model = self.model.copy().setFeaturesCol(_COUNTS).setTopicDistributionCol(_DISTRIBUTION)
        return model.transform(counts).select(
            *[F.col(f"`{c}`") for c in original],
            vector_to_array(F.col(_DISTRIBUTION), dtype="float32").alias(output_col),
        )

    def describe_topics(self, n: int = 10) -> list[list[str]]:
        """The ``n`` most probable stems of each topic, topic by topic, most probable first."""
        rows = self.model.describeTopics(n).orderBy("topic").collect()
        words = self.vocabulary.words
        return [[words[index] for index in row["termIndices"]] for row in rows]

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the model (Spark ML persistence), its vocabulary and a manifest under ``directory``."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        self.model.write().overwrite().save(to_uri(target / "lda"))
        self.vocabulary.save(target / "vocabulary.json")
        manifest = {"format": TOPICS_FORMAT, "version": TOPICS_VERSION, "k": self.k}
        (target / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> TopicModel:
        """Read a topic model written by :meth:`save`."""
        source = Path(directory)
        manifest_path = source / "manifest.json"
        if not manifest_path.is_file():
            raise PipelineError(f"{source} holds no diagnosis topic model (manifest.json is missing).")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format") != TOPICS_FORMAT or manifest.get("version") != TOPICS_VERSION:
            raise PipelineError(f"{manifest_path} is not a version {TOPICS_VERSION} diagnosis topic model.")
        model = LocalLDAModel.load(to_uri(source / "lda"))
        return cls(model, Vocabulary.load(source / "vocabulary.json"))


def fit_lda(
    df: DataFrame,
    vocabulary: Vocabulary,
    k: int = 20,
    seed: int = 42,
    max_iter: int = 20,
    optimizer: str = "online",
    subsampling_rate: float = 0.05,
    stems_col: str = "stems",
    split_col: str | None = "split",
    train_split: str = "train",
) -> TopicModel:
    """Fit Spark ML LDA on the training split's bag-of-words counts.

    Args:
        df: Diagnoses with a stems column and, unless ``split_col`` is None, a split column.
        vocabulary: Words the counts are taken over.
        k: Number of topics (the paper's chosen number of diagnosis clusters is 20).
        seed: Seed of the optimiser.
        max_iter: Optimiser iterations.
        optimizer: ``online`` (variational Bayes on mini-batches; scales) or ``em``.
        subsampling_rate: Fraction of the training diagnoses in each online mini-batch; raise it
            towards 1.0 for small corpora.
        stems_col: Column holding each diagnosis's stems.
        split_col: Column naming each row's split; None fits on every row.
        train_split: Value of ``split_col`` that marks training rows.

    Returns:
        The fitted topic model.
    """
    if k < 2:
        raise ValueError(f"LDA needs at least 2 topics, got k={k}.")
    if optimizer not in ("online", "em"):
        raise ValueError(f"optimizer must be 'online' or 'em', got {optimizer!r}.")
    counts = with_counts(training_rows(df, split_col, train_split).select(stems_col), vocabulary, stems_col, _COUNTS)
    lda = LDA(
        k=k,
        seed=seed,
        maxIter=max_iter,
        optimizer=optimizer,
        subsamplingRate=subsampling_rate,
        featuresCol=_COUNTS,
        topicDistributionCol=_DISTRIBUTION,
    )
    fitted = lda.fit(counts)
    # EM yields a distributed model tied to its training graph; the local form is what applies to new data.
    local = fitted.toLocal() if fitted.isDistributed() else fitted
    return TopicModel(local, vocabulary)
