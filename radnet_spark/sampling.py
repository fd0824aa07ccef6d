"""Deterministic bounded samples of a table, for the fits that run on the driver.

A sample is the ``max_rows`` rows with the smallest seeded hash, so it depends on the data and the
seed only, never on partitioning. Sorting the whole table to find them would send every row
through one reducer (and a collected sort-and-limit brings up to ``max_rows`` rows *per partition*
to the driver); a threshold on the hash first keeps about ``max_rows`` candidates plus a
six-sigma margin, and only those are sorted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

_RANK = "_sample_rank"


def candidate_fraction(max_rows: int, total: int) -> float:
    """Share of rows to keep by hash so at least ``max_rows`` survive, but for a ~1e-9 chance."""
    if total <= max_rows:
        return 1.0
    return min(1.0, (max_rows + 6.0 * math.sqrt(max_rows) + 64.0) / total)


def hash_threshold(fraction: float) -> int:
    """The signed 64-bit hash value below which ``fraction`` of uniformly hashed rows fall."""
    return min(2**63 - 1, int(-(2**63) + fraction * 2**64))


def hash_candidates(rank: Column, max_rows: int, total: int) -> Column:
    """Predicate keeping about ``max_rows`` of ``total`` rows (plus the margin) by their hash ``rank``."""
    fraction = candidate_fraction(max_rows, total)
    return F.lit(True) if fraction >= 1.0 else rank < F.lit(hash_threshold(fraction))


def smallest_hash_rows(
    df: DataFrame, max_rows: int, rank: Column, tiebreak: Sequence[Column | str] = (), total: int | None = None
) -> DataFrame:
    """The ``max_rows`` rows of ``df`` with the smallest ``rank`` (a 64-bit hash), in that order.

    Args:
        df: Rows to sample.
        max_rows: Size bound of the sample.
        rank: A seeded ``xxhash64`` of each row's key.
        tiebreak: Columns ordering rows with equal rank (the key itself).
        total: Rows in ``df`` when the caller already counted them (saves a pass).
    """
    total = df.count() if total is None else total
    ranked = df.withColumn(_RANK, rank).where(hash_candidates(F.col(_RANK), max_rows, total))
    return ranked.orderBy(F.col(_RANK), *tiebreak).limit(max_rows).drop(_RANK)
