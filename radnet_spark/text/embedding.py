"""One entry point for diagnosis embeddings: fit, transform, save and load, for every embedder kind.

Kinds: ``bow`` (word counts), ``tfidf`` (IDF-weighted, L2-normalised counts), ``pv_dm`` and
``pv_dbow`` (doc2vec paragraph vectors; PV-DBOW scored best in the paper). All kinds share one
vocabulary counted on the training split, so ``min_word_frequency`` means the same for each.

A saved embedder is a directory::

    manifest.json      kind, parameters, vector dimension, library versions
    vocabulary.json    the kept stems with their training counts
    idf.json           TF-IDF only: the inverse document frequencies
    doc2vec.model      PV-DM / PV-DBOW only: the gensim model (plus .npy files for large arrays)
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import DataFrame

from radnet_spark.artifacts import read_step_manifest, write_step_manifest
from radnet_spark.errors import PipelineError
from radnet_spark.text.bow import bow_transform, bow_vector, fit_idf, load_idf, save_idf
from radnet_spark.text.doc2vec import (
    doc2vec_transform,
    infer_vector,
    load_doc2vec,
    sample_training_documents,
    train_doc2vec,
)
from radnet_spark.text.vocabulary import Vocabulary, fit_vocabulary

log = logging.getLogger(__name__)

KINDS = ("bow", "tfidf", "pv_dm", "pv_dbow")
MANIFEST_FORMAT = "diagnosis embedder"
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 2  # 2: the common fitted-step manifest (radnet_spark.artifacts)
KEY_COLUMNS = ("exam_id", "split")

_DOC2VEC_FILE = "doc2vec.model"


@dataclass
class DiagnosisEmbedder:
    """A fitted diagnosis embedder; build it with :func:`fit_diagnosis_embedder` or :meth:`load`.

    Attributes:
        kind: One of ``bow``, ``tfidf``, ``pv_dm``, ``pv_dbow``.
        vocabulary: Stems kept from the training split.
        params: The fitting parameters (recorded in the manifest).
        idf: TF-IDF weights, one per vocabulary word (``tfidf`` only).
        doc2vec_path: Where the gensim model file is; executors load it from there (doc2vec kinds only).
    """

    kind: str
    vocabulary: Vocabulary
    params: dict[str, Any]
    idf: np.ndarray | None = None
    doc2vec_path: str | None = None
    _doc2vec: Any = field(default=None, repr=False)

    @property
    def is_doc2vec(self) -> bool:
        return self.kind in ("pv_dm", "pv_dbow")

    @property
    def dimension(self) -> int:
        """Length of every embedding this embedder produces."""
        return int(self.params["vector_size"]) if self.is_doc2vec else len(self.vocabulary)

    def transform(self, df: DataFrame, stems_col: str = "stems", output_col: str = "embedding") -> DataFrame:
        """Embed every diagnosis: the ``embeddings_diagnosis`` table.

        Args:
            df: Diagnoses with ``exam_id``, ``split`` and an array<string> stems column.
            stems_col: Column holding each diagnosis's stems.
            output_col: Name of the ``array<float>`` embedding column.

        Returns:
            A DataFrame ``(exam_id, split, embedding)``, one row per input row.
        """
        missing = [c for c in [*KEY_COLUMNS, stems_col] if c not in df.columns]
        if missing:
            raise PipelineError(
                f"The diagnoses DataFrame lacks the column(s) {', '.join(missing)}; the split comes from "
                "radnet_spark.splits.split_column(col('exam_id'))."
            )
        if self.is_doc2vec:
            if self.doc2vec_path is None:
                raise PipelineError("This doc2vec embedder has no saved model to load on the workers.")
            return doc2vec_transform(
                df, self.doc2vec_path, list(KEY_COLUMNS), stems_col, output_col,
                seed=int(self.params["seed"]), epochs=self.params.get("inference_epochs"),
            )
        embedded = bow_transform(
            df.select(*KEY_COLUMNS, stems_col), self.vocabulary, stems_col, output_col,
            idf=self.idf, normalize=self.kind == "tfidf",
        )
        return embedded.select(*KEY_COLUMNS, output_col)

    def embed(self, stems: Sequence[str] | None) -> np.ndarray:
        """Embed one diagnosis on the driver; equals what :meth:`transform` gives the same stems."""
        if self.is_doc2vec:
            return infer_vector(
                self._model(), list(stems or ()), seed=int(self.params["seed"]),
                epochs=self.params.get("inference_epochs"),
            )
        return bow_vector(stems, self.vocabulary, idf=self.idf, normalize=self.kind == "tfidf")

    def _model(self) -> Any:
        if self._doc2vec is None:
            if self.doc2vec_path is None:
                raise PipelineError("This doc2vec embedder has no model.")
            self._doc2vec = load_doc2vec(self.doc2vec_path)
        return self._doc2vec

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the embedder under ``directory`` (created if needed; files of an earlier save are replaced).

        Afterwards :meth:`transform` loads the doc2vec model from ``directory``, so on a cluster save
        to storage every worker can read before transforming.
        """
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        files = {"vocabulary": "vocabulary.json"}
        self.vocabulary.save(target / files["vocabulary"])
        if self.idf is not None:
            files["idf"] = "idf.json"
            save_idf(self.idf, target / files["idf"])
        if self.is_doc2vec:
            files["doc2vec"] = _DOC2VEC_FILE
            for stale in target.glob(f"{_DOC2VEC_FILE}*"):
                stale.unlink()
            self._model().save(str(target / _DOC2VEC_FILE))
            self.doc2vec_path = str(target / _DOC2VEC_FILE)
        write_step_manifest(target, MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_VERSION, kind=self.kind,
                            dimension=self.dimension, params=self.params, files=files,
                            libraries=_library_versions(self.is_doc2vec))
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> DiagnosisEmbedder:
        """Read an embedder written by :meth:`save`."""
        source = Path(directory)
        manifest_path = source / MANIFEST_FILE
        manifest = read_step_manifest(source, MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_VERSION)
        kind = manifest["kind"]
        files = manifest["files"]
        vocabulary = Vocabulary.load(source / files["vocabulary"])
        idf = load_idf(source / files["idf"], len(vocabulary)) if "idf" in files else None
        doc2vec_path = None
        if "doc2vec" in files:
            doc2vec_path = str(source / files["doc2vec"])
            if not os.path.isfile(doc2vec_path):
                raise PipelineError(f"Doc2vec model {doc2vec_path} named in {manifest_path} is missing.")
        return cls(kind, vocabulary, dict(manifest["params"]), idf=idf, doc2vec_path=doc2vec_path)


