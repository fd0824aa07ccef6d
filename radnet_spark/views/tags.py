"""The tags view: a dense autoencoder (or PCA) over the encoded, imputed DICOM tag vector."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from radnet_spark.config import RadnetConfig
from radnet_spark.embedders import TagEmbedder
from radnet_spark.inference import embed_dataframe
from radnet_spark.views.base import FittedView, View, ViewInputs

# Tag vectors are a few hundred floats: large model batches cost little memory.
TAG_BATCH_ROWS = 1024


class TagsView(View):
    """Embeds the ``features`` vector of the ``tag_features`` table (the paper's tag autoencoder)."""

    name = "tags"
    source_table = "tag_features"
    config_sections = ("tags", "split")

    def usable_rows(self, inputs: ViewInputs) -> tuple[int, str]:
        """Training rows of ``tag_features`` with a feature vector (the split is already there)."""
        rows = inputs.table(self.source_table).where((F.col("split") == "train") & F.col("features").isNotNull())
        return rows.count(), "training rows with tag features"

    def fit(self, inputs: ViewInputs, folder: str) -> FittedView:
        """Train the tag embedder (``tags`` settings) on the training split of ``tag_features``; save it in ``folder``."""
        t = inputs.config.tags
        embedder = TagEmbedder(
            t.embedder, bottleneck=t.ae_bottleneck, hidden=t.ae_hidden, batch_size=t.ae_batch_size,
            learning_rate=t.ae_learning_rate, max_epochs=t.ae_max_epochs, patience=t.ae_patience,
            pca_components=t.pca_components, train_sample_rows=t.fit_sample_rows, seed=inputs.config.split.seed,
            train_threads=t.ae_train_threads,
        )
        embedder.fit(inputs.table_path(self.source_table))
        embedder.save(folder)
        return FittedView(self, folder, embedder.embedding_size, {"kind": t.embedder, "metrics": embedder.metrics})

    def transform(self, fitted: FittedView, source: DataFrame, config: RadnetConfig) -> DataFrame:
        """Embed ``tag_features`` rows on the executors with the saved embedder."""
        return embed_dataframe(source, fitted.folder, "tags", batch_rows=TAG_BATCH_ROWS)
