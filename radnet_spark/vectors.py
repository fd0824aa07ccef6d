"""Vectors between Arrow and numpy: Spark's ``array<float>`` columns as dense matrices and back.

Pure helpers (numpy and pyarrow, no Spark) for the executor code of fusion, clustering and the
metrics: a batch's vector column becomes one float32 matrix without per-row Python objects, and a
matrix becomes one Arrow list array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero (their direction is undefined).

    Args:
        x: ``(n, d)`` rows.

    Returns:
        ``(n, d)`` float64 rows of length 1 (or 0).
    """
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x, dtype=np.float64), where=norms > 0)


def vectors_from_arrow(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """Turn an Arrow list<float> column into a dense matrix without per-row Python objects.

    Args:
        column: a ``pyarrow`` list array (one batch of an ``array<float>`` column).

    Returns:
        ``(matrix, valid)``: float32 matrix of the non-null rows and the boolean validity mask over
        all rows. Null rows are absent from the matrix.

    Raises:
        ValueError: when the non-null vectors do not all have the same length.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    valid = column.is_valid().to_numpy(zero_copy_only=False).astype(bool)
    if not valid.all():
        column = column.filter(pa.array(valid))
    n = len(column)
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32), valid
    lengths = pc.list_value_length(column)
    low, high = pc.min(lengths).as_py(), pc.max(lengths).as_py()
    if low != high:
        raise ValueError(f"Vectors in one column must all have the same length; found {low} to {high}.")
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(n, high), valid


def vectors_to_arrow(matrix: np.ndarray) -> pa.ListArray:
    """A ``(n, d)`` matrix as an Arrow list<float> array (Spark ``array<float>``).

    Args:
        matrix: ``(n, d)`` rows, cast to float32.

    Returns:
        An ``n``-row list array, every row ``d`` floats long.
    """
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    n, d = matrix.shape
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32) if n else np.zeros(1, np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.reshape(-1)))
