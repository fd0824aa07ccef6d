"""Vectors between Arrow list columns and numpy matrices."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from radnet_spark.vectors import l2_normalise, vectors_from_arrow, vectors_to_arrow


def test_a_matrix_survives_the_round_trip_through_arrow():
    matrix = np.arange(12, dtype=np.float32).reshape(4, 3)
    back, valid = vectors_from_arrow(vectors_to_arrow(matrix))
    assert valid.all()
    np.testing.assert_array_equal(back, matrix)


def test_null_rows_are_absent_from_the_matrix_and_marked_invalid():
    column = pa.chunked_array([pa.array([[1.0, 2.0], None], pa.list_(pa.float32())),
                               pa.array([[3.0, 4.0]], pa.list_(pa.float32()))])
    matrix, valid = vectors_from_arrow(column)
    assert valid.tolist() == [True, False, True]
    np.testing.assert_array_equal(matrix, [[1.0, 2.0], [3.0, 4.0]])


def test_vectors_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="same length"):
        vectors_from_arrow(pa.array([[1.0], [1.0, 2.0]], pa.list_(pa.float32())))


def test_an_empty_matrix_gives_an_empty_column():
    assert len(vectors_to_arrow(np.zeros((0, 5)))) == 0


def test_normalised_rows_have_unit_length_and_zero_rows_stay_zero():
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
