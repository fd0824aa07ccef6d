"""The image view: the paper's convolutional autoencoder over the 8-bit image, optionally with PCA."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from radnet_spark.config import ImageConfig, RadnetConfig
from radnet_spark.embedders import ImageEmbedder
from radnet_spark.inference import embed_dataframe
from radnet_spark.sampling import hash_candidates
from radnet_spark.splits import with_split
from radnet_spark.tables import canonical_layout, drop_table, write_table
from radnet_spark.views.base import FittedView, View, ViewInputs

WORK_TABLE = "_work/image_training"


def bounded_training_images(images: DataFrame, image: ImageConfig, seed: int) -> DataFrame:
    """Only as many training/validation images as the image embedder can read, picked by key hash.

    The embedder samples at most ``train_sample_rows`` training rows (and fixed-size validation and
    PCA samples); copying every image of a 1.3M dump into its work table would move ~20 GB for that.
    """
    counts = {row["split"]: row["count"] for row in images.groupBy("split").count().collect()}
    wanted = {
        "train": max(image.train_sample_rows or counts.get("train", 0), image.pca_sample_rows),
        "validation": image.validation_sample_rows,
    }
    rank = F.xxhash64(F.lit(seed), F.col("sop_instance_uid"))
    keep = F.lit(False)
    for split, rows in wanted.items():
        keep = keep | ((F.col("split") == split) & hash_candidates(rank, rows, counts.get(split, 0)))
    return images.where(keep)


class ImageView(View):
    """Embeds the ``image`` bytes of the ``images`` table with the convolutional autoencoder."""

    name = "image"
    source_table = "images"
    config_sections = ("image", "split", "ingest")

    def fit(self, inputs: ViewInputs, folder: str) -> FittedView:
        """Train the CAE (and PCA) on a bounded copy of the training and validation images; save it in ``folder``."""
        i, seed = inputs.config.image, inputs.config.split.seed
        images = inputs.with_split(inputs.table(self.source_table)).where(F.col("split").isin("train", "validation"))
        images = bounded_training_images(images, i, seed)
        # One folder per split: each epoch's validation pass then reads validation files only, instead of
        # decoding every row group's images to filter them by split.
        write_table(canonical_layout(images.select("sop_instance_uid", "exam_id", "split", "image"),
                                     partition_by="split"), inputs.warehouse, WORK_TABLE, partition_by="split")
        embedder = ImageEmbedder(
            filters=i.cae_filters, bottleneck_channels=i.cae_bottleneck_channels,
            image_size=inputs.config.ingest.image_size, batch_size=i.batch_size, learning_rate=i.learning_rate,
            max_epochs=i.max_epochs, patience=i.patience, train_sample_rows=i.train_sample_rows,
            validation_sample_rows=i.validation_sample_rows, pca_components=i.pca_components,
            pca_sample_rows=i.pca_sample_rows, seed=seed, train_threads=i.train_threads,
        )
        embedder.fit(inputs.table_path(WORK_TABLE))
        embedder.save(folder)
        drop_table(inputs.warehouse, WORK_TABLE)
        return FittedView(self, folder, embedder.embedding_size, {"kind": "cae", "metrics": embedder.metrics})

    def transform(self, fitted: FittedView, source: DataFrame, config: RadnetConfig) -> DataFrame:
        """Embed ``images`` rows on the executors with the saved CAE."""
        return embed_dataframe(with_split(source, config.split), fitted.folder, "image",
                               batch_rows=config.image.inference_batch_rows)