def _library_versions(with_gensim: bool) -> dict[str, str]:
    import pyspark

    versions = {"pyspark": pyspark.__version__, "numpy": np.__version__}
    if with_gensim:
        import gensim

        versions["gensim"] = gensim.__version__
    return versions


def fit_diagnosis_embedder(
    diagnoses_df: DataFrame,
    kind: str = "pv_dbow",
    min_word_frequency: int = 5,
    vector_size: int = 100,
    window: int = 5,
    epochs: int = 50,
    seed: int = 42,
    max_train_docs: int = 200_000,
    inference_epochs: int | None = None,
    dbow_words: bool = False,
    stems_col: str = "stems",
    split_col: str = "split",
    train_split: str = "train",
) -> DiagnosisEmbedder:
    """Fit a diagnosis embedder on the training split.

    Args:
        diagnoses_df: The ``diagnoses`` table with a ``split`` column added.
        kind: ``bow``, ``tfidf``, ``pv_dm`` or ``pv_dbow``.
        min_word_frequency: Stems counted fewer times in the training split are ignored.
        vector_size: Doc2vec vector length (BOW/TF-IDF vectors are as long as the vocabulary).
        window: Doc2vec context window.
        epochs: Doc2vec training epochs.
        seed: Seed of the doc2vec sample, training and inference.
        max_train_docs: Bound on the distinct training diagnoses doc2vec trains on (on the driver).
        inference_epochs: Doc2vec inference epochs; None uses ``epochs``.
        dbow_words: PV-DBOW also trains word vectors (makes ``window`` matter for PV-DBOW).
        stems_col: Column holding each diagnosis's stems.
        split_col: Column naming each row's split.
        train_split: Value of ``split_col`` that marks training rows.

    Returns:
        The fitted embedder. A doc2vec embedder keeps its model in a temporary local file until
        :meth:`DiagnosisEmbedder.save` moves it, which a cluster needs before transforming.
    """
    if kind not in KINDS:
        raise PipelineError(f"Unknown diagnosis embedder {kind!r}; choose one of {', '.join(KINDS)}.")
    vocabulary = fit_vocabulary(diagnoses_df, stems_col, min_word_frequency, split_col, train_split)
    if len(vocabulary) == 0:
        raise PipelineError(
            f"No stem occurs at least {min_word_frequency} times in the training diagnoses; "
            "lower text.min_word_frequency."
        )
    log.info("diagnosis vocabulary: %d stems with count >= %d", len(vocabulary), min_word_frequency)
    params: dict[str, Any] = {"min_word_frequency": min_word_frequency, "seed": seed}
    if kind == "bow":
        return DiagnosisEmbedder(kind, vocabulary, params)
    if kind == "tfidf":
        idf = fit_idf(diagnoses_df, vocabulary, stems_col, split_col, train_split)
        return DiagnosisEmbedder(kind, vocabulary, params, idf=idf)
    params.update(
        vector_size=vector_size, window=window, epochs=epochs, max_train_docs=max_train_docs,
        inference_epochs=inference_epochs, dbow_words=dbow_words,
    )
    documents = sample_training_documents(diagnoses_df, stems_col, split_col, train_split, max_train_docs, seed)
    model = train_doc2vec(
        documents, dm=1 if kind == "pv_dm" else 0, vector_size=vector_size, window=window, epochs=epochs,
        min_count=min_word_frequency, seed=seed, keep_words=vocabulary.words, dbow_words=dbow_words,
    )
    scratch = tempfile.mkdtemp(prefix="radnet-doc2vec-")
    path = os.path.join(scratch, _DOC2VEC_FILE)
    model.save(path)
    embedder = DiagnosisEmbedder(kind, vocabulary, params, doc2vec_path=path, _doc2vec=model)
    # Lazy DataFrames from transform() may read the scratch copy long after the embedder is gone.
    atexit.register(shutil.rmtree, scratch, True)
    return embedder
