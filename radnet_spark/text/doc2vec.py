"""Doc2vec paragraph vectors of diagnoses: PV-DBOW (``dm=0``, the paper's best) and PV-DM (``dm=1``).

Training runs with gensim on the driver over a bounded, deterministic sample of the distinct
training diagnoses. Inference runs in Spark: a ``mapInPandas`` function loads the saved model once
per Python worker and infers every diagnosis.

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
from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812 (the PySpark convention)
from pyspark.sql.types import ArrayType, FloatType, StructField, StructType

from radnet_spark.errors import PipelineError
from radnet_spark.sampling import smallest_hash_rows
from radnet_spark.storage import to_local_path
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


def infer_vector(model: Doc2Vec, words: Sequence[str], seed: int = 42, epochs: int | None = None) -> np.ndarray:
    """Infer a diagnosis's paragraph vector reproducibly.

    Same loop as gensim 4's ``Doc2Vec.infer_vector`` (frozen word and output weights, learning
    rate decaying linearly from ``alpha`` to ``min_alpha``), but the starting vector and the
    model's random state are seeded from :func:`document_seed`.

    Args:
        model: A trained gensim Doc2Vec model. Its ``random`` state is reseeded.
        words: The diagnosis's stems; words outside the model's vocabulary are ignored.
        seed: Base seed; the same (seed, words) always gives the same vector.
        epochs: Inference epochs; None uses the model's training epochs.

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
    alpha = model.alpha
    alpha_delta = (model.alpha - model.min_alpha) / max(epochs - 1, 1)
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
    model_path: str, stems_col: str, key_cols: list[str], output_col: str, seed: int, epochs: int | None
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    # Only plain values are captured, so the function pickles small and never drags a model along.
    def infer_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from radnet_spark.text.doc2vec import infer_vector, load_doc2vec

        model = load_doc2vec(model_path)
        for batch in batches:
            vectors = [
                infer_vector(model, [] if stems is None else list(stems), seed=seed, epochs=epochs)
                for stems in batch[stems_col]
            ]
            out = batch[key_cols].copy()
            out[output_col] = vectors
            yield out

    return infer_batches


def doc2vec_transform(
    df: DataFrame,
    model_path: str,
    key_cols: Sequence[str] = ("exam_id", "split"),
    stems_col: str = "stems",
    output_col: str = "embedding",
    seed: int = 42,
    epochs: int | None = None,
) -> DataFrame:
    """Infer the paragraph vector of every row in parallel.

    Args:
        df: Rows with the key columns and an array<string> stems column.
        model_path: Saved gensim model, readable by every worker (local path, ``file:`` or ``dbfs:/``).
        key_cols: Columns carried to the output unchanged.
        stems_col: Column holding each row's stems.
        output_col: Name of the ``array<float>`` vector column.
        seed: Base seed of :func:`infer_vector`.
        epochs: Inference epochs; None uses the model's training epochs.

    Returns:
        A DataFrame of the key columns plus ``output_col``.
    """
    key_cols = list(key_cols)
    missing = [c for c in [*key_cols, stems_col] if c not in df.columns]
    if missing:
        raise PipelineError(f"The diagnoses DataFrame lacks the column(s) {', '.join(missing)}.")
    schema = StructType(
        [df.schema[c] for c in key_cols] + [StructField(output_col, ArrayType(FloatType(), False), False)]
    )
    function = _inference_batches(model_path, stems_col, key_cols, output_col, seed, epochs)
    return df.select(*key_cols, stems_col).mapInPandas(function, schema)
