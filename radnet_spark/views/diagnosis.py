"""The diagnosis view: a document embedding (PV-DBOW by default) of the exam's stemmed narrative.

Training exams get their diagnosis's trained doc2vec vector, other exams an inferred one (see
:mod:`radnet_spark.text.doc2vec`); ``text.embedder=lsa`` gives TF-IDF reduced by a truncated SVD.
Dense vectors are centred on the training mean and scaled to unit length (``text.centre``,
``text.unit_length``), so the in-cluster cosine distance tells models apart.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from radnet_spark.config import RadnetConfig
from radnet_spark.splits import with_split
from radnet_spark.tables import table_exists
from radnet_spark.text.embedding import DiagnosisEmbedder, fit_diagnosis_embedder
from radnet_spark.views.base import FittedView, View, ViewInputs


class DiagnosisView(View):
    """Embeds the ``stems`` of the ``diagnoses`` table; one embedding per exam."""

    name = "diagnosis"
    key = "exam_id"
    source_table = "diagnoses"
    config_sections = ("text", "split")

    def usable_rows(self, inputs: ViewInputs) -> tuple[int, str]:
        """Training diagnoses with at least one stem frequent enough to enter the vocabulary."""
        minimum = inputs.config.text.min_word_frequency
        what = f"training diagnoses with a stem seen at least {minimum} times (text.min_word_frequency)"
        if not table_exists(inputs.warehouse, self.source_table):
            return 0, what
        train = inputs.with_split(inputs.table(self.source_table)).where(F.col("split") == "train")
        stems = train.select("exam_id", F.explode("stems").alias("stem"))
        frequent = stems.groupBy("stem").count().where(F.col("count") >= minimum).select("stem")
        return stems.join(frequent, "stem", "left_semi").select("exam_id").distinct().count(), what

    def fit(self, inputs: ViewInputs, folder: str) -> FittedView:
        x = inputs.config.text
        embedder = fit_diagnosis_embedder(
            inputs.with_split(inputs.table(self.source_table)), kind=x.embedder,
            min_word_frequency=x.min_word_frequency, vector_size=x.vector_size, window=x.window,
            epochs=x.epochs, seed=x.seed, max_train_docs=x.max_train_docs, inference_epochs=x.inference_epochs,
            inference_alpha=x.inference_alpha, training_vectors=x.training_vectors,
            lsa_components=x.lsa_components, centre=x.centre, unit_length=x.unit_length,
        )
        embedder.save(folder)
        return FittedView(self, folder, embedder.dimension, {"kind": x.embedder})

    def transform(self, fitted: FittedView, source: DataFrame, config: RadnetConfig) -> DataFrame:
        return DiagnosisEmbedder.load(fitted.folder).transform(with_split(source, config.split))
