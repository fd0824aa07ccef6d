"""Doc2vec paragraph vectors of diagnoses: PV-DBOW (``dm=0``, the paper's best) and PV-DM (``dm=1``).

Training runs with gensim on the driver over a bounded, deterministic sample of the distinct
training diagnoses. Each trained document keeps the vector training gave it (``model.dv``): they are
saved as a Parquet table keyed by a digest of the document's stems (:func:`document_key`), which the
Spark transform joins, so a diagnosis whose stems equal a training document's gets that trained
vector. Every other diagnosis is inferred in Spark: a ``mapInPandas`` function loads the saved model
(without its document vectors) once per Python worker.

gensim's own ``infer_vector`` is not reproducible across processes: it seeds the starting vector
with Python's salted ``hash`` of the text and draws window sizes and negative samples from the
model's shared random state. :func:`infer_vector` therefore runs the same training loop with both
seeded from a stable digest of (seed, text), so a diagnosis gets the same vector on every run,
worker and partitioning.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)

from radnet_spark.errors import PipelineError
from radnet_spark.sampling import smallest_hash_rows
from radnet_spark.storage import to_local_path
from radnet_spark.text.stems_frame import vector_output_schema
from radnet_spark.text.vocabulary import training_rows
from radnet_spark.worker_cache import cached

if TYPE_CHECKING:
    from gensim.models.doc2vec import Doc2Vec

log = logging.getLogger(__name__)

_SEPARATOR = "\x1f"  # cannot occur inside a stem, so joined texts map back to one word list


def document_seed(words: Sequence[str], seed: int) -> int:
    """A 64-bit seed that depends only on the words and ``seed`` (not on the process or platform)."""
    digest = hashlib.blake2b(
        f"{seed}{_SEPARATOR}{_SEPARATOR.join(words)}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "little")


def document_key(words: Sequence[str]) -> str:
    """The key of a document's trained vector: SHA-256 (hex) of its stems joined by an unused separator.

    Equals what :func:`document_key_column` computes in Spark for the same stems.
    """
    return hashlib.sha256(_SEPARATOR.join(str(w) for w in words).encode("utf-8")).hexdigest()


def document_key_column(stems: Column) -> Column:
    """:func:`document_key` of an ``array<string>`` column, as a Spark expression."""
    return F.sha2(F.concat_ws(_SEPARATOR, stems), 256)


def infer_vector(
    model: Doc2Vec, words: Sequence[str], seed: int = 42, epochs: int | None = None, alpha: float | None = None
) -> np.ndarray:
    """Infer a diagnosis's paragraph vector reproducibly.

    Same loop as gensim 4's ``Doc2Vec.infer_vector`` (frozen word and output weights, learning
    rate decaying linearly from ``alpha`` to ``min_alpha``), but the starting vector and the
    model's random state are seeded from :func:`document_seed`.

    Args:
        model: A trained gensim Doc2Vec model. Its ``random`` state is reseeded.
        words: The diagnosis's stems; words outside the model's vocabulary are ignored.
        seed: Base seed; the same (seed, words) always gives the same vector.
        epochs: Inference epochs; None uses the model's training epochs.
        alpha: Starting learning rate of inference; None uses the model's (training) ``alpha``.

    Returns:
        The float32 paragraph vector.
    """
    from gensim.models.doc2vec_inner import train_document_dbow, train_document_dm, train_document_dm_concat

    words = [str(word) for word in words]
    epochs = epochs or model.epochs
    # Window shrinking and negative sampling draw from model.random inside the Cython routines, so
    # reseeding it per document makes them reproducible; reseeding is ~100x cheaper than a new RandomState.
    state = model.random if isinstance(model.random, np.random.RandomState) else np.random.RandomState()
    model.random = state
    state.seed(document_seed(words, seed) & 0xFFFFFFFF)
    size = model.dv.vector_size
    doctag_vectors = ((state.random_sample(size).astype(np.float32) - 0.5) / size).reshape(1, size)
    doctags_lockf = np.ones(1, dtype=np.float32)
    work = np.zeros(model.layer1_size, dtype=np.float32)
    neu1 = np.zeros(model.layer1_size, dtype=np.float32)
    alpha = model.alpha if alpha is None else float(alpha)
    alpha_delta = (alpha - model.min_alpha) / max(epochs - 1, 1)
    frozen = {"learn_words": False, "learn_hidden": False, "doctag_vectors": doctag_vectors,
              "doctags_lockf": doctags_lockf}
    for _ in range(epochs):
        if model.sg:
            train_document_dbow(model, words, [0], alpha, work, **frozen)
        elif model.dm_concat:
            train_document_dm_concat(model, words, [0], alpha, work, neu1, **frozen)
        else:
            train_document_dm(model, words, [0], alpha, work, neu1, **frozen)
        alpha -= alpha_delta
    return doctag_vectors[0].copy()


class _EpochLogger:
    """gensim training callback that logs each finished epoch (gensim calls the four hooks by name)."""

    def __init__(self, total_epochs: int) -> None:
        self.total_epochs = total_epochs
        self.epoch = 0
        self.started = time.monotonic()

    def on_train_begin(self, model: Any) -> None:
        self.started = time.monotonic()

    def on_epoch_begin(self, model: Any) -> None:
        pass

    def on_epoch_end(self, model: Any) -> None:
        self.epoch += 1
        log.info("doc2vec epoch %d/%d done after %.1f s", self.epoch, self.total_epochs,
                 time.monotonic() - self.started)

    def on_train_end(self, model: Any) -> None:
        log.info("doc2vec training finished in %.1f s", time.monotonic() - self.started)


def train_doc2vec(
    documents: Sequence[Sequence[str]],
    dm: int = 0,
    vector_size: int = 100,
    window: int = 5,
    epochs: int = 50,
    min_count: int = 5,
    seed: int = 42,
    keep_words: Collection[str] | None = None,
    dbow_words: bool = False,
    workers: int = 1,
) -> Doc2Vec:
    """Train a gensim Doc2Vec model on the driver.

    Args:
        documents: Stem lists, one per training diagnosis; each becomes one tagged document.
        dm: 0 for PV-DBOW, 1 for PV-DM.
        vector_size: Length of the paragraph vectors (the paper tested 10 to 1000).
        window: Context window (PV-DM, and PV-DBOW with ``dbow_words``; the paper tested 5, 7, 10).
        epochs: Training epochs, also the default number of inference epochs.
        min_count: Words counted fewer times in ``documents`` are ignored (unless ``keep_words`` decides).
        seed: Seed of the weight initialisation and of training's random draws.
        keep_words: When given, exactly these words form the model's vocabulary (those occurring in
            ``documents``), e.g. a :class:`~radnet_spark.text.vocabulary.Vocabulary` counted on the
            whole training split; ``min_count`` is then not applied.
        dbow_words: With PV-DBOW, also train skip-gram word vectors (slower; makes ``window`` matter).
        workers: Training threads; 1 makes training reproducible.

    Returns:
        The trained model.
    """
    from gensim.models.doc2vec import Doc2Vec, TaggedDocument
    from gensim.utils import RULE_DISCARD, RULE_KEEP

    if dm not in (0, 1):
        raise ValueError(f"dm must be 0 (PV-DBOW) or 1 (PV-DM), got {dm}.")
    corpus = [TaggedDocument([str(w) for w in words], [position]) for position, words in enumerate(documents)]
    if not corpus:
        raise PipelineError("There are no training diagnoses to fit doc2vec on.")
    trim_rule: Callable[[str, int, int], int] | None = None
    if keep_words is not None:
        kept = set(keep_words)

        def trim_rule(word: str, count: int, min_count: int) -> int:
            return RULE_KEEP if word in kept else RULE_DISCARD

    model = Doc2Vec(
        dm=dm,
        vector_size=vector_size,
        window=window,
        min_count=1 if keep_words is not None else min_count,
        seed=seed,
        workers=workers,
        epochs=epochs,
        dbow_words=int(dbow_words),
    )
    model.build_vocab(corpus, trim_rule=trim_rule)
    if len(model.wv) == 0:
        raise PipelineError("No diagnosis word is frequent enough to train doc2vec; lower min_word_frequency.")
    log.info("doc2vec (%s): %d documents, %d words, vector size %d, %d epochs",
             "PV-DM" if dm else "PV-DBOW", len(corpus), len(model.wv), vector_size, epochs)
    model.train(corpus, total_examples=model.corpus_count, epochs=epochs, callbacks=[_EpochLogger(epochs)])
    return model


def sample_training_documents(
    df: DataFrame,
    stems_col: str = "stems",
    split_col: str | None = "split",
    train_split: str = "train",
    max_train_docs: int = 200_000,
    seed: int = 42,
) -> list[list[str]]:
    """Pick at most ``max_train_docs`` distinct non-empty training diagnoses, deterministically.

    Distinct stem lists are ranked by a seeded hash in Spark and the first ``max_train_docs`` are
    collected, so the driver holds a bounded sample whose content and order depend only on the data
    and the seed.

    Args:
        df: Diagnoses with a stems column and, unless ``split_col`` is None, a split column.
        stems_col: Column holding each diagnosis's stems.
        split_col: Column naming each row's split; None samples every row.
        train_split: Value of ``split_col`` that marks training rows.
        max_train_docs: Size bound of the sample.
        seed: Seed of the ranking hash.

    Returns:
        Stem lists in a pseudo-random but reproducible order.
    """
    distinct = (
        training_rows(df, split_col, train_split)
        .select(F.col(stems_col).alias("stems"))
        .where(F.col("stems").isNotNull() & (F.size("stems") > 0))
        .dropDuplicates(["stems"])
        .withColumn("_text", F.concat_ws(_SEPARATOR, "stems"))
        .withColumn("_rank", F.xxhash64(F.col("_text"), F.lit(seed)))
    )
    sample = smallest_hash_rows(distinct, max_train_docs, F.col("_rank"), ["_text"])
    rows = sample.select("stems", "_rank", "_text").collect()
    rows.sort(key=lambda row: (row["_rank"], row["_text"]))
    return [list(row["stems"]) for row in rows]




def without_document_vectors(model: Doc2Vec) -> Doc2Vec:
    """``model`` with its trained document vectors dropped: inference needs only the word and output weights.

    The trained vectors live in their own table (:func:`save_trained_vectors`), so the model every
    worker loads stays as small as its vocabulary (200,000 documents × 1,000 dimensions would add 800 MB).
    """
    from gensim.models.keyedvectors import KeyedVectors

    model.dv = KeyedVectors(model.dv.vector_size)
    return model


def save_trained_vectors(documents: Sequence[Sequence[str]], vectors: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write one row per training document: ``document`` (:func:`document_key`) and ``vector`` (float32).

    Args:
        documents: The training documents' stems, in the order of ``vectors``.
        vectors: ``(len(documents), d)`` trained document vectors.
        path: The Parquet file to write (a single file, read by Spark and by pyarrow).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(documents) != len(vectors):
        raise PipelineError(f"{len(documents)} training documents but {len(vectors)} trained vectors.")
    matrix = np.asarray(vectors, dtype=np.float32)
    values = pa.array(matrix.reshape(-1), type=pa.float32())
    table = pa.table({
        "document": pa.array([document_key(words) for words in documents], type=pa.string()),
        "vector": pa.FixedSizeListArray.from_arrays(values, matrix.shape[1]).cast(pa.list_(pa.float32())),
    })
    pq.write_table(table, str(path))


def load_trained_vectors(path: str) -> dict[str, np.ndarray]:
    """The trained vectors written by :func:`save_trained_vectors`, by document key (driver-side lookups)."""
    import pyarrow.parquet as pq

    local = to_local_path(path)
    if not os.path.isfile(local):
        raise PipelineError(f"Trained document vectors {path} are missing.")
    table = pq.read_table(local)
    keys = table.column("document").to_pylist()
    vectors = np.asarray(table.column("vector").to_pylist(), dtype=np.float32)
    return dict(zip(keys, vectors, strict=True))


def load_doc2vec(path: str) -> Doc2Vec:
    """Load a saved Doc2Vec model, reusing it within this Python process (one load per worker)."""
    from gensim.models.doc2vec import Doc2Vec

    local = to_local_path(path)
    if not os.path.isfile(local):
        raise PipelineError(
            f"Doc2vec model {path} is not readable here; save the embedder to storage every worker can read."
        )
    return cached(("doc2vec", local, os.path.getmtime(local)), lambda: Doc2Vec.load(local))


def _inference_batches(
    model_path: str, stems_col: str, key_cols: list[str], output_col: str, inference: dict[str, Any],
    mean: list[float] | None, unit_length: bool,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    # Only plain values are captured, so the function pickles small and never drags a model along.
    def infer_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from radnet_spark.text.centring import finish_vectors
        from radnet_spark.text.doc2vec import infer_vector, load_doc2vec

        model = load_doc2vec(model_path)
        centre = None if mean is None else np.asarray(mean, dtype=np.float64)
        for batch in batches:
            trained = batch[_TRAINED] if _TRAINED in batch.columns else [None] * len(batch)
            raw = [
                np.asarray(known, dtype=np.float32) if known is not None
                else infer_vector(model, [] if stems is None else list(stems), **inference)
                for stems, known in zip(batch[stems_col], trained, strict=True)
            ]
            out = batch[key_cols].copy()
            if raw:
                out[output_col] = list(finish_vectors(np.vstack(raw), centre, unit_length))
            else:
                out[output_col] = []
            yield out

    return infer_batches


_TRAINED = "_radnet_trained_vector"
_DOCUMENT = "_radnet_document"


def doc2vec_transform(
    df: DataFrame,
    model_path: str,
    key_cols: Sequence[str] = ("exam_id", "split"),
    stems_col: str = "stems",
    output_col: str = "embedding",
    seed: int = 42,
    epochs: int | None = None,
    alpha: float | None = None,
    trained_vectors_path: str | None = None,
    mean: np.ndarray | None = None,
    unit_length: bool = False,
) -> DataFrame:
    """The paragraph vector of every row, in parallel: trained vectors where known, else inferred.

    Args:
        df: Rows with the key columns and an array<string> stems column.
        model_path: Saved gensim model, readable by every worker (local path, ``file:`` or ``dbfs:/``).
        key_cols: Columns carried to the output unchanged.
        stems_col: Column holding each row's stems.
        output_col: Name of the ``array<float>`` vector column.
        seed: Base seed of :func:`infer_vector`.
        epochs: Inference epochs; None uses the model's training epochs.
        alpha: Starting learning rate of inference; None uses the model's.
        trained_vectors_path: Parquet file of :func:`save_trained_vectors`; rows whose stems are a
            training document take its trained vector instead of an inferred one. None infers every row.
        mean: Centre subtracted from every vector (see :mod:`radnet_spark.text.centring`); None: none.
        unit_length: Scale every (centred) vector to unit L2 norm.

    Returns:
        A DataFrame of the key columns plus ``output_col``.
    """
    key_cols = list(key_cols)
    schema = vector_output_schema(df, key_cols, stems_col, output_col)
    rows = df.select(*key_cols, stems_col)
    if trained_vectors_path is not None:
        trained = (
            df.sparkSession.read.parquet(trained_vectors_path)
            .select(F.col("document").alias(_DOCUMENT), F.col("vector").alias(_TRAINED))
        )
        rows = (
            rows.withColumn(_DOCUMENT, document_key_column(F.col(stems_col)))
            .join(trained, _DOCUMENT, "left")
            .select(*key_cols, stems_col, _TRAINED)
        )
    inference = {"seed": seed, "epochs": epochs, "alpha": alpha}
    centre = None if mean is None else [float(v) for v in mean]
    function = _inference_batches(model_path, stems_col, key_cols, output_col, inference, centre, unit_length)
    return rows.mapInPandas(function, schema)
