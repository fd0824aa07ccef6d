"""Keep dense document vectors from collapsing onto one direction: centre them, then scale to unit length.

Doc2vec and LSA vectors of one corpus share a large common component (every report uses the same
frequent words), so raw vectors are nearly parallel: on a small synthetic corpus their mean pairwise
cosine was 0.99, and a cosine-based proxy (the in-cluster cosine distance) read ≈ 0 for every model.
Subtracting the mean of the training documents' vectors removes that component; scaling each vector
to unit L2 norm then makes Euclidean k-means compare directions (spherical k-means).

Every function works row by row in float64, so a vector never depends on which rows share its batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radnet_spark.errors import PipelineError


def finish_vectors(vectors: np.ndarray, mean: np.ndarray | None, unit_length: bool) -> np.ndarray:
    """Centre and optionally L2-normalise document vectors.

    Args:
        vectors: ``(n, d)`` raw document vectors.
        mean: ``(d,)`` mean of the training documents' raw vectors; None leaves the vectors uncentred.
        unit_length: Scale every (centred) vector to unit L2 norm; an all-zero vector stays zero.

    Returns:
        ``(n, d)`` float32 vectors.
    """
    out = np.asarray(vectors, dtype=np.float64).reshape(len(vectors), -1).copy()
    if mean is not None:
        if mean.shape != (out.shape[1],):
            raise PipelineError(f"A centring mean of shape {mean.shape} does not fit vectors of length {out.shape[1]}.")
        out -= np.asarray(mean, dtype=np.float64)
    if unit_length:
        norms = np.sqrt(np.einsum("ij,ij->i", out, out))
        out /= np.where(norms > 0.0, norms, 1.0)[:, None]
    return out.astype(np.float32)


def training_mean(vectors: np.ndarray) -> np.ndarray:
    """The float64 mean of the training documents' raw vectors, the centre :func:`finish_vectors` subtracts."""
    matrix = np.asarray(vectors, dtype=np.float64)
    if matrix.ndim != 2 or len(matrix) == 0:
        raise PipelineError("Centring needs at least one training document vector.")
    return matrix.mean(axis=0)


def save_mean(mean: np.ndarray, path: str | Path) -> Path:
    """Write the centring mean as a ``.npy`` file (float64, exact)."""
    target = Path(path)
    np.save(target, np.asarray(mean, dtype=np.float64), allow_pickle=False)
    return target


def load_mean(path: str | Path, dimension: int) -> np.ndarray:
    """Read a centring mean written by :func:`save_mean`, checking its length."""
    source = Path(path)
    if not source.is_file():
        raise PipelineError(f"Centring mean {source} is missing.")
    mean = np.load(source, allow_pickle=False)
    if mean.shape != (dimension,):
        raise PipelineError(f"Centring mean {source} has shape {mean.shape}, expected ({dimension},).")
    return mean


def mean_pairwise_cosine(vectors: np.ndarray) -> float:
    """Mean cosine similarity over all pairs of distinct rows (zero rows count as cosine 0)."""
    matrix = np.asarray(vectors, dtype=np.float64)
    n = len(matrix)
    if n < 2:
        raise ValueError("The mean pairwise cosine needs at least two vectors.")
    norms = np.linalg.norm(matrix, axis=1)
    unit = matrix / np.where(norms > 0.0, norms, 1.0)[:, None]
    total = unit.sum(axis=0)
    return float((total @ total - np.sum(norms > 0.0)) / (n * (n - 1)))
