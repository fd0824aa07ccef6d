"""LSA vectors of diagnoses: TF-IDF over the training vocabulary reduced by a truncated SVD.

Fitting runs with scikit-learn on the driver over the same bounded, deterministic sample of
distinct training diagnoses that doc2vec trains on: ``TfidfVectorizer`` (smoothed IDF, rows scaled
to unit L2 norm) restricted to the vocabulary, then ``TruncatedSVD`` (randomised, seeded). The
weights are saved as one ``.npz`` file; Spark applies them in a ``mapInPandas`` function that loads
the file once per Python worker.

A diagnosis's vector is computed from its own words only, summed over its vocabulary words in index
order in float64, so it is the same on every run, worker and partitioning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame

from radnet_spark.errors import PipelineError
from radnet_spark.storage import to_local_path
from radnet_spark.text.stems_frame import vector_output_schema
from radnet_spark.text.vocabulary import Vocabulary
from radnet_spark.worker_cache import cached

log = logging.getLogger(__name__)

LSA_FORMAT_VERSION = 1


@dataclass
class LsaModel:
    """Fitted LSA weights.

    Attributes:
        words: The vocabulary, in the order of the weights' columns.
        idf: ``(V,)`` inverse document frequencies (scikit-learn's smoothed ``ln((1+n)/(1+df)) + 1``).
        components: ``(c, V)`` right singular vectors; a diagnosis's vector is ``components @ tfidf``.
    """

    words: tuple[str, ...]
    idf: np.ndarray
    components: np.ndarray

    @property
    def dimension(self) -> int:
        return int(self.components.shape[0])

    def __post_init__(self) -> None:
        self.index = {word: position for position, word in enumerate(self.words)}
        # Columns of the transposed weights are read one word at a time while embedding.
        self._by_word = np.ascontiguousarray(self.components.T, dtype=np.float64)

    def vector(self, stems: Sequence[str] | None) -> np.ndarray:
        """The LSA vector of one diagnosis (all zeros when none of its words is in the vocabulary).

        Args:
            stems: The diagnosis's stems; None counts as no words.

        Returns:
            A float64 vector of length :attr:`dimension`.
        """
        counts: dict[int, int] = {}
        for word in stems or ():
            position = self.index.get(str(word))
            if position is not None:
                counts[position] = counts.get(position, 0) + 1
        out = np.zeros(self.dimension, dtype=np.float64)
        if not counts:
            return out
        positions = sorted(counts)
        weights = np.array([counts[p] * self.idf[p] for p in positions], dtype=np.float64)
        weights /= np.sqrt(np.sum(weights * weights))
        for position, weight in zip(positions, weights, strict=True):
            out += weight * self._by_word[position]
        return out

    def vectors(self, documents: Sequence[Sequence[str] | None]) -> np.ndarray:
        """:meth:`vector` of every document, stacked ``(n, dimension)``."""
        if not documents:
            return np.zeros((0, self.dimension), dtype=np.float64)
        return np.vstack([self.vector(stems) for stems in documents])

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the weights as one ``.npz`` file (exact float64)."""
        target = Path(path)
        with open(target, "wb") as handle:
            np.savez(handle, version=np.array(LSA_FORMAT_VERSION), words=np.array(self.words, dtype=str),
                     idf=self.idf, components=self.components)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LsaModel:
        """Read weights written by :meth:`save`."""
        source = Path(to_local_path(str(path)))
        if not source.is_file():
            raise PipelineError(f"LSA weights {path} are missing; save the embedder where every worker can read it.")
        with np.load(source, allow_pickle=False) as data:
            if int(data["version"]) != LSA_FORMAT_VERSION:
                raise PipelineError(f"LSA weights {path} are format {int(data['version'])}, not {LSA_FORMAT_VERSION}.")
            return cls(tuple(str(w) for w in data["words"]), data["idf"].astype(np.float64),
                       data["components"].astype(np.float64))


def fit_lsa(documents: Sequence[Sequence[str]], vocabulary: Vocabulary, components: int, seed: int = 42) -> LsaModel:
    """Fit TF-IDF and a truncated SVD on the training documents.

    Args:
        documents: Stem lists of the bounded training sample.
        vocabulary: Words the TF-IDF counts (others are ignored).
        components: Wanted SVD components; at most ``min(documents, words) - 1`` are fitted (a warning
            says when fewer).
        seed: Seed of the randomised SVD.

    Returns:
        The fitted weights.
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    if components < 1:
        raise PipelineError(f"text.lsa_components must be at least 1; got {components}.")
    words = tuple(vocabulary.words)
    if len(documents) < 2 or len(words) < 2:
        raise PipelineError(
            f"LSA needs at least 2 training diagnoses and 2 vocabulary words; got {len(documents)} and {len(words)}."
        )
    limit = min(len(documents), len(words)) - 1
    fitted = min(components, limit)
    if fitted < components:
        log.warning("LSA: %d components requested, but %d training diagnoses and %d words allow %d; fitting %d.",
                    components, len(documents), len(words), limit, fitted)
    tfidf = TfidfVectorizer(analyzer=_identity, vocabulary={w: i for i, w in enumerate(words)}, lowercase=False,
                            dtype=np.float64)
    matrix = tfidf.fit_transform([[str(w) for w in doc] for doc in documents])
    svd = TruncatedSVD(n_components=fitted, algorithm="randomized", n_iter=7, random_state=seed)
    svd.fit(matrix)
    log.info("LSA: %d documents, %d words, %d components explain %.1f %% of the TF-IDF variance",
             len(documents), len(words), fitted, 100 * float(svd.explained_variance_ratio_.sum()))
    return LsaModel(words, np.asarray(tfidf.idf_, dtype=np.float64), np.asarray(svd.components_, dtype=np.float64))


def _identity(document: list[str]) -> list[str]:
    return document


def load_lsa(path: str) -> LsaModel:
    """Load saved LSA weights, reusing them within this Python process (one load per worker)."""
    local = to_local_path(path)
    if not os.path.isfile(local):
        raise PipelineError(f"LSA weights {path} are not readable here; save the embedder where every worker can read it.")
    return cached(("lsa", local, os.path.getmtime(local)), lambda: LsaModel.load(local))


def _lsa_batches(
    lsa_path: str, stems_col: str, key_cols: list[str], output_col: str, mean: list[float] | None, unit_length: bool
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def embed_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from radnet_spark.text.centring import finish_vectors
        from radnet_spark.text.lsa import load_lsa

        model = load_lsa(lsa_path)
        centre = None if mean is None else np.asarray(mean, dtype=np.float64)
        for batch in batches:
            out = batch[key_cols].copy()
            raw = model.vectors([None if s is None else list(s) for s in batch[stems_col]])
            out[output_col] = list(finish_vectors(raw, centre, unit_length)) if len(raw) else []
            yield out

    return embed_batches


def lsa_transform(
    df: DataFrame,
    lsa_path: str,
    key_cols: Sequence[str] = ("exam_id", "split"),
    stems_col: str = "stems",
    output_col: str = "embedding",
    mean: np.ndarray | None = None,
    unit_length: bool = False,
) -> DataFrame:
    """The LSA vector of every row, in parallel.

    Args:
        df: Rows with the key columns and an array<string> stems column.
        lsa_path: Saved weights (:meth:`LsaModel.save`), readable by every worker.
        key_cols: Columns carried to the output unchanged.
        stems_col: Column holding each row's stems.
        output_col: Name of the ``array<float>`` vector column.
        mean: Centre subtracted from every vector; None: none.
        unit_length: Scale every (centred) vector to unit L2 norm.

    Returns:
        A DataFrame of the key columns plus ``output_col``.
    """
    key_cols = list(key_cols)
    schema = vector_output_schema(df, key_cols, stems_col, output_col)
    centre = None if mean is None else [float(v) for v in mean]
    function = _lsa_batches(lsa_path, stems_col, key_cols, output_col, centre, unit_length)
    return df.select(*key_cols, stems_col).mapInPandas(function, schema)
