"""One entry point for diagnosis embeddings: fit, transform, save and load, for every embedder kind.

Kinds: ``bow`` (word counts), ``tfidf`` (IDF-weighted, L2-normalised counts), ``lsa`` (TF-IDF reduced
by a truncated SVD), ``pv_dm`` and ``pv_dbow`` (doc2vec paragraph vectors; PV-DBOW scored best in the
paper). All kinds share one vocabulary counted on the training split, so ``min_word_frequency``
means the same for each. Doc2vec training documents are inferred like new ones (or, with
``training_vectors="trained"``, keep their trained vectors); the dense kinds (``lsa``, ``pv_*``)
are centred on the training mean unless told otherwise, so their vectors do not collapse onto one
direction, and optionally scaled to unit length.

A saved embedder is a directory::

    manifest.json              kind, parameters, vector dimension, library versions
    vocabulary.json            the kept stems with their training counts
    idf.json                   TF-IDF only: the inverse document frequencies
    doc2vec.model              PV-DM / PV-DBOW only: the gensim model without its document vectors
    trained_vectors.parquet    PV-DM / PV-DBOW with trained vectors: document key -> trained vector
    lsa.npz                    LSA only: IDF and SVD weights
    mean.npy                   dense kinds with centring: the training mean subtracted from every vector
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
from radnet_spark.text.centring import finish_vectors, load_mean, save_mean, training_mean
from radnet_spark.text.doc2vec import (
    doc2vec_transform,
    document_key,
    infer_vector,
    load_doc2vec,
    load_trained_vectors,
    sample_training_documents,
    save_trained_vectors,
    train_doc2vec,
    without_document_vectors,
)
from radnet_spark.text.lsa import LsaModel, fit_lsa, lsa_transform
from radnet_spark.text.vocabulary import Vocabulary, fit_vocabulary

log = logging.getLogger(__name__)

KINDS = ("bow", "tfidf", "lsa", "pv_dm", "pv_dbow")
TRAINING_VECTORS = ("trained", "inferred")
MANIFEST_FORMAT = "diagnosis embedder"
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 3  # 3: trained document vectors, centring, LSA
KEY_COLUMNS = ("exam_id", "split")
# With inferred training vectors, the centring mean is estimated on this many sampled training documents.
MEAN_SAMPLE_DOCUMENTS = 2_000

_DOC2VEC_FILE = "doc2vec.model"
_TRAINED_FILE = "trained_vectors.parquet"
_LSA_FILE = "lsa.npz"
_MEAN_FILE = "mean.npy"


@dataclass
class DiagnosisEmbedder:
    """A fitted diagnosis embedder; build it with :func:`fit_diagnosis_embedder` or :meth:`load`.

    Attributes:
        kind: One of :data:`KINDS`.
        vocabulary: Stems kept from the training split.
        params: The fitting parameters (recorded in the manifest).
        idf: TF-IDF weights, one per vocabulary word (``tfidf`` only).
        doc2vec_path: Where the gensim model file is; executors load it from there (doc2vec kinds only).
        trained_vectors_path: Parquet table of the training documents' trained vectors (doc2vec kinds
            with ``training_vectors="trained"``); Spark joins it by document key.
        lsa: The LSA weights (``lsa`` only); ``lsa_path`` is where executors load them from.
        mean: Training mean subtracted from every dense vector; None when centring is off.
    """

    kind: str
    vocabulary: Vocabulary
    params: dict[str, Any]
    idf: np.ndarray | None = None
    doc2vec_path: str | None = None
    trained_vectors_path: str | None = None
    lsa: LsaModel | None = None
    lsa_path: str | None = None
    mean: np.ndarray | None = None
    _doc2vec: Any = field(default=None, repr=False)
    _trained: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def is_doc2vec(self) -> bool:
        return self.kind in ("pv_dm", "pv_dbow")

    @property
    def dimension(self) -> int:
        """Length of every embedding this embedder produces."""
        if self.is_doc2vec:
            return int(self.params["vector_size"])
        if self.kind == "lsa":
            return int(self.params["components"])
        return len(self.vocabulary)

    @property
    def unit_length(self) -> bool:
        return bool(self.params.get("unit_length", False))

    def _inference(self) -> dict[str, Any]:
        return {"seed": int(self.params["seed"]), "epochs": self.params.get("inference_epochs"),
                "alpha": self.params.get("inference_alpha")}

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
                df, self.doc2vec_path, list(KEY_COLUMNS), stems_col, output_col, **self._inference(),
                trained_vectors_path=self.trained_vectors_path, mean=self.mean, unit_length=self.unit_length,
            )
        if self.kind == "lsa":
            if self.lsa_path is None:
                raise PipelineError("This LSA embedder has no saved weights to load on the workers; save it first.")
            return lsa_transform(df, self.lsa_path, list(KEY_COLUMNS), stems_col, output_col, mean=self.mean,
                                 unit_length=self.unit_length)
        embedded = bow_transform(
            df.select(*KEY_COLUMNS, stems_col), self.vocabulary, stems_col, output_col,
            idf=self.idf, normalize=self.kind == "tfidf",
        )
        return embedded.select(*KEY_COLUMNS, output_col)

    def embed(self, stems: Sequence[str] | None) -> np.ndarray:
        """Embed one diagnosis on the driver; equals what :meth:`transform` gives the same stems."""
        words = [str(w) for w in stems or ()]
        if self.is_doc2vec:
            raw = self._trained_vectors().get(document_key(words)) if words else None
            if raw is None:
                raw = infer_vector(self._model(), words, **self._inference())
            return finish_vectors(raw[None, :], self.mean, self.unit_length)[0]
        if self.kind == "lsa":
            return finish_vectors(self._lsa().vector(words)[None, :], self.mean, self.unit_length)[0]
        return bow_vector(stems, self.vocabulary, idf=self.idf, normalize=self.kind == "tfidf")

    def _model(self) -> Any:
        if self._doc2vec is None:
            if self.doc2vec_path is None:
                raise PipelineError("This doc2vec embedder has no model.")
            self._doc2vec = load_doc2vec(self.doc2vec_path)
        return self._doc2vec

    def _trained_vectors(self) -> dict[str, np.ndarray]:
        if self._trained is None:
            self._trained = {} if self.trained_vectors_path is None else load_trained_vectors(self.trained_vectors_path)
        return self._trained

    def _lsa(self) -> LsaModel:
        if self.lsa is None:
            if self.lsa_path is None:
                raise PipelineError("This LSA embedder has no weights.")
            self.lsa = LsaModel.load(self.lsa_path)
        return self.lsa

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the embedder under ``directory`` (created if needed; files of an earlier save are replaced).

        Afterwards :meth:`transform` loads the model files from ``directory``, so on a cluster save
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
            model = self._model()
            for stale in target.glob(f"{_DOC2VEC_FILE}*"):
                stale.unlink()
            model.save(str(target / _DOC2VEC_FILE))
            self.doc2vec_path = str(target / _DOC2VEC_FILE)
            if self.trained_vectors_path is not None:
                files["trained_vectors"] = _TRAINED_FILE
                destination = target / _TRAINED_FILE
                if Path(self.trained_vectors_path).resolve() != destination.resolve():
                    shutil.copyfile(self.trained_vectors_path, destination)
                self.trained_vectors_path = str(destination)
        if self.kind == "lsa":
            files["lsa"] = _LSA_FILE
            self._lsa().save(target / _LSA_FILE)
            self.lsa_path = str(target / _LSA_FILE)
        if self.mean is not None:
            files["mean"] = _MEAN_FILE
            save_mean(self.mean, target / _MEAN_FILE)
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

        def named(key: str) -> str | None:
            if key not in files:
                return None
            path = str(source / files[key])
            if not os.path.isfile(path):
                raise PipelineError(f"File {path} named in {manifest_path} is missing.")
            return path

        embedder = cls(kind, vocabulary, dict(manifest["params"]), idf=idf, doc2vec_path=named("doc2vec"),
                       trained_vectors_path=named("trained_vectors"), lsa_path=named("lsa"))
        mean_path = named("mean")
        if mean_path is not None:
            embedder.mean = load_mean(mean_path, embedder.dimension)
        return embedder


def _library_versions(with_gensim: bool) -> dict[str, str]:
    import pyspark
    import sklearn

    versions = {"pyspark": pyspark.__version__, "numpy": np.__version__, "scikit-learn": sklearn.__version__}
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
    inference_alpha: float | None = None,
    training_vectors: str = "inferred",
    dbow_words: bool = False,
    lsa_components: int = 100,
    centre: bool = True,
    unit_length: bool = False,
    stems_col: str = "stems",
    split_col: str = "split",
    train_split: str = "train",
) -> DiagnosisEmbedder:
    """Fit a diagnosis embedder on the training split.

    Args:
        diagnoses_df: The ``diagnoses`` table with a ``split`` column added.
        kind: One of :data:`KINDS`.
        min_word_frequency: Stems counted fewer times in the training split are ignored.
        vector_size: Doc2vec vector length (BOW/TF-IDF vectors are as long as the vocabulary).
        window: Doc2vec context window.
        epochs: Doc2vec training epochs.
        seed: Seed of the training sample, doc2vec training and inference, and the SVD.
        max_train_docs: Bound on the distinct training diagnoses doc2vec and LSA fit on (on the driver).
        inference_epochs: Doc2vec inference epochs; None uses ``epochs``.
        inference_alpha: Starting learning rate of doc2vec inference; None uses training's (0.025).
        training_vectors: ``trained``: sampled training documents keep the vectors training gave them;
            ``inferred``: they are inferred like new documents.
        dbow_words: PV-DBOW also trains word vectors (makes ``window`` matter for PV-DBOW).
        lsa_components: SVD components of the ``lsa`` kind.
        centre: Dense kinds (``lsa``, ``pv_*``): subtract the training documents' mean vector.
        unit_length: Dense kinds: scale every (centred) vector to unit L2 norm.
        stems_col: Column holding each diagnosis's stems.
        split_col: Column naming each row's split.
        train_split: Value of ``split_col`` that marks training rows.

    Returns:
        The fitted embedder. A doc2vec or LSA embedder keeps its files in a temporary local folder
        until :meth:`DiagnosisEmbedder.save` writes them, which a cluster needs before transforming.
    """
    if kind not in KINDS:
        raise PipelineError(f"Unknown diagnosis embedder {kind!r}; choose one of {', '.join(KINDS)}.")
    if training_vectors not in TRAINING_VECTORS:
        raise PipelineError(
            f"Unknown text.training_vectors {training_vectors!r}; choose one of {', '.join(TRAINING_VECTORS)}."
        )
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
    params.update(max_train_docs=max_train_docs, centre=centre, unit_length=unit_length)
    documents = sample_training_documents(diagnoses_df, stems_col, split_col, train_split, max_train_docs, seed)
    scratch = tempfile.mkdtemp(prefix="radnet-diagnosis-")
    # Lazy DataFrames from transform() may read the scratch copy long after the embedder is gone.
    atexit.register(shutil.rmtree, scratch, True)
    if kind == "lsa":
        lsa = fit_lsa(documents, vocabulary, lsa_components, seed)
        params.update(components=lsa.dimension, requested_components=lsa_components)
        mean = training_mean(lsa.vectors(documents)) if centre else None
        path = str(lsa.save(os.path.join(scratch, _LSA_FILE)))
        return DiagnosisEmbedder(kind, vocabulary, params, lsa=lsa, lsa_path=path, mean=mean)
    params.update(
        vector_size=vector_size, window=window, epochs=epochs, inference_epochs=inference_epochs,
        inference_alpha=inference_alpha, training_vectors=training_vectors, dbow_words=dbow_words,
    )
    model = train_doc2vec(
        documents, dm=1 if kind == "pv_dm" else 0, vector_size=vector_size, window=window, epochs=epochs,
        min_count=min_word_frequency, seed=seed, keep_words=vocabulary.words, dbow_words=dbow_words,
    )
    trained_path = None
    if training_vectors == "trained":
        raw = np.asarray(model.dv.vectors[: len(documents)], dtype=np.float32)
        trained_path = os.path.join(scratch, _TRAINED_FILE)
        save_trained_vectors(documents, raw, trained_path)
    else:
        raw = np.vstack([
            infer_vector(model, words, seed=seed, epochs=inference_epochs, alpha=inference_alpha)
            for words in documents[:MEAN_SAMPLE_DOCUMENTS]
        ])
    mean = training_mean(raw) if centre else None
    model = without_document_vectors(model)
    path = os.path.join(scratch, _DOC2VEC_FILE)
    model.save(path)
    return DiagnosisEmbedder(kind, vocabulary, params, doc2vec_path=path, trained_vectors_path=trained_path,
                             mean=mean, _doc2vec=model)
